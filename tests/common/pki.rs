//! Certificates made the way users make them: with the `openssl` command,
//! in a temp dir, following the mosquitto-tls(7) man page (a CA from
//! `req -new -x509 -extensions v3_ca`, keys from `genrsa`, leaves signed by
//! `x509 -req -CA ... -CAcreateserial`, which without `-extfile` are X.509
//! v1), plus the variations real set-ups have: v3 extensions, self-signed
//! certificates, EC keys, intermediates, CRLs from `openssl ca`, capath
//! directories and PSK files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        crate::common::require("openssl");
        Pki {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `name` in the PKI dir, as a config wants it.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) {
        let path: PathBuf = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, data).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// Runs `openssl args` in the PKI dir; panics with its output if it fails.
    /// Returns stdout.
    pub fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The man page's CA: `openssl req -new -x509 -days 365 -extensions v3_ca
    /// -keyout NAME.key -out NAME.crt`, non-interactive.
    pub fn ca(&self, name: &str, subj: &str) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        self.openssl(&[
            "req",
            "-new",
            "-x509",
            "-days",
            "365",
            "-extensions",
            "v3_ca",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            subj,
        ]);
    }

    /// `openssl genrsa -out NAME.key BITS` (PKCS#8 with OpenSSL 3).
    pub fn rsa_key(&self, name: &str, bits: u32) {
        let key = format!("{name}.key");
        self.openssl(&["genrsa", "-out", &key, &bits.to_string()]);
    }

    /// A CSR for the existing NAME.key, signed by CA (CA.crt, CA.key) as the
    /// man page does: `openssl x509 -req -in NAME.csr -CA CA.crt -CAkey CA.key
    /// -CAcreateserial -out NAME.crt -days 365`. Without `ext` the result is
    /// X.509 v1; with `ext` (lines of an extension file, e.g.
    /// `subjectAltName=IP:127.0.0.1`) it is v3.
    pub fn sign(&self, name: &str, subj: &str, ca: &str, ext: Option<&str>) {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        self.openssl(&[
            "req", "-new", "-utf8", "-key", &key, "-out", &csr, "-subj", subj,
        ]);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "365",
        ];
        let extfile = format!("{name}.ext");
        if let Some(ext) = ext {
            self.write(&extfile, format!("{ext}\n"));
            args.extend(["-extfile", &extfile]);
        }
        self.openssl(&args);
        self.assert_version(&crt, if ext.is_some() { 3 } else { 1 });
    }

    /// A fresh 2048-bit RSA key and a v1 certificate for it (the man page).
    pub fn leaf_v1(&self, name: &str, subj: &str, ca: &str) {
        self.rsa_key(name, 2048);
        self.sign(name, subj, ca, None);
    }

    /// A fresh 2048-bit RSA key and a v3 certificate with `ext`.
    pub fn leaf_v3(&self, name: &str, subj: &str, ca: &str, ext: &str) {
        self.rsa_key(name, 2048);
        self.sign(name, subj, ca, Some(ext));
    }

    /// An intermediate CA NAME signed by CA (v3, CA:TRUE).
    pub fn intermediate(&self, name: &str, subj: &str, ca: &str) {
        self.rsa_key(name, 2048);
        self.sign(
            name,
            subj,
            ca,
            Some(
                "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always",
            ),
        );
    }

    /// `openssl req -x509 -newkey rsa:2048 -nodes`: a self-signed v3
    /// certificate with OpenSSL's default v3_ca extensions (CA:TRUE).
    pub fn self_signed(&self, name: &str, subj: &str) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        self.openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-keyout", &key,
            "-out", &crt, "-subj", subj,
        ]);
        let text = self.openssl(&["x509", "-in", &crt, "-noout", "-text"]);
        assert!(text.contains("CA:TRUE"), "{text}");
    }

    /// A v1 self-signed certificate: `openssl x509 -req -signkey` on a CSR of
    /// a fresh 2048-bit RSA key.
    pub fn self_signed_v1(&self, name: &str, subj: &str) {
        self.rsa_key(name, 2048);
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        self.openssl(&["req", "-new", "-key", &key, "-out", &csr, "-subj", subj]);
        self.openssl(&[
            "x509", "-req", "-in", &csr, "-signkey", &key, "-out", &crt, "-days", "365",
        ]);
        self.assert_version(&crt, 1);
    }

    /// Concatenates `parts` into `name` (a chain file, a CA bundle).
    pub fn cat(&self, name: &str, parts: &[&str]) {
        let text: String = parts.iter().map(|p| self.read(p)).collect();
        self.write(name, text);
    }

    /// Asserts the X.509 version of a certificate: the tests mean v1 when
    /// they say so, whatever a future `openssl x509 -req` defaults to.
    pub fn assert_version(&self, crt: &str, version: u8) {
        let text = self.openssl(&["x509", "-in", crt, "-noout", "-text"]);
        assert!(
            text.contains(&format!("Version: {version} ")),
            "{crt} is not X.509 v{version}:\n{text}"
        );
    }

    /// The CA's `openssl ca` set-up for revocations and CRLs: an index, and a
    /// crlnumber file only when `crlnumber` (then CRLs are v2, else v1). Each
    /// kind has its own index, so a certificate can be revoked in both.
    pub fn ca_config(&self, ca: &str, crlnumber: bool) -> String {
        let v = if crlnumber { "v2" } else { "v1" };
        let conf = format!("{ca}-ca-{v}.cnf");
        let index = format!("{ca}-index-{v}.txt");
        self.write(&index, "");
        let mut text = format!(
            "[ca]\ndefault_ca = this_ca\n[this_ca]\ndatabase = {index}\n\
             certificate = {ca}.crt\nprivate_key = {ca}.key\ndefault_md = sha256\n\
             default_crl_days = 30\n"
        );
        if crlnumber {
            let number = format!("{ca}-crlnumber-{v}");
            self.write(&number, "1000\n");
            text.push_str(&format!("crlnumber = {number}\n"));
        }
        self.write(&conf, text);
        conf
    }

    /// Revokes CRT with the CA set up by `ca_config`, then writes the CRL.
    pub fn revoke_and_gencrl(&self, conf: &str, crt: &str, crl: &str) {
        self.openssl(&["ca", "-config", conf, "-revoke", crt]);
        self.openssl(&["ca", "-config", conf, "-gencrl", "-out", crl]);
    }

    /// Makes everything readable by the user a broker started as root drops
    /// to (both do so before reading certificates and keys).
    pub fn world_readable(&self) {
        fn walk(p: &Path) {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::symlink_metadata(p).expect("stat");
            if meta.file_type().is_symlink() {
                return;
            }
            let mode = if meta.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            if meta.is_dir() {
                for e in std::fs::read_dir(p).expect("read_dir").flatten() {
                    walk(&e.path());
                }
            }
        }
        walk(self.dir.path());
    }
}
