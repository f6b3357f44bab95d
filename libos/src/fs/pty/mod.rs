//! Pseudo-terminals: `/dev/ptmx` (5, 2) opens a new master, whose slave
//! appears as `/dev/pts/<n>` (136, n) until the master is closed — what
//! `posix_openpt`/`grantpt`/`unlockpt`/`ptsname`, glibc's `openpty` and
//! `forkpty`, Python's `pty` module and `script` use. The two sides are
//! joined by the line discipline of [`ldisc`] and share one set of terminal
//! settings and window size.
//!
//! The master reads what the slave wrote (after output processing) and
//! `EIO` once no slave is open; the slave reads what the master wrote
//! (after input processing) and end of file once the master is closed,
//! where its writes give `EIO`. A new slave starts locked: opening it gives
//! `EIO` until `TIOCSPTLCK` unlocks it, as on Linux.
//!
//! `ioctl`s: `TCGETS`/`TCSETS*`, `TIOCGWINSZ`/`TIOCSWINSZ`, `FIONREAD`,
//! `TCFLSH`, `TIOCGPGRP`/`TIOCSPGRP` (stored), `TIOCSCTTY`/`TIOCNOTTY`
//! (accepted: there is no controlling-terminal bookkeeping, so `/dev/tty`
//! still does not open), on the master `TIOCGPTN`, `TIOCSPTLCK`,
//! `TIOCGPTLCK` and `TIOCGPTPEER` (the syscall layer installs the fd).

pub mod ldisc;
#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use spin::Mutex;

use self::ldisc::{Input, TERMIOS_BYTES, Termios, output};
use super::device::CharDevice;
use super::file::open_flags::{O_NONBLOCK, O_RDWR};
use super::vfs::Vfs;
use super::{InodeType, Metadata};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::ipc::next_anon_ino;
use crate::{return_errno, return_errno_with_message};

/// The `ioctl` requests of terminals and pseudo-terminals.
pub mod request {
    /// Get the settings.
    pub const TCGETS: u32 = 0x5401;
    /// Set the settings now.
    pub const TCSETS: u32 = 0x5402;
    /// Set them once output drained.
    pub const TCSETSW: u32 = 0x5403;
    /// Set them after discarding input.
    pub const TCSETSF: u32 = 0x5404;
    /// Discard input, output or both.
    pub const TCFLSH: u32 = 0x540b;
    /// Become the controlling terminal.
    pub const TIOCSCTTY: u32 = 0x540e;
    /// The foreground process group.
    pub const TIOCGPGRP: u32 = 0x540f;
    /// Set the foreground process group.
    pub const TIOCSPGRP: u32 = 0x5410;
    /// The window size.
    pub const TIOCGWINSZ: u32 = 0x5413;
    /// Set the window size.
    pub const TIOCSWINSZ: u32 = 0x5414;
    /// Bytes to read.
    pub const FIONREAD: u32 = 0x541b;
    /// Give up the controlling terminal.
    pub const TIOCNOTTY: u32 = 0x5422;
    /// The slave's number.
    pub const TIOCGPTN: u32 = 0x8004_5430;
    /// Lock or unlock the slave.
    pub const TIOCSPTLCK: u32 = 0x4004_5431;
    /// Whether the slave is locked.
    pub const TIOCGPTLCK: u32 = 0x8004_5439;
    /// Open the slave as a new fd (flags in the argument).
    pub const TIOCGPTPEER: u32 = 0x5441;
}
use request::*;

/// Bytes the master may have waiting to read before a slave's write
/// blocks.
const OUTPUT_MAX: usize = 64 * 1024;

/// Numbers for new pairs (Linux reuses the lowest free one; these only
/// grow).
static NEXT_INDEX: AtomicU32 = AtomicU32::new(0);

/// One pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    index: u32,
    state: Mutex<State>,
    master_open: AtomicBool,
    slaves: AtomicUsize,
    locked: AtomicBool,
    slave_ino: u64,
}

#[derive(Debug, Default)]
struct State {
    termios: Termios,
    winsize: [u8; 8],
    input: Input,
    to_master: VecDeque<u8>,
    pgrp: i32,
}

impl Pty {
    fn new(index: u32) -> Self {
        Self {
            index,
            state: Mutex::new(State::default()),
            master_open: AtomicBool::new(true),
            slaves: AtomicUsize::new(0),
            locked: AtomicBool::new(true),
            slave_ino: next_anon_ino(),
        }
    }

    /// The slave's path.
    pub fn slave_path(&self) -> Vec<u8> {
        alloc::format!("/dev/pts/{}", self.index).into_bytes()
    }

    /// A new open slave (`EIO` while locked or once the master is gone).
    fn open_slave(self: &Arc<Self>, flags: u32) -> Result<Arc<dyn FileLike>> {
        if self.locked.load(Ordering::Acquire) {
            return_errno_with_message!(Errno::EIO, "the pseudo-terminal is locked");
        }
        if !self.master_open.load(Ordering::Acquire) {
            return_errno!(Errno::EIO);
        }
        self.slaves.fetch_add(1, Ordering::AcqRel);
        Ok(Arc::new(PtySide {
            pty: self.clone(),
            master: false,
            vfs: Weak::new(),
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: self.slave_ino,
        }))
    }

    /// The settings, window size, process group and queue requests both
    /// sides answer.
    fn common_ioctl(
        &self,
        master: bool,
        cmd: u32,
        arg: u64,
        read_arg: &dyn Fn(usize) -> Result<Vec<u8>>,
    ) -> Result<IoctlReply> {
        let reply = |out: Vec<u8>| Ok(IoctlReply { out, ret: 0 });
        let int = |v: i32| reply(v.to_le_bytes().to_vec());
        let mut s = self.state.lock();
        match cmd {
            TCGETS => reply(s.termios.0.to_vec()),
            TCSETS | TCSETSW | TCSETSF => {
                let bytes = read_arg(TERMIOS_BYTES)?;
                let new = Termios(bytes.try_into().map_err(|_| Errno::EFAULT)?);
                if cmd == TCSETSF {
                    s.input.discard();
                }
                if s.termios.canonical() && !new.canonical() {
                    s.input.flush_line();
                }
                s.termios = new;
                reply(Vec::new())
            }
            TIOCGWINSZ => reply(s.winsize.to_vec()),
            TIOCSWINSZ => {
                let bytes = read_arg(8)?;
                s.winsize.copy_from_slice(&bytes);
                reply(Vec::new())
            }
            FIONREAD => {
                let n = if master {
                    s.to_master.len()
                } else {
                    s.input.available()
                };
                int(i32::try_from(n).unwrap_or(i32::MAX))
            }
            TCFLSH => {
                // TCIFLUSH 0, TCOFLUSH 1, TCIOFLUSH 2, as seen from this side.
                let (input, output) = match arg {
                    0 => (true, false),
                    1 => (false, true),
                    2 => (true, true),
                    _ => return_errno!(Errno::EINVAL),
                };
                let (slave_input, master_input) = if master {
                    (output, input)
                } else {
                    (input, output)
                };
                if slave_input {
                    s.input.discard();
                }
                if master_input {
                    s.to_master.clear();
                }
                reply(Vec::new())
            }
            TIOCGPGRP => int(s.pgrp),
            TIOCSPGRP => {
                let bytes = read_arg(4)?;
                s.pgrp = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                reply(Vec::new())
            }
            TIOCSCTTY | TIOCNOTTY => reply(Vec::new()),
            _ => return_errno!(Errno::ENOTTY),
        }
    }
}

/// An open side of a pair: the master (from `/dev/ptmx`) or a slave.
#[derive(Debug)]
pub struct PtySide {
    pty: Arc<Pty>,
    master: bool,
    /// The file system holding the slave's node (the master removes it).
    vfs: Weak<Vfs>,
    flags: AtomicU32,
    ino: u64,
}

impl PtySide {
    /// A new slave of this master (`TIOCGPTPEER`); `EINVAL` on a slave.
    pub fn open_peer(&self, flags: u32) -> Result<Arc<dyn FileLike>> {
        if !self.master {
            return_errno!(Errno::EINVAL);
        }
        self.pty.open_slave(flags)
    }
}

impl Drop for PtySide {
    fn drop(&mut self) {
        if !self.master {
            self.pty.slaves.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.pty.master_open.store(false, Ordering::Release);
        if let Some(vfs) = self.vfs.upgrade() {
            let root = vfs.root().clone();
            let _ = vfs.unlink(&root, &self.pty.slave_path());
        }
    }
}

impl FileLike for PtySide {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.pty.state.lock();
        if self.master {
            if !s.to_master.is_empty() {
                let n = crate::ipc::pipe::copy_front(&s.to_master, buf);
                s.to_master.drain(..n);
                return Ok(n);
            }
            if self.pty.slaves.load(Ordering::Acquire) == 0 {
                return_errno_with_message!(Errno::EIO, "no slave is open");
            }
            return_errno!(Errno::EAGAIN);
        }
        let termios = s.termios;
        match s.input.read(&termios, buf) {
            Some(n) => Ok(n),
            None if !self.pty.master_open.load(Ordering::Acquire) => Ok(0),
            None => return_errno!(Errno::EAGAIN),
        }
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.pty.state.lock();
        let termios = s.termios;
        if self.master {
            let mut echo = Vec::new();
            let n = s.input.write(&termios, buf, &mut echo);
            output(&termios, &echo, &mut s.to_master);
            if n == 0 {
                return_errno!(Errno::EAGAIN);
            }
            return Ok(n);
        }
        if !self.pty.master_open.load(Ordering::Acquire) {
            return_errno_with_message!(Errno::EIO, "the master is closed");
        }
        let room = OUTPUT_MAX.saturating_sub(s.to_master.len());
        if room == 0 {
            return_errno!(Errno::EAGAIN);
        }
        // Output processing may double a byte: take what fits doubled.
        let n = buf.len().min(room / 2).max(1).min(buf.len());
        output(&termios, &buf[..n], &mut s.to_master);
        Ok(n)
    }

    fn metadata(&self) -> Result<Metadata> {
        let (rdev, mode) = if self.master {
            ((5, 2), 0o666)
        } else {
            ((136, self.pty.index), 0o620)
        };
        Ok(Metadata {
            rdev,
            ..Metadata::unnamed(self.ino, InodeType::CharDevice, mode)
        })
    }

    fn poll(&self) -> PollEvents {
        let s = self.pty.state.lock();
        let mut ev = PollEvents::empty();
        if self.master {
            if !s.to_master.is_empty() {
                ev |= PollEvents::IN | PollEvents::RDNORM;
            }
            if self.pty.slaves.load(Ordering::Acquire) == 0 {
                // A read gives EIO at once.
                ev |= PollEvents::IN | PollEvents::HUP;
            }
            if s.input.room() > 0 {
                ev |= PollEvents::OUT | PollEvents::WRNORM;
            }
        } else {
            if s.input.readable() {
                ev |= PollEvents::IN | PollEvents::RDNORM;
            }
            if !self.pty.master_open.load(Ordering::Acquire) {
                ev |= PollEvents::IN | PollEvents::HUP;
            } else if s.to_master.len() < OUTPUT_MAX {
                ev |= PollEvents::OUT | PollEvents::WRNORM;
            }
        }
        ev
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        self.ioctl_with(cmd, arg, &|_| return_errno!(Errno::EFAULT))
    }

    fn ioctl_with(
        &self,
        cmd: u32,
        arg: u64,
        read_arg: &dyn Fn(usize) -> Result<Vec<u8>>,
    ) -> Result<IoctlReply> {
        if self.master {
            let int = |v: u32| {
                Ok(IoctlReply {
                    out: v.to_le_bytes().to_vec(),
                    ret: 0,
                })
            };
            match cmd {
                TIOCGPTN => return int(self.pty.index),
                TIOCGPTLCK => return int(u32::from(self.pty.locked.load(Ordering::Acquire))),
                TIOCSPTLCK => {
                    let v = read_arg(4)?;
                    let lock = v.iter().any(|&b| b != 0);
                    self.pty.locked.store(lock, Ordering::Release);
                    return Ok(IoctlReply::default());
                }
                _ => {}
            }
        }
        self.pty.common_ioctl(self.master, cmd, arg, read_arg)
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        crate::net::socket::merge_nonblock(&self.flags, flags);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `/dev/ptmx` (5, 2): each open makes a new pair.
#[derive(Debug, Default)]
pub struct PtmxDevice;

impl CharDevice for PtmxDevice {
    fn rdev(&self) -> (u32, u32) {
        (5, 2)
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::EIO)
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::EIO)
    }
    fn is_tty(&self) -> bool {
        true
    }
    fn open_file(&self, vfs: &Arc<Vfs>, flags: u32) -> Option<Result<Arc<dyn FileLike>>> {
        Some(open_master(vfs, flags))
    }
}

/// A new pair: its master, and its slave's node in `/dev/pts`.
pub fn open_master(vfs: &Arc<Vfs>, flags: u32) -> Result<Arc<dyn FileLike>> {
    let pty = Arc::new(Pty::new(NEXT_INDEX.fetch_add(1, Ordering::Relaxed)));
    let node = Arc::new(SlaveDevice {
        pty: Arc::downgrade(&pty),
        index: pty.index,
    });
    let root = vfs.root().clone();
    vfs.mknod_device(&root, &pty.slave_path(), 0o620, node)?;
    Ok(Arc::new(PtySide {
        pty,
        master: true,
        vfs: Arc::downgrade(vfs),
        flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
        ino: next_anon_ino(),
    }))
}

/// `/dev/pts/<n>` (136, n): opens the slave of pair `n` while its master
/// is open and it is unlocked (`EIO` otherwise).
#[derive(Debug)]
struct SlaveDevice {
    pty: Weak<Pty>,
    index: u32,
}

impl CharDevice for SlaveDevice {
    fn rdev(&self) -> (u32, u32) {
        (136, self.index)
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::EIO)
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::EIO)
    }
    fn is_tty(&self) -> bool {
        true
    }
    fn open_file(&self, _vfs: &Arc<Vfs>, flags: u32) -> Option<Result<Arc<dyn FileLike>>> {
        Some(match self.pty.upgrade() {
            Some(pty) => pty.open_slave(flags),
            None => Err(Errno::EIO.into()),
        })
    }
}
