//! The [`Platform`] trait: everything the LibOS needs from the machine.
//!
//! The kernel implements it for real (exception-fixup user copies, TSC and
//! RTC clocks, the serial console, RDRAND-seeded randomness); host tests
//! use `mock::MockPlatform` (feature `mock`). Parts used on their own are separate
//! traits ([`UserMemory`], [`Clock`], [`ConsoleSink`], [`Csprng`],
//! [`Blocker`]) so the VFS, for instance, needs only a clock.

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
}

/// The machine as the LibOS sees it.
pub trait Platform: UserMemory + Clock + ConsoleSink + Csprng + Blocker {}

impl<T: UserMemory + Clock + ConsoleSink + Csprng + Blocker> Platform for T {}

#[cfg(any(test, feature = "mock"))]
pub mod mock;
