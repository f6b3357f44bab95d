//! A regular file's contents: sparse 4 KiB pages in a map from page
//! index to page, allocated fallibly and charged to the file system's
//! [`Space`] (its size limit, as tmpfs `size=`).
//!
//! Holes read as zeros and cost nothing — no page and no slot in the map
//! — so a one-byte write at 2 GiB or at 8 EiB, or an `ftruncate` to 3 GiB,
//! takes one page or none, as on tmpfs. The largest file is Linux's
//! `MAX_LFS_FILESIZE` (2⁶³ − 1 bytes); a transfer that would end past it
//! is `EINVAL`, as `rw_verify_area` answers. A write that cannot get a
//! page fails with `ENOSPC` when the limit is reached and `ENOMEM` when
//! the heap cannot serve it; bytes written before that stay (the call
//! then reports the short count, as Linux does).
//!
//! A page a `MAP_SHARED` mapping touches moves from the heap into a
//! platform frame ([`FileData::shared_frame`], [`PageFrames`]) that the
//! mappings map directly: reads and writes of the file then go to that
//! frame, so both sides see each other's bytes at once. The frame is
//! reference counted, so a mapping keeps it after the file drops it.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub use super::space::{PAGE_BYTES, Space};
use crate::error::{Errno, Result};
use crate::platform::PageFrames;
use crate::{return_errno, return_errno_with_message};

mod user_copy;
pub use user_copy::Copied;

const PAGE: u64 = PAGE_BYTES as u64;

/// The largest file, as tmpfs on x86-64 allows (`MAX_LFS_FILESIZE`).
pub const MAX_FILE_BYTES: u64 = i64::MAX as u64;

/// One reference to a platform frame holding a file page; dropping it
/// drops the reference (the frame lives on while a mapping holds it).
pub struct FrameRef {
    frames: Arc<dyn PageFrames>,
    frame: u64,
}

impl core::fmt::Debug for FrameRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FrameRef({:#x})", self.frame)
    }
}

impl Drop for FrameRef {
    fn drop(&mut self) {
        self.frames.frame_release(self.frame);
    }
}

/// A page of a file: heap memory, or a frame `MAP_SHARED` mappings map.
#[derive(Debug)]
enum Page {
    Heap(Box<[u8; PAGE_BYTES]>),
    Frame(FrameRef),
}

impl Page {
    /// Copies bytes from `offset` into `buf` (inside the page).
    fn read(&self, offset: usize, buf: &mut [u8]) {
        match self {
            Self::Heap(b) => buf.copy_from_slice(&b[offset..offset + buf.len()]),
            Self::Frame(f) => f.frames.frame_read(f.frame, offset, buf),
        }
    }

    /// Copies `data` in at `offset` (inside the page).
    fn write(&mut self, offset: usize, data: &[u8]) {
        match self {
            Self::Heap(b) => b[offset..offset + data.len()].copy_from_slice(data),
            Self::Frame(f) => f.frames.frame_write(f.frame, offset, data),
        }
    }

    /// Zeroes the bytes from `offset` to the end of the page.
    fn zero_from(&mut self, offset: usize) {
        const ZEROS: [u8; PAGE_BYTES] = [0; PAGE_BYTES];
        self.write(offset, &ZEROS[offset..]);
    }
}

/// A zeroed page, or `ENOMEM`.
fn new_page() -> Result<Page> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(PAGE_BYTES).map_err(|_| Errno::ENOMEM)?;
    v.resize(PAGE_BYTES, 0);
    // Length equals capacity: no reallocation, and the conversion to an
    // array cannot fail.
    v.into_boxed_slice()
        .try_into()
        .map(Page::Heap)
        .map_err(|_| Errno::ENOMEM.into())
}

/// Checks that `len` bytes at `offset` end within the largest file
/// (`EINVAL` otherwise, as Linux's `rw_verify_area`).
pub fn check_range(offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= MAX_FILE_BYTES => Ok(()),
        _ => return_errno_with_message!(Errno::EINVAL, "the transfer ends past the largest file"),
    }
}

/// The pages and the length of one file.
#[derive(Debug)]
pub struct FileData {
    /// Page `i` holds bytes `i*4096 ..`; a missing index is a hole. No
    /// page lies wholly past `len`.
    pages: BTreeMap<u64, Page>,
    len: u64,
    space: Arc<Space>,
}

impl Drop for FileData {
    fn drop(&mut self) {
        self.space.uncharge_pages(self.allocated_pages());
    }
}

impl FileData {
    /// An empty file charged to `space`.
    pub fn new(space: Arc<Space>) -> Self {
        Self {
            pages: BTreeMap::new(),
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
        self.pages.len() as u64
    }

    /// Copies bytes at `offset` into `buf`; returns the count (0 at or past
    /// the end). Holes read as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        if n == 0 {
            return 0;
        }
        let end = offset + n as u64;
        // `cursor` is where the bytes not yet copied start.
        let mut cursor = offset;
        for (&index, page) in self.pages.range(offset / PAGE..=(end - 1) / PAGE) {
            let page_start = index * PAGE;
            let from = page_start.max(offset);
            let to = (page_start + PAGE).min(end);
            buf[(cursor - offset) as usize..(from - offset) as usize].fill(0);
            page.read(
                (from - page_start) as usize,
                &mut buf[(from - offset) as usize..(to - offset) as usize],
            );
            cursor = to;
        }
        buf[(cursor - offset) as usize..n].fill(0);
        n
    }

    /// Writes `buf` at `offset`, allocating pages as needed. Returns the
    /// bytes written: all of them, or fewer if space ran out after some
    /// were written; an error if none could be (`EINVAL` for a range
    /// ending past the largest file, `ENOSPC`, `ENOMEM`).
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        check_range(offset, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / PAGE, (pos % PAGE) as usize);
            let chunk = (PAGE_BYTES - within).min(buf.len() - done);
            let page = match self.page_mut(index) {
                Ok(page) => page,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            page.write(within, &buf[done..done + chunk]);
            done += chunk;
        }
        self.len = self.len.max(offset + done as u64);
        Ok(done)
    }

    /// Page `index`, allocated (charged and zeroed) if it was a hole.
    fn page_mut(&mut self, index: u64) -> Result<&mut Page> {
        if !self.pages.contains_key(&index) {
            self.space.charge_pages(1)?;
            match new_page() {
                Ok(page) => {
                    self.pages.insert(index, page);
                }
                Err(e) => {
                    self.space.uncharge_pages(1);
                    return Err(e);
                }
            }
        }
        self.pages.get_mut(&index).ok_or(Errno::ENOMEM.into())
    }

    /// The frame holding page `index` for a `MAP_SHARED` mapping, which
    /// maps it (taking its own reference): a heap page moves into a frame
    /// from `frames`, a hole gets a zeroed one (charged to the file
    /// system: `ENOSPC` when full, as a store to a tmpfs hole would
    /// `SIGBUS`). `ENXIO` for a page wholly past the end of the file
    /// (the caller raises `SIGBUS`), `ENOMEM` without a frame.
    pub fn shared_frame(&mut self, index: u64, frames: &Arc<dyn PageFrames>) -> Result<u64> {
        if index >= self.len.div_ceil(PAGE) {
            return_errno_with_message!(Errno::ENXIO, "the page lies past the end of the file");
        }
        if let Some(Page::Frame(f)) = self.pages.get(&index) {
            return Ok(f.frame);
        }
        let hole = !self.pages.contains_key(&index);
        if hole {
            self.space.charge_pages(1)?;
        }
        let frame = match frames.frame_alloc() {
            Ok(frame) => FrameRef {
                frames: frames.clone(),
                frame,
            },
            Err(e) => {
                if hole {
                    self.space.uncharge_pages(1);
                }
                return Err(e);
            }
        };
        if let Some(Page::Heap(bytes)) = self.pages.get(&index) {
            frames.frame_write(frame.frame, 0, &bytes[..]);
        }
        let id = frame.frame;
        self.pages.insert(index, Page::Frame(frame));
        Ok(id)
    }

    /// Sets the length: shrinking frees the pages past it and zeroes the
    /// tail of the last one; growing leaves a hole (no allocation).
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        if len > MAX_FILE_BYTES {
            return_errno_with_message!(Errno::EINVAL, "length past the largest file");
        }
        if len < self.len {
            let keep = len.div_ceil(PAGE);
            let cut = self.pages.split_off(&keep);
            self.space.uncharge_pages(cut.len() as u64);
            drop(cut);
            let within = (len % PAGE) as usize;
            if within != 0
                && let Some(page) = self.pages.get_mut(&(keep - 1))
            {
                page.zero_from(within);
            }
        }
        self.len = len;
        Ok(())
    }

    /// `fallocate` mode 0 (or `FALLOC_FL_KEEP_SIZE` with `keep_size`): the
    /// holes in `offset..offset + len` get zeroed pages, charged to the
    /// file system, and the file grows to cover the range unless
    /// `keep_size`. All or nothing, as tmpfs: when space or memory runs
    /// out the pages allocated by this call are freed again (`ENOSPC`,
    /// `ENOMEM`); `EFBIG` for a range past the largest file.
    pub fn allocate(&mut self, offset: u64, len: u64, keep_size: bool) -> Result<()> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= MAX_FILE_BYTES)
            .ok_or(Errno::EFBIG)?;
        if len == 0 {
            return_errno!(Errno::EINVAL);
        }
        let mut added = Vec::new();
        for index in offset / PAGE..end.div_ceil(PAGE) {
            if self.pages.contains_key(&index) {
                continue;
            }
            let grown = added.try_reserve(1).map_err(|_| Errno::ENOMEM.into());
            if let Err(e) = grown.and_then(|()| self.page_mut(index).map(|_| ())) {
                for index in added {
                    if self.pages.remove(&index).is_some() {
                        self.space.uncharge_pages(1);
                    }
                }
                return Err(e);
            }
            added.push(index);
        }
        if !keep_size {
            self.len = self.len.max(end);
        }
        Ok(())
    }

    /// `SEEK_DATA` (`data`) or `SEEK_HOLE` from `offset`: the first byte
    /// at or after it in an allocated page, or in a hole (the end of the
    /// file counts as one); `ENXIO` at or past the end, or when no data
    /// follows — what tmpfs answers.
    pub fn seek_data_or_hole(&self, offset: u64, data: bool) -> Result<u64> {
        if offset >= self.len {
            return Err(Errno::ENXIO.into());
        }
        let first = offset / PAGE;
        if data {
            return match self.pages.range(first..).next() {
                Some((&index, _)) => {
                    let at = (index * PAGE).max(offset);
                    if at < self.len {
                        Ok(at)
                    } else {
                        Err(Errno::ENXIO.into())
                    }
                }
                None => Err(Errno::ENXIO.into()),
            };
        }
        let mut index = first;
        for &present in self.pages.range(first..).map(|(i, _)| i) {
            if present != index {
                break;
            }
            index += 1;
        }
        Ok((index.saturating_mul(PAGE)).max(offset).min(self.len))
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
    fn allocate_fills_holes_all_or_nothing() {
        let (space, mut f) = file(4);
        f.write_at(0, b"abc").unwrap();
        f.allocate(100, 2 * PAGE, false).unwrap();
        assert_eq!((f.len(), f.allocated_pages()), (100 + 2 * PAGE, 3));
        let mut buf = [9u8; 4];
        assert_eq!(f.read_at(0, &mut buf), 4);
        assert_eq!(&buf, b"abc\0", "data before the range is kept");
        // Keep the size: pages past the end, length unchanged.
        f.allocate(3 * PAGE, 10, true).unwrap();
        assert_eq!((f.len(), f.allocated_pages()), (100 + 2 * PAGE, 4));
        assert_eq!(space.pages(), (4, 4));
        // No room for two more pages: nothing is kept.
        let err = f.allocate(10 * PAGE, 2 * PAGE, false).unwrap_err();
        assert_eq!(err.errno(), Errno::ENOSPC);
        assert_eq!(
            (f.len(), f.allocated_pages(), space.pages().1),
            (100 + 2 * PAGE, 4, 4)
        );
        assert_eq!(f.allocate(0, 0, false).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(
            f.allocate(u64::MAX - 1, 4, false).unwrap_err().errno(),
            Errno::EFBIG
        );
        assert_eq!(
            f.allocate(MAX_FILE_BYTES, 1, false).unwrap_err().errno(),
            Errno::EFBIG
        );
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
        f.truncate(MAX_FILE_BYTES).unwrap();
        assert_eq!(
            f.truncate(MAX_FILE_BYTES + 1).unwrap_err().errno(),
            Errno::EINVAL
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
            Errno::EINVAL
        );
    }

    #[test]
    fn the_last_bytes_of_the_largest_file_cost_one_page() {
        let (space, mut f) = file(4);
        assert_eq!(f.write_at(MAX_FILE_BYTES - 1, b"x").unwrap(), 1);
        assert_eq!((f.len(), f.allocated_pages()), (MAX_FILE_BYTES, 1));
        assert_eq!(
            f.write_at(MAX_FILE_BYTES - 1, b"xy").unwrap_err().errno(),
            Errno::EINVAL
        );
        let mut b = [0u8; 2];
        assert_eq!(f.read_at(MAX_FILE_BYTES - 2, &mut b), 2);
        assert_eq!(b, [0, b'x']);
        assert_eq!(f.read_at(MAX_FILE_BYTES, &mut b), 0);
        f.truncate(0).unwrap();
        assert_eq!(space.pages().1, 0);
    }

    #[test]
    fn seek_data_and_hole_follow_the_pages() {
        let (_, mut f) = file(16);
        f.write_at(2 * PAGE + 5, b"ab").unwrap();
        f.write_at(3 * PAGE, b"c").unwrap();
        f.truncate(10 * PAGE).unwrap();
        let data = |f: &FileData, o| f.seek_data_or_hole(o, true).map_err(|e| e.errno());
        let hole = |f: &FileData, o| f.seek_data_or_hole(o, false).map_err(|e| e.errno());
        assert_eq!(data(&f, 0), Ok(2 * PAGE));
        assert_eq!(data(&f, 2 * PAGE + 100), Ok(2 * PAGE + 100));
        assert_eq!(data(&f, 4 * PAGE), Err(Errno::ENXIO));
        assert_eq!(hole(&f, 0), Ok(0));
        assert_eq!(hole(&f, 2 * PAGE + 1), Ok(4 * PAGE));
        assert_eq!(hole(&f, 10 * PAGE - 1), Ok(10 * PAGE - 1));
        assert_eq!(hole(&f, 10 * PAGE), Err(Errno::ENXIO));
        // The end of the file is a hole even inside a page.
        f.truncate(3 * PAGE + 1).unwrap();
        assert_eq!(hole(&f, 3 * PAGE), Ok(3 * PAGE + 1));
    }

    #[test]
    fn a_shared_page_moves_into_a_frame_and_keeps_its_bytes() {
        let mock = Arc::new(crate::platform::mock::MockPlatform::new());
        let frames: Arc<dyn PageFrames> = mock.clone();
        let (space, mut f) = file(2);
        f.write_at(10, b"heap bytes").unwrap();
        f.truncate(3 * PAGE).unwrap();
        let frame = f.shared_frame(0, &frames).unwrap();
        assert_eq!(f.shared_frame(0, &frames).unwrap(), frame, "one frame");
        assert_eq!(space.pages().1, 1, "moving the page charges nothing");
        let mut b = [0u8; 10];
        frames.frame_read(frame, 10, &mut b);
        assert_eq!(&b, b"heap bytes");
        // Reads and writes of the file go to the frame now.
        frames.frame_write(frame, 0, b"mapped");
        f.write_at(6, b"!").unwrap();
        let mut c = [0u8; 7];
        f.read_at(0, &mut c);
        assert_eq!(&c, b"mapped!");
        // A hole gets a page charged to the file system; past the end of
        // the file is ENXIO; a full file system ENOSPC.
        f.shared_frame(1, &frames).unwrap();
        assert_eq!(space.pages().1, 2);
        let full = f.shared_frame(2, &frames).unwrap_err();
        assert_eq!(full.errno(), Errno::ENOSPC);
        let past = f.shared_frame(3, &frames).unwrap_err();
        assert_eq!(past.errno(), Errno::ENXIO);
        assert_eq!(mock.owned_frames(), 2);
        drop(f);
        assert_eq!((mock.owned_frames(), space.pages().1), (0, 0));
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
