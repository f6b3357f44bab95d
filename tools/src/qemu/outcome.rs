//! How a guest run ended.

use std::fmt;
use std::process::ExitStatus;
use std::time::Duration;

use super::{EXIT_FAILURE, EXIT_SUCCESS};

/// The end of a guest run, from QEMU's exit status or our watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest reported success (QEMU status 33).
    Success,
    /// The guest reported failure (status 35): a failed test, a panic, a
    /// fatal exception.
    GuestFailure,
    /// QEMU exited 0: with `-no-reboot` that is a triple fault or a reset.
    Reset,
    /// The guest wrote another value to the debug-exit port.
    GuestExit(i32),
    /// QEMU itself failed (bad arguments, missing accelerator…).
    QemuError {
        /// QEMU's exit status, if it had one.
        status: Option<i32>,
        /// The last line QEMU printed on stderr.
        message: String,
    },
    /// The watchdog killed the guest.
    TimedOut {
        /// `true` for "no output for `after`", `false` for the total limit.
        idle: bool,
        /// The limit that was hit.
        after: Duration,
    },
    /// The guest reported its end (an observer returned
    /// [`Flow::Finish`](super::Flow::Finish)) but QEMU did not exit within
    /// the grace period, so the runner killed it.
    Stopped,
}

impl Outcome {
    /// Maps QEMU's exit status.
    pub fn from_status(status: ExitStatus, stderr: &str) -> Self {
        match status.code() {
            Some(EXIT_SUCCESS) => Self::Success,
            Some(EXIT_FAILURE) => Self::GuestFailure,
            Some(0) => Self::Reset,
            Some(code) if code & 1 == 1 && code > 1 => Self::GuestExit(code >> 1),
            code => Self::QemuError {
                status: code,
                message: stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string(),
            },
        }
    }

    /// Whether the guest reported success.
    pub fn is_success(&self) -> bool {
        *self == Self::Success
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => write!(f, "guest reported success"),
            Self::GuestFailure => write!(f, "guest reported failure"),
            Self::Reset => write!(
                f,
                "guest reset or triple-faulted (QEMU exited 0 under -no-reboot)"
            ),
            Self::GuestExit(v) => write!(f, "guest exited with debug-exit value {v:#x}"),
            Self::QemuError { status, message } => match status {
                Some(s) => write!(f, "QEMU failed with status {s}: {message}"),
                None => write!(f, "QEMU was killed by a signal: {message}"),
            },
            Self::TimedOut { idle: true, after } => {
                write!(f, "guest hung: no output for {} s", after.as_secs())
            }
            Self::TimedOut { idle: false, after } => {
                write!(f, "guest ran past the {} s limit", after.as_secs())
            }
            Self::Stopped => write!(f, "guest reported its end and was stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn status(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn maps_debug_exit_codes() {
        assert_eq!(Outcome::from_status(status(33), ""), Outcome::Success);
        assert_eq!(Outcome::from_status(status(35), ""), Outcome::GuestFailure);
        assert_eq!(Outcome::from_status(status(0), ""), Outcome::Reset);
        assert_eq!(Outcome::from_status(status(7), ""), Outcome::GuestExit(3));
        assert!(Outcome::Success.is_success());
        assert!(!Outcome::Reset.is_success());
    }

    #[test]
    fn qemu_errors_keep_the_last_stderr_line() {
        let o = Outcome::from_status(status(1), "warning: x\nqemu: could not load kernel\n\n");
        assert_eq!(
            o,
            Outcome::QemuError {
                status: Some(1),
                message: "qemu: could not load kernel".into()
            }
        );
        let killed = Outcome::from_status(ExitStatus::from_raw(9), "");
        assert!(matches!(killed, Outcome::QemuError { status: None, .. }));
        assert!(killed.to_string().contains("signal"));
    }
}
