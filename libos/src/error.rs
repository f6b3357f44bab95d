//! The LibOS error type: Linux `errno` values and a static message.
//!
//! Every fallible LibOS function returns [`Result<T>`]; syscall handlers
//! return `Result<usize>` and the dispatcher (`crate::syscall`) is the one
//! place that turns an [`Error`] into the `-errno` value user space sees.
//! Modelled on asterinas' `kernel/src/error.rs`.
//!
//! ```text
//! return_errno!(Errno::ENOENT);
//! return_errno_with_message!(Errno::EINVAL, "p_filesz > p_memsz");
//! ```

use core::fmt;

/// Linux error numbers (x86-64, `asm-generic/errno-base.h` and `errno.h`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the names are Linux's; see errno(3)")]
pub enum Errno {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    ENOEXEC = 8,
    EBADF = 9,
    ECHILD = 10,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    ENOTBLK = 15,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOTTY = 25,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    EMLINK = 31,
    EPIPE = 32,
    EDOM = 33,
    ERANGE = 34,
    EDEADLK = 35,
    ENAMETOOLONG = 36,
    ENOLCK = 37,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENOMSG = 42,
    EIDRM = 43,
    ENOSTR = 60,
    ENODATA = 61,
    ETIME = 62,
    ENOSR = 63,
    ENOLINK = 67,
    EPROTO = 71,
    EBADMSG = 74,
    EOVERFLOW = 75,
    ELIBACC = 79,
    ELIBBAD = 80,
    EILSEQ = 84,
    ERESTART = 85,
    EUSERS = 87,
    ENOTSOCK = 88,
    EDESTADDRREQ = 89,
    EMSGSIZE = 90,
    EPROTOTYPE = 91,
    ENOPROTOOPT = 92,
    EPROTONOSUPPORT = 93,
    ESOCKTNOSUPPORT = 94,
    EOPNOTSUPP = 95,
    EPFNOSUPPORT = 96,
    EAFNOSUPPORT = 97,
    EADDRINUSE = 98,
    EADDRNOTAVAIL = 99,
    ENETDOWN = 100,
    ENETUNREACH = 101,
    ENETRESET = 102,
    ECONNABORTED = 103,
    ECONNRESET = 104,
    ENOBUFS = 105,
    EISCONN = 106,
    ENOTCONN = 107,
    ESHUTDOWN = 108,
    ETOOMANYREFS = 109,
    ETIMEDOUT = 110,
    ECONNREFUSED = 111,
    EHOSTDOWN = 112,
    EHOSTUNREACH = 113,
    EALREADY = 114,
    EINPROGRESS = 115,
    ESTALE = 116,
    EDQUOT = 122,
    ECANCELED = 125,
    EOWNERDEAD = 130,
    ENOTRECOVERABLE = 131,
}

impl Errno {
    /// The positive Linux number (`EINVAL` → 22).
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The value a syscall returns in `rax` for this error: `-errno` as a
    /// two's-complement `usize`.
    pub const fn as_syscall_return(self) -> usize {
        (-(self as i32) as isize) as usize
    }
}

/// A LibOS error: the errno user space will see and a message for logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    errno: Errno,
    msg: &'static str,
}

impl Error {
    /// An error with only an errno (the message is empty).
    pub const fn new(errno: Errno) -> Self {
        Self { errno, msg: "" }
    }

    /// An error with an errno and a message naming the problem.
    pub const fn with_message(errno: Errno, msg: &'static str) -> Self {
        Self { errno, msg }
    }

    /// The errno user space sees.
    pub const fn errno(&self) -> Errno {
        self.errno
    }

    /// The message (may be empty).
    pub const fn message(&self) -> &'static str {
        self.msg
    }
}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Self {
        Self::new(errno)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.msg.is_empty() {
            write!(f, "{:?}", self.errno)
        } else {
            write!(f, "{:?}: {}", self.errno, self.msg)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for Error {}

/// The LibOS result type.
pub type Result<T> = core::result::Result<T, Error>;

/// Returns early with `Err(Error::new(errno))`.
#[macro_export]
macro_rules! return_errno {
    ($errno:expr) => {
        return core::result::Result::Err($crate::error::Error::new($errno))
    };
}

/// Returns early with `Err(Error::with_message(errno, msg))`.
#[macro_export]
macro_rules! return_errno_with_message {
    ($errno:expr, $msg:expr) => {
        return core::result::Result::Err($crate::error::Error::with_message($errno, $msg))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(n: u32) -> Result<u32> {
        if n == 0 {
            return_errno!(Errno::ENOENT);
        }
        if n == 1 {
            return_errno_with_message!(Errno::EINVAL, "one is not allowed");
        }
        Ok(n)
    }

    #[test]
    fn numbers_match_linux() {
        assert_eq!(Errno::EPERM.as_i32(), 1);
        assert_eq!(Errno::EFAULT.as_i32(), 14);
        assert_eq!(Errno::ENOTTY.as_i32(), 25);
        assert_eq!(Errno::ENOSYS.as_i32(), 38);
        assert_eq!(Errno::ELOOP.as_i32(), 40);
        assert_eq!(Errno::EOVERFLOW.as_i32(), 75);
        assert_eq!(Errno::EOPNOTSUPP.as_i32(), 95);
        assert_eq!(Errno::ETIMEDOUT.as_i32(), 110);
        assert_eq!(Errno::ENOTRECOVERABLE.as_i32(), 131);
    }

    #[test]
    fn syscall_return_is_negative_errno() {
        assert_eq!(Errno::ENOENT.as_syscall_return() as isize, -2);
        assert_eq!(Errno::ENOSYS.as_syscall_return(), usize::MAX - 37);
    }

    #[test]
    fn macros_return_errors_with_messages() {
        assert_eq!(fails(0).unwrap_err().errno(), Errno::ENOENT);
        let e = fails(1).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert_eq!(e.message(), "one is not allowed");
        assert_eq!(format!("{e}"), "EINVAL: one is not allowed");
        assert_eq!(fails(5).unwrap(), 5);
        let from: Error = Errno::EBADF.into();
        assert_eq!(format!("{from:?}"), "EBADF");
    }
}
