//! The OpenSSL calls mosquitto makes that the `openssl` crate does not
//! wrap: `X509_NAME_print_ex` (the subject that `use_subject_as_username`
//! makes the username), `SSL_CTX_use_psk_identity_hint` (`psk_hint`) and
//! `SSL_CTX_set_dh_auto` (DHE groups sized by OpenSSL).
//! Both link against the libcrypto/libssl that `openssl-sys` already links.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_ulong, c_void};

use openssl::ssl::SslContextBuilder;
use openssl::x509::X509NameRef;
use openssl_sys::{BIO, SSL_CTX, X509_NAME};

/// `XN_FLAG_RFC2253` from `openssl/x509.h`: RFC 2253 order and escaping,
/// comma separators, short names, multi-byte characters dumped as UTF-8
/// escapes as OpenSSL does it.
const XN_FLAG_RFC2253: c_ulong = 0x0111_0317;
/// `BIO_CTRL_INFO`: asks a memory BIO for its contents.
const BIO_CTRL_INFO: c_int = 3;

unsafe extern "C" {
    fn X509_NAME_print_ex(
        out: *mut BIO,
        name: *const X509_NAME,
        indent: c_int,
        flags: c_ulong,
    ) -> c_int;
    fn SSL_CTX_use_psk_identity_hint(ctx: *mut SSL_CTX, hint: *const c_char) -> c_int;
}

/// The name exactly as mosquitto formats it for `use_subject_as_username`:
/// `X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253)`. `None` if OpenSSL
/// fails (out of memory) or prints bytes that are not UTF-8, which a
/// username cannot hold.
pub fn name_rfc2253(name: &X509NameRef) -> Option<String> {
    use foreign_types::ForeignTypeRef;
    // SAFETY: the BIO is created, used and freed here; `name` is a valid
    // X509_NAME borrowed for the call; BIO_ctrl(BIO_CTRL_INFO) stores a
    // pointer to the BIO's own buffer, valid until the BIO is written to or
    // freed, and it is copied before BIO_free.
    unsafe {
        let bio = openssl_sys::BIO_new(openssl_sys::BIO_s_mem());
        if bio.is_null() {
            return None;
        }
        let printed = X509_NAME_print_ex(bio, name.as_ptr(), 0, XN_FLAG_RFC2253);
        let mut data: *mut c_char = std::ptr::null_mut();
        let len = openssl_sys::BIO_ctrl(
            bio,
            BIO_CTRL_INFO,
            0,
            &mut data as *mut *mut c_char as *mut c_void,
        );
        let bytes = if printed >= 0 && len >= 0 && !data.is_null() {
            std::slice::from_raw_parts(data as *const u8, len as usize).to_vec()
        } else {
            Vec::new()
        };
        openssl_sys::BIO_free_all(bio);
        if printed < 0 {
            return None;
        }
        String::from_utf8(bytes).ok()
    }
}

/// `SSL_CTX_set_dh_auto(ctx, 1)`: OpenSSL picks the DHE group to match the
/// certificate's strength, as it does for mosquitto's listeners (this wins
/// over a `dhparamfile`).
pub fn set_dh_auto(ctx: &mut SslContextBuilder) -> bool {
    // SAFETY: `ctx` is a live SSL_CTX owned by the builder; the call only
    // sets a flag on it.
    unsafe { openssl_sys::SSL_CTX_set_dh_auto(ctx.as_ptr(), 1) == 1 }
}

/// `SSL_CTX_use_psk_identity_hint`. `false` if OpenSSL refuses the hint (it
/// is longer than 128 bytes) or it holds a NUL.
pub fn set_psk_identity_hint(ctx: &mut SslContextBuilder, hint: &str) -> bool {
    let Ok(hint) = CString::new(hint) else {
        return false;
    };
    // SAFETY: `ctx` is a live SSL_CTX owned by the builder; OpenSSL copies
    // the NUL-terminated hint before returning.
    unsafe { SSL_CTX_use_psk_identity_hint(ctx.as_ptr(), hint.as_ptr()) == 1 }
}
