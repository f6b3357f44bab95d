//! Setting file times: `utimensat` (and `futimens` through it), `utimes`,
//! `futimesat` and `utime`. `UTIME_NOW` and `UTIME_OMIT` as Linux; the
//! change time always becomes now. As root, any file's times may be set.

use super::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, lookup_at, path_arg};
use crate::error::{Errno, Result};
use crate::fs::InodeRef;
use crate::fs::inode::TimeNs;
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::user::UserSliceRead;

/// `tv_nsec` meaning "now".
const UTIME_NOW: i64 = (1 << 30) - 1;
/// `tv_nsec` meaning "leave as it is".
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// One requested time: `None` leaves it, `Some(t)` sets it.
type Change = Option<TimeNs>;

/// Two `(seconds, sub-second)` pairs at `addr`, `unit_ns` nanoseconds per
/// sub-second unit (1 for `timespec`, 1000 for `timeval`); a NULL pointer
/// means both now.
fn read_pairs(p: &Process, addr: u64, unit_ns: i64, now: TimeNs) -> Result<[Change; 2]> {
    if addr == 0 {
        return Ok([Some(now), Some(now)]);
    }
    let bytes = UserSliceRead::new(addr, 32)?.read_to_vec(&*p.platform)?;
    let word = |i: usize| i64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let mut out = [None; 2];
    for (k, slot) in out.iter_mut().enumerate() {
        let (sec, sub) = (word(2 * k), word(2 * k + 1));
        *slot = match sub {
            UTIME_NOW if unit_ns == 1 => Some(now),
            UTIME_OMIT if unit_ns == 1 => None,
            _ if sub < 0 || sub >= 1_000_000_000 / unit_ns => return_errno!(Errno::EINVAL),
            _ => {
                // Before the epoch clamps to it (times are unsigned here).
                let ns = sec
                    .saturating_mul(1_000_000_000)
                    .saturating_add(sub * unit_ns);
                Some(u64::try_from(ns).unwrap_or(0))
            }
        };
    }
    Ok(out)
}

/// The file `utimensat` names: `path` from `dirfd`, or with a NULL path
/// the open file `dirfd` itself (`futimens`).
fn target(p: &Process, dirfd: i32, path_addr: u64, flags: u32) -> Result<InodeRef> {
    if path_addr == 0 {
        if dirfd == AT_FDCWD {
            return_errno!(Errno::EFAULT);
        }
        let file = p.fds.lock().get(dirfd)?;
        return file.inode().cloned().ok_or(Errno::EBADF.into());
    }
    let path = path_arg(p, path_addr)?;
    lookup_at(p, dirfd, &path, flags)
}

fn apply(p: &Process, inode: &InodeRef, times: [Change; 2]) {
    inode.set_times(times[0], times[1], p.vfs.now());
}

/// `utimensat(dirfd, path, times, flags)`
pub fn sys_utimensat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let times = read_pairs(p, a.u64(2), 1, p.vfs.now())?;
    let inode = target(p, a.i32(0), a.u64(1), flags)?;
    apply(p, &inode, times);
    Ok(0)
}

/// `futimesat(dirfd, path, times)`: `timeval`s.
pub fn sys_futimesat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let times = read_pairs(p, a.u64(2), 1000, p.vfs.now())?;
    let inode = target(p, a.i32(0), a.u64(1), 0)?;
    apply(p, &inode, times);
    Ok(0)
}

/// `utimes(path, times)`: `timeval`s.
pub fn sys_utimes(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let times = read_pairs(p, a.u64(1), 1000, p.vfs.now())?;
    let path = path_arg(p, a.u64(0))?;
    let inode = lookup_at(p, AT_FDCWD, &path, 0)?;
    apply(p, &inode, times);
    Ok(0)
}

/// `utime(path, times)`: `struct utimbuf { actime, modtime }` in seconds.
pub fn sys_utime(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let now = p.vfs.now();
    let times = if a.u64(1) == 0 {
        [Some(now), Some(now)]
    } else {
        let b = UserSliceRead::new(a.u64(1), 16)?.read_to_vec(&*p.platform)?;
        let secs = |i: usize| {
            let v = i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            Some(u64::try_from(v.saturating_mul(1_000_000_000)).unwrap_or(0))
        };
        [secs(0), secs(1)]
    };
    let path = path_arg(p, a.u64(0))?;
    let inode = lookup_at(p, AT_FDCWD, &path, 0)?;
    apply(p, &inode, times);
    Ok(0)
}
