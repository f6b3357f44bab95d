//! Fallible allocation for sizes a program controls.
//!
//! The kernel heap shares its frames with user memory, and an infallible
//! allocation it cannot serve ends the kernel (`handle_alloc_error`
//! panics). So the LibOS follows one rule:
//!
//! - **An allocation whose size a program chooses** — a length or count
//!   from a syscall argument or from user memory, the size of a file, of a
//!   directory, of a queue the program fills — **is fallible**: it goes
//!   through [`TryVec`], [`zeroed`] or [`with_capacity`] (or a
//!   `try_reserve` of its own) and a failure becomes an errno — `ENOMEM`
//!   unless the call has its own (`ENOBUFS` for socket buffers, `ENOSPC`
//!   for the file system, whose pages also count against its limit).
//! - **Fixed-size bookkeeping smaller than a page** (an inode, a directory
//!   entry of at most `NAME_MAX` bytes, an open file, a map node) may be
//!   infallible: the kernel keeps a reserve for it, and its count is
//!   bounded by a limit — inodes by the file system's `nr_inodes`, files
//!   by `RLIMIT_NOFILE` and so on.
//!
//! The host tests below check the helpers' failure paths (sizes no heap
//! can serve give `ENOMEM`); there is no test yet that runs syscalls under
//! an allocator that refuses, so the rule is kept by review.

use alloc::vec::Vec;

use crate::error::{Errno, Result};

/// `try_reserve`-style growth of a `Vec`, failing with `ENOMEM`.
pub trait TryVec<T> {
    /// Reserves room for `extra` more elements.
    fn try_room(&mut self, extra: usize) -> Result<()>;
    /// Appends `value`.
    fn try_push(&mut self, value: T) -> Result<()>;
    /// Appends a copy of `items`.
    fn try_extend_from_slice(&mut self, items: &[T]) -> Result<()>
    where
        T: Clone;
    /// Resizes to `len`, filling with `value`.
    fn try_resize(&mut self, len: usize, value: T) -> Result<()>
    where
        T: Clone;
}

impl<T> TryVec<T> for Vec<T> {
    fn try_room(&mut self, extra: usize) -> Result<()> {
        self.try_reserve(extra).map_err(|_| Errno::ENOMEM.into())
    }

    fn try_push(&mut self, value: T) -> Result<()> {
        self.try_room(1)?;
        self.push(value);
        Ok(())
    }

    fn try_extend_from_slice(&mut self, items: &[T]) -> Result<()>
    where
        T: Clone,
    {
        self.try_room(items.len())?;
        self.extend_from_slice(items);
        Ok(())
    }

    fn try_resize(&mut self, len: usize, value: T) -> Result<()>
    where
        T: Clone,
    {
        self.try_room(len.saturating_sub(self.len()))?;
        self.resize(len, value);
        Ok(())
    }
}

/// An empty `Vec` with room for exactly `capacity` elements.
pub fn with_capacity<T>(capacity: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity).map_err(|_| Errno::ENOMEM)?;
    Ok(v)
}

/// `len` zero bytes.
pub fn zeroed(len: usize) -> Result<Vec<u8>> {
    let mut v = with_capacity(len)?;
    v.resize(len, 0);
    Ok(v)
}

/// A copy of `items`.
pub fn copy_of<T: Clone>(items: &[T]) -> Result<Vec<T>> {
    let mut v = with_capacity(items.len())?;
    v.extend_from_slice(items);
    Ok(v)
}

/// A bounce buffer for copying `len` bytes at most `chunk` at a time:
/// `len.min(chunk)` zero bytes (`ENOMEM` if even that cannot be had).
pub fn bounce_buffer(len: usize, chunk: usize) -> Result<Vec<u8>> {
    zeroed(len.min(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_what_can_exist_is_enomem() {
        let mut v: Vec<u8> = Vec::new();
        assert_eq!(v.try_room(usize::MAX).unwrap_err().errno(), Errno::ENOMEM);
        assert_eq!(zeroed(usize::MAX).unwrap_err().errno(), Errno::ENOMEM);
        assert_eq!(
            with_capacity::<u64>(usize::MAX / 4).unwrap_err().errno(),
            Errno::ENOMEM
        );
        assert_eq!(
            v.try_resize(isize::MAX as usize, 0).unwrap_err().errno(),
            Errno::ENOMEM
        );
        v.try_push(1).unwrap();
        v.try_extend_from_slice(&[2, 3]).unwrap();
        v.try_resize(5, 9).unwrap();
        assert_eq!(v, [1, 2, 3, 9, 9]);
        assert_eq!(copy_of(&v).unwrap(), v);
        assert_eq!(bounce_buffer(10, 4).unwrap(), [0; 4]);
    }
}
