//! [`BouncePool`]: the buffers system calls copy through between user
//! memory and a file, socket or pipe, kept for reuse.
//!
//! A `read(fd, buf, 16384)` used to allocate and zero a fresh buffer of
//! the requested size on every call (Redis reads with 16 KiB buffers; the
//! zeroing alone is thousands of stores). The pool hands out buffers of
//! [`CHUNK_BYTES`] zeroed once, when first made, and takes them back when
//! the copy is done. A buffer may hold bytes of an earlier copy of the same
//! process: callers only ever copy out the part a read just filled.

use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

use spin::Mutex;

use crate::error::Result;
use crate::fallible::zeroed;

/// The size of a pooled buffer: the largest piece one copy moves.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How many idle buffers a pool keeps (1 MiB: one per thread copying at
/// once is enough for most programs; more are made, and dropped, on
/// demand).
const KEEP: usize = 4;

/// Idle bounce buffers of one process.
#[derive(Debug, Default)]
pub struct BouncePool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl BouncePool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer for copying `len` bytes: `len.min(CHUNK_BYTES)` long.
    /// `ENOMEM` if the pool is empty and no buffer can be made.
    pub fn take(&self, len: usize) -> Result<Bounce<'_>> {
        let buf = match self.idle.lock().pop() {
            Some(buf) => buf,
            None => zeroed(CHUNK_BYTES)?,
        };
        Ok(Bounce {
            buf,
            len: len.min(CHUNK_BYTES),
            pool: self,
        })
    }

    /// Frees the idle buffers (a process that has exited copies nothing
    /// more; its state may live on as a zombie).
    pub fn clear(&self) {
        let idle = core::mem::take(&mut *self.idle.lock());
        drop(idle);
    }

    /// Idle buffers held now.
    pub fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}

/// A buffer lent by a [`BouncePool`]; it goes back when dropped.
#[derive(Debug)]
pub struct Bounce<'a> {
    buf: Vec<u8>,
    len: usize,
    pool: &'a BouncePool,
}

impl Bounce<'_> {
    /// Shortens the usable part to `len` bytes (no effect if longer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl Deref for Bounce<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Bounce<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Bounce<'_> {
    fn drop(&mut self) {
        let mut idle = self.pool.idle.lock();
        if idle.len() < KEEP {
            idle.push(core::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_sized_to_the_copy_and_reused() {
        let pool = BouncePool::new();
        {
            let mut b = pool.take(10).unwrap();
            assert_eq!(b.len(), 10);
            b.copy_from_slice(b"0123456789");
            b.truncate(4);
            assert_eq!(&*b, b"0123");
            b.truncate(8);
            assert_eq!(b.len(), 4, "truncate never lengthens");
        }
        assert_eq!(pool.idle(), 1, "returned");
        let big = pool.take(1 << 30).unwrap();
        assert_eq!(big.len(), CHUNK_BYTES);
        assert_eq!(pool.idle(), 0, "the idle one was lent again");
    }

    #[test]
    fn the_pool_keeps_a_few_and_drops_the_rest() {
        let pool = BouncePool::new();
        let lent: Vec<_> = (0..KEEP + 3).map(|_| pool.take(1).unwrap()).collect();
        drop(lent);
        assert_eq!(pool.idle(), KEEP);
        pool.clear();
        assert_eq!(pool.idle(), 0, "freed at exit");
        assert_eq!(pool.take(5).unwrap().len(), 5, "and made again on demand");
    }
}
