//! culex_passwd end to end: create, update, delete through the real binary,
//! and interoperability with mosquitto_passwd and the independent Python
//! checker when they are installed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use culex::auth::{HashKind, PasswordFile};

const TOOL: &str = env!("CARGO_BIN_EXE_culex_passwd");
const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";
/// shared/tools beside the repository (as CI lays it out), else the
/// workplace's fixed path.
fn verify_py() -> std::path::PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/verify_passwd.py");
    if beside.exists() {
        beside
    } else {
        std::path::PathBuf::from("/work/shared/tools/verify_passwd.py")
    }
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(TOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn culex_passwd");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn load(path: &Path) -> PasswordFile {
    let (f, logs) = PasswordFile::load(path).unwrap();
    assert!(logs.is_empty(), "{logs:?}");
    f
}

fn users(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(u, _)| u.to_string()))
        .collect()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    (dir, path)
}

#[test]
fn create_update_delete() {
    let (_dir, path) = tmp();
    let p = path.to_str().unwrap();

    let o = run(&["-c", "-b", p, "alice", "secret"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let f = load(&path);
    let h = f.lookup("alice").unwrap();
    assert_eq!(h.kind(), HashKind::Sha512Pbkdf2);
    assert_eq!(h.iterations(), Some(1000));
    assert!(
        h.as_str().starts_with("$7$1000$") && h.as_str().len() == "$7$1000$".len() + 16 + 1 + 88
    );
    assert!(f.authenticate("alice", Some(b"secret")));

    // interactive: two lines on stdin
    let o = run(
        &[p, "bob"],
        Some("p@ss w0rd:with:colons\np@ss w0rd:with:colons\n".as_bytes()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Password: \nReenter password: \n"
    );
    let o = run(&["-H", "sha512", "-b", p, "carol", "pässwörd€"], None);
    assert!(o.status.success());
    assert_eq!(users(&path), ["alice", "bob", "carol"]);

    // a comment and a blank line survive edits; updates stay in place
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "# managed by culex_passwd\n\n");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = run(&["-b", "-I", "101", p, "alice", "new"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# managed by culex_passwd\n\nalice:$7$101$"),
        "{text}"
    );
    assert_eq!(users(&path), ["alice", "bob", "carol"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let f = load(&path);
    assert!(f.authenticate("alice", Some(b"new")));
    assert!(!f.authenticate("alice", Some(b"secret")));
    assert!(f.authenticate("bob", Some("p@ss w0rd:with:colons".as_bytes())));
    assert_eq!(f.lookup("carol").unwrap().kind(), HashKind::Sha512);
    assert!(f.authenticate("carol", Some("pässwörd€".as_bytes())));

    let o = run(&["-D", p, "bob"], None);
    assert!(o.status.success());
    assert_eq!(users(&path), ["alice", "carol"]);
    let o = run(&["-D", p, "bob"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Warning: User bob not found in password file.\n"
    );

    // -c overwrites
    let o = run(&["-c", "-b", p, "solo", "x"], None);
    assert!(o.status.success());
    assert_eq!(users(&path), ["solo"]);
    // no temporary files left behind
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn argon2id_and_update_plaintext() {
    let (_dir, path) = tmp();
    let p = path.to_str().unwrap();
    std::fs::write(&path, "# plain\nu1:first\nu2:second\n").unwrap();
    let o = run(&["-U", p], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(&path).unwrap();
    // running it again changes nothing (mosquitto_passwd would hash the hashes)
    assert!(run(&["-U", p], None).status.success());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let o = run(&["-H", "argon2id", "-b", p, "a2", "secret"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = load(&path);
    assert!(f.authenticate("u1", Some(b"first")));
    assert!(f.authenticate("u2", Some(b"second")));
    let h = f.lookup("a2").unwrap();
    assert!(h.as_str().starts_with("$argon2id$v=19$m=47104,t=1,p=1$"));
    assert!(h.verify(b"secret"));
}

#[test]
fn errors_and_exit_codes() {
    let (_dir, path) = tmp();
    let p = path.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], Option<&'a [u8]>, i32, &'a str);
    let cases: &[Case] = &[
        (
            &[p, "u"],
            None,
            1,
            &format!("Error: Unable to open password file {p}. No such file or directory.\n"),
        ),
        (
            &["-c", p, "u"],
            Some(b"\n\n"),
            1,
            "Error: Empty password.\n",
        ),
        (&["-c", p, "u"], Some(b""), 1, "Error: Empty password.\n"),
        (
            &["-c", p, "u"],
            Some(b"a\nb\n"),
            2,
            "Error: Passwords do not match.\n",
        ),
        (
            &["-c", "-D", p, "u"],
            None,
            1,
            "Error: -c and -D cannot be used together.\n",
        ),
        (
            &["-c", "-U", p],
            None,
            1,
            "Error: -c and -U cannot be used together.\n",
        ),
        (
            &["-D", "-U", p],
            None,
            1,
            "Error: -D and -U cannot be used together.\n",
        ),
        (
            &["-b", "-D", p, "u"],
            None,
            1,
            "Error: -b and -D cannot be used together.\n",
        ),
        (
            &["-H", "md5", "-b", p, "u", "x"],
            None,
            1,
            "Error: Unknown hash type 'md5'\n",
        ),
        (
            &["-H"],
            None,
            1,
            "Error: -H argument given but not enough other arguments.\n",
        ),
        (
            &["-I", "0", "-b", p, "u", "x"],
            None,
            1,
            "Error: Number of iterations must be > 0.\n",
        ),
        (
            &["-c", "-b", p, "a:b", "x"],
            None,
            1,
            "Error: Username must not contain the ':' character.\n",
        ),
        (
            &["-c", "-b", p, "a\tb", "x"],
            None,
            1,
            "Error: Username must not contain control characters.\n",
        ),
        (
            &["-c", "-b", p, "u"],
            None,
            1,
            "Error: -c argument given but password file, username, or password missing.\n",
        ),
        (
            &["-D", p],
            None,
            1,
            "Error: -D argument given but password file or username missing.\n",
        ),
        (
            &["-U"],
            None,
            1,
            "Error: -U argument given but password file missing.\n",
        ),
    ];
    for (args, stdin, code, msg) in cases {
        let o = run(args, *stdin);
        assert_eq!(o.status.code(), Some(*code), "{args:?}");
        assert_eq!(stderr(&o), *msg, "{args:?}");
    }
    assert!(!path.exists());
    // usage on stdout, exit 1
    for args in [&[][..], &["-b", p][..], &[p][..]] {
        let o = run(args, None);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: culex_passwd"));
    }
}

#[test]
fn mosquitto_passwd_interoperability() {
    if !Path::new(MOSQUITTO_PASSWD).exists() {
        eprintln!("skipped: {MOSQUITTO_PASSWD} not installed");
        return;
    }
    let (_dir, path) = tmp();
    let p = path.to_str().unwrap();
    let m = |args: &[&str]| {
        let o = Command::new(MOSQUITTO_PASSWD).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    m(&["-c", "-b", p, "alice", "secret"]);
    m(&["-b", p, "bob", "p@ss w0rd:with:colons"]);
    m(&["-H", "sha512", "-b", p, "carol", "pässwörd€"]);
    m(&["-b", "-I", "1000", p, "dave", "iterations-1000"]);
    // our tool edits mosquitto's file, mosquitto_passwd edits ours
    assert!(run(&["-b", p, "erin", "from-culex"], None).status.success());
    m(&["-b", p, "frank", "from-mosquitto"]);
    let f = load(&path);
    for (u, pw) in [
        ("alice", "secret"),
        ("bob", "p@ss w0rd:with:colons"),
        ("carol", "pässwörd€"),
        ("dave", "iterations-1000"),
        ("erin", "from-culex"),
        ("frank", "from-mosquitto"),
    ] {
        assert!(f.authenticate(u, Some(pw.as_bytes())), "{u}");
        assert!(!f.authenticate(u, Some(b"wrong")), "{u}");
    }
    assert_eq!(
        users(&path),
        ["alice", "bob", "carol", "dave", "erin", "frank"]
    );
}

#[test]
fn python_checker_accepts_our_output() {
    let python_ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok || !verify_py().exists() {
        eprintln!("skipped: python3 or {} missing", verify_py().display());
        return;
    }
    let (_dir, path) = tmp();
    let p = path.to_str().unwrap();
    assert!(
        run(&["-c", "-b", p, "alice", "secret"], None)
            .status
            .success()
    );
    assert!(
        run(
            &["-b", "-I", "101", p, "bob", "p@ss w0rd:with:colons"],
            None
        )
        .status
        .success()
    );
    assert!(
        run(&["-H", "sha512", "-b", p, "carol", "pässwörd€"], None)
            .status
            .success()
    );
    let o = Command::new("python3")
        .arg(verify_py())
        .args([
            p,
            "alice=secret",
            "bob=p@ss w0rd:with:colons",
            "carol=pässwörd€",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches("-> OK").count(), 3, "{out}");
    assert!(!out.contains("dropped"), "{out}");
}

/// On a terminal the password is not echoed (python3's pty module drives it).
#[test]
fn terminal_prompt_does_not_echo() {
    let python_ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        eprintln!("skipped: python3 missing");
        return;
    }
    let (_dir, path) = tmp();
    let script = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], ["culex_passwd", "-c", sys.argv[2], "ttyuser"])
out = b""
def rd():
    global out
    time.sleep(0.3)
    try:
        out += os.read(fd, 4096)
    except OSError:
        pass
rd(); os.write(fd, b"hunter2\n"); rd(); os.write(fd, b"hunter2\n"); rd()
_, st = os.waitpid(pid, 0)
sys.stdout.write(repr(out) + " " + str(os.WEXITSTATUS(st)))
"#;
    let o = Command::new("python3")
        .args(["-c", script, TOOL, path.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Password: ") && out.contains("Reenter password: "),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "password echoed: {out}");
    assert!(out.ends_with(" 0"), "{out}");
    assert!(load(&path).authenticate("ttyuser", Some(b"hunter2")));
}
