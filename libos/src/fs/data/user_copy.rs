//! Copies between a regular file's pages and user memory with nothing in
//! between: `read` and `write` of a regular file move each byte once, as
//! Linux's `copy_to_user` from the page cache does.
//!
//! Both run with the inode's lock held (the caller's), so they use the
//! `*_nofault` user copies ([`UserMemory::read_user_nofault`]): a user
//! page the LibOS would have to populate ends the copy, reported as
//! [`Copied::faulted`]; the caller ([`crate::fs::direct`]) drops the
//! lock, faults the page in and calls again from where this stopped.

use super::{FileData, PAGE, PAGE_BYTES, Page, check_range};
use crate::error::Result;
use crate::user::UserMemory;

/// What a hole reads as.
static ZEROS: [u8; PAGE_BYTES] = [0; PAGE_BYTES];

/// How far a copy between a file and user memory got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Bytes copied.
    pub bytes: usize,
    /// Whether it stopped at a user page that is not present yet (at the
    /// user address `bytes` past the start), rather than at the end of
    /// the file, of the request or of the file system's space.
    pub faulted: bool,
}

/// Zeroes user memory at `addr` for the hole of file bytes `from .. to`,
/// as far as it can without a fault; returns the file offset it reached.
fn zero_user(mem: &dyn UserMemory, addr: u64, from: u64, to: u64) -> u64 {
    let mut at = from;
    while at < to {
        let chunk = (to - at).min(PAGE) as usize;
        let put = mem.write_user_nofault(addr + (at - from), &ZEROS[..chunk]);
        at += put as u64;
        if put < chunk {
            break;
        }
    }
    at
}

impl FileData {
    /// Copies up to `len` file bytes at `offset` to user memory at `addr`
    /// (holes as zeros); stops at the end of the file or at a user page
    /// that is not present.
    pub fn read_to_user(&self, offset: u64, mem: &dyn UserMemory, addr: u64, len: usize) -> Copied {
        let n = if offset >= self.len {
            0
        } else {
            (self.len - offset).min(len as u64) as usize
        };
        if n == 0 {
            return Copied {
                bytes: 0,
                faulted: false,
            };
        }
        let end = offset + n as u64;
        // `cursor` is the file offset of the first byte not yet copied;
        // the pages are walked in order, the holes between them zeroed.
        let mut cursor = offset;
        let stopped = |cursor: u64| Copied {
            bytes: (cursor - offset) as usize,
            faulted: true,
        };
        for (&index, page) in self.pages.range(offset / PAGE..=(end - 1) / PAGE) {
            let page_start = index * PAGE;
            let from = page_start.max(offset);
            let to = (page_start + PAGE).min(end);
            cursor = zero_user(mem, addr + (cursor - offset), cursor, from);
            if cursor < from {
                return stopped(cursor);
            }
            let (within, chunk) = ((from - page_start) as usize, (to - from) as usize);
            let at = addr + (from - offset);
            let put = match page {
                Page::Heap(b) => mem.write_user_nofault(at, &b[within..within + chunk]),
                Page::Frame(f) => f
                    .frames
                    .frame_to_user_nofault(f.frame, within, mem, at, chunk),
            };
            cursor = from + put as u64;
            if put < chunk {
                return stopped(cursor);
            }
        }
        cursor = zero_user(mem, addr + (cursor - offset), cursor, end);
        if cursor < end {
            return stopped(cursor);
        }
        Copied {
            bytes: n,
            faulted: false,
        }
    }

    /// Copies `len` bytes of user memory at `addr` into the file at
    /// `offset`, allocating pages as needed; stops at a user page that is
    /// not present, or when space runs out after some bytes (an error if
    /// before any, as [`FileData::write_at`]). A page allocated for bytes
    /// that then could not be read is given back, so no page lies wholly
    /// past the end of the file.
    pub fn write_from_user(
        &mut self,
        offset: u64,
        mem: &dyn UserMemory,
        addr: u64,
        len: usize,
    ) -> Result<Copied> {
        let mut copied = Copied {
            bytes: 0,
            faulted: false,
        };
        if len == 0 {
            return Ok(copied);
        }
        check_range(offset, len)?;
        while copied.bytes < len {
            let done = copied.bytes;
            let pos = offset + done as u64;
            let (index, within) = (pos / PAGE, (pos % PAGE) as usize);
            let chunk = (PAGE_BYTES - within).min(len - done);
            let fresh = !self.pages.contains_key(&index);
            let page = match self.page_mut(index) {
                Ok(page) => page,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let at = addr + done as u64;
            let got = match page {
                Page::Heap(b) => mem.read_user_nofault(at, &mut b[within..within + chunk]),
                Page::Frame(f) => f
                    .frames
                    .frame_from_user_nofault(f.frame, within, mem, at, chunk),
            };
            if got == 0 && fresh && self.pages.remove(&index).is_some() {
                self.space.uncharge_pages(1);
            }
            copied.bytes += got;
            if got < chunk {
                copied.faulted = true;
                break;
            }
        }
        if copied.bytes > 0 {
            self.len = self.len.max(offset + copied.bytes as u64);
        }
        Ok(copied)
    }
}
