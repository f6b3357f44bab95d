//! [`SignalState`]: signal bookkeeping — the actions of the process, and
//! each thread's blocked mask and alternate stack, keyed by the thread id
//! from [`CurrentThread`](crate::platform::CurrentThread).
//!
//! Nothing is delivered yet: nothing is ever pending. The kernel asks
//! [`SignalState::handler_for`] whether a faulting program installed a
//! handler, and calls [`SignalState::thread_created`] /
//! [`SignalState::thread_exited`] from `clone` and thread exit (a new
//! thread inherits its creator's mask and has no alternate stack).

use alloc::collections::BTreeMap;

use crate::error::{Errno, Result};
use crate::return_errno;

/// `SIGKILL`
pub const SIGKILL: u32 = 9;
/// `SIGSTOP`
pub const SIGSTOP: u32 = 19;
/// Highest signal number (`_NSIG`).
pub const NSIG: u32 = 64;
/// `SIG_DFL`
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`
pub const SIG_IGN: u64 = 1;

/// The bit of `sig` in a signal set.
pub const fn sig_bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// Signals that can never be blocked.
pub const UNBLOCKABLE: u64 = sig_bit(SIGKILL) | sig_bit(SIGSTOP);

/// The kernel's `struct sigaction` on x86-64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `sa_handler`: `SIG_DFL`, `SIG_IGN` or a function address.
    pub handler: u64,
    /// `sa_flags` (`SA_SIGINFO`, `SA_ONSTACK`, `SA_RESTORER`, …).
    pub flags: u64,
    /// `sa_restorer`
    pub restorer: u64,
    /// `sa_mask`
    pub mask: u64,
}

/// `stack_t`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltStack {
    /// `ss_sp`
    pub sp: u64,
    /// `ss_flags` (`SS_AUTODISARM` kept).
    pub flags: i32,
    /// `ss_size`
    pub size: u64,
}

/// Signal state of a process.
#[derive(Debug, Clone, Default)]
pub struct SignalState {
    actions: BTreeMap<u32, SigAction>,
    masks: BTreeMap<u32, u64>,
    alt_stacks: BTreeMap<u32, AltStack>,
}

fn check(sig: u32) -> Result<()> {
    if sig == 0 || sig > NSIG {
        return_errno!(Errno::EINVAL);
    }
    Ok(())
}

impl SignalState {
    /// Default actions, nothing blocked.
    pub fn new() -> Self {
        Self::default()
    }

    /// The action for `sig` (`EINVAL` outside 1..=64).
    pub fn action(&self, sig: u32) -> Result<SigAction> {
        check(sig)?;
        Ok(self.actions.get(&sig).copied().unwrap_or_default())
    }

    /// Sets the action for `sig`, returning the old one. `EINVAL` for
    /// `SIGKILL` and `SIGSTOP`. `SIGKILL`/`SIGSTOP` are dropped from the
    /// mask, as Linux.
    pub fn set_action(&mut self, sig: u32, mut action: SigAction) -> Result<SigAction> {
        let old = self.action(sig)?;
        if sig == SIGKILL || sig == SIGSTOP {
            return_errno!(Errno::EINVAL);
        }
        action.mask &= !UNBLOCKABLE;
        self.actions.insert(sig, action);
        Ok(old)
    }

    /// The installed handler for `sig`, if it is neither `SIG_DFL` nor
    /// `SIG_IGN` (for the kernel: does a faulting program catch `SIGSEGV`?).
    pub fn handler_for(&self, sig: u32) -> Option<SigAction> {
        self.action(sig)
            .ok()
            .filter(|a| a.handler != SIG_DFL && a.handler != SIG_IGN)
    }

    /// Thread `tid`'s blocked mask.
    pub fn mask(&self, tid: u32) -> u64 {
        self.masks.get(&tid).copied().unwrap_or(0)
    }

    /// Sets thread `tid`'s mask (without `SIGKILL`/`SIGSTOP`), returning
    /// the old one.
    pub fn set_mask(&mut self, tid: u32, mask: u64) -> u64 {
        let old = self.mask(tid);
        self.masks.insert(tid, mask & !UNBLOCKABLE);
        old
    }

    /// Thread `tid`'s alternate signal stack.
    pub fn alt_stack(&self, tid: u32) -> Option<AltStack> {
        self.alt_stacks.get(&tid).copied()
    }

    /// Sets or (with `None`) disables thread `tid`'s alternate stack.
    pub fn set_alt_stack(&mut self, tid: u32, stack: Option<AltStack>) {
        match stack {
            Some(s) => self.alt_stacks.insert(tid, s),
            None => self.alt_stacks.remove(&tid),
        };
    }

    /// Pending signals of thread `tid` (always none: no delivery yet).
    pub fn pending(&self, _tid: u32) -> u64 {
        0
    }

    /// A thread `child` was created by `parent`: it inherits the mask.
    pub fn thread_created(&mut self, parent: u32, child: u32) {
        let mask = self.mask(parent);
        self.masks.insert(child, mask);
        self.alt_stacks.remove(&child);
    }

    /// Thread `tid` exited: forget its state.
    pub fn thread_exited(&mut self, tid: u32) {
        self.masks.remove(&tid);
        self.alt_stacks.remove(&tid);
    }

    /// At `execve`: handled signals go back to default (ignored ones stay
    /// ignored), alternate stacks are gone; masks are kept.
    pub fn reset_for_exec(&mut self) {
        self.actions.retain(|_, a| a.handler == SIG_IGN);
        for a in self.actions.values_mut() {
            *a = SigAction {
                handler: SIG_IGN,
                ..SigAction::default()
            };
        }
        self.alt_stacks.clear();
    }
}
