//! File descriptors: the per-process [`FdTable`] mapping small integers to
//! open file descriptions ([`FileLike`] objects), with close-on-exec flags,
//! lowest-free allocation and `dup`/`dup2`/`dup3`/`F_DUPFD` semantics.
//!
//! Everything an fd can name implements [`FileLike`]: VFS files
//! (`crate::fs::file::InodeFile`), pipes, eventfds, epoll instances
//! and sockets (which also offer [`FileLike::as_socket`]). Each reports readiness through [`FileLike::poll`],
//! which `poll`/`select`/`epoll` will be built on. An open file
//! description is shared (`Arc`) between duplicated fds, so they share
//! the offset and status flags, as on Linux.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use crate::error::{Errno, Result};
use crate::fallible::TryVec;
use crate::fs::{InodeRef, Metadata};
use crate::return_errno;

bitflags::bitflags! {
    /// `poll(2)` event bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PollEvents: u16 {
        /// Data to read.
        const IN = 0x001;
        /// Urgent data.
        const PRI = 0x002;
        /// Writing will not block.
        const OUT = 0x004;
        /// Error condition.
        const ERR = 0x008;
        /// Hang-up.
        const HUP = 0x010;
        /// Invalid fd.
        const NVAL = 0x020;
        /// Normal data to read.
        const RDNORM = 0x040;
        /// Normal data can be written.
        const WRNORM = 0x100;
    }
}

/// `lseek` origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekFrom {
    /// `SEEK_SET`
    Start(i64),
    /// `SEEK_CUR`
    Current(i64),
    /// `SEEK_END`
    End(i64),
}

/// An open file description: anything an fd can refer to. Methods a kind
/// does not support keep their default, which fails as Linux does for it.
pub trait FileLike: Send + Sync + core::fmt::Debug {
    /// Reads at the current offset, advancing it.
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// Writes at the current offset (or the end, with `O_APPEND`).
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// Reads at `offset` without moving the file offset.
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::ESPIPE)
    }
    /// Writes at `offset` without moving the file offset.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::ESPIPE)
    }
    /// Moves the file offset.
    fn seek(&self, _pos: SeekFrom) -> Result<u64> {
        return_errno!(Errno::ESPIPE)
    }
    /// `fstat` metadata.
    fn metadata(&self) -> Result<Metadata>;
    /// Current readiness (level-triggered).
    fn poll(&self) -> PollEvents;
    /// When the file's current readiness began, as a value of
    /// [`crate::ipc::ready_seq`] (0: not known). `epoll` orders ready
    /// files by it, as Linux's ready list is in the order files became
    /// ready; files that cannot tell are ordered by when `epoll` first saw
    /// them ready.
    fn ready_stamp(&self) -> u64 {
        0
    }
    /// How many events a waiter for `interest` has had on this file so
    /// far: a count that moves on every event Linux wakes such a waiter
    /// for (each write into a pipe, each connection queued on a listener,
    /// room freed for a blocked writer, a close or shutdown), even if the
    /// file was ready already. Edge-triggered `epoll` reports a ready
    /// registration again when it moved (see [`crate::ipc::events`]).
    /// `None`: the file cannot tell, and `epoll` approximates.
    fn event_seq(&self, _interest: PollEvents) -> Option<u64> {
        None
    }
    /// A device-specific request; `ENOTTY` unless the kind knows it.
    fn ioctl(&self, _cmd: u32, _arg: u64) -> Result<IoctlReply> {
        return_errno!(Errno::ENOTTY)
    }
    /// [`FileLike::ioctl`] for a request that passes data in: `read_arg(n)`
    /// reads `n` bytes at the argument from user memory (only when the
    /// request needs them, so an unknown request stays `ENOTTY`).
    fn ioctl_with(
        &self,
        cmd: u32,
        arg: u64,
        _read_arg: &dyn Fn(usize) -> Result<Vec<u8>>,
    ) -> Result<IoctlReply> {
        self.ioctl(cmd, arg)
    }
    /// `O_*` status flags (access mode, `O_APPEND`, `O_NONBLOCK`, …).
    fn status_flags(&self) -> u32;
    /// Changes `O_APPEND` and `O_NONBLOCK` (`F_SETFL`).
    fn set_status_flags(&self, flags: u32) -> Result<()>;
    /// The VFS inode behind it, if any (for `fchdir`, `getdents64`, `*at`).
    fn inode(&self) -> Option<&InodeRef> {
        None
    }
    /// For downcasting to the concrete kind.
    fn as_any(&self) -> &dyn Any;
    /// The socket operations, if this is a socket (`ENOTSOCK` otherwise).
    fn as_socket(&self) -> Option<&dyn crate::net::Socket> {
        None
    }
    /// Who gets `SIGIO` when data arrives (`O_ASYNC`, `F_SETOWN`), if
    /// this kind of file supports signal-driven I/O (see
    /// [`crate::fasync`]).
    fn fasync(&self) -> Option<Arc<crate::fasync::AsyncOwner>> {
        None
    }
    /// Whether [`FileLike::read_user`] and [`FileLike::write_user`] move
    /// bytes between the file's own buffer and user memory (`read` and
    /// `write` then skip the process's bounce buffer: one copy fewer).
    fn copies_user(&self) -> bool {
        false
    }
    /// `read` into user memory at `addr`, up to `len` bytes, as
    /// [`FileLike::read`] would (same errors; a fault before any byte is
    /// `EFAULT`, after some the count so far). Only called when
    /// [`FileLike::copies_user`].
    fn read_user(
        &self,
        _mem: &dyn crate::user::UserMemory,
        _addr: u64,
        _len: usize,
    ) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// `write` from user memory, likewise.
    fn write_user(
        &self,
        _mem: &dyn crate::user::UserMemory,
        _addr: u64,
        _len: usize,
    ) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// `pread` into user memory, as [`FileLike::read_at`] would (same
    /// errors; a fault as in [`FileLike::read_user`]). Only called when
    /// [`FileLike::copies_user`]; `ESPIPE` unless the file has offsets.
    fn read_user_at(
        &self,
        _mem: &dyn crate::user::UserMemory,
        _offset: u64,
        _addr: u64,
        _len: usize,
    ) -> Result<usize> {
        return_errno!(Errno::ESPIPE)
    }
    /// `pwrite` from user memory, likewise.
    fn write_user_at(
        &self,
        _mem: &dyn crate::user::UserMemory,
        _offset: u64,
        _addr: u64,
        _len: usize,
    ) -> Result<usize> {
        return_errno!(Errno::ESPIPE)
    }
}

/// What an `ioctl` produced: bytes to copy to the user pointer in `arg`
/// (if any) and the return value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoctlReply {
    /// Bytes for `*arg`.
    pub out: Vec<u8>,
    /// The syscall's return value.
    pub ret: usize,
}

/// One fd slot.
#[derive(Debug, Clone)]
struct FdEntry {
    file: Arc<dyn FileLike>,
    cloexec: bool,
}

/// Default `RLIMIT_NOFILE` soft limit.
pub const DEFAULT_FD_LIMIT: usize = 1024;

/// The fd table of a process.
#[derive(Debug, Clone)]
pub struct FdTable {
    entries: Vec<Option<FdEntry>>,
    limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FdTable {
    /// An empty table with the default limit.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            limit: DEFAULT_FD_LIMIT,
        }
    }

    /// The maximum number of fds (`RLIMIT_NOFILE`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit (existing higher fds stay open, as on Linux).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    fn slot(fd: i32) -> Result<usize> {
        usize::try_from(fd).map_err(|_| Errno::EBADF.into())
    }

    /// Installs `file` at the lowest free fd ≥ `min` (`EMFILE` if none
    /// below the limit, `EINVAL` if `min` is beyond it).
    pub fn insert_from(
        &mut self,
        min: usize,
        file: Arc<dyn FileLike>,
        cloexec: bool,
    ) -> Result<i32> {
        if min >= self.limit {
            return_errno!(Errno::EINVAL);
        }
        let free = (min..self.limit).find(|&i| self.entries.get(i).is_none_or(Option::is_none));
        let Some(fd) = free else {
            return_errno!(Errno::EMFILE);
        };
        if self.entries.len() <= fd {
            // The table grows to the highest fd the program asks for.
            self.entries.try_resize(fd + 1, None)?;
        }
        self.entries[fd] = Some(FdEntry { file, cloexec });
        Ok(fd as i32)
    }

    /// Installs `file` at the lowest free fd (`EMFILE` if none is below
    /// the limit — also with a limit of 0, as Linux).
    pub fn insert(&mut self, file: Arc<dyn FileLike>, cloexec: bool) -> Result<i32> {
        if self.limit == 0 {
            return_errno!(Errno::EMFILE);
        }
        self.insert_from(0, file, cloexec)
    }

    /// `close_range`: closes (or, with `cloexec_only`, marks close-on-exec)
    /// every open fd in `first..=last`; returns the files closed.
    pub fn close_range(
        &mut self,
        first: u32,
        last: u32,
        cloexec_only: bool,
    ) -> Vec<Arc<dyn FileLike>> {
        let mut closed = Vec::new();
        let end = (last as usize).saturating_add(1).min(self.entries.len());
        for slot in self.entries.iter_mut().take(end).skip(first as usize) {
            if cloexec_only {
                if let Some(e) = slot {
                    e.cloexec = true;
                }
            } else if let Some(e) = slot.take() {
                closed.push(e.file);
            }
        }
        closed
    }

    /// The file at `fd` (`EBADF` if not open).
    pub fn get(&self, fd: i32) -> Result<Arc<dyn FileLike>> {
        let slot = Self::slot(fd)?;
        match self.entries.get(slot) {
            Some(Some(e)) => Ok(e.file.clone()),
            _ => return_errno!(Errno::EBADF),
        }
    }

    /// Closes `fd`, returning its file.
    pub fn close(&mut self, fd: i32) -> Result<Arc<dyn FileLike>> {
        let slot = Self::slot(fd)?;
        match self.entries.get_mut(slot).and_then(Option::take) {
            Some(e) => Ok(e.file),
            None => return_errno!(Errno::EBADF),
        }
    }

    /// `dup`: the lowest free fd, sharing the description, without CLOEXEC.
    pub fn dup(&mut self, fd: i32) -> Result<i32> {
        let file = self.get(fd)?;
        self.insert(file, false)
    }

    /// `dup3`: makes `new` refer to `old`'s description, closing `new`
    /// first. `old == new` is `EINVAL` (use [`FdTable::dup2`] for that).
    pub fn dup3(&mut self, old: i32, new: i32, cloexec: bool) -> Result<i32> {
        if old == new {
            return_errno!(Errno::EINVAL);
        }
        let file = self.get(old)?;
        let slot = Self::slot(new)?;
        if slot >= self.limit {
            return_errno!(Errno::EBADF);
        }
        if self.entries.len() <= slot {
            self.entries.try_resize(slot + 1, None)?;
        }
        self.entries[slot] = Some(FdEntry { file, cloexec });
        Ok(new)
    }

    /// `dup2`: like `dup3` without flags, but `old == new` just checks `old`.
    pub fn dup2(&mut self, old: i32, new: i32) -> Result<i32> {
        if old == new {
            self.get(old)?;
            return Ok(new);
        }
        self.dup3(old, new, false)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool> {
        match self.entries.get(Self::slot(fd)?) {
            Some(Some(e)) => Ok(e.cloexec),
            _ => return_errno!(Errno::EBADF),
        }
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) -> Result<()> {
        match self.entries.get_mut(Self::slot(fd)?) {
            Some(Some(e)) => {
                e.cloexec = cloexec;
                Ok(())
            }
            _ => return_errno!(Errno::EBADF),
        }
    }

    /// Closes every close-on-exec fd (at `execve`).
    pub fn close_on_exec(&mut self) {
        for e in &mut self.entries {
            if e.as_ref().is_some_and(|e| e.cloexec) {
                *e = None;
            }
        }
    }

    /// The open fds, ascending.
    pub fn open_fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// A minimal file kind, standing in for a pipe or socket.
    #[derive(Debug, Default)]
    struct Dummy {
        flags: AtomicU32,
    }

    impl FileLike for Dummy {
        fn metadata(&self) -> Result<Metadata> {
            return_errno!(Errno::EINVAL)
        }
        fn poll(&self) -> PollEvents {
            PollEvents::OUT
        }
        fn status_flags(&self) -> u32 {
            self.flags.load(Ordering::Relaxed)
        }
        fn set_status_flags(&self, flags: u32) -> Result<()> {
            self.flags.store(flags, Ordering::Relaxed);
            Ok(())
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    fn dummy() -> Arc<dyn FileLike> {
        Arc::new(Dummy::default())
    }

    #[test]
    fn lowest_free_and_close() {
        let mut t = FdTable::new();
        assert_eq!(t.insert(dummy(), false).unwrap(), 0);
        assert_eq!(t.insert(dummy(), false).unwrap(), 1);
        assert_eq!(t.insert(dummy(), true).unwrap(), 2);
        t.close(1).unwrap();
        assert_eq!(t.close(1).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(t.close(-1).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(t.insert(dummy(), false).unwrap(), 1);
        assert_eq!(t.insert_from(10, dummy(), false).unwrap(), 10);
        assert_eq!(t.insert(dummy(), false).unwrap(), 3);
        assert_eq!(t.open_fds().collect::<Vec<_>>(), [0, 1, 2, 3, 10]);
        assert!(t.cloexec(2).unwrap());
        t.close_on_exec();
        assert_eq!(t.get(2).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(
            t.insert_from(5000, dummy(), false).unwrap_err().errno(),
            Errno::EINVAL
        );
    }

    #[test]
    fn dup_shares_description() {
        let mut t = FdTable::new();
        let fd = t.insert(dummy(), true).unwrap();
        let d = t.dup(fd).unwrap();
        assert_eq!(d, 1);
        assert!(!t.cloexec(d).unwrap());
        t.get(fd).unwrap().set_status_flags(0o4000).unwrap();
        assert_eq!(t.get(d).unwrap().status_flags(), 0o4000);
        assert_eq!(t.dup2(fd, 7).unwrap(), 7);
        assert_eq!(t.dup2(fd, fd).unwrap(), fd);
        assert_eq!(t.dup2(5, 5).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(t.dup3(fd, fd, false).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(t.dup3(fd, 7, true).unwrap(), 7);
        assert!(t.cloexec(7).unwrap());
        assert_eq!(t.dup3(fd, 4096, false).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(t.get(7).unwrap().poll(), PollEvents::OUT);
    }

    #[test]
    fn limit_gives_emfile() {
        let mut t = FdTable::new();
        t.set_limit(3);
        for _ in 0..3 {
            t.insert(dummy(), false).unwrap();
        }
        assert_eq!(t.insert(dummy(), false).unwrap_err().errno(), Errno::EMFILE);
        assert_eq!(t.dup(0).unwrap_err().errno(), Errno::EMFILE);
    }
}
