//! Signal-driven I/O: `O_ASYNC` (`FIOASYNC`, `F_SETFL`) and the owner
//! `F_SETOWN` names. When data arrives on a file whose description has
//! `O_ASYNC` on and an owner, the owner gets `SIGIO`, as Linux's
//! `kill_fasync(…, POLL_IN)` does. nginx's master sets it on the channel
//! socket to each worker.
//!
//! An [`AsyncOwner`] belongs to what data arrives in (a pipe's queue,
//! which also carries one direction of a Unix socket); the kinds of file
//! that have one return it from
//! [`FileLike::fasync`](crate::fd::FileLike::fasync). The owner is a
//! process (`pid` > 0) or a process group (`pid` < -1); the signal goes
//! through the guest's [`ProcessTable`], kept weakly so that a queue does
//! not keep the processes alive.

use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use spin::Mutex;

use crate::ptable::ProcessTable;

/// `SIGIO` (also `SIGPOLL`).
pub const SIGIO: u32 = 29;

/// `O_ASYNC` (`FASYNC`), x86-64 value.
pub const O_ASYNC: u32 = 0o20000;

/// Who gets `SIGIO` when data arrives, and whether anyone should.
#[derive(Debug, Default)]
pub struct AsyncOwner {
    enabled: AtomicBool,
    owner: AtomicI32,
    table: Mutex<Weak<ProcessTable>>,
}

impl AsyncOwner {
    /// Off, with no owner.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Turns `O_ASYNC` on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
    }

    /// Whether `O_ASYNC` is on.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// `F_SETOWN`: `pid` > 0 a process, < 0 the group `-pid`, 0 nobody;
    /// `table` is where they are looked up when the signal is due.
    pub fn set_owner(&self, pid: i32, table: &Arc<ProcessTable>) {
        *self.table.lock() = Arc::downgrade(table);
        self.owner.store(pid, Ordering::Release);
    }

    /// `F_GETOWN`: the owner as set (0: none).
    pub fn owner(&self) -> i32 {
        self.owner.load(Ordering::Acquire)
    }

    /// Data arrived: sends `SIGIO` to the owner if `O_ASYNC` is on and
    /// there is one. Returns how many processes it was sent to. An owner
    /// that has gone is skipped, as Linux does.
    pub fn notify(&self) -> usize {
        if !self.enabled() {
            return 0;
        }
        let owner = self.owner();
        let Some(table) = self.table.lock().upgrade() else {
            return 0;
        };
        let targets = match owner {
            0 => return 0,
            pid if pid > 0 => table.process(pid.unsigned_abs()).into_iter().collect(),
            // -1 would mean "every process" to `kill_targets`, not group 1.
            -1 => return 0,
            group => table.kill_targets(0, group).unwrap_or_default(),
        };
        let mut sent = 0;
        for p in targets {
            if p.signals.lock().send_to_process(SIGIO).is_ok() {
                sent += 1;
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::testing::Sys;

    #[test]
    fn sigio_goes_to_the_owner_only_when_enabled() {
        let s = Sys::new(0x10000, 4096);
        s.p.processes.insert_init(s.p.clone());
        let a = AsyncOwner::new();
        // Neither on nor owned.
        assert_eq!(a.notify(), 0);
        a.set_owner(1, &s.p.processes);
        assert_eq!(a.notify(), 0, "O_ASYNC is off");
        a.set_enabled(true);
        assert_eq!(a.notify(), 1);
        assert_ne!(s.p.signals.lock().pending(1) & (1 << (SIGIO - 1)), 0);
        // A pid that does not exist gets nothing, and nothing fails.
        a.set_owner(77, &s.p.processes);
        assert_eq!(a.notify(), 0);
        a.set_owner(0, &s.p.processes);
        assert_eq!(a.notify(), 0);
    }
}
