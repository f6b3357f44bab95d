//! A regular file's contents: sparse 4 KiB pages, allocated fallibly and
//! charged to the file system's [`Space`] (the in-memory file system's
//! size limit, as tmpfs `size=`).
//!
//! Holes read as zeros and cost nothing, so a one-byte write at 2 GiB or
//! an `ftruncate` to 3 GiB takes one page or none, as on tmpfs. A write
//! that cannot get a page fails with `ENOSPC` when the limit is reached
//! and `ENOMEM` when the heap cannot serve it; bytes written before that
//! stay (the call then reports the short count, as Linux does).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Errno, Result};
use crate::return_errno_with_message;

/// Bytes per page of file data.
pub const PAGE_BYTES: usize = 4096;
const PAGE: u64 = PAGE_BYTES as u64;

/// The largest file, as tmpfs on x86-64 allows (`MAX_LFS_FILESIZE`, rounded
/// to pages): beyond it writes and `ftruncate` fail with `EFBIG`.
pub const MAX_FILE_BYTES: u64 = i64::MAX as u64 & !(PAGE - 1);

/// The file system's page budget: `f_blocks`/`f_bfree` of `statfs`.
#[derive(Debug)]
pub struct Space {
    used_pages: AtomicU64,
    limit_pages: AtomicU64,
}

impl Default for Space {
    fn default() -> Self {
        Self::new(u64::MAX)
    }
}

impl Space {
    /// A budget of `limit_bytes` (rounded down to pages).
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            used_pages: AtomicU64::new(0),
            limit_pages: AtomicU64::new(limit_bytes / PAGE),
        }
    }

    /// Changes the limit (pages already used stay, even above it).
    pub fn set_limit_bytes(&self, limit_bytes: u64) {
        self.limit_pages
            .store(limit_bytes / PAGE, Ordering::Relaxed);
    }

    /// (limit, used) in pages.
    pub fn pages(&self) -> (u64, u64) {
        (
            self.limit_pages.load(Ordering::Relaxed),
            self.used_pages.load(Ordering::Relaxed),
        )
    }

    /// Takes one page from the budget (`ENOSPC` when none is left).
    fn charge(&self) -> Result<()> {
        let limit = self.limit_pages.load(Ordering::Relaxed);
        self.used_pages
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                (used < limit).then_some(used + 1)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC.into())
    }

    fn uncharge(&self, pages: u64) {
        self.used_pages.fetch_sub(pages, Ordering::AcqRel);
    }
}

/// A zeroed page, or `ENOMEM`.
fn new_page() -> Result<Box<[u8]>> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(PAGE_BYTES).map_err(|_| Errno::ENOMEM)?;
    v.resize(PAGE_BYTES, 0);
    // Length equals capacity: no reallocation.
    Ok(v.into_boxed_slice())
}

/// The pages and the length of one file.
#[derive(Debug)]
pub struct FileData {
    /// Page `i` holds bytes `i*4096 ..`; `None` is a hole. Never longer
    /// than the last allocated page.
    pages: Vec<Option<Box<[u8]>>>,
    len: u64,
    space: Arc<Space>,
}

impl Drop for FileData {
    fn drop(&mut self) {
        self.space.uncharge(self.allocated_pages());
    }
}

impl FileData {
    /// An empty file charged to `space`.
    pub fn new(space: Arc<Space>) -> Self {
        Self {
            pages: Vec::new(),
            len: 0,
            space,
        }
    }

    /// A file holding `bytes`.
    pub fn from_bytes(bytes: &[u8], space: Arc<Space>) -> Result<Self> {
        let mut f = Self::new(space);
        if f.write_at(0, bytes)? != bytes.len() {
            return_errno_with_message!(Errno::ENOSPC, "the file system is full");
        }
        Ok(f)
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages holding data (`st_blocks` counts these).
    pub fn allocated_pages(&self) -> u64 {
        self.pages.iter().filter(|p| p.is_some()).count() as u64
    }

    /// Copies bytes at `offset` into `buf`; returns the count (0 at or past
    /// the end). Holes read as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (index, within) = ((pos / PAGE) as usize, (pos % PAGE) as usize);
            let chunk = (PAGE_BYTES - within).min(n - done);
            let dst = &mut buf[done..done + chunk];
            match self.pages.get(index) {
                Some(Some(page)) => dst.copy_from_slice(&page[within..within + chunk]),
                _ => dst.fill(0),
            }
            done += chunk;
        }
        n
    }

    /// Writes `buf` at `offset`, allocating pages as needed. Returns the
    /// bytes written: all of them, or fewer if space ran out after some
    /// were written; an error if none could be (`EFBIG` past the largest
    /// file, `ENOSPC`, `ENOMEM`).
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if offset >= MAX_FILE_BYTES {
            return Err(Errno::EFBIG.into());
        }
        let n = (MAX_FILE_BYTES - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (index, within) = ((pos / PAGE) as usize, (pos % PAGE) as usize);
            let chunk = (PAGE_BYTES - within).min(n - done);
            if let Err(e) = self.page_mut(index) {
                if done == 0 {
                    return Err(e);
                }
                break;
            }
            if let Some(Some(page)) = self.pages.get_mut(index) {
                page[within..within + chunk].copy_from_slice(&buf[done..done + chunk]);
            }
            done += chunk;
        }
        self.len = self.len.max(offset + done as u64);
        Ok(done)
    }

    /// Makes page `index` exist (charged and zeroed).
    fn page_mut(&mut self, index: usize) -> Result<()> {
        if let Some(Some(_)) = self.pages.get(index) {
            return Ok(());
        }
        if self.pages.len() <= index {
            let grow = index + 1 - self.pages.len();
            self.pages.try_reserve(grow).map_err(|_| Errno::ENOMEM)?;
        }
        self.space.charge()?;
        let page = match new_page() {
            Ok(p) => p,
            Err(e) => {
                self.space.uncharge(1);
                return Err(e);
            }
        };
        if self.pages.len() <= index {
            self.pages.resize_with(index + 1, || None);
        }
        self.pages[index] = Some(page);
        Ok(())
    }

    /// Sets the length: shrinking frees the pages past it and zeroes the
    /// tail of the last one; growing leaves a hole (no allocation).
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        if len > MAX_FILE_BYTES {
            return_errno_with_message!(Errno::EFBIG, "file too large");
        }
        if len < self.len {
            let keep = len.div_ceil(PAGE) as usize;
            if self.pages.len() > keep {
                let freed = self.pages[keep..].iter().filter(|p| p.is_some()).count();
                self.pages.truncate(keep);
                self.space.uncharge(freed as u64);
            }
            let within = (len % PAGE) as usize;
            if within != 0
                && let Some(Some(page)) = self.pages.get_mut(keep - 1)
            {
                page[within..].fill(0);
            }
            while matches!(self.pages.last(), Some(None)) {
                self.pages.pop();
            }
        }
        self.len = len;
        Ok(())
    }

    /// The whole contents (for loading an executable or a private file
    /// mapping's copy); `ENOMEM` if the buffer cannot be had.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(|_| Errno::ENOMEM)?;
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
        v.resize(len, 0);
        self.read_at(0, &mut v);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(limit_pages: u64) -> (Arc<Space>, FileData) {
        let space = Arc::new(Space::new(limit_pages * PAGE));
        (space.clone(), FileData::new(space))
    }

    #[test]
    fn sparse_writes_cost_only_their_pages() {
        let (space, mut f) = file(16);
        assert_eq!(f.write_at(2 << 30, b"x").unwrap(), 1);
        assert_eq!(f.len(), (2 << 30) + 1);
        assert_eq!(f.allocated_pages(), 1);
        assert_eq!(space.pages(), (16, 1));
        let mut buf = [7u8; 8];
        assert_eq!(f.read_at((2 << 30) - 4, &mut buf), 5);
        assert_eq!(&buf[..5], &[0, 0, 0, 0, b'x']);
        assert_eq!(f.read_at(f.len(), &mut buf), 0);
    }

    #[test]
    fn truncate_grows_without_pages_and_shrinks_freeing_them() {
        let (space, mut f) = file(16);
        f.truncate(0xdead_0000).unwrap();
        assert_eq!((f.len(), f.allocated_pages()), (0xdead_0000, 0));
        f.write_at(0, &[1u8; 10000]).unwrap();
        assert_eq!(space.pages().1, 3);
        f.truncate(5000).unwrap();
        assert_eq!((space.pages().1, f.len()), (2, 5000));
        f.truncate(8192).unwrap();
        let mut b = [9u8; 4];
        assert_eq!(f.read_at(5000, &mut b), 4);
        assert_eq!(b, [0; 4], "the cut tail reads as zeros after growing again");
        assert_eq!(
            f.truncate(MAX_FILE_BYTES + 1).unwrap_err().errno(),
            Errno::EFBIG
        );
        drop(f);
        assert_eq!(space.pages().1, 0, "dropping the file returns its pages");
    }

    #[test]
    fn a_full_file_system_gives_enospc_after_a_short_write() {
        let (space, mut f) = file(2);
        assert_eq!(
            f.write_at(0, &[1u8; 3 * PAGE_BYTES]).unwrap(),
            2 * PAGE_BYTES
        );
        assert_eq!(
            f.write_at(2 * PAGE, b"more").unwrap_err().errno(),
            Errno::ENOSPC
        );
        // Overwriting what exists needs no new page.
        assert_eq!(f.write_at(10, b"ok").unwrap(), 2);
        assert_eq!(space.pages(), (2, 2));
        assert_eq!(
            f.write_at(MAX_FILE_BYTES, b"x").unwrap_err().errno(),
            Errno::EFBIG
        );
    }

    #[test]
    fn contents_round_trip() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let f = FileData::from_bytes(&data, Arc::new(Space::default())).unwrap();
        assert_eq!(f.to_vec().unwrap(), data);
        let mut mid = [0u8; 100];
        assert_eq!(f.read_at(4090, &mut mid), 100);
        assert_eq!(&mid[..], &data[4090..4190]);
    }
}
