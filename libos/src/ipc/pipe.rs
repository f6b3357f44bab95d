//! Pipes: a bounded byte queue with a read end and a write end.
//!
//! Reading an empty pipe gives end of file once every write end is
//! closed, `EAGAIN` otherwise; writing with no read end gives `EPIPE` (the
//! kernel also raises `SIGPIPE`). Writes of at most [`PIPE_BUF`] bytes are
//! atomic: all or `EAGAIN`. `FIONREAD` reports the bytes queued.
//!
//! A FIFO (`mkfifo`) is a [`Pipe`] kept in its inode; every `open` of it
//! makes a new end ([`open_fifo`], with Linux's rules for waiting for the
//! other side), and an end opened `O_RDWR` reads and writes.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::events::{EventCounts, wants_input, wants_output};
use super::next_anon_ino;
use crate::error::{Errno, Result};
use crate::fasync::AsyncOwner;
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::file::open_flags::{O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};
use crate::fs::{InodeRef, InodeType, Metadata};
use crate::platform::Blocker;
use crate::return_errno;

/// `FIONREAD`: bytes waiting to be read.
const FIONREAD: u32 = 0x541b;

/// Bytes a pipe holds (Linux's default, 16 pages).
pub const PIPE_CAPACITY: usize = 65536;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

/// The queue both ends share; a FIFO's inode holds one too.
#[derive(Debug)]
pub struct Pipe {
    bytes: Mutex<VecDeque<u8>>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    /// Opens for reading and for writing so far: a FIFO opener waiting
    /// for the other side stops when one came, even if it left again.
    reader_opens: AtomicUsize,
    writer_opens: AtomicUsize,
    ino: u64,
    /// When the bytes went from none to some ([`super::ready_seq`]).
    filled_at: AtomicU64,
    /// Bytes it holds ([`PIPE_CAPACITY`] until `F_SETPIPE_SZ`).
    capacity: AtomicUsize,
    /// Who gets `SIGIO` when bytes arrive (the read side's `O_ASYNC`).
    reader_async: Arc<AsyncOwner>,
    /// Events for edge-triggered `epoll`: every write (for readers), a
    /// read that makes room in a pipe too full to write (for writers),
    /// an end closing (both), as Linux wakes them.
    events: EventCounts,
}

impl Pipe {
    /// An empty pipe with no ends, numbered `ino`.
    pub fn new(ino: u64) -> Arc<Self> {
        Arc::new(Self {
            bytes: Mutex::new(VecDeque::new()),
            readers: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            reader_opens: AtomicUsize::new(0),
            writer_opens: AtomicUsize::new(0),
            ino,
            filled_at: AtomicU64::new(0),
            capacity: AtomicUsize::new(PIPE_CAPACITY),
            reader_async: AsyncOwner::new(),
            events: EventCounts::new(),
        })
    }

    fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// A new end that reads and/or writes; the counts go up.
    fn end(
        self: &Arc<Self>,
        reads: bool,
        writes: bool,
        flags: u32,
        inode: Option<InodeRef>,
    ) -> Arc<PipeEnd> {
        if reads {
            self.readers.fetch_add(1, Ordering::AcqRel);
            self.reader_opens.fetch_add(1, Ordering::AcqRel);
        }
        if writes {
            self.writers.fetch_add(1, Ordering::AcqRel);
            self.writer_opens.fetch_add(1, Ordering::AcqRel);
        }
        Arc::new(PipeEnd {
            pipe: self.clone(),
            reads,
            writes,
            flags: AtomicU32::new(flags),
            inode,
        })
    }
}

/// One end of a pipe. Dropping the last reference to an end (closing the
/// last fd sharing it) closes it.
#[derive(Debug)]
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    reads: bool,
    writes: bool,
    flags: AtomicU32,
    /// The FIFO this end was opened from (`fstat` reports it).
    inode: Option<InodeRef>,
}

/// Copies the first bytes of `q` into `buf` (as many as both have) with
/// two slice copies, not byte by byte; returns the count.
pub(crate) fn copy_front(q: &VecDeque<u8>, buf: &mut [u8]) -> usize {
    let n = q.len().min(buf.len());
    let (head, tail) = q.as_slices();
    let first = head.len().min(n);
    buf[..first].copy_from_slice(&head[..first]);
    buf[first..n].copy_from_slice(&tail[..n - first]);
    n
}

/// The largest size `F_SETPIPE_SZ` sets (Linux's default
/// `/proc/sys/fs/pipe-max-size`, here for every process).
pub const PIPE_MAX_SIZE: usize = 1 << 20;

impl PipeEnd {
    /// `read` that leaves the bytes in the pipe (`MSG_PEEK` on a Unix
    /// stream): end of file, `EAGAIN` and `EBADF` as `read`.
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.reads {
            return_errno!(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let q = self.pipe.bytes.lock();
        if q.is_empty() {
            if self.pipe.writers.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
            return_errno!(Errno::EAGAIN);
        }
        Ok(copy_front(&q, buf))
    }

    /// `F_GETPIPE_SZ`: the bytes the pipe holds.
    pub fn capacity(&self) -> usize {
        self.pipe.capacity()
    }

    /// Bytes a write could add now (`splice` between pipes reads no more
    /// than this, so nothing it takes is lost).
    pub fn free_space(&self) -> usize {
        self.pipe
            .capacity()
            .saturating_sub(self.pipe.bytes.lock().len())
    }

    /// `F_SETPIPE_SZ`: sets the capacity to `size` rounded up to a power
    /// of two of pages (at least one page) and returns it; `EINVAL` past
    /// 2 GiB, `EPERM` past [`PIPE_MAX_SIZE`], `EBUSY` if fewer bytes than
    /// are queued.
    pub fn set_capacity(&self, size: u64) -> Result<usize> {
        const PAGE: u64 = 4096;
        if size > 1 << 31 {
            return_errno!(Errno::EINVAL);
        }
        let pages = size.div_ceil(PAGE).max(1).next_power_of_two();
        let bytes = usize::try_from(pages * PAGE).map_err(|_| Errno::EINVAL)?;
        if bytes > PIPE_MAX_SIZE {
            return_errno!(Errno::EPERM);
        }
        let q = self.pipe.bytes.lock();
        if q.len() > bytes {
            return_errno!(Errno::EBUSY);
        }
        self.pipe.capacity.store(bytes, Ordering::Relaxed);
        drop(q);
        // Linux wakes writers after a resize.
        self.pipe.events.output();
        Ok(bytes)
    }
}

/// A new pipe: `(read end, write end)`, with `O_NONBLOCK` if set in `flags`.
pub fn new_pipe(flags: u32) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Pipe::new(next_anon_ino());
    let nonblock = flags & O_NONBLOCK;
    (
        pipe.end(true, false, O_RDONLY | nonblock, None),
        pipe.end(false, true, O_WRONLY | nonblock, None),
    )
}

/// Opens the FIFO `inode` whose queue is `pipe`, with `open` flags
/// `flags`, as Linux does: a reader waits until a writer has opened it,
/// a writer until a reader has (`O_NONBLOCK`: a reader does not wait, a
/// writer fails with `ENXIO` when there is no reader), `O_RDWR` never
/// waits. A signal ends a wait with `EINTR`. The queue starts empty when
/// nobody has the FIFO open.
pub fn open_fifo(
    pipe: &Arc<Pipe>,
    inode: InodeRef,
    flags: u32,
    blocker: &dyn Blocker,
) -> Result<Arc<PipeEnd>> {
    let (reads, writes) = match flags & O_ACCMODE {
        O_RDONLY => (true, false),
        O_WRONLY => (false, true),
        O_RDWR => (true, true),
        _ => return_errno!(Errno::EINVAL),
    };
    let nonblock = flags & O_NONBLOCK != 0;
    if writes && !reads && nonblock && pipe.readers.load(Ordering::Acquire) == 0 {
        return_errno!(Errno::ENXIO);
    }
    {
        let mut q = pipe.bytes.lock();
        if pipe.readers.load(Ordering::Acquire) == 0 && pipe.writers.load(Ordering::Acquire) == 0 {
            q.clear();
        }
    }
    let kept = flags & (O_ACCMODE | O_NONBLOCK);
    // Whom this opener waits for, and how many of them have opened so far.
    let (peers, peer_opens) = if writes {
        (&pipe.readers, &pipe.reader_opens)
    } else {
        (&pipe.writers, &pipe.writer_opens)
    };
    let seen = peer_opens.load(Ordering::Acquire);
    let end = pipe.end(reads, writes, kept, Some(inode));
    if (reads && (writes || nonblock)) || peers.load(Ordering::Acquire) > 0 {
        return Ok(end);
    }
    blocker.block_until(
        &mut || peers.load(Ordering::Acquire) > 0 || peer_opens.load(Ordering::Acquire) != seen,
        None,
    )?;
    Ok(end)
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        if self.reads {
            self.pipe.readers.fetch_sub(1, Ordering::AcqRel);
        }
        if self.writes {
            self.pipe.writers.fetch_sub(1, Ordering::AcqRel);
        }
        // Linux wakes both sides when an end is released.
        self.pipe.events.all();
    }
}

impl PipeEnd {
    /// `read`'s checks and its end: takes up to `len` bytes from the
    /// front with `take` (given the two slices that hold them; it returns
    /// how many it took, or an error if it took none), then drains them.
    fn read_with(
        &self,
        len: usize,
        take: impl FnOnce(&[u8], &[u8]) -> Result<usize>,
    ) -> Result<usize> {
        if !self.reads {
            return_errno!(Errno::EBADF);
        }
        if len == 0 {
            return Ok(0);
        }
        let mut q = self.pipe.bytes.lock();
        if q.is_empty() {
            if self.pipe.writers.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
            return_errno!(Errno::EAGAIN);
        }
        let n = q.len().min(len);
        let (head, tail) = q.as_slices();
        let first = head.len().min(n);
        let n = take(&head[..first], &tail[..n - first])?;
        let was_full = self.pipe.capacity().saturating_sub(q.len()) < PIPE_BUF;
        q.drain(..n);
        drop(q);
        if was_full {
            // Room for a writer that could not write (Linux wakes writers
            // when a read empties a slot of a full pipe).
            self.pipe.events.output();
        }
        Ok(n)
    }

    /// `write`'s checks and its end: makes room for up to `len` bytes at
    /// the back and lets `fill` write them into the two slices that hold
    /// them (it returns how many it wrote, or an error if none); the rest
    /// is given back.
    fn write_with(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> Result<usize>,
    ) -> Result<usize> {
        if !self.writes {
            return_errno!(Errno::EBADF);
        }
        if self.pipe.readers.load(Ordering::Acquire) == 0 {
            return_errno!(Errno::EPIPE);
        }
        if len == 0 {
            return Ok(0);
        }
        let mut q = self.pipe.bytes.lock();
        let space = self.pipe.capacity().saturating_sub(q.len());
        if space == 0 || (len <= PIPE_BUF && space < len) {
            return_errno!(Errno::EAGAIN);
        }
        let n = space.min(len);
        // The queue grows with what the program writes, up to the pipe's
        // capacity; memory for it may be lacking.
        q.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
        let was_empty = q.is_empty();
        let old = q.len();
        q.resize(old + n, 0);
        let (head, tail) = q.as_mut_slices();
        // The new bytes are the last `n`: the end of `head` and/or `tail`.
        let in_tail = tail.len().min(n);
        let in_head = n - in_tail;
        let (head_len, tail_len) = (head.len(), tail.len());
        let written = fill(
            &mut head[head_len - in_head..],
            &mut tail[tail_len - in_tail..],
        );
        let written = match written {
            Ok(w) => w.min(n),
            Err(e) => {
                q.truncate(old);
                return Err(e);
            }
        };
        q.truncate(old + written);
        if was_empty {
            self.pipe
                .filled_at
                .store(super::ready_seq(), Ordering::Relaxed);
        }
        drop(q);
        // Linux wakes epoll waiters on every write, not only into an
        // empty pipe.
        self.pipe.events.input();
        self.pipe.reader_async.notify();
        Ok(written)
    }
}

/// Copies `a` then `b` to user memory at `addr`: both, or what came
/// before a fault (`EFAULT` if nothing did).
fn to_user(mem: &dyn crate::user::UserMemory, addr: u64, a: &[u8], b: &[u8]) -> Result<usize> {
    mem.write_user(addr, a)?;
    if !b.is_empty() && mem.write_user(addr + a.len() as u64, b).is_err() {
        return Ok(a.len());
    }
    Ok(a.len() + b.len())
}

/// Copies user memory at `addr` into `a` then `b`, likewise.
fn from_user(
    mem: &dyn crate::user::UserMemory,
    addr: u64,
    a: &mut [u8],
    b: &mut [u8],
) -> Result<usize> {
    mem.read_user(addr, a)?;
    if !b.is_empty() && mem.read_user(addr + a.len() as u64, b).is_err() {
        return Ok(a.len());
    }
    Ok(a.len() + b.len())
}

impl FileLike for PipeEnd {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.read_with(buf.len(), |a, b| {
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
            Ok(a.len() + b.len())
        })
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.write_with(buf.len(), |a, b| {
            a.copy_from_slice(&buf[..a.len()]);
            b.copy_from_slice(&buf[a.len()..a.len() + b.len()]);
            Ok(a.len() + b.len())
        })
    }

    fn copies_user(&self) -> bool {
        true
    }

    fn read_user(&self, mem: &dyn crate::user::UserMemory, addr: u64, len: usize) -> Result<usize> {
        self.read_with(len, |a, b| to_user(mem, addr, a, b))
    }

    fn write_user(
        &self,
        mem: &dyn crate::user::UserMemory,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        self.write_with(len, |a, b| from_user(mem, addr, a, b))
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(match &self.inode {
            Some(inode) => inode.metadata(),
            None => Metadata::unnamed(self.pipe.ino, InodeType::Fifo, 0o600),
        })
    }

    fn inode(&self) -> Option<&InodeRef> {
        self.inode.as_ref()
    }

    fn ioctl(&self, cmd: u32, _arg: u64) -> Result<IoctlReply> {
        if cmd != FIONREAD {
            return_errno!(Errno::ENOTTY);
        }
        let queued = self.pipe.bytes.lock().len() as i32;
        Ok(IoctlReply {
            out: queued.to_le_bytes().to_vec(),
            ret: 0,
        })
    }

    fn poll(&self) -> PollEvents {
        let len = self.pipe.bytes.lock().len();
        let mut ev = PollEvents::empty();
        if self.reads {
            if len > 0 {
                ev |= PollEvents::IN | PollEvents::RDNORM;
            }
            if self.pipe.writers.load(Ordering::Acquire) == 0 {
                ev |= PollEvents::HUP;
            }
        }
        if self.writes {
            if self.pipe.capacity().saturating_sub(len) >= PIPE_BUF {
                ev |= PollEvents::OUT | PollEvents::WRNORM;
            }
            if self.pipe.readers.load(Ordering::Acquire) == 0 {
                ev |= PollEvents::ERR;
            }
        }
        ev
    }

    fn ready_stamp(&self) -> u64 {
        if self.reads {
            self.pipe.filled_at.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        let events = &self.pipe.events;
        let input = if self.reads && wants_input(interest) {
            events.input_count()
        } else {
            0
        };
        let output = if self.writes && wants_output(interest) {
            events.output_count()
        } else {
            0
        };
        Some(input.wrapping_add(output))
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

    fn fasync(&self) -> Option<Arc<AsyncOwner>> {
        self.reader_async()
    }
}

impl PipeEnd {
    /// The read side's `SIGIO` owner (`None` for a write-only end).
    pub fn reader_async(&self) -> Option<Arc<AsyncOwner>> {
        self.reads.then(|| self.pipe.reader_async.clone())
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
    fn the_capacity_changes_as_f_setpipe_sz_asks() {
        let (r, w) = new_pipe(O_NONBLOCK);
        assert_eq!(w.capacity(), PIPE_CAPACITY);
        assert_eq!(w.set_capacity(PIPE_CAPACITY as u64 / 2).unwrap(), 32768);
        assert_eq!(r.capacity(), 32768, "both ends see it");
        assert_eq!(w.write(&[1u8; 40000]).unwrap(), 32768);
        assert_eq!(w.set_capacity(5000).unwrap_err().errno(), Errno::EBUSY);
        assert_eq!(w.set_capacity(40000).unwrap(), 65536, "pages, power of two");
        assert_eq!(w.set_capacity(0).unwrap_err().errno(), Errno::EBUSY);
        let mut buf = vec![0u8; 40000];
        r.read(&mut buf).unwrap();
        assert_eq!(w.set_capacity(0).unwrap(), 4096);
        assert_eq!(w.set_capacity(1 << 21).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(
            w.set_capacity((1 << 31) + 1).unwrap_err().errno(),
            Errno::EINVAL
        );
        assert_eq!(w.write(&[1u8; 5000]).unwrap(), 4096);
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
