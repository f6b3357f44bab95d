//! `read` and `write` of a regular file straight between its pages and
//! user memory: one copy each way, no bounce buffer.
//!
//! # Lock order and faults
//!
//! The copy runs under the inode's `data` lock, but a user page may not be
//! present yet, and the LibOS's fault path ([`crate::mm::handle_page_fault`])
//! takes the process's `vm` lock and then *the inode's lock* to fill a
//! page of a file mapping — possibly of this very file (`read(fd, p, n)`
//! into a fresh `MAP_PRIVATE` mapping of the same file). Faulting with
//! the inode lock held would deadlock, so, as Linux does:
//!
//! 1. copy under the lock with the `*_nofault` user copies
//!    ([`UserMemory::write_user_nofault`]), which take only the faults the
//!    platform resolves on its own (a lazy zero page, copy-on-write: page
//!    table locks, never a LibOS lock) and stop at the first page the
//!    LibOS would have to populate ([`FileData::read_to_user`]);
//! 2. drop the lock and fault that page in ([`UserMemory::fault_in`]:
//!    `vm` lock, then maybe the inode lock, each on its own);
//! 3. go on from where the copy stopped.
//!
//! The order is thus open-file offset → inode `data` → page tables, and
//! `vm` → inode `data` → page tables on the fault path; nothing takes `vm`
//! under the inode lock. A page that cannot be faulted in (not mapped,
//! wrong protection, past the end of a shared file mapping) ends the call
//! with the bytes done so far, or `EFAULT` if none, as Linux reports a
//! short copy.
//!
//! [`FileData::read_to_user`]: super::data::FileData::read_to_user

use super::data::Copied;
use super::inode::{Content, Inode, TimeNs};
use crate::error::{Errno, Result};
use crate::mm::FaultAccess;
use crate::return_errno;
use crate::user::UserMemory;

impl Inode {
    /// Whether the inode holds a regular file's pages (which `read` and
    /// `write` copy straight to and from user memory).
    pub fn holds_file_pages(&self) -> bool {
        self.file_pages
    }

    /// Reads up to `len` file bytes at `offset` into user memory at `addr`
    /// (checked to lie in user space); 0 at or past the end. `EINVAL` if
    /// the inode holds no file pages.
    pub fn read_to_user(
        &self,
        mem: &dyn UserMemory,
        offset: u64,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        copy_with_faults(mem, addr, len, FaultAccess::Write, |done| {
            let d = self.data.lock();
            let Content::File(data) = &d.content else {
                return_errno!(Errno::EINVAL);
            };
            Ok(data.read_to_user(offset + done as u64, mem, addr + done as u64, len - done))
        })
    }

    /// Writes `len` bytes of user memory at `addr` (checked to lie in user
    /// space) at `offset`; returns the count written, short if the file
    /// system filled up or a user page faulted part way. `EINVAL` if the
    /// inode holds no file pages.
    pub fn write_from_user(
        &self,
        mem: &dyn UserMemory,
        offset: u64,
        addr: u64,
        len: usize,
        now: TimeNs,
    ) -> Result<usize> {
        copy_with_faults(mem, addr, len, FaultAccess::Read, |done| {
            let mut d = self.data.lock();
            let Content::File(data) = &mut d.content else {
                return_errno!(Errno::EINVAL);
            };
            let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
            let copied = data.write_from_user(at, mem, addr + done as u64, len - done)?;
            if copied.bytes > 0 {
                d.mtime_ns = now;
                d.ctime_ns = now;
            }
            Ok(copied)
        })
    }
}

/// Runs `step` (a copy under the inode lock, from `done` bytes in) until
/// it stops for a reason other than a user page; after each fault, with
/// no lock held, faults the page in for `access`. An error after some
/// bytes ends the call with the bytes done.
fn copy_with_faults(
    mem: &dyn UserMemory,
    addr: u64,
    len: usize,
    access: FaultAccess,
    mut step: impl FnMut(usize) -> Result<Copied>,
) -> Result<usize> {
    let mut done = 0usize;
    // Where the last fault-in was: a page that was faulted in yet still
    // stops the copy at once is not retried for ever.
    let mut faulted_at = None;
    loop {
        let copied = match step(done) {
            Ok(c) => c,
            Err(_) if done > 0 => return Ok(done),
            Err(e) => return Err(e),
        };
        done += copied.bytes;
        if !copied.faulted || done >= len {
            return Ok(done);
        }
        let at = addr + done as u64;
        let stuck = copied.bytes == 0 && faulted_at == Some(at);
        if stuck || mem.fault_in(at, access).is_err() {
            return if done > 0 {
                Ok(done)
            } else {
                Err(Errno::EFAULT.into())
            };
        }
        faulted_at = Some(at);
    }
}
