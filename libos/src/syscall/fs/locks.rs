//! `fcntl`'s record-lock commands over the guest's
//! [`LockTable`](crate::fs::locks::LockTable): `F_GETLK`, `F_SETLK`,
//! `F_SETLKW` (process-owned) and their `F_OFD_*` forms (owned by the open
//! file description; `l_pid` must be 0), with `struct flock` decoded as
//! Linux does (`l_whence` from the start, the offset or the end; `l_len` 0
//! to the end of the file, negative before `l_start`).

use alloc::sync::Arc;

use crate::error::{Errno, Result};
use crate::fd::{FileLike, SeekFrom};
use crate::fs::file::open_flags::{O_ACCMODE, O_RDONLY, O_WRONLY};
use crate::fs::locks::{Lock, Owner};
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserSliceRead, UserSliceWrite};

/// `l_type` values.
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
/// The commands (`F_GETLK` 5, `F_SETLK` 6, `F_SETLKW` 7, OFD 36–38).
const F_GETLK: u32 = 5;
const F_SETLKW: u32 = 7;
const F_OFD_GETLK: u32 = 36;
const F_OFD_SETLKW: u32 = 38;
/// `struct flock` bytes (x86-64).
const FLOCK_BYTES: usize = 32;

/// A decoded `struct flock`: the type and the byte range.
struct Request {
    kind: i16,
    start: u64,
    end: u64,
}

/// Reads and decodes the `struct flock` at `addr` for `file`.
fn request(p: &Process, file: &Arc<dyn FileLike>, addr: u64, ofd: bool) -> Result<Request> {
    let raw = UserSliceRead::new(addr, FLOCK_BYTES)?.read_to_vec(&*p.platform)?;
    let i16_at = |at: usize| i16::from_le_bytes([raw[at], raw[at + 1]]);
    let i64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[at..at + 8]);
        i64::from_le_bytes(b)
    };
    let (kind, whence, l_start, l_len) = (i16_at(0), i16_at(2), i64_at(8), i64_at(16));
    let l_pid = i32::from_le_bytes([raw[24], raw[25], raw[26], raw[27]]);
    if !matches!(kind, F_RDLCK | F_WRLCK | F_UNLCK) || (ofd && l_pid != 0) {
        return_errno!(Errno::EINVAL);
    }
    let base = match whence {
        0 => 0,
        1 => file.seek(SeekFrom::Current(0))? as i64,
        2 => file.metadata()?.size as i64,
        _ => return_errno!(Errno::EINVAL),
    };
    let start = base.checked_add(l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match l_len {
        0 => (start, None),
        len if len > 0 => (start, Some(start.checked_add(len).ok_or(Errno::EOVERFLOW)?)),
        len => (start.checked_add(len).ok_or(Errno::EINVAL)?, Some(start)),
    };
    if start < 0 {
        return_errno!(Errno::EINVAL);
    }
    Ok(Request {
        kind,
        start: start as u64,
        end: end.map_or(u64::MAX, |e| e as u64),
    })
}

/// Writes what `F_GETLK` found: the conflicting lock, or `F_UNLCK` in
/// `l_type` alone.
fn report(p: &Process, addr: u64, found: Option<Lock>) -> Result<usize> {
    let Some(lock) = found else {
        UserSliceWrite::new(addr, 2)?.write(&*p.platform, &F_UNLCK.to_le_bytes())?;
        return Ok(0);
    };
    let mut out = [0u8; FLOCK_BYTES];
    let kind = if lock.write { F_WRLCK } else { F_RDLCK };
    out[0..2].copy_from_slice(&kind.to_le_bytes());
    out[8..16].copy_from_slice(&(lock.start as i64).to_le_bytes());
    let len = if lock.end == u64::MAX {
        0
    } else {
        (lock.end - lock.start) as i64
    };
    out[16..24].copy_from_slice(&len.to_le_bytes());
    out[24..28].copy_from_slice(&lock.owner.pid().to_le_bytes());
    UserSliceWrite::new(addr, FLOCK_BYTES)?.write(&*p.platform, &out)?;
    Ok(0)
}

/// `fcntl(fd, cmd, &flock)` for the lock commands.
pub fn fcntl_lock(p: &Process, file: &Arc<dyn FileLike>, cmd: u32, addr: u64) -> Result<usize> {
    let ofd = cmd >= F_OFD_GETLK;
    let req = request(p, file, addr, ofd)?;
    let owner = if ofd {
        Owner::description(file)
    } else {
        Owner::Process(p.pid)
    };
    let ino = file.metadata()?.ino;
    if cmd == F_GETLK || cmd == F_OFD_GETLK {
        if req.kind == F_UNLCK {
            return_errno!(Errno::EINVAL);
        }
        let found = p
            .locks
            .conflict(ino, &owner, req.kind == F_WRLCK, req.start, req.end);
        return report(p, addr, found);
    }
    let mode = file.status_flags() & O_ACCMODE;
    let kind = match req.kind {
        F_RDLCK if mode == O_WRONLY => return_errno!(Errno::EBADF),
        F_WRLCK if mode == O_RDONLY => return_errno!(Errno::EBADF),
        F_UNLCK => None,
        k => Some(k == F_WRLCK),
    };
    let wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
    loop {
        match p.locks.set(ino, &owner, kind, req.start, req.end) {
            Err(e) if e.errno() == Errno::EAGAIN && wait => {
                let write = kind == Some(true);
                p.platform.block_until(
                    &mut || {
                        p.locks
                            .conflict(ino, &owner, write, req.start, req.end)
                            .is_none()
                    },
                    None,
                )?;
            }
            other => return other.map(|()| 0),
        }
    }
}

#[cfg(test)]
mod tests;
