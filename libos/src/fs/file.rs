//! [`InodeFile`]: an open VFS inode (regular file, directory or character
//! device) as a [`FileLike`], with its offset and status flags.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use super::inode::{InodeRef, InodeType, Metadata};
use super::vfs::Vfs;
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents, SeekFrom};
use crate::return_errno;

/// `open(2)` flags (x86-64 values).
#[allow(missing_docs, reason = "the names are Linux's; see open(2)")]
pub mod open_flags {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_RDONLY: u32 = 0o0;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_SYNC: u32 = 0o4010000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE: u32 = 0o20000000;
}
use open_flags::*;

/// Terminal ioctls answered for the console.
#[allow(missing_docs, reason = "the names are Linux's; see ioctl_tty(2)")]
pub mod tty_ioctl {
    pub const TCGETS: u32 = 0x5401;
    pub const TCSETS: u32 = 0x5402;
    pub const TCSETSW: u32 = 0x5403;
    pub const TCSETSF: u32 = 0x5404;
    pub const TIOCGPGRP: u32 = 0x540f;
    pub const TIOCGWINSZ: u32 = 0x5413;
    pub const FIONREAD: u32 = 0x541b;
    pub const FIONBIO: u32 = 0x5421;
    pub const FIOCLEX: u32 = 0x5451;
    pub const FIOASYNC: u32 = 0x5452;
}

/// What every terminal answers: Linux's default termios (`TCGETS`;
/// `TCSETS*` accepted and ignored), the window size `rows_cols`
/// (`TIOCGWINSZ`), foreground process group 1 (`TIOCGPGRP`); `ENOTTY`
/// for anything else.
pub fn tty_request(cmd: u32, rows_cols: (u16, u16)) -> Result<IoctlReply> {
    use tty_ioctl::*;
    let out = match cmd {
        TCGETS => console_termios(),
        TCSETS | TCSETSW | TCSETSF => Vec::new(),
        TIOCGWINSZ => [rows_cols.0, rows_cols.1, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        TIOCGPGRP => 1i32.to_le_bytes().to_vec(),
        _ => return_errno!(Errno::ENOTTY),
    };
    Ok(IoctlReply { out, ret: 0 })
}

/// The `struct termios` (kernel layout, 36 bytes) the console reports:
/// Linux's defaults for a tty (`ICRNL|IXON`, `OPOST|ONLCR`,
/// `B38400|CS8|CREAD|HUPCL`, `ISIG|ICANON|ECHO…`).
pub fn console_termios() -> Vec<u8> {
    let mut t = Vec::with_capacity(36);
    for flag in [0o2400u32, 0o5, 0o2277, 0o105073] {
        t.extend_from_slice(&flag.to_le_bytes());
    }
    t.push(0); // c_line
    // c_cc: INTR QUIT ERASE KILL EOF TIME MIN SWTC START STOP SUSP EOL
    // REPRINT DISCARD WERASE LNEXT EOL2, then two unused.
    t.extend_from_slice(&[
        3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
    ]);
    t
}

/// An open VFS inode.
#[derive(Debug)]
pub struct InodeFile {
    inode: InodeRef,
    vfs: Arc<Vfs>,
    /// Byte offset for files, entry index for directories.
    offset: Mutex<u64>,
    flags: AtomicU32,
}

impl Drop for InodeFile {
    fn drop(&mut self) {
        // The last fd of this open file description is gone: its `flock`
        // lock goes too.
        let _ = self.inode.flock(self.flock_owner(), None);
    }
}

impl InodeFile {
    /// The inode it opened.
    pub fn inode_ref(&self) -> &InodeRef {
        &self.inode
    }

    /// This open file description as a `flock` owner.
    pub fn flock_owner(&self) -> crate::fs::flock::Owner {
        core::ptr::from_ref(self).addr()
    }

    /// Wraps `inode`, opened with `flags` (only the status flags are kept).
    pub fn new(vfs: Arc<Vfs>, inode: InodeRef, flags: u32) -> Self {
        let kept = flags
            & (O_ACCMODE
                | O_APPEND
                | O_NONBLOCK
                | O_DSYNC
                | O_SYNC
                | O_NOATIME
                | O_PATH
                | O_LARGEFILE
                | O_DIRECTORY);
        Self {
            inode,
            vfs,
            offset: Mutex::new(0),
            flags: AtomicU32::new(kept),
        }
    }

    fn readable(&self) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    fn writable(&self) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    /// Where a write asked for at `offset` lands: the end of the file with
    /// `O_APPEND` (Linux ignores `pwrite`'s offset then too), else `offset`.
    fn write_offset(&self, offset: u64) -> u64 {
        if self.flags.load(Ordering::Relaxed) & O_APPEND != 0 {
            self.inode.metadata().size
        } else {
            offset
        }
    }

    fn is_tty(&self) -> bool {
        self.inode.device().is_some_and(|d| d.is_tty())
    }

    /// Reads directory entries from the current position, taking as many
    /// as `take` accepts (it returns `false` when its buffer is full), and
    /// advances the position past them.
    pub fn read_dir_with(
        &self,
        mut take: impl FnMut(&[u8], u64, InodeType, u64) -> bool,
    ) -> Result<()> {
        if self.flags.load(Ordering::Relaxed) & O_PATH != 0 {
            return_errno!(Errno::EBADF);
        }
        let mut pos = self.offset.lock();
        let start = *pos;
        let mut next = start;
        let taken = self.inode.visit_dir(start as usize, |name, ino, ty| {
            next += 1;
            take(name, ino, ty, next)
        })?;
        *pos = start + taken as u64;
        Ok(())
    }
}

impl FileLike for InodeFile {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.readable() {
            return_errno!(Errno::EBADF);
        }
        if self.inode.file_type() == InodeType::CharDevice {
            return self.inode.read_at(0, buf);
        }
        let mut off = self.offset.lock();
        let n = self.inode.read_at(*off, buf)?;
        *off += n as u64;
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        if !self.writable() {
            return_errno!(Errno::EBADF);
        }
        let now = self.vfs.now();
        if self.inode.file_type() == InodeType::CharDevice {
            return self.inode.write_at(0, buf, now);
        }
        let mut off = self.offset.lock();
        *off = self.write_offset(*off);
        let n = self.inode.write_at(*off, buf, now)?;
        *off += n as u64;
        Ok(n)
    }

    /// A regular file's pages go straight to and from user memory
    /// ([`super::direct`]).
    fn copies_user(&self) -> bool {
        self.inode.holds_file_pages()
    }

    fn read_user(&self, mem: &dyn crate::user::UserMemory, addr: u64, len: usize) -> Result<usize> {
        if !self.readable() {
            return_errno!(Errno::EBADF);
        }
        let mut off = self.offset.lock();
        let n = self.inode.read_to_user(mem, *off, addr, len)?;
        *off += n as u64;
        Ok(n)
    }

    fn write_user(
        &self,
        mem: &dyn crate::user::UserMemory,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        if !self.writable() {
            return_errno!(Errno::EBADF);
        }
        let now = self.vfs.now();
        let mut off = self.offset.lock();
        *off = self.write_offset(*off);
        let n = self.inode.write_from_user(mem, *off, addr, len, now)?;
        *off += n as u64;
        Ok(n)
    }

    fn read_user_at(
        &self,
        mem: &dyn crate::user::UserMemory,
        offset: u64,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        if !self.readable() {
            return_errno!(Errno::EBADF);
        }
        self.inode.read_to_user(mem, offset, addr, len)
    }

    fn write_user_at(
        &self,
        mem: &dyn crate::user::UserMemory,
        offset: u64,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        if !self.writable() {
            return_errno!(Errno::EBADF);
        }
        self.inode
            .write_from_user(mem, self.write_offset(offset), addr, len, self.vfs.now())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if !self.readable() {
            return_errno!(Errno::EBADF);
        }
        if self.is_tty() {
            return_errno!(Errno::ESPIPE);
        }
        self.inode.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize> {
        if !self.writable() {
            return_errno!(Errno::EBADF);
        }
        if self.is_tty() {
            return_errno!(Errno::ESPIPE);
        }
        self.inode
            .write_at(self.write_offset(offset), buf, self.vfs.now())
    }

    fn seek(&self, pos: SeekFrom) -> Result<u64> {
        if self.flags.load(Ordering::Relaxed) & O_PATH != 0 {
            return_errno!(Errno::EBADF);
        }
        match self.inode.file_type() {
            InodeType::CharDevice if self.is_tty() => return_errno!(Errno::ESPIPE),
            InodeType::CharDevice => return Ok(0),
            InodeType::Directory if pos != SeekFrom::Start(0) => {
                // Positions are entry indices; only rewinding is meaningful.
                let mut off = self.offset.lock();
                let new = match pos {
                    SeekFrom::Start(p) => p,
                    SeekFrom::Current(d) => (*off as i64).checked_add(d).ok_or(Errno::EINVAL)?,
                    SeekFrom::End(_) => return_errno!(Errno::EINVAL),
                };
                *off = u64::try_from(new).map_err(|_| Errno::EINVAL)?;
                return Ok(*off);
            }
            _ => {}
        }
        let mut off = self.offset.lock();
        let base: i64 = match pos {
            SeekFrom::Start(_) => 0,
            SeekFrom::Current(_) => *off as i64,
            SeekFrom::End(_) => self.inode.metadata().size as i64,
        };
        let delta = match pos {
            SeekFrom::Start(d) | SeekFrom::Current(d) | SeekFrom::End(d) => d,
        };
        let new = base.checked_add(delta).ok_or(Errno::EOVERFLOW)?;
        *off = u64::try_from(new).map_err(|_| Errno::EINVAL)?;
        Ok(*off)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(self.inode.metadata())
    }

    fn poll(&self) -> PollEvents {
        // Files and devices never block.
        let mut ev = PollEvents::empty();
        if self.readable() {
            ev |= PollEvents::IN | PollEvents::RDNORM;
        }
        if self.writable() {
            ev |= PollEvents::OUT | PollEvents::WRNORM;
        }
        ev
    }

    fn ioctl(&self, cmd: u32, _arg: u64) -> Result<IoctlReply> {
        // FIONBIO, FIOCLEX and FIONCLEX are handled for every kind of file
        // by the ioctl syscall itself.
        if cmd == tty_ioctl::FIONREAD && self.inode.file_type() == InodeType::Regular {
            // Linux: the bytes from the offset to the end, as an int.
            let left = self.inode.metadata().size.wrapping_sub(*self.offset.lock());
            return Ok(IoctlReply {
                out: (left as i32).to_le_bytes().to_vec(),
                ret: 0,
            });
        }
        if !self.is_tty() {
            return_errno!(Errno::ENOTTY);
        }
        tty_request(cmd, (24, 80))
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        let changeable = O_APPEND | O_NONBLOCK | O_NOATIME;
        let old = self.flags.load(Ordering::Relaxed);
        self.flags.store(
            (old & !changeable) | (flags & changeable),
            Ordering::Relaxed,
        );
        Ok(())
    }

    fn inode(&self) -> Option<&InodeRef> {
        Some(&self.inode)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
