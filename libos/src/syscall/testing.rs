//! The harness the syscall families' host tests share: a mock platform, a
//! process on a fresh VFS with one mapped scratch range, the full dispatch
//! table, and calls by name. Families add their own helpers in `impl Sys`
//! blocks next to their tests.

use alloc::sync::Arc;

use crate::error::Errno;
use crate::fs::{DeviceRegistry, Vfs};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::syscall::{SyscallTable, syscall_number};

/// A process ready for syscalls (shareable with test threads).
pub(crate) struct Sys {
    /// The mock machine (user memory, clock, blocker).
    pub m: Arc<MockPlatform>,
    /// The process.
    pub p: Arc<Process>,
    /// Every family's handlers.
    pub t: Arc<SyscallTable>,
}

impl Sys {
    /// A process with `scratch_len` bytes of user memory mapped at `scratch`.
    pub fn new(scratch: u64, scratch_len: usize) -> Self {
        let m = Arc::new(MockPlatform::new());
        let vfs = Arc::new(Vfs::new(
            m.clone(),
            DeviceRegistry::standard(m.clone(), m.clone()),
        ));
        m.map(scratch, scratch_len);
        Self {
            p: Arc::new(Process::new(m.clone(), vfs)),
            m,
            t: Arc::new(SyscallTable::new()),
        }
    }

    /// Calls syscall `name`; returns `rax` as a signed value.
    pub fn call(&self, name: &str, args: &[u64]) -> i64 {
        let mut raw = [0u64; 6];
        raw[..args.len()].copy_from_slice(args);
        self.t.dispatch(&self.p, syscall_number(name).unwrap(), raw) as i64
    }
}

/// What a failing call returns: `-errno`.
pub(crate) fn err(e: Errno) -> i64 {
    -i64::from(e.as_i32())
}
