//! The vDSO: `clock_gettime`, `gettimeofday` and `time` answered in the
//! program, without a system call, as Linux's vDSO answers them.
//!
//! glibc looks for a vDSO through `AT_SYSINFO_EHDR` and, when it finds one,
//! calls its `__vdso_clock_gettime`, `__vdso_gettimeofday` and `__vdso_time`
//! instead of entering the kernel. Servers read the clock for nearly every
//! request (Redis calls `gettimeofday` about twice per command): without a
//! vDSO each of those is a system call, and with the audit log on a record.
//!
//! The image ([`IMAGE`]) is a small shared object built from `vdso.c` and
//! `vdso.lds` in this directory by `build.sh` (the build result is
//! committed; a test rebuilds it and compares). It reads [`VdsoData`] from
//! the page just below itself (`vvar`) under a sequence count and falls
//! back to the system call for any other clock or while the kernel has not
//! enabled it. The kernel keeps the data current ([`Vdso::publish`]) with
//! the same formulas as its own clocks ([`VdsoData::monotonic_ns`],
//! [`VdsoData::realtime_ns`]), so a program sees one clock whichever way
//! it asks.
//!
//! Both pages are files of the in-memory file system no path reaches: the
//! image is mapped private read+execute (every process maps the same
//! frames), the data page shared read-only (the kernel's writes reach every
//! process at once). `/proc/<pid>/maps` names them `[vdso]` and `[vvar]`.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use crate::elf::{PAGE_SIZE, Perms};
use crate::error::Result;
use crate::fs::{InodeRef, Vfs};
use crate::mm::vm::Vm;
use crate::mm::vma::{Backing, Vma, VmaName};

/// The vDSO image (see the module docs for how it is built).
pub const IMAGE: &[u8] = include_bytes!("vdso.so");

/// Where exec maps the image when the process has a vDSO; the data page
/// is the page below. Below the dynamic loader's default place.
pub const BASE: u64 = 0x7fff_f7fc_0000;

/// Bytes of the image's mapping (whole pages).
pub const IMAGE_BYTES: u64 = (IMAGE.len() as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;

/// How long a clock found ahead of the host's takes to slow onto its line
/// (the kernel's resync period).
pub const SLEW_NS: u64 = 250_000_000;

/// What the data page holds, as `struct vdso_data` in `vdso.c` lays it out
/// (after a `u32` sequence count the kernel makes odd while it writes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VdsoData {
    /// Whether the vDSO may answer for the monotonic clocks (otherwise
    /// every call is a system call).
    pub monotonic_enabled: bool,
    /// Whether it may answer for the realtime clocks: the kernel clears it
    /// while its realtime line is not good enough to be left alone between
    /// resyncs (the TSC's rate not measured yet against the host's).
    pub realtime_enabled: bool,
    /// The TSC value at monotonic time 0.
    pub tsc_base: u64,
    /// Nanoseconds per TSC cycle, 32.32 fixed point.
    pub ns_per_cycle_fp32: u64,
    /// The monotonic time at which [`VdsoData::real_base_ns`] holds.
    pub real_base_mono: u64,
    /// The Unix time in nanoseconds at [`VdsoData::real_base_mono`].
    pub real_base_ns: u64,
    /// Realtime nanoseconds per 2^32 monotonic nanoseconds.
    pub real_rate_fp32: u64,
}

/// Bytes of the data after the sequence count.
const DATA_BYTES: usize = 44;

impl VdsoData {
    /// The monotonic time at TSC value `tsc`, as `vdso.c` computes it.
    pub fn monotonic_ns(&self, tsc: u64) -> u64 {
        let cycles = tsc.wrapping_sub(self.tsc_base);
        ((u128::from(cycles) * u128::from(self.ns_per_cycle_fp32)) >> 32) as u64
    }

    /// The Unix time at monotonic time `mono`, as `vdso.c` computes it.
    pub fn realtime_ns(&self, mono: u64) -> u64 {
        let since = mono.saturating_sub(self.real_base_mono);
        let scaled = ((u128::from(since) * u128::from(self.real_rate_fp32)) >> 32) as u64;
        self.real_base_ns.wrapping_add(scaled)
    }

    /// `self` with the realtime line through (`at`, `real`) at `rate`, as
    /// it is (it may be behind the old one: for a clock only the kernel
    /// reads, which keeps its answers monotonic itself).
    pub fn on_line(self, at: u64, real: u64, rate: u64) -> Self {
        Self {
            real_base_mono: at,
            real_base_ns: real,
            real_rate_fp32: rate,
            ..self
        }
    }

    /// `self` steered onto the realtime line through (`at`, `real`) at
    /// `rate`, from monotonic `now`, never stepping back: a clock behind
    /// the line steps forward onto it; one ahead keeps its value and runs
    /// slower (down to half speed) so as to meet the line [`SLEW_NS`]
    /// later — the kernel steers again at every resync, so it settles on
    /// the line instead of staying ahead. The first line is taken as it is.
    pub fn rebased(self, at: u64, real: u64, rate: u64, now: u64) -> Self {
        let new = self.on_line(at, real, rate);
        if self.real_rate_fp32 == 0 {
            return new;
        }
        let (target, current) = (new.realtime_ns(now), self.realtime_ns(now));
        let ahead = current.saturating_sub(target);
        let cut =
            ((u128::from(ahead) << 32) / u128::from(SLEW_NS)).min(u128::from(rate / 2)) as u64;
        Self {
            real_base_mono: now,
            real_base_ns: target.max(current),
            real_rate_fp32: rate - cut,
            ..self
        }
    }

    /// The bytes after the sequence count, little-endian.
    fn encode(&self) -> [u8; DATA_BYTES] {
        let mut out = [0u8; DATA_BYTES];
        let enabled = u32::from(self.monotonic_enabled) | u32::from(self.realtime_enabled) << 1;
        out[..4].copy_from_slice(&enabled.to_le_bytes());
        let words = [
            self.tsc_base,
            self.ns_per_cycle_fp32,
            self.real_base_mono,
            self.real_base_ns,
            self.real_rate_fp32,
        ];
        for (i, w) in words.iter().enumerate() {
            out[4 + 8 * i..12 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// The guest's vDSO: the image's file and the data page's file.
#[derive(Debug)]
pub struct Vdso {
    image: InodeRef,
    data: InodeRef,
    /// The sequence count last written (even between updates).
    seq: AtomicU32,
    /// Serialises writers.
    writing: Mutex<()>,
}

impl Vdso {
    /// Puts the image and a disabled data page in two files of `vfs`.
    pub fn new(vfs: &Vfs) -> Result<Self> {
        let image = vfs.create_unlinked_file(0o555)?;
        image.write_at(0, IMAGE, 0)?;
        let data = vfs.create_unlinked_file(0o444)?;
        data.write_at(0, &[0u8; PAGE_SIZE as usize], 0)?;
        Ok(Self {
            image,
            data,
            seq: AtomicU32::new(0),
            writing: Mutex::new(()),
        })
    }

    /// Writes `d` to the data page: the sequence count odd, the data, the
    /// count even again (a reader that saw an odd count, or a different
    /// one before and after, reads again).
    pub fn publish(&self, d: &VdsoData) {
        let _w = self.writing.lock();
        let seq = self.seq.load(Ordering::Relaxed);
        // The page's file exists for the guest's life and has its page:
        // these writes cannot fail.
        let _ = self.data.write_at(0, &(seq | 1).to_le_bytes(), 0);
        let _ = self.data.write_at(4, &d.encode(), 0);
        let next = (seq | 1).wrapping_add(1);
        let _ = self.data.write_at(0, &next.to_le_bytes(), 0);
        self.seq.store(next, Ordering::Relaxed);
    }

    /// The data page's bytes (for tests and diagnostics).
    pub fn data_bytes(&self) -> [u8; 4 + DATA_BYTES] {
        let mut out = [0u8; 4 + DATA_BYTES];
        let _ = self.data.read_at(0, &mut out);
        out
    }

    /// Records the two areas in `vm`, the image at [`BASE`] and the data
    /// page below it, left to be mapped on first touch.
    pub fn map_into(&self, vm: &mut Vm) {
        let data_start = BASE - PAGE_SIZE;
        let read = Perms {
            read: true,
            write: false,
            execute: false,
        };
        vm.insert(Vma {
            shared: true,
            may_write: false,
            backing: Backing::File {
                inode: self.data.clone(),
                offset: 0,
            },
            ..Vma::anonymous(data_start, BASE, read, VmaName::Vvar)
        });
        let text = Perms {
            execute: true,
            ..read
        };
        vm.insert(Vma {
            may_write: false,
            backing: Backing::File {
                inode: self.image.clone(),
                offset: 0,
            },
            ..Vma::anonymous(BASE, BASE + IMAGE_BYTES, text, VmaName::Vdso)
        });
        vm.unpopulated.insert(data_start..BASE + IMAGE_BYTES);
    }
}

/// A shared handle, as processes hold it.
pub type VdsoRef = Arc<Vdso>;

#[cfg(test)]
mod tests;
