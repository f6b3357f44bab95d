//! [`Vma`]: one virtual memory area — a page-aligned range with the same
//! permissions, sharing, backing and name throughout — and how two of
//! them split and merge.

use alloc::sync::Arc;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::elf::Perms;
use crate::fs::InodeRef;

/// What an area's pages hold when they are (re)populated.
#[derive(Debug, Clone)]
pub enum Backing {
    /// Zeroes.
    Anonymous,
    /// A file's bytes from `offset` (the file offset of the area's start);
    /// pages past the end of the file are zero.
    File {
        /// The file.
        inode: InodeRef,
        /// File offset of the area's first byte.
        offset: u64,
    },
}

/// The name `/proc/self/maps` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmaName {
    /// No name (anonymous memory).
    None,
    /// `[heap]`: the `brk` area.
    Heap,
    /// `[stack]`: the main thread's stack.
    Stack,
    /// A file path.
    Path(Arc<[u8]>),
    /// `[vdso]`: the vDSO's image ([`crate::vdso`]).
    Vdso,
    /// `[vvar]`: the vDSO's data page.
    Vvar,
}

/// The memory object behind a `MAP_SHARED` anonymous area (Linux's
/// shmem file): every process the area reaches through `fork` sees the
/// same object, whatever address it is at. Shared futexes are keyed by it
/// (see `crate::syscall::futex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedObject {
    /// Unique among the guest's objects.
    pub id: u64,
    /// Offset in the object of the area's first byte.
    pub offset: u64,
}

impl SharedObject {
    /// A new object, offset 0.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            offset: 0,
        }
    }

    /// The same object, `by` bytes further in.
    pub const fn advanced(self, by: u64) -> Self {
        Self {
            id: self.id,
            offset: self.offset + by,
        }
    }
}

impl Default for SharedObject {
    fn default() -> Self {
        Self::new()
    }
}

/// One area. Invariant: `start < end`, both page aligned.
#[derive(Debug, Clone)]
pub struct Vma {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Current protection.
    pub perms: Perms,
    /// `MAP_SHARED` (shown as `s` in the maps).
    pub shared: bool,
    /// Whether `mprotect` may add `PROT_WRITE` (false for a shared file
    /// mapping of a file not opened for writing, Linux's `VM_MAYWRITE`).
    pub may_write: bool,
    /// Grows down on faults just below it (the main stack).
    pub grows_down: bool,
    /// Never charged to the commit, even when made writable
    /// (`MAP_NORESERVE`, `MAP_STACK`; Linux's `VM_NORESERVE`).
    pub noreserve: bool,
    /// Charged to the process's commit (Linux's `VM_ACCOUNT`): once set it
    /// stays until the pages are unmapped (see [`super::commit`]).
    pub accounted: bool,
    /// What the pages hold.
    pub backing: Backing,
    /// Its name in the maps.
    pub name: VmaName,
    /// The object a `MAP_SHARED` anonymous area maps (`None` otherwise).
    pub shared_object: Option<SharedObject>,
}

impl Vma {
    /// An anonymous private area, not charged to the commit (the caller
    /// sets [`Vma::accounted`] when it charges it).
    pub fn anonymous(start: u64, end: u64, perms: Perms, name: VmaName) -> Self {
        Self {
            start,
            end,
            perms,
            shared: false,
            may_write: true,
            grows_down: false,
            noreserve: false,
            accounted: false,
            backing: Backing::Anonymous,
            name,
            shared_object: None,
        }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Bytes this area charges to the commit.
    pub const fn charged_bytes(&self) -> u64 {
        if self.accounted { self.len() } else { 0 }
    }

    /// Whether the area is empty (never, for one in a `Vm`).
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `addr` is inside.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The shared object and offset in it of `addr`, for a `MAP_SHARED`
    /// area: its anonymous object, or the file (keyed by the inode's
    /// object id and the file offset, whatever the mapping's address).
    pub fn shared_object_at(&self, addr: u64) -> Option<SharedObject> {
        match &self.backing {
            Backing::File { inode, offset } if self.shared => Some(SharedObject {
                id: inode.shared_object_id(),
                offset: offset + (addr - self.start),
            }),
            _ => self.shared_object.map(|o| o.advanced(addr - self.start)),
        }
    }

    /// File offset of `addr` (for a file area).
    pub fn file_offset_of(&self, addr: u64) -> Option<(InodeRef, u64)> {
        match &self.backing {
            Backing::Anonymous => None,
            Backing::File { inode, offset } => Some((inode.clone(), offset + (addr - self.start))),
        }
    }

    /// The part `from..to` (clipped by the caller to lie inside).
    pub fn slice(&self, from: u64, to: u64) -> Self {
        let mut v = self.clone();
        if let Backing::File { offset, .. } = &mut v.backing {
            *offset += from - self.start;
        }
        v.shared_object = self.shared_object.map(|o| o.advanced(from - self.start));
        v.start = from;
        v.end = to;
        v
    }

    /// Whether `next` continues `self` seamlessly (adjacent, same
    /// attributes, and for files the same file at the following offset),
    /// so the two can be one area.
    pub fn can_merge(&self, next: &Self) -> bool {
        let backing = match (&self.backing, &next.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::File {
                    inode: a,
                    offset: oa,
                },
                Backing::File {
                    inode: b,
                    offset: ob,
                },
            ) => Arc::ptr_eq(a, b) && oa + self.len() == *ob,
            _ => false,
        };
        let object = match (self.shared_object, next.shared_object) {
            (None, None) => true,
            (Some(a), Some(b)) => a.advanced(self.len()) == b,
            _ => false,
        };
        backing
            && object
            && self.end == next.start
            && self.perms == next.perms
            && self.shared == next.shared
            && self.may_write == next.may_write
            && self.grows_down == next.grows_down
            && self.noreserve == next.noreserve
            && self.accounted == next.accounted
            && self.name == next.name
    }

    /// The `/proc/self/maps` line, with its newline.
    pub fn maps_line(&self, out: &mut alloc::string::String) {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        let (offset, ino) = match &self.backing {
            Backing::Anonymous => (0, 0),
            Backing::File { inode, offset } => (*offset, inode.ino()),
        };
        let dev = if ino == 0 { (0, 0) } else { (0, 1) };
        let before = out.len();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
            self.start,
            self.end,
            flag(self.perms.read, 'r'),
            flag(self.perms.write, 'w'),
            flag(self.perms.execute, 'x'),
            if self.shared { 's' } else { 'p' },
            offset,
            dev.0,
            dev.1,
            ino,
        );
        let name: &[u8] = match &self.name {
            VmaName::None => b"",
            VmaName::Heap => b"[heap]",
            VmaName::Stack => b"[stack]",
            VmaName::Vdso => b"[vdso]",
            VmaName::Vvar => b"[vvar]",
            VmaName::Path(p) => p,
        };
        if !name.is_empty() {
            // Linux pads to 72 columns, then one more space (seq_pad).
            while out.len() - before < 72 {
                out.push(' ');
            }
            out.push(' ');
            out.push_str(&alloc::string::String::from_utf8_lossy(name));
        }
        out.push('\n');
    }
}
