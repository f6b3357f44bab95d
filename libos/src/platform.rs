//! The [`Platform`] trait: everything the LibOS needs from the machine.
//!
//! The kernel implements it for real (exception-fixup user copies, TSC and
//! RTC clocks, the serial console, RDRAND-seeded randomness); host tests
//! use `mock::MockPlatform` (feature `mock`). Parts used on their own are separate
//! traits ([`UserMemory`], [`Clock`], [`ConsoleSink`], [`Csprng`]) so the
//! VFS, for instance, needs only a clock.

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

/// The machine as the LibOS sees it.
pub trait Platform: UserMemory + Clock + ConsoleSink + Csprng {}

impl<T: UserMemory + Clock + ConsoleSink + Csprng> Platform for T {}

#[cfg(any(test, feature = "mock"))]
pub mod mock;
