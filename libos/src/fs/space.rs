//! [`Space`]: the in-memory file system's limits, as tmpfs's `size=` and
//! `nr_inodes=`: how many 4 KiB pages of file data and how many inodes it
//! may hold. `statfs` reports both (`f_blocks`/`f_bfree`,
//! `f_files`/`f_ffree`), so `df` and `df -i` show them.
//!
//! File data (`super::data`) charges a page before allocating it; the VFS
//! charges an inode for every object it creates and for every extra hard
//! link (as tmpfs does), and a page for a symlink target too long to keep
//! inline. A charge past a limit fails with `ENOSPC`. The limits keep what
//! programs can make the file system hold — including the kernel-heap
//! bookkeeping behind each inode and name — below what the machine has:
//! the kernel sets them at boot from its free memory ([`Space::set_limits`],
//! [`FsLimits`] for the `tmpfs.size=`/`tmpfs.nr_inodes=` command-line keys).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Errno, Result};

/// Bytes per page of file data.
pub const PAGE_BYTES: usize = 4096;
const PAGE: u64 = PAGE_BYTES as u64;

/// One counter with a limit.
#[derive(Debug)]
struct Budget {
    used: AtomicU64,
    limit: AtomicU64,
}

impl Budget {
    const fn unlimited() -> Self {
        Self {
            used: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
        }
    }

    fn charge(&self, n: u64) -> Result<()> {
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC.into())
    }

    fn uncharge(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(n))
            });
    }

    fn get(&self) -> (u64, u64) {
        (
            self.limit.load(Ordering::Relaxed),
            self.used.load(Ordering::Relaxed),
        )
    }
}

/// The file system's page and inode budgets.
#[derive(Debug)]
pub struct Space {
    pages: Budget,
    inodes: Budget,
}

impl Default for Space {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl Space {
    /// No limits (until [`Space::set_limits`]).
    pub const fn unlimited() -> Self {
        Self {
            pages: Budget::unlimited(),
            inodes: Budget::unlimited(),
        }
    }

    /// A budget of `limit_bytes` of data (rounded down to pages) and any
    /// number of inodes.
    pub fn new(limit_bytes: u64) -> Self {
        let s = Self::unlimited();
        s.set_limit_bytes(limit_bytes);
        s
    }

    /// Changes the data limit (pages already used stay, even above it).
    pub fn set_limit_bytes(&self, limit_bytes: u64) {
        self.pages
            .limit
            .store(limit_bytes / PAGE, Ordering::Relaxed);
    }

    /// Changes the inode limit (inodes that exist stay, even above it).
    pub fn set_inode_limit(&self, inodes: u64) {
        self.inodes.limit.store(inodes, Ordering::Relaxed);
    }

    /// Sets both limits.
    pub fn set_limits(&self, limits: FsLimits) {
        self.set_limit_bytes(limits.size_bytes);
        self.set_inode_limit(limits.inodes);
    }

    /// (limit, used) in pages.
    pub fn pages(&self) -> (u64, u64) {
        self.pages.get()
    }

    /// (limit, used) in inodes.
    pub fn inodes(&self) -> (u64, u64) {
        self.inodes.get()
    }

    /// Takes `n` pages from the budget (`ENOSPC` if they are not left).
    pub fn charge_pages(&self, n: u64) -> Result<()> {
        self.pages.charge(n)
    }

    /// Returns `n` pages.
    pub fn uncharge_pages(&self, n: u64) {
        self.pages.uncharge(n);
    }

    /// Takes one inode (`ENOSPC` when none is left).
    pub fn charge_inode(&self) -> Result<()> {
        self.inodes.charge(1)
    }

    /// Returns one inode.
    pub fn uncharge_inode(&self) {
        self.inodes.uncharge(1);
    }
}

/// The limits the kernel gives the file system at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsLimits {
    /// Bytes of file data (`size=`).
    pub size_bytes: u64,
    /// Inodes, hard links included (`nr_inodes=`).
    pub inodes: u64,
}

impl FsLimits {
    /// The defaults, as tmpfs's: half of `free_bytes` for data and one
    /// inode per two free pages, on top of what the image already uses
    /// (`used_pages`, `used_inodes`).
    pub fn default_for(free_bytes: u64, used_pages: u64, used_inodes: u64) -> Self {
        Self {
            size_bytes: used_pages
                .saturating_mul(PAGE)
                .saturating_add(free_bytes / 2),
            inodes: used_inodes.saturating_add(free_bytes / PAGE / 2),
        }
    }

    /// Applies the command-line values `tmpfs.size=` (bytes with an
    /// optional `k`/`m`/`g` suffix, or a percentage of `total_bytes` as
    /// `50%`) and `tmpfs.nr_inodes=` (a count, `k`/`m`/`g` allowed) over
    /// these defaults. An explicit size counts from nothing, as tmpfs's
    /// does (the image's pages are part of it). `Err` names the bad key.
    pub fn with_options(
        mut self,
        size: Option<&str>,
        nr_inodes: Option<&str>,
        total_bytes: u64,
    ) -> core::result::Result<Self, &'static str> {
        if let Some(s) = size {
            self.size_bytes = match s.strip_suffix('%') {
                Some(pct) => {
                    let pct: u64 = pct.parse().map_err(|_| "tmpfs.size")?;
                    if pct == 0 || pct > 100 {
                        return Err("tmpfs.size");
                    }
                    (u128::from(total_bytes) * u128::from(pct) / 100) as u64
                }
                None => parse_count(s).ok_or("tmpfs.size")?,
            };
        }
        if let Some(n) = nr_inodes {
            self.inodes = parse_count(n).ok_or("tmpfs.nr_inodes")?;
        }
        Ok(self)
    }
}

/// A number with an optional binary `k`/`m`/`g` suffix.
fn parse_count(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_refuse_past_the_limit_and_return_what_is_freed() {
        let s = Space::new(2 * PAGE);
        s.set_inode_limit(1);
        s.charge_pages(2).unwrap();
        assert_eq!(s.charge_pages(1).unwrap_err().errno(), Errno::ENOSPC);
        s.uncharge_pages(1);
        s.charge_pages(1).unwrap();
        assert_eq!(s.pages(), (2, 2));
        s.charge_inode().unwrap();
        assert_eq!(s.charge_inode().unwrap_err().errno(), Errno::ENOSPC);
        s.uncharge_inode();
        assert_eq!(s.inodes(), (1, 0));
        assert_eq!(s.charge_pages(u64::MAX).unwrap_err().errno(), Errno::ENOSPC);
    }

    #[test]
    fn limits_default_to_half_the_free_memory_and_follow_the_command_line() {
        let d = FsLimits::default_for(100 << 20, 10, 50);
        assert_eq!(d.size_bytes, 10 * PAGE + (50 << 20));
        assert_eq!(d.inodes, 50 + 12800);
        let total = 128 << 20;
        let o = d.with_options(Some("16m"), Some("2k"), total).unwrap();
        assert_eq!((o.size_bytes, o.inodes), (16 << 20, 2048));
        let o = d.with_options(Some("25%"), None, total).unwrap();
        assert_eq!((o.size_bytes, o.inodes), (32 << 20, d.inodes));
        assert_eq!(d.with_options(Some("1x"), None, total), Err("tmpfs.size"));
        assert_eq!(d.with_options(Some("0%"), None, total), Err("tmpfs.size"));
        assert_eq!(
            d.with_options(None, Some("99999999999g"), total),
            Err("tmpfs.nr_inodes")
        );
        assert_eq!(d.with_options(None, None, total), Ok(d));
    }
}
