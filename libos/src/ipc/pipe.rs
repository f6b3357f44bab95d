//! Pipes: a bounded byte queue with a read end and a write end.
//!
//! Reading an empty pipe gives end of file once every write end is
//! closed, `EAGAIN` otherwise; writing with no read end gives `EPIPE` (the
//! kernel also raises `SIGPIPE`). Writes of at most [`PIPE_BUF`] bytes are
//! atomic: all or `EAGAIN`.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::next_anon_ino;
use crate::error::{Errno, Result};
use crate::fd::{FileLike, PollEvents};
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDONLY, O_WRONLY};
use crate::fs::{InodeType, Metadata};
use crate::return_errno;

/// Bytes a pipe holds (Linux's default, 16 pages).
pub const PIPE_CAPACITY: usize = 65536;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

#[derive(Debug)]
struct Pipe {
    bytes: Mutex<VecDeque<u8>>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    ino: u64,
    /// When the bytes went from none to some ([`super::ready_seq`]).
    filled_at: AtomicU64,
}

/// One end of a pipe. Dropping the last reference to an end (closing the
/// last fd sharing it) closes it.
#[derive(Debug)]
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    is_read_end: bool,
    flags: AtomicU32,
}

/// A new pipe: `(read end, write end)`, with `O_NONBLOCK` if set in `flags`.
pub fn new_pipe(flags: u32) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Arc::new(Pipe {
        bytes: Mutex::new(VecDeque::new()),
        readers: AtomicUsize::new(1),
        writers: AtomicUsize::new(1),
        ino: next_anon_ino(),
        filled_at: AtomicU64::new(0),
    });
    let nonblock = flags & O_NONBLOCK;
    let end = |is_read_end: bool, access: u32| {
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            is_read_end,
            flags: AtomicU32::new(access | nonblock),
        })
    };
    (end(true, O_RDONLY), end(false, O_WRONLY))
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let count = if self.is_read_end {
            &self.pipe.readers
        } else {
            &self.pipe.writers
        };
        count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl FileLike for PipeEnd {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.is_read_end {
            return_errno!(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut q = self.pipe.bytes.lock();
        if q.is_empty() {
            if self.pipe.writers.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
            return_errno!(Errno::EAGAIN);
        }
        let n = q.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(q.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        if self.is_read_end {
            return_errno!(Errno::EBADF);
        }
        if self.pipe.readers.load(Ordering::Acquire) == 0 {
            return_errno!(Errno::EPIPE);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut q = self.pipe.bytes.lock();
        let space = PIPE_CAPACITY - q.len();
        if space == 0 || (buf.len() <= PIPE_BUF && space < buf.len()) {
            return_errno!(Errno::EAGAIN);
        }
        let n = space.min(buf.len());
        // The queue grows with what the program writes, up to the pipe's
        // capacity; memory for it may be lacking.
        q.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
        if q.is_empty() {
            self.pipe
                .filled_at
                .store(super::ready_seq(), Ordering::Relaxed);
        }
        q.extend(&buf[..n]);
        Ok(n)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(Metadata::unnamed(self.pipe.ino, InodeType::Fifo, 0o600))
    }

    fn poll(&self) -> PollEvents {
        let len = self.pipe.bytes.lock().len();
        let mut ev = PollEvents::empty();
        if self.is_read_end {
            if len > 0 {
                ev |= PollEvents::IN | PollEvents::RDNORM;
            }
            if self.pipe.writers.load(Ordering::Acquire) == 0 {
                ev |= PollEvents::HUP;
            }
        } else {
            if PIPE_CAPACITY - len >= PIPE_BUF {
                ev |= PollEvents::OUT | PollEvents::WRNORM;
            }
            if self.pipe.readers.load(Ordering::Acquire) == 0 {
                ev |= PollEvents::ERR;
            }
        }
        ev
    }

    fn ready_stamp(&self) -> u64 {
        if self.is_read_end {
            self.pipe.filled_at.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        let old = self.flags.load(Ordering::Relaxed);
        self.flags.store(
            (old & !O_NONBLOCK) | (flags & O_NONBLOCK),
            Ordering::Relaxed,
        );
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn data_eof_and_epipe() {
        let (r, w) = new_pipe(0);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap_err().errno(), Errno::EAGAIN);
        assert_eq!(r.poll(), PollEvents::empty());
        assert!(w.poll().contains(PollEvents::OUT));
        assert_eq!(w.write(b"hello").unwrap(), 5);
        assert!(r.poll().contains(PollEvents::IN));
        assert_eq!(r.read(&mut buf[..3]).unwrap(), 3);
        assert_eq!(&buf[..3], b"hel");
        assert_eq!(w.read(&mut buf).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(r.write(b"x").unwrap_err().errno(), Errno::EBADF);
        drop(w);
        assert!(r.poll().contains(PollEvents::HUP | PollEvents::IN));
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert_eq!(r.read(&mut buf).unwrap(), 0, "end of file");
        let (r, w) = new_pipe(0);
        drop(r);
        assert_eq!(w.write(b"x").unwrap_err().errno(), Errno::EPIPE);
        assert!(w.poll().contains(PollEvents::ERR));
    }

    #[test]
    fn capacity_and_atomic_writes() {
        let (r, w) = new_pipe(O_NONBLOCK);
        assert_eq!(w.status_flags(), O_WRONLY | O_NONBLOCK);
        let big = vec![7u8; PIPE_CAPACITY + 100];
        assert_eq!(w.write(&big).unwrap(), PIPE_CAPACITY);
        assert!(!w.poll().contains(PollEvents::OUT));
        assert_eq!(w.write(b"x").unwrap_err().errno(), Errno::EAGAIN);
        let mut buf = vec![0u8; 100];
        assert_eq!(r.read(&mut buf).unwrap(), 100);
        // 100 bytes free: a 200-byte write (≤ PIPE_BUF) is all or nothing.
        assert_eq!(w.write(&[1; 200]).unwrap_err().errno(), Errno::EAGAIN);
        assert_eq!(w.write(&[1; 100]).unwrap(), 100);
        assert_eq!(r.metadata().unwrap().mode, 0o010600);
    }
}
