//! Command line, as mosquitto 2.0 parses it, plus 2.1's `--test-config`
//! and `-q/--quiet`, and a `--version` flag.
//!
//! [`parse`] never exits the process: it returns [`CliAction::Exit`] with
//! the text for stdout/stderr and the status, or [`CliAction::Run`].
//! `stderr` lines are bare messages; mosquitto prints most of them through
//! its logger (with the Unix-seconds prefix) except `Unknown option`.
//!
//! Differences from mosquitto: `-c` is parsed when the broker starts, not
//! when the flag is seen (so with both a bad option and a bad file, the
//! option error is reported first); given several times, the last `-c`
//! wins (mosquitto would read each file on top of the previous ones).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::config::{Config, ConfigError, LogTypes};

pub use crate::{MOSQUITTO_COMPAT, VERSION};
/// mosquitto accepts at most this many `-p`.
pub const MAX_PORTS: usize = 10;

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOptions {
    /// `-c/--config-file`, as given (relative to the cwd).
    pub config_file: Option<PathBuf>,
    /// `-d/--daemon`.
    pub daemon: bool,
    /// `-p/--port`, in order (used only in local-only mode).
    pub ports: Vec<u16>,
    /// `-v/--verbose`: log_type all, overriding the file.
    pub verbose: bool,
    /// `-q/--quiet` (2.1): no logging at all; overrides `-v` and log_type.
    pub quiet: bool,
    /// `--test-config` (2.1): parse the `-c` file and exit.
    pub test_config: bool,
}

/// What `main` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliAction {
    Run(CliOptions),
    Exit {
        stdout: String,
        stderr: String,
        code: i32,
    },
}

/// `culex version 0.1.0 (mosquitto 2.0.11 compatible)`.
pub fn version_line() -> String {
    format!("culex version {VERSION} (mosquitto {MOSQUITTO_COMPAT} compatible)")
}

/// The `-h` text (mosquitto's shape, with culex's name and flags).
pub fn usage() -> String {
    format!(
        "{}\n\n\
culex is an MQTT v5.0/v3.1.1/v3.1 broker.\n\n\
Usage: culex [-c config_file] [-d] [-h] [-p port] [-q] [-v] [--test-config] [--version]\n\n \
-c : specify the broker config file.\n \
-d : put the broker into the background after starting.\n \
-h : display this help.\n \
-p : start the broker listening on the specified port.\n      \
Not recommended in conjunction with the -c option.\n \
-q : quiet mode - disable all logging. This overrides -v and\n      \
any logging options given in the config file.\n \
-v : verbose mode - enable all logging types. This overrides\n      \
any logging options given in the config file.\n \
--test-config : check the config file given with -c and exit.\n \
--version : print the version and exit.\n\
\nSee https://mosquitto.org/ for more information.\n\n",
        version_line()
    )
}

fn fail(stderr: impl Into<String>) -> CliAction {
    CliAction::Exit {
        stdout: String::new(),
        stderr: format!("{}\n", stderr.into()),
        code: 3,
    }
}

/// Parse the arguments (without the program name). Arguments need not be
/// UTF-8 (a config path is kept byte for byte).
pub fn parse<I, S>(args: I) -> CliAction
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut o = CliOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        match a.as_ref() {
            "-c" | "--config-file" => {
                let Some(f) = args.get(i + 1) else {
                    return fail("Error: -c argument given, but no config file specified.");
                };
                o.config_file = Some(PathBuf::from(f));
                i += 1;
            }
            "-d" | "--daemon" => o.daemon = true,
            "-h" | "--help" => {
                return CliAction::Exit {
                    stdout: usage(),
                    stderr: String::new(),
                    code: 3,
                };
            }
            "-p" | "--port" => {
                let Some(p) = args.get(i + 1) else {
                    return fail("Error: -p argument given, but no port specified.");
                };
                let port = crate::config::lexer::atoi(p.as_bytes());
                if !(1..=65535).contains(&port) {
                    return fail(format!("Error: Invalid port specified ({port})."));
                }
                if o.ports.len() == MAX_PORTS {
                    return fail(format!(
                        "Error: Only {MAX_PORTS} ports can be specified on the command line."
                    ));
                }
                o.ports.push(port as u16);
                i += 1;
            }
            "-v" | "--verbose" => o.verbose = true,
            "-q" | "--quiet" => o.quiet = true,
            "--test-config" => o.test_config = true,
            "--version" => {
                return CliAction::Exit {
                    stdout: format!("{}\n", version_line()),
                    stderr: String::new(),
                    code: 0,
                };
            }
            _ => {
                return CliAction::Exit {
                    stdout: usage(),
                    stderr: format!("Error: Unknown option '{a}'.\n"),
                    code: 3,
                };
            }
        }
        i += 1;
    }
    if o.test_config && o.config_file.is_none() {
        return fail("Please provide a configuration file to test.");
    }
    CliAction::Run(o)
}

impl CliOptions {
    /// Apply the flags that override the file: `-p` (local-only mode only),
    /// `-v` (log_type all) and `-q` (no logging; wins over `-v`).
    pub fn apply_to(&self, config: &mut Config) {
        crate::config::apply_cli_ports(config, &self.ports);
        if self.verbose {
            config.logging.types = LogTypes::ALL;
        }
        if self.quiet {
            config.logging.types = LogTypes::NONE;
        }
    }
}

/// Outcome of `--test-config` (2.1): the line for stderr and the status.
/// A parse error gives its mosquitto lines and 3; success gives
/// `Configuration file is OK.` and 0.
pub fn test_config_report(result: &Result<Config, ConfigError>) -> (String, i32) {
    match result {
        Ok(_) => ("Configuration file is OK.\n".to_string(), 0),
        Err(e) => (format!("{e}\n"), e.exit_code()),
    }
}

/// Parse `std::env::args_os()` (skipping the program name).
pub fn from_env() -> CliAction {
    parse(std::env::args_os().skip(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> CliOptions {
        match parse(args.iter().copied()) {
            CliAction::Run(o) => o,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn exit(args: &[&str]) -> (String, String, i32) {
        match parse(args.iter().copied()) {
            CliAction::Exit {
                stdout,
                stderr,
                code,
            } => (stdout, stderr, code),
            other => panic!("expected Exit, got {other:?}"),
        }
    }

    #[test]
    fn non_utf8_arguments_do_not_panic() {
        use std::os::unix::ffi::OsStringExt;
        let f = OsString::from_vec(b"/tmp/\xff.conf".to_vec());
        match parse([OsString::from("-c"), f.clone()]) {
            CliAction::Run(o) => assert_eq!(o.config_file, Some(PathBuf::from(f))),
            other => panic!("{other:?}"),
        }
        let bad = OsString::from_vec(b"-\xff".to_vec());
        assert_eq!(exit_os(vec![bad]).1, "Error: Unknown option '-\u{fffd}'.\n");
    }

    fn exit_os(args: Vec<OsString>) -> (String, String, i32) {
        match parse(args) {
            CliAction::Exit {
                stdout,
                stderr,
                code,
            } => (stdout, stderr, code),
            other => panic!("expected Exit, got {other:?}"),
        }
    }

    #[test]
    fn no_args_runs_with_defaults() {
        assert_eq!(run(&[]), CliOptions::default());
    }

    #[test]
    fn all_flags() {
        let o = run(&[
            "-c",
            "a.conf",
            "-d",
            "-p",
            "1884",
            "--port",
            "1885",
            "-v",
            "-q",
            "--test-config",
        ]);
        assert_eq!(o.config_file, Some(PathBuf::from("a.conf")));
        assert!(o.daemon && o.verbose && o.quiet && o.test_config);
        assert_eq!(o.ports, vec![1884, 1885]);
        let o = run(&[
            "--config-file",
            "b.conf",
            "--daemon",
            "--verbose",
            "--quiet",
        ]);
        assert_eq!(o.config_file, Some(PathBuf::from("b.conf")));
        assert!(o.daemon && o.verbose && o.quiet);
    }

    #[test]
    fn help_prints_usage_on_stdout_exit_3() {
        let (out, err, code) = exit(&["-h"]);
        assert_eq!(code, 3);
        assert!(err.is_empty());
        assert!(out.starts_with("culex version "));
        assert!(out.contains("\n\nculex is an MQTT v5.0/v3.1.1/v3.1 broker.\n\n"));
        assert!(out.contains("Usage: culex [-c config_file] [-d] [-h] [-p port]"));
        assert_eq!(exit(&["--help"]).2, 3);
    }

    #[test]
    fn unknown_option() {
        let (out, err, code) = exit(&["-x"]);
        assert_eq!(code, 3);
        assert_eq!(err, "Error: Unknown option '-x'.\n");
        assert_eq!(out, usage());
    }

    #[test]
    fn missing_arguments() {
        assert_eq!(
            exit(&["-c"]),
            (
                String::new(),
                "Error: -c argument given, but no config file specified.\n".into(),
                3
            )
        );
        assert_eq!(
            exit(&["-p"]).1,
            "Error: -p argument given, but no port specified.\n"
        );
    }

    #[test]
    fn bad_ports() {
        assert_eq!(exit(&["-p", "0"]).1, "Error: Invalid port specified (0).\n");
        assert_eq!(
            exit(&["-p", "abc"]).1,
            "Error: Invalid port specified (0).\n"
        );
        assert_eq!(
            exit(&["-p", "65536"]).1,
            "Error: Invalid port specified (65536).\n"
        );
        assert_eq!(exit(&["-p", "-5"]).2, 3);
        assert_eq!(run(&["-p", "65535x"]).ports, vec![65535]);
        let mut args = Vec::new();
        for _ in 0..10 {
            args.extend(["-p", "1883"]);
        }
        assert_eq!(run(&args).ports.len(), 10);
        args.extend(["-p", "1883"]);
        assert_eq!(
            exit(&args).1,
            "Error: Only 10 ports can be specified on the command line.\n"
        );
    }

    #[test]
    fn apply_to_config() {
        let mut c = Config::default_local_only();
        run(&["-p", "1900", "-v"]).apply_to(&mut c);
        assert_eq!(c.listeners.len(), 2);
        assert!(c.listeners.iter().all(|l| l.port == 1900));
        assert_eq!(c.logging.types, LogTypes::ALL);
        run(&["-v", "-q"]).apply_to(&mut c);
        assert_eq!(c.logging.types, LogTypes::NONE);
    }

    #[test]
    fn test_config_outcome() {
        let good = crate::config::parse_str("listener 1883\n", "a.conf");
        assert_eq!(
            test_config_report(&good),
            ("Configuration file is OK.\n".to_string(), 0)
        );
        let bad = crate::config::parse_str("bogus_option 1\n", "bad.conf");
        assert_eq!(
            test_config_report(&bad),
            (
                "Error: Unknown configuration variable \"bogus_option\".\nError found at bad.conf:1.\n"
                    .to_string(),
                3
            )
        );
    }

    #[test]
    fn version_and_test_config() {
        let (out, _, code) = exit(&["--version"]);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!("culex version {VERSION} (mosquitto 2.0.11 compatible)\n")
        );
        let (_, err, code) = exit(&["--test-config"]);
        assert_eq!(code, 3);
        assert_eq!(err, "Please provide a configuration file to test.\n");
    }
}
