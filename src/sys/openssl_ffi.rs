//! The OpenSSL calls mosquitto makes that the `openssl` crate does not
//! wrap: `X509_NAME_print_ex` (the subject that `use_subject_as_username`
//! makes the username), `SSL_CTX_use_psk_identity_hint` (`psk_hint`) and
//! `SSL_CTX_set_dh_auto` (DHE groups sized by OpenSSL).
//! Both link against the libcrypto/libssl that `openssl-sys` already links.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

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

/// An OpenSSL engine (`tls_engine`), as mosquitto sets one up: found by id,
/// initialised, and made the default for every method. The functional
/// reference is kept for the life of the process, as mosquitto keeps it:
/// keys loaded through the engine need it.
pub struct Engine(*mut c_void);

/// Why an engine could not be used: mosquitto's line; OpenSSL's queue is
/// left for the caller to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    NotFound,
    Init,
    SecretMode,
    Pin,
    LoadKey,
}

const ENGINE_METHOD_ALL: c_uint = 0xFFFF;
/// libmosquitto's `ENGINE_SECRET_MODE_SHA` for the `SECRET_MODE` command.
const ENGINE_SECRET_MODE_SHA: c_long = 0x1000;

unsafe extern "C" {
    fn ENGINE_by_id(id: *const c_char) -> *mut c_void;
    fn ENGINE_init(e: *mut c_void) -> c_int;
    fn ENGINE_free(e: *mut c_void) -> c_int;
    fn ENGINE_set_default(e: *mut c_void, flags: c_uint) -> c_int;
    fn ENGINE_ctrl_cmd(
        e: *mut c_void,
        cmd_name: *const c_char,
        i: c_long,
        p: *mut c_void,
        f: Option<unsafe extern "C" fn()>,
        cmd_optional: c_int,
    ) -> c_int;
    fn ENGINE_load_private_key(
        e: *mut c_void,
        key_id: *const c_char,
        ui_method: *const c_void,
        callback_data: *mut c_void,
    ) -> *mut openssl_sys::EVP_PKEY;
    fn UI_OpenSSL() -> *const c_void;
}

impl Engine {
    pub fn load(id: &str) -> Result<Engine, EngineError> {
        let id = CString::new(id).map_err(|_| EngineError::NotFound)?;
        // SAFETY: plain OpenSSL calls on a pointer checked for NULL; the
        // structural reference from ENGINE_by_id is released once
        // ENGINE_init has taken a functional one, as mosquitto does.
        unsafe {
            let e = ENGINE_by_id(id.as_ptr());
            if e.is_null() {
                return Err(EngineError::NotFound);
            }
            if ENGINE_init(e) != 1 {
                ENGINE_free(e);
                return Err(EngineError::Init);
            }
            ENGINE_set_default(e, ENGINE_METHOD_ALL);
            ENGINE_free(e);
            Ok(Engine(e))
        }
    }

    /// `tls_engine_kpass_sha1`: the engine is told the key password's SHA1.
    pub fn set_password_sha1(&self, kpass_sha1: &str) -> Result<(), EngineError> {
        let pin = CString::new(kpass_sha1).map_err(|_| EngineError::Pin)?;
        let mode = CString::new("SECRET_MODE").map_err(|_| EngineError::SecretMode)?;
        let pin_cmd = CString::new("PIN").map_err(|_| EngineError::Pin)?;
        // SAFETY: the engine holds a functional reference (see `load`); the
        // strings outlive the calls, which copy what they need.
        unsafe {
            if ENGINE_ctrl_cmd(
                self.0,
                mode.as_ptr(),
                ENGINE_SECRET_MODE_SHA,
                std::ptr::null_mut(),
                None,
                0,
            ) != 1
            {
                return Err(EngineError::SecretMode);
            }
            if ENGINE_ctrl_cmd(
                self.0,
                pin_cmd.as_ptr(),
                0,
                pin.as_ptr() as *mut c_void,
                None,
                0,
            ) != 1
            {
                return Err(EngineError::Pin);
            }
        }
        Ok(())
    }

    /// `ENGINE_load_private_key(keyfile)`, asking on the terminal through
    /// OpenSSL's UI when the engine needs a password (unless `no_ui`).
    pub fn load_private_key(
        &self,
        key_id: &str,
        no_ui: bool,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, EngineError> {
        use foreign_types::ForeignType;
        let key_id = CString::new(key_id).map_err(|_| EngineError::LoadKey)?;
        // SAFETY: as above; a non-NULL EVP_PKEY returned here is owned by
        // the caller, which PKey::from_ptr takes over (and frees).
        unsafe {
            let ui = if no_ui {
                std::ptr::null()
            } else {
                UI_OpenSSL()
            };
            let key = ENGINE_load_private_key(self.0, key_id.as_ptr(), ui, std::ptr::null_mut());
            if key.is_null() {
                return Err(EngineError::LoadKey);
            }
            Ok(openssl::pkey::PKey::from_ptr(key))
        }
    }
}
