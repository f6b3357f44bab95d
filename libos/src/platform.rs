//! The [`Platform`] trait: everything the LibOS needs from the machine.
//!
//! The kernel implements it for real (exception-fixup user copies, TSC and
//! RTC clocks, the serial console, RDRAND-seeded randomness); host tests
//! use `mock::MockPlatform` (feature `mock`). Parts used on their own are separate
//! traits ([`UserMemory`], [`Clock`], [`ConsoleSink`], [`Csprng`],
//! [`Blocker`], [`AddressSpace`], [`PageFrames`], [`CurrentThread`],
//! [`MemoryStats`]) so the VFS, for instance, needs only a clock.

use crate::elf::Perms;
use crate::error::Result;
use crate::fs::ConsoleSink;
use crate::random::Csprng;
pub use crate::user::UserMemory;

/// Time sources.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary boot-time origin; never goes back.
    fn monotonic_ns(&self) -> u64;
    /// Nanoseconds since the Unix epoch (wall clock).
    fn realtime_ns(&self) -> u64;
    /// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
    /// A platform that does not account it reports the monotonic clock.
    fn thread_cpu_ns(&self) -> u64 {
        self.monotonic_ns()
    }
    /// CPU time all threads of the program have used, exited ones included
    /// (`CLOCK_PROCESS_CPUTIME_ID`, `getrusage`, `times`).
    fn process_cpu_ns(&self) -> u64 {
        self.monotonic_ns()
    }
}

/// How a blocking syscall gives up the CPU.
///
/// A read from an empty pipe, `poll` with a timeout, `epoll_wait`: the
/// LibOS checks readiness itself and, when it must wait, asks the kernel
/// to run other threads until a condition holds. The kernel's scheduler
/// re-evaluates `ready` whenever the thread could run (each time it is
/// picked, or when woken by an event it knows about).
pub trait Blocker: Send + Sync {
    /// Blocks the calling thread until `ready()` returns `true` (`Ok(true)`)
    /// or the monotonic clock reaches `deadline_ns` (`Ok(false)`). A signal
    /// for the thread ends the wait with `EINTR`.
    fn block_until(
        &self,
        ready: &mut dyn FnMut() -> bool,
        deadline_ns: Option<u64>,
    ) -> Result<bool>;

    /// [`Blocker::block_until`] for a wait only `flag` being set can end
    /// (besides a signal and the deadline): futex waits. A scheduler may
    /// then leave the thread alone until the flag is set; the default just
    /// polls the flag.
    fn block_until_flag(
        &self,
        flag: &alloc::sync::Arc<core::sync::atomic::AtomicBool>,
        deadline_ns: Option<u64>,
    ) -> Result<bool> {
        self.block_until(
            &mut || flag.load(core::sync::atomic::Ordering::Acquire),
            deadline_ns,
        )
    }

    /// Lets other runnable threads run once (`sched_yield`). The default
    /// blocks until `ready` is evaluated a second time, which a scheduler
    /// that re-evaluates `ready` when the thread runs again makes a yield;
    /// the kernel may override it with its scheduler's own yield.
    fn yield_now(&self) {
        let mut evaluated = false;
        // Only EINTR can end it early, and a yield has nothing to report.
        let _ = self.block_until(&mut || core::mem::replace(&mut evaluated, true), None);
    }
}

/// Page-table operations on the application's (user half) address space.
/// Ranges are page aligned.
///
/// The LibOS keeps the list of areas (`crate::mm::Vm`) and decides what
/// goes where; an implementation only changes page tables and frames. On
/// x86-64 a page with any permission is readable (there are no write-only
/// or execute-only pages); `Perms::default()` (no access) means mapped but
/// inaccessible (`PROT_NONE`): the frame stays, every access faults.
pub trait AddressSpace: Send + Sync {
    /// Maps fresh zero-filled pages over `start..start+len` with `perms`,
    /// replacing whatever was mapped there. `ENOMEM` when out of frames.
    fn map_zeroed(&self, start: u64, len: u64, perms: Perms) -> Result<()>;
    /// Changes the protection of mapped pages in the range (unmapped pages
    /// are skipped).
    fn protect(&self, start: u64, len: u64, perms: Perms) -> Result<()>;
    /// Unmaps and frees the pages in the range (unmapped pages are skipped).
    fn unmap(&self, start: u64, len: u64);
    /// Moves the frames of `from..from+len` to `to..to+len` (no copy),
    /// keeping their protection; the destination was unmapped. Unmapped
    /// source pages are skipped (the destination page stays unmapped).
    /// The ranges do not overlap.
    fn move_pages(&self, from: u64, to: u64, len: u64) -> Result<()>;
    /// Writes `data` at `addr` into mapped pages regardless of their
    /// protection (loading file contents into read-only/exec pages).
    /// `EFAULT` if a page is not mapped.
    fn fill(&self, addr: u64, data: &[u8]) -> Result<()>;
}

/// Frames that hold a file's pages, so that `MAP_SHARED` mappings map the
/// file's own memory: a store through a mapping is at once in the file,
/// and a `write()` of the file at once in every mapping.
///
/// A frame is named by an opaque number (the kernel's physical address).
/// It is reference counted: [`PageFrames::frame_alloc`] gives the caller
/// one reference, every page-table entry [`PageFrames::map_frame`] makes
/// holds another (dropped when the entry is unmapped or its space is
/// destroyed), and the frame is freed with its last reference — so a page
/// stays alive while mapped even after the file lets it go (truncated,
/// unlinked). Such entries are never copy-on-write: a fork shares them.
pub trait PageFrames: Send + Sync {
    /// A zeroed frame with one reference, the caller's. `ENOMEM` when out
    /// of frames.
    fn frame_alloc(&self) -> Result<u64>;
    /// Drops one reference the caller holds (from
    /// [`PageFrames::frame_alloc`]).
    fn frame_release(&self, frame: u64);
    /// Copies bytes of `frame` from `offset` into `buf` (the range lies
    /// inside the frame).
    fn frame_read(&self, frame: u64, offset: usize, buf: &mut [u8]);
    /// Copies `data` into `frame` at `offset` (the range lies inside it).
    fn frame_write(&self, frame: u64, offset: usize, data: &[u8]);
    /// Maps `frame` at the page `vaddr` with `perms`, replacing whatever
    /// was mapped there; the entry holds a reference. `ENOMEM` when a page
    /// table cannot be had.
    fn map_frame(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()>;
    /// Maps `frame` at the page `vaddr` with `perms` for a *private*
    /// mapping: copy-on-write, so the first store (by the program or the
    /// kernel) copies it and the file's page never changes; until then
    /// the page shows the file's bytes. The entry holds a reference. A
    /// program's text mapped this way is the same memory at every exec
    /// and in every process.
    fn map_frame_private(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()>;

    /// Copies `len` bytes of `frame` from `offset` (inside the frame) to
    /// user memory at `addr` as [`UserMemory::write_user_nofault`] does:
    /// stops at a page the LibOS would have to populate and returns the
    /// bytes copied. The default goes through a small buffer on the
    /// stack; a platform that reaches frames directly copies once.
    fn frame_to_user_nofault(
        &self,
        frame: u64,
        offset: usize,
        mem: &dyn UserMemory,
        addr: u64,
        len: usize,
    ) -> usize {
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.frame_read(frame, offset + done, &mut chunk[..n]);
            let put = mem.write_user_nofault(addr + done as u64, &chunk[..n]);
            done += put;
            if put < n {
                break;
            }
        }
        done
    }

    /// Copies `len` bytes of user memory at `addr` into `frame` at
    /// `offset` (inside the frame), likewise.
    fn frame_from_user_nofault(
        &self,
        frame: u64,
        offset: usize,
        mem: &dyn UserMemory,
        addr: u64,
        len: usize,
    ) -> usize {
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            let got = mem.read_user_nofault(addr + done as u64, &mut chunk[..n]);
            self.frame_write(frame, offset + done, &chunk[..got]);
            done += got;
            if got < n {
                break;
            }
        }
        done
    }
}

/// Who is running.
pub trait CurrentThread: Send + Sync {
    /// The calling thread's id (the `gettid` value).
    fn current_tid(&self) -> u32;

    /// The CPU the caller runs on (`getcpu`), `0..cpu_count()`.
    fn current_cpu(&self) -> u32 {
        0
    }

    /// How many CPUs run the program's threads (`sched_getaffinity`).
    fn cpu_count(&self) -> u32 {
        1
    }
}

/// Physical memory figures for `sysinfo` and `/proc/meminfo`.
pub trait MemoryStats: Send + Sync {
    /// `(total, free)` memory available to the program, in bytes.
    fn memory_bytes(&self) -> (u64, u64);

    /// The most memory programs can hold now, in bytes: what their pages
    /// and page tables hold plus what is still free for them (the
    /// kernel's own memory and reserve excluded). The commit limit
    /// (`crate::mm::commit`).
    fn program_memory_bytes(&self) -> u64 {
        self.memory_bytes().0
    }
}

/// The machine as the LibOS sees it.
pub trait Platform:
    UserMemory
    + Clock
    + ConsoleSink
    + Csprng
    + Blocker
    + AddressSpace
    + PageFrames
    + CurrentThread
    + MemoryStats
{
}

impl<
    T: UserMemory
        + Clock
        + ConsoleSink
        + Csprng
        + Blocker
        + AddressSpace
        + PageFrames
        + CurrentThread
        + MemoryStats,
> Platform for T
{
}

#[cfg(any(test, feature = "mock"))]
pub mod mock;
