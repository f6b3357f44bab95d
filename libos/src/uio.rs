//! Where a transfer's bytes go to ([`Sink`]) or come from ([`Source`]):
//! a kernel slice, user memory (one buffer or an `iovec` list), or a
//! file's pages.
//!
//! A socket's receive and send take a sink or a source and copy between
//! them and its own buffers (smoltcp's rings) in one step, so `read`,
//! `recvfrom`, `write`, `sendto` and their vectored forms never go through
//! a kernel bounce buffer, and `sendfile` copies a file's pages straight
//! into a socket's send buffer. Like Linux's `iov_iter`, a copy to or from
//! user memory stops at the first page that faults and says how far it
//! got: the caller takes out of its buffer exactly what was copied (a
//! stream keeps the rest queued) and reports `EFAULT` only if nothing was.

use crate::elf::PAGE_SIZE;
use crate::error::Result;
use crate::user::{UserMemory, UserSliceRead, UserSliceWrite};

/// Where received bytes go.
pub trait Sink {
    /// Bytes it can still take (0 once full or after a fault).
    fn room(&self) -> usize;
    /// Copies up to [`Sink::room`] bytes from the front of `data`;
    /// returns how many it took (fewer than offered only when full or
    /// at a fault).
    fn put(&mut self, data: &[u8]) -> usize;
    /// Whether a copy stopped at a fault.
    fn faulted(&self) -> bool {
        false
    }
}

/// Where bytes to send come from.
pub trait Source {
    /// Bytes it still holds (0 once drained or after a fault).
    fn left(&self) -> usize;
    /// Fills the front of `buf` with up to [`Source::left`] bytes;
    /// returns how many (fewer than asked only when drained or at a
    /// fault).
    fn take(&mut self, buf: &mut [u8]) -> usize;
    /// Whether a copy stopped at a fault.
    fn faulted(&self) -> bool {
        false
    }
    /// Makes sure every byte it holds can be read (user memory: each
    /// page is touched, and lazy pages come in), for a datagram that must
    /// not be queued half filled: `EFAULT` if one cannot.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// A kernel buffer to receive into.
#[derive(Debug)]
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> SliceSink<'a> {
    /// Receives into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, at: 0 }
    }
}

impl Sink for SliceSink<'_> {
    fn room(&self) -> usize {
        self.buf.len() - self.at
    }

    fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        self.buf[self.at..self.at + n].copy_from_slice(&data[..n]);
        self.at += n;
        n
    }
}

/// A kernel buffer to send from.
#[derive(Debug)]
pub struct SliceSource<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> SliceSource<'a> {
    /// Sends `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }
}

impl Source for SliceSource<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.left());
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        n
    }
}

/// Bytes of the page-sized pieces of `addr .. addr + len` that `copy`
/// handled before the first that failed.
fn by_page(addr: u64, len: usize, mut copy: impl FnMut(u64, usize, usize) -> bool) -> usize {
    let mut done = 0usize;
    while done < len {
        let at = addr + done as u64;
        let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
        if !copy(at, done, n) {
            break;
        }
        done += n;
    }
    done
}

/// Copies `data` to user memory at `addr` as far as it is mapped
/// writable: the whole in one call, or (after a fault) page by page up
/// to the first page that faults. Returns the bytes copied.
pub fn write_user_partial(mem: &dyn UserMemory, addr: u64, data: &[u8]) -> usize {
    if mem.write_user(addr, data).is_ok() {
        return data.len();
    }
    by_page(addr, data.len(), |at, i, n| {
        mem.write_user(at, &data[i..i + n]).is_ok()
    })
}

/// Copies user memory at `addr` into `buf` as far as it is mapped
/// readable, likewise. Returns the bytes copied.
pub fn read_user_partial(mem: &dyn UserMemory, addr: u64, buf: &mut [u8]) -> usize {
    let len = buf.len();
    if mem.read_user(addr, buf).is_ok() {
        return len;
    }
    by_page(addr, len, |at, i, n| {
        mem.read_user(at, &mut buf[i..i + n]).is_ok()
    })
}

/// A cursor over user buffers (`(address, length)` pieces, checked to lie
/// in user space when made).
#[derive(Debug)]
struct Cursor<'a> {
    pieces: &'a [(u64, usize)],
    /// The piece being copied and the offset in it.
    piece: usize,
    offset: usize,
    total: usize,
    left: usize,
    faulted: bool,
}

impl<'a> Cursor<'a> {
    fn new(pieces: &'a [(u64, usize)]) -> Self {
        let left = pieces
            .iter()
            .fold(0usize, |t, &(_, len)| t.saturating_add(len));
        Self {
            pieces,
            piece: 0,
            offset: 0,
            total: left,
            left,
            faulted: false,
        }
    }

    fn left(&self) -> usize {
        if self.faulted { 0 } else { self.left }
    }

    /// Runs `copy(address, index, count)` over the next pieces for up to
    /// `len` bytes; `copy` returns the bytes it copied (fewer: a fault).
    fn advance(&mut self, len: usize, mut copy: impl FnMut(u64, usize, usize) -> usize) -> usize {
        let mut done = 0;
        while done < len && !self.faulted {
            let Some(&(base, piece_len)) = self.pieces.get(self.piece) else {
                break;
            };
            let n = (piece_len - self.offset).min(len - done);
            let got = copy(base + self.offset as u64, done, n);
            done += got;
            self.left -= got;
            self.offset += got;
            if got < n {
                self.faulted = true;
            }
            if self.offset == piece_len {
                self.piece += 1;
                self.offset = 0;
            }
        }
        done
    }
}

/// User memory to receive into: `read`'s buffer or `readv`'s and
/// `recvmsg`'s `iovec`s, filled in order.
pub struct UserSink<'a> {
    mem: &'a dyn UserMemory,
    cursor: Cursor<'a>,
}

impl core::fmt::Debug for UserSink<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UserSink")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<'a> UserSink<'a> {
    /// The user buffers `pieces` (`EFAULT` if one does not lie in user
    /// space, before anything is received).
    pub fn new(mem: &'a dyn UserMemory, pieces: &'a [(u64, usize)]) -> Result<Self> {
        for &(addr, len) in pieces {
            UserSliceWrite::new(addr, len)?;
        }
        Ok(Self {
            mem,
            cursor: Cursor::new(pieces),
        })
    }

    /// Bytes copied so far.
    pub fn written(&self) -> usize {
        self.cursor.total - self.cursor.left
    }
}

impl Sink for UserSink<'_> {
    fn room(&self) -> usize {
        self.cursor.left()
    }

    fn put(&mut self, data: &[u8]) -> usize {
        let mem = self.mem;
        self.cursor.advance(data.len(), |addr, i, n| {
            write_user_partial(mem, addr, &data[i..i + n])
        })
    }

    fn faulted(&self) -> bool {
        self.cursor.faulted
    }
}

/// User memory to send from: `write`'s buffer or `writev`'s and
/// `sendmsg`'s `iovec`s, read in order.
pub struct UserSource<'a> {
    mem: &'a dyn UserMemory,
    cursor: Cursor<'a>,
}

impl core::fmt::Debug for UserSource<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UserSource")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<'a> UserSource<'a> {
    /// The user buffers `pieces` (`EFAULT` if one does not lie in user
    /// space, before anything is sent).
    pub fn new(mem: &'a dyn UserMemory, pieces: &'a [(u64, usize)]) -> Result<Self> {
        for &(addr, len) in pieces {
            UserSliceRead::new(addr, len)?;
        }
        Ok(Self {
            mem,
            cursor: Cursor::new(pieces),
        })
    }
}

impl Source for UserSource<'_> {
    fn left(&self) -> usize {
        self.cursor.left()
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let mem = self.mem;
        let len = buf.len();
        self.cursor.advance(len, |addr, i, n| {
            read_user_partial(mem, addr, &mut buf[i..i + n])
        })
    }

    fn faulted(&self) -> bool {
        self.cursor.faulted
    }

    fn check(&self) -> Result<()> {
        let mut byte = [0u8; 1];
        let mut offset = self.cursor.offset;
        for &(base, len) in self.cursor.pieces.iter().skip(self.cursor.piece) {
            let (start, end) = (base + offset as u64, base + len as u64);
            let mut at = start;
            while at < end {
                self.mem.read_user(at, &mut byte)?;
                at = (at | (PAGE_SIZE - 1)) + 1;
            }
            offset = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
