//! Calls that programs and language runtimes expect to exist: `pause`,
//! `getpriority`/`setpriority` (the nice value is kept and reported; with
//! one program on the CPU it changes nothing else), `close_range` and
//! `memfd_create`.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fs::InodeFile;
use crate::process::Process;
use crate::return_errno;
use crate::user::read_cstring;

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (34, "pause", sys_pause),
    (140, "getpriority", sys_getpriority),
    (141, "setpriority", sys_setpriority),
    (319, "memfd_create", sys_memfd_create),
    (436, "close_range", sys_close_range),
];

/// `pause()`: waits for a signal; always `EINTR`.
pub fn sys_pause(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    p.platform.block_until(&mut || false, None)?;
    return_errno!(Errno::EINTR)
}

/// `PRIO_PROCESS`, `PRIO_PGRP`, `PRIO_USER` naming this process (0, its
/// pid or group, or root).
fn check_who(p: &Process, which: u32, who: u32) -> Result<()> {
    match which {
        0 | 1 if who == 0 || who == p.pid => Ok(()),
        2 if who == 0 => Ok(()),
        0..=2 => return_errno!(Errno::ESRCH),
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `getpriority(which, who)`: the raw call returns `20 - nice`.
pub fn sys_getpriority(p: &Process, a: &SyscallArgs) -> Result<usize> {
    check_who(p, a.u32(0), a.u32(1))?;
    Ok((20 - p.nice.load(Ordering::Relaxed)) as usize)
}

/// `setpriority(which, who, nice)`: clamped to -20..=19, as Linux.
pub fn sys_setpriority(p: &Process, a: &SyscallArgs) -> Result<usize> {
    check_who(p, a.u32(0), a.u32(1))?;
    let nice = (a.u64(2) as i32).clamp(-20, 19);
    p.nice.store(nice, Ordering::Relaxed);
    Ok(0)
}

/// `close_range(first, last, flags)`: `CLOSE_RANGE_CLOEXEC` marks instead
/// of closing; `CLOSE_RANGE_UNSHARE` is a no-op (one fd table).
pub fn sys_close_range(p: &Process, a: &SyscallArgs) -> Result<usize> {
    const UNSHARE: u32 = 1 << 1;
    const CLOEXEC: u32 = 1 << 2;
    let (first, last, flags) = (a.u32(0), a.u32(1), a.u32(2));
    if flags & !(UNSHARE | CLOEXEC) != 0 || first > last {
        return_errno!(Errno::EINVAL);
    }
    let closed = p.fds.lock().close_range(first, last, flags & CLOEXEC != 0);
    // Files are released outside the table's lock.
    drop(closed);
    Ok(0)
}

/// `memfd_create(name, flags)`: an anonymous regular file, read-write.
pub fn sys_memfd_create(p: &Process, a: &SyscallArgs) -> Result<usize> {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    let flags = a.u32(1);
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return_errno!(Errno::EINVAL);
    }
    // Linux: at most 249 bytes of name.
    let name = read_cstring(&*p.platform, a.u64(0), 249)?;
    let _ = name;
    let inode = p.vfs.create_unlinked_file(0o777)?;
    let file = Arc::new(InodeFile::new(p.vfs.clone(), inode, 2 /* O_RDWR */));
    let fd = p.fds.lock().insert(file, flags & MFD_CLOEXEC != 0)?;
    Ok(fd as usize)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::syscall::testing::{Sys, err};
    use crate::user::UserMemory;

    const BUF: u64 = 0x20_0000;

    fn h() -> Sys {
        Sys::new(BUF, 0x2000)
    }

    fn cstr(h: &Sys, at: u64, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        h.m.write_user(at, &b).unwrap();
        at
    }

    #[test]
    fn priority_is_kept_and_reported_as_the_raw_call_does() {
        let h = h();
        assert_eq!(h.call("getpriority", &[0, 0]), 20);
        assert_eq!(h.call("setpriority", &[0, 0, 5]), 0);
        assert_eq!(h.call("getpriority", &[0, 1]), 15);
        assert_eq!(h.call("setpriority", &[0, 0, 99]), 0);
        assert_eq!(h.call("getpriority", &[0, 0]), 1, "clamped to 19");
        assert_eq!(h.call("getpriority", &[0, 42]), err(Errno::ESRCH));
        assert_eq!(h.call("getpriority", &[7, 0]), err(Errno::EINVAL));
    }

    #[test]
    fn close_range_closes_or_marks() {
        let h = h();
        for _ in 0..4 {
            assert!(h.call("eventfd2", &[0, 0]) >= 0);
        }
        // fds 0..=3 are the eventfds (no stdio in the harness).
        assert_eq!(h.call("close_range", &[1, 2, 4]), 0, "CLOEXEC only");
        assert_eq!(h.call("fcntl", &[1, 1, 0]), 1, "FD_CLOEXEC");
        assert_eq!(h.call("close_range", &[1, u64::from(u32::MAX), 0]), 0);
        assert_eq!(h.call("fcntl", &[1, 1, 0]), err(Errno::EBADF));
        assert_eq!(h.call("fcntl", &[0, 1, 0]), 0, "fd 0 stays");
        assert_eq!(h.call("close_range", &[3, 1, 0]), err(Errno::EINVAL));
        assert_eq!(h.call("close_range", &[0, 1, 8]), err(Errno::EINVAL));
    }

    #[test]
    fn memfd_is_a_read_write_file_and_times_can_be_set() {
        let h = h();
        let name = cstr(&h, BUF, "cloister");
        let fd = h.call("memfd_create", &[name, 1]);
        assert!(fd >= 0, "{fd}");
        let fd = fd as u64;
        let data = cstr(&h, BUF + 0x100, "in memory");
        assert_eq!(h.call("write", &[fd, data, 9]), 9);
        assert_eq!(h.call("pread64", &[fd, BUF + 0x200, 9, 0]), 9);
        let mut b = [0u8; 9];
        h.m.read_user(BUF + 0x200, &mut b).unwrap();
        assert_eq!(&b, b"in memory");
        assert_eq!(h.call("memfd_create", &[name, 0x100]), err(Errno::EINVAL));
        // utimensat on the fd (NULL path): atime set, mtime left.
        let times: alloc::vec::Vec<u8> = [1_000u64, 5, 0, (1 << 30) - 2]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        h.m.write_user(BUF + 0x300, &times).unwrap();
        assert_eq!(h.call("utimensat", &[fd, 0, BUF + 0x300, 0]), 0);
        assert_eq!(h.call("fstat", &[fd, BUF + 0x400]), 0);
        let mut st = [0u8; 144];
        h.m.read_user(BUF + 0x400, &mut st).unwrap();
        let word = |o: usize| u64::from_le_bytes(st[o..o + 8].try_into().unwrap());
        assert_eq!((word(72), word(80)), (1_000, 5), "st_atime, st_atime_nsec");
        let bad: alloc::vec::Vec<u8> = [0u64, 1_000_000_000, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        h.m.write_user(BUF + 0x300, &bad).unwrap();
        assert_eq!(
            h.call("utimensat", &[fd, 0, BUF + 0x300, 0]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn fionbio_works_on_pipes_and_pause_ends_with_eintr() {
        let h = h();
        assert_eq!(h.call("pipe2", &[BUF, 0]), 0);
        let mut b = [0u8; 4];
        h.m.read_user(BUF, &mut b).unwrap();
        let r = u64::from(u32::from_le_bytes(b));
        h.m.write_user(BUF + 0x10, &1i32.to_le_bytes()).unwrap();
        assert_eq!(h.call("ioctl", &[r, 0x5421, BUF + 0x10]), 0, "FIONBIO");
        assert_eq!(h.call("read", &[r, BUF + 0x20, 4]), err(Errno::EAGAIN));
        h.m.interrupt_next_wait_after(1_000);
        assert_eq!(h.call("pause", &[]), err(Errno::EINTR));
    }
}
