//! culex_passwd: manage password files like mosquitto_passwd 2.0.
//!
//! ```text
//! culex_passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-I iterations] [-c | -D] passwordfile username
//! culex_passwd [-H ...] [-I iterations] [-c] -b passwordfile username password
//! culex_passwd [-H ...] -U passwordfile
//! ```
//!
//! Same options, messages and exit codes as mosquitto_passwd 2.0.11. Differences:
//! * the default hash is `$7$` with a 12-byte salt and 1000 iterations (2.0
//!   uses 101; both 2.0 and 2.1 read any count, and only 12-byte salts are
//!   readable by 2.0);
//! * `-H argon2id` writes 2.1's argon2id line (`m=47104,t=1,p=1`, 64-byte
//!   salt and hash); such a file needs culex or a 2.1 built with argon2;
//! * comment and blank lines are kept instead of being reported as corrupt;
//!   a user given twice in the file keeps one line;
//! * `-U` leaves entries that already hold a hash alone;
//! * the file is replaced atomically (temporary file in the same directory,
//!   fsync, rename), keeping the mode and owner of an existing file; a new
//!   file gets mode 0600.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use culex::auth::hash::{self, DEFAULT_ITERATIONS, HashKind};
use culex::auth::passwd_edit;

const MAX_LEN: usize = 65535;

fn usage() {
    print!(
        "culex_passwd is a tool for managing password files for culex and mosquitto.\n\
         \n\
         Usage: culex_passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-I iterations] [-c | -D] passwordfile username\n\
         \x20      culex_passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-I iterations] [-c] -b passwordfile username password\n\
         \x20      culex_passwd -U passwordfile\n\
         \x20-b : run in batch mode to allow passing passwords on the command line.\n\
         \x20-c : create a new password file. This will overwrite existing files.\n\
         \x20-D : delete the username rather than adding/updating its password.\n\
         \x20-H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is readable by\n\
         \x20     mosquitto 2.0 and 2.1. argon2id is only readable by culex and mosquitto 2.1 built with argon2.\n\
         \x20-I : PBKDF2 iterations for sha512-pbkdf2 (default {DEFAULT_ITERATIONS}).\n\
         \x20-U : update a plain text password file to use hashed passwords.\n\
         \n\
         See https://mosquitto.org/ for more information.\n\n"
    );
}

/// An error message for stderr and the exit status.
struct Fail(String, u8);

fn fail<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(msg.into(), 1))
}

/// strerror text without Rust's " (os error N)" suffix.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn atoi(s: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(s);
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = (v * 10 + i64::from(b - b'0')).min(i64::from(u32::MAX) + 1);
    }
    if neg { -v } else { v }
}

struct Options {
    kind: HashKind,
    iterations: u32,
    batch: bool,
    create: bool,
    delete: bool,
    update: bool,
    file: OsString,
    user: Option<Vec<u8>>,
    password: Option<Vec<u8>>,
}

/// `Ok(None)`: print usage, exit 1.
fn parse_args(args: &[OsString]) -> Result<Option<Options>, Fail> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut o = Options {
        kind: HashKind::Sha512Pbkdf2,
        iterations: DEFAULT_ITERATIONS,
        batch: false,
        create: false,
        delete: false,
        update: false,
        file: OsString::new(),
        user: None,
        password: None,
    };
    let mut idx = 0;
    while idx < args.len() {
        match args[idx].as_bytes() {
            b"-H" => {
                let Some(v) = args.get(idx + 1) else {
                    return fail("Error: -H argument given but not enough other arguments.");
                };
                match HashKind::from_name(&v.to_string_lossy()) {
                    Some(k) => o.kind = k,
                    None => {
                        return fail(format!(
                            "Error: Unknown hash type '{}'",
                            v.to_string_lossy()
                        ));
                    }
                }
                idx += 1;
            }
            b"-I" => {
                let Some(v) = args.get(idx + 1) else {
                    return fail("Error: -I argument given but not enough other arguments.");
                };
                let n = atoi(v.as_bytes());
                if n < 1 || n > i64::from(u32::MAX) {
                    return fail("Error: Number of iterations must be > 0.");
                }
                o.iterations = n as u32;
                idx += 1;
            }
            b"-b" => o.batch = true,
            b"-c" => o.create = true,
            b"-D" => o.delete = true,
            b"-U" => o.update = true,
            _ => break,
        }
        idx += 1;
    }
    if o.create && o.delete {
        return fail("Error: -c and -D cannot be used together.");
    }
    if o.create && o.update {
        return fail("Error: -c and -U cannot be used together.");
    }
    if o.delete && o.update {
        return fail("Error: -D and -U cannot be used together.");
    }
    if o.delete && o.batch {
        return fail("Error: -b and -D cannot be used together.");
    }
    let rest = &args[idx..];
    let arg = |i: usize| rest[i].clone();
    if o.create {
        if o.batch {
            if rest.len() < 3 {
                return fail(
                    "Error: -c argument given but password file, username, or password missing.",
                );
            }
            o.password = Some(arg(2).into_vec());
        } else if rest.len() < 2 {
            return fail("Error: -c argument given but password file or username missing.");
        }
        o.file = arg(0);
        o.user = Some(arg(1).into_vec());
    } else if o.delete {
        if rest.len() < 2 {
            return fail("Error: -D argument given but password file or username missing.");
        }
        o.file = arg(0);
        o.user = Some(arg(1).into_vec());
    } else if o.update {
        if rest.len() != 1 {
            return fail("Error: -U argument given but password file missing.");
        }
        o.file = arg(0);
    } else if o.batch && rest.len() == 3 {
        o.file = arg(0);
        o.user = Some(arg(1).into_vec());
        o.password = Some(arg(2).into_vec());
    } else if !o.batch && rest.len() == 2 {
        o.file = arg(0);
        o.user = Some(arg(1).into_vec());
    } else {
        return Ok(None);
    }
    if let Some(user) = &o.user {
        if user.len() > MAX_LEN {
            return fail("Error: Username must be less than 65536 characters long.");
        }
        if user.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return fail("Error: Username must not contain control characters.");
        }
        if user.contains(&b':') {
            return fail("Error: Username must not contain the ':' character.");
        }
    }
    if o.password.as_ref().is_some_and(|p| p.len() > MAX_LEN) {
        return fail("Error: Password must be less than 65536 characters long.");
    }
    Ok(Some(o))
}

mod tty {
    //! Echo off while a password is typed on a terminal. The only unsafe code
    //! of the tool: libc termios calls and a SIGINT handler that restores the
    //! terminal.
    #![allow(unsafe_code)]

    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    static SAVED: OnceLock<libc::termios> = OnceLock::new();
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(sig: libc::c_int) {
        restore();
        // SAFETY: signal() and raise() are async-signal-safe; re-raising with
        // the default action ends the process as the signal intended.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    pub fn is_tty() -> bool {
        // SAFETY: isatty only inspects the descriptor.
        unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
    }

    /// Turn echo off on stdin; [`restore`] turns it back on.
    pub fn echo_off() {
        // SAFETY: termios is plain data, fully written by tcgetattr before use.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor and pointer to a termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return;
        }
        let saved = *SAVED.get_or_init(|| t);
        ACTIVE.store(true, Ordering::SeqCst);
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installing a handler that only calls async-signal-safe
        // functions (tcsetattr, signal, raise).
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: valid descriptor and pointer to a termios.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
    }

    pub fn restore() {
        if ACTIVE.swap(false, Ordering::SeqCst)
            && let Some(saved) = SAVED.get()
        {
            // SAFETY: valid descriptor and pointer to the saved termios.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}

/// One line from stdin without its line ending; `None` at end of input.
fn read_line(input: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    match input.read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            Some(buf)
        }
    }
}

/// `Password: ` / `Reenter password: `, echo off on a terminal.
fn get_password() -> Result<Vec<u8>, Fail> {
    let tty = tty::is_tty();
    if tty {
        tty::echo_off();
    }
    let result = (|| {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut out = io::stdout();
        let _ = write!(out, "Password: ");
        let _ = out.flush();
        let first = match read_line(&mut input) {
            Some(p) if !p.is_empty() => p,
            _ => return Err(Fail("Error: Empty password.".into(), 1)),
        };
        let _ = write!(out, "\nReenter password: ");
        let _ = out.flush();
        let second = read_line(&mut input).unwrap_or_default();
        let _ = writeln!(out);
        if first != second {
            return Err(Fail("Error: Passwords do not match.".into(), 2));
        }
        if first.len() > MAX_LEN {
            return fail("Error: Password must be less than 65536 characters long.");
        }
        Ok(first)
    })();
    if tty {
        tty::restore();
    }
    result
}

fn make_hash(o: &Options, password: &[u8]) -> Result<String, Fail> {
    hash::new_hash(o.kind, password, o.iterations)
        .map_err(|_| Fail("Error: Unable to hash password.".into(), 1))
}

/// Replace `path` with `content`: temporary file in the same directory,
/// fsync, rename, fsync the directory. Keeps the mode and owner of `like`.
fn write_atomically(path: &Path, content: &[u8], like: Option<&fs::Metadata>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n = 0u32;
    let (tmp_path, mut tmp) = loop {
        let candidate = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        tmp.write_all(content)?;
        if let Some(meta) = like {
            // Best effort: only root can give the file to another owner.
            let _ = std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid()));
            tmp.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        tmp.sync_all()?;
        fs::rename(&tmp_path, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn run(o: Options) -> Result<(), Fail> {
    let given = PathBuf::from(&o.file);
    // Follow a symlink to the real file, as mosquitto_passwd (realpath) does.
    let path = fs::canonicalize(&given).unwrap_or_else(|_| given.clone());
    let shown = given.display().to_string();
    let write = |content: &[u8], like: Option<&fs::Metadata>| -> Result<(), Fail> {
        write_atomically(&path, content, like).or_else(|e| {
            fail(format!(
                "Error: Unable to open file {shown} for writing. {}.",
                strerror(&e)
            ))
        })
    };

    if o.create {
        let user = o.user.clone().unwrap_or_default();
        let password = match &o.password {
            Some(p) => p.clone(),
            None => get_password()?,
        };
        let hash = make_hash(&o, &password)?;
        let meta = fs::metadata(&path).ok();
        return write(&passwd_edit::set_user(b"", &user, &hash), meta.as_ref());
    }

    let (content, meta) = match fs::read(&path).and_then(|c| Ok((c, fs::metadata(&path)?))) {
        Ok(x) => x,
        Err(e) => {
            return fail(format!(
                "Error: Unable to open password file {shown}. {}.",
                strerror(&e)
            ));
        }
    };
    let new = if o.delete {
        let user = o.user.clone().unwrap_or_default();
        match passwd_edit::delete_user(&content, &user) {
            Some(c) => c,
            None => {
                return fail(format!(
                    "Warning: User {} not found in password file.",
                    String::from_utf8_lossy(&user)
                ));
            }
        }
    } else if o.update {
        passwd_edit::hash_plaintext(&content, |pw| make_hash(&o, pw))?
    } else {
        let user = o.user.clone().unwrap_or_default();
        let password = match &o.password {
            Some(p) => p.clone(),
            None => get_password()?,
        };
        let hash = make_hash(&o, &password)?;
        passwd_edit::set_user(&content, &user, &hash)
    };
    write(&new, Some(&meta))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match parse_args(&args) {
        Ok(None) => {
            usage();
            return ExitCode::from(1);
        }
        Ok(Some(o)) => run(o),
        Err(f) => Err(f),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg, code)) => {
            let _ = io::stdout().flush();
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}
