//! Signals through a self-pipe: the handler only writes the signal number to
//! a non-blocking pipe that the event loop polls, so nothing async-signal-
//! unsafe runs in the handler and the loop wakes at once.
#![allow(unsafe_code)]

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the pipe, read by the handler.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT or SIGTERM: stop cleanly.
    Terminate,
    /// SIGHUP: reload the configuration and auth files.
    Reload,
    /// SIGUSR1: save the persistence file now.
    Save,
    /// SIGUSR2: mosquitto prints the subscription tree.
    DebugDump,
    /// SIGRTMIN (2.1): reopen log files.
    ReopenLogs,
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        // A full pipe just drops the byte: the loop already has one to wake on.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The read end of the self-pipe. Register it with mio and call `drain`
/// when it becomes readable.
pub struct SignalPipe {
    read: mio::unix::pipe::Receiver,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs handlers for SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 and
    /// SIGRTMIN, and ignores SIGPIPE (a peer closing mid-write is an error
    /// return, not a reason to die).
    pub fn install() -> io::Result<SignalPipe> {
        let (sender, receiver) = mio::unix::pipe::new()?;
        // SAFETY: into_raw_fd transfers ownership of a valid open fd to
        // OwnedFd, which closes it on drop.
        let write = unsafe {
            use std::os::fd::IntoRawFd;
            OwnedFd::from_raw_fd(sender.into_raw_fd())
        };
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::Relaxed);
        let sigrtmin = libc::SIGRTMIN();
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            sigrtmin,
        ] {
            // SAFETY: the handler only calls write(2) on a valid fd; the
            // sigaction struct is fully initialised before use.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // SAFETY: setting SIGPIPE to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        Ok(SignalPipe {
            read: receiver,
            _write: write,
        })
    }

    pub fn source(&mut self) -> &mut mio::unix::pipe::Receiver {
        &mut self.read
    }

    /// The signals received since the last call, in order.
    pub fn drain(&mut self) -> Vec<Signal> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend(buf[..n].iter().filter_map(|&b| classify(i32::from(b)))),
                Err(_) => break,
            }
        }
        out
    }
}

fn classify(sig: i32) -> Option<Signal> {
    match sig {
        libc::SIGINT | libc::SIGTERM => Some(Signal::Terminate),
        libc::SIGHUP => Some(Signal::Reload),
        libc::SIGUSR1 => Some(Signal::Save),
        libc::SIGUSR2 => Some(Signal::DebugDump),
        s if s == libc::SIGRTMIN() => Some(Signal::ReopenLogs),
        _ => None,
    }
}
