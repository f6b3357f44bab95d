//! [`SignalState`]: signal bookkeeping — the actions of the process, and
//! each thread's blocked mask and alternate stack, keyed by the thread id
//! from [`CurrentThread`](crate::platform::CurrentThread).
//!
//! Pending signals (per thread and per process) are kept here; the kernel
//! delivers them when a thread returns to user mode. [`Signals`] holds the
//! state behind its lock with a lock-free summary of whether anything is
//! pending at all, so that return path costs one atomic load when nothing
//! is. The kernel calls [`SignalState::thread_created`] /
//! [`SignalState::thread_exited`] from `clone` and thread exit (a new
//! thread inherits its creator's mask and has no alternate stack).

use alloc::collections::BTreeMap;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use spin::{Mutex, MutexGuard};

use crate::error::{Errno, Result};
use crate::return_errno;

/// `SIGKILL`
pub const SIGKILL: u32 = 9;
/// `SIGPIPE`
pub const SIGPIPE: u32 = 13;
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

/// `si_code` of a POSIX timer's signal (Linux's `SI_TIMER`).
pub const SI_TIMER: i32 = -2;

/// A POSIX timer's expiry as its signal carries it (`si_code` `SI_TIMER`:
/// `si_timerid`, `si_overrun`, `si_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerSignal {
    /// The timer's id.
    pub timer_id: i32,
    /// `sigev_value`.
    pub value: u64,
    /// Expiries that found this signal still pending (or were missed
    /// between two checks) since it was sent.
    pub overrun: u32,
    /// `SIGEV_THREAD_ID`: the thread it is sent to (else the process).
    pub tid: Option<u32>,
}

/// Where a pending process-directed signal came from: what its
/// `siginfo` tells the handler (or `sigtimedwait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Sent by process `pid` (`kill`, a child's exit): `si_pid`.
    Process(u32),
    /// A POSIX timer's expiry (`SI_TIMER`).
    Timer(TimerSignal),
}

impl Origin {
    /// The sending process, if a process sent it.
    pub fn sender(self) -> Option<u32> {
        match self {
            Origin::Process(pid) => Some(pid),
            Origin::Timer(_) => None,
        }
    }

    /// The timer's details, if a timer sent it.
    pub fn timer(self) -> Option<TimerSignal> {
        match self {
            Origin::Timer(t) => Some(t),
            Origin::Process(_) => None,
        }
    }
}

/// Signal state of a process.
#[derive(Debug, Clone, Default)]
pub struct SignalState {
    actions: BTreeMap<u32, SigAction>,
    masks: BTreeMap<u32, u64>,
    alt_stacks: BTreeMap<u32, AltStack>,
    /// Signals sent to one thread (`tgkill`, faults), by tid.
    thread_pending: BTreeMap<u32, u64>,
    /// Signals sent to the process (`kill`, `alarm`): any thread that does
    /// not block them takes them.
    process_pending: u64,
    /// The mask `rt_sigsuspend` replaced, by tid: the handler's frame
    /// saves it, so `rt_sigreturn` restores it (Linux's `saved_sigmask`).
    suspended_masks: BTreeMap<u32, u64>,
    /// Where a pending signal came from, by signal: the process that sent
    /// it (`kill`, a child's exit: the handler's `si_pid`; as standard
    /// signals are not queued, the first sender of a pending one is kept)
    /// or the POSIX timer whose expiry it is (`SI_TIMER`).
    origins: BTreeMap<u32, Origin>,
}

/// What a signal does when its action is `SIG_DFL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Nothing (`SIGCHLD`, `SIGURG`, `SIGWINCH`, `SIGCONT`; and the stop
    /// signals, as there is no job control).
    Ignore,
    /// The process ends with status 128 + signal.
    Terminate,
}

/// The default action of `sig` (`signal(7)`).
pub const fn default_action(sig: u32) -> DefaultAction {
    match sig {
        // SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH
        17 | 18 | 19 | 20 | 21 | 22 | 23 | 28 => DefaultAction::Ignore,
        _ => DefaultAction::Terminate,
    }
}

fn check(sig: u32) -> Result<()> {
    if sig == 0 || sig > NSIG {
        return_errno!(Errno::EINVAL);
    }
    Ok(())
}

/// The process's [`SignalState`] behind a lock, with a summary of whether
/// any signal is pending that is read without the lock
/// ([`Signals::maybe_pending`]). Every change goes through
/// [`Signals::lock`], whose guard refreshes the summary as it unlocks.
#[derive(Debug, Default)]
pub struct Signals {
    state: Mutex<SignalState>,
    any_pending: AtomicBool,
}

impl Signals {
    /// No actions, masks or pending signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state; the summary is refreshed when the guard drops.
    pub fn lock(&self) -> SignalGuard<'_> {
        SignalGuard {
            state: self.state.lock(),
            any_pending: &self.any_pending,
        }
    }

    /// Whether a signal may be pending for some thread (exact as of the
    /// last unlock): `false` lets the return to user mode skip the lock.
    pub fn maybe_pending(&self) -> bool {
        self.any_pending.load(Ordering::Acquire)
    }
}

/// [`Signals::lock`]'s guard.
#[derive(Debug)]
pub struct SignalGuard<'a> {
    state: MutexGuard<'a, SignalState>,
    any_pending: &'a AtomicBool,
}

impl Deref for SignalGuard<'_> {
    type Target = SignalState;
    fn deref(&self) -> &SignalState {
        &self.state
    }
}

impl DerefMut for SignalGuard<'_> {
    fn deref_mut(&mut self) -> &mut SignalState {
        &mut self.state
    }
}

impl Drop for SignalGuard<'_> {
    fn drop(&mut self) {
        // Still locked here: the guard's fields drop after this.
        self.any_pending
            .store(self.state.any_pending(), Ordering::Release);
    }
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

    /// `/proc/<pid>/status`'s signal lines for thread `tid`, as masks
    /// (bit `n - 1` for signal `n`): `SigPnd` (the thread's own pending),
    /// `ShdPnd` (the process's), `SigBlk`, `SigIgn`, `SigCgt` (a handler
    /// installed).
    pub fn status_masks(&self, tid: u32) -> [u64; 5] {
        let (mut ignored, mut caught) = (0, 0);
        for (&sig, action) in &self.actions {
            match action.handler {
                SIG_DFL => {}
                SIG_IGN => ignored |= sig_bit(sig),
                _ => caught |= sig_bit(sig),
            }
        }
        [
            self.thread_pending.get(&tid).copied().unwrap_or(0),
            self.process_pending,
            self.mask(tid),
            ignored,
            caught,
        ]
    }

    /// Whether any thread or the process has a signal pending.
    pub fn any_pending(&self) -> bool {
        self.process_pending != 0 || self.thread_pending.values().any(|&p| p != 0)
    }

    /// Signals pending for thread `tid`: its own and the process's.
    pub fn pending(&self, tid: u32) -> u64 {
        self.thread_pending.get(&tid).copied().unwrap_or(0) | self.process_pending
    }

    /// Sends `sig` to thread `tid` (`EINVAL` outside 1..=64). An ignored
    /// signal is discarded at once, as Linux does.
    pub fn send_to_thread(&mut self, tid: u32, sig: u32) -> Result<()> {
        check(sig)?;
        if !self.is_ignored(sig) {
            *self.thread_pending.entry(tid).or_insert(0) |= sig_bit(sig);
        }
        Ok(())
    }

    /// Sends `sig` to the process (raised by the kernel: no sender).
    pub fn send_to_process(&mut self, sig: u32) -> Result<()> {
        check(sig)?;
        if !self.is_ignored(sig) {
            if self.process_pending & sig_bit(sig) == 0 {
                self.origins.remove(&sig);
            }
            self.process_pending |= sig_bit(sig);
        }
        Ok(())
    }

    /// Sends `sig` to the process from process `sender` (`kill`, a
    /// child's `SIGCHLD`).
    pub fn send_to_process_from(&mut self, sig: u32, sender: u32) -> Result<()> {
        check(sig)?;
        if !self.is_ignored(sig) {
            if self.process_pending & sig_bit(sig) == 0 {
                self.origins.insert(sig, Origin::Process(sender));
            }
            self.process_pending |= sig_bit(sig);
        }
        Ok(())
    }

    /// Where `sig`, which is being delivered, came from (`None`: the
    /// kernel raised it, or it is not known); forgets it.
    pub fn take_origin(&mut self, sig: u32) -> Option<Origin> {
        self.origins.remove(&sig)
    }

    /// Sends a POSIX timer's signal `sig` with `info`. If that timer's
    /// signal is still pending, it is not sent again: its overrun count
    /// grows instead, as Linux's. Returns the overrun count it carries
    /// (0 for an ignored signal, which is discarded).
    pub fn send_timer_signal(&mut self, sig: u32, info: TimerSignal) -> Result<u32> {
        check(sig)?;
        if self.is_ignored(sig) {
            return Ok(0);
        }
        let pending = match info.tid {
            Some(tid) => self.thread_pending.get(&tid).copied().unwrap_or(0),
            None => self.process_pending,
        } & sig_bit(sig)
            != 0;
        if pending && let Some(Origin::Timer(old)) = self.origins.get_mut(&sig) {
            if old.timer_id == info.timer_id {
                old.overrun = old.overrun.saturating_add(1).saturating_add(info.overrun);
                return Ok(old.overrun);
            }
            // Another timer's signal of the same number is pending: a
            // standard signal is not queued twice; this one is merged.
            return Ok(0);
        }
        match info.tid {
            Some(tid) => *self.thread_pending.entry(tid).or_insert(0) |= sig_bit(sig),
            None => self.process_pending |= sig_bit(sig),
        }
        self.origins.insert(sig, Origin::Timer(info));
        Ok(info.overrun)
    }

    /// Whether `tid` is a thread of the process other than its first
    /// (every such thread got a mask when it was created).
    pub fn knows_thread(&self, tid: u32) -> bool {
        self.masks.contains_key(&tid)
    }

    /// Forgets what timer `timer_id`'s pending signals carry (the timer is
    /// deleted: a signal still pending arrives without its details).
    pub fn forget_timer(&mut self, timer_id: i32) {
        self.origins
            .retain(|_, o| o.timer().is_none_or(|t| t.timer_id != timer_id));
    }

    fn is_ignored(&self, sig: u32) -> bool {
        let action = self.actions.get(&sig).copied().unwrap_or_default();
        action.handler == SIG_IGN
            || (action.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }

    /// Whether thread `tid` has a pending signal it does not block.
    pub fn has_deliverable(&self, tid: u32) -> bool {
        self.pending(tid) & !self.mask(tid) != 0
    }

    /// Takes the lowest-numbered pending signal thread `tid` does not
    /// block (its own before the process's), with its action.
    pub fn take_deliverable(&mut self, tid: u32) -> Option<(u32, SigAction)> {
        let mask = self.mask(tid);
        let own = self.thread_pending.get(&tid).copied().unwrap_or(0) & !mask;
        let (bits, from_thread) = if own != 0 {
            (own, true)
        } else {
            (self.process_pending & !mask, false)
        };
        if bits == 0 {
            return None;
        }
        let sig = bits.trailing_zeros() + 1;
        if from_thread {
            if let Some(p) = self.thread_pending.get_mut(&tid) {
                *p &= !sig_bit(sig);
            }
        } else {
            self.process_pending &= !sig_bit(sig);
        }
        Some((sig, self.actions.get(&sig).copied().unwrap_or_default()))
    }

    /// `rt_sigtimedwait`: takes the lowest-numbered signal of `set`
    /// pending for thread `tid` (its own before the process's), blocked or
    /// not.
    pub fn take_from_set(&mut self, tid: u32, set: u64) -> Option<u32> {
        let own = self.thread_pending.get(&tid).copied().unwrap_or(0) & set;
        let bits = if own != 0 {
            own
        } else {
            self.process_pending & set
        };
        if bits == 0 {
            return None;
        }
        let sig = bits.trailing_zeros() + 1;
        if own != 0 {
            if let Some(p) = self.thread_pending.get_mut(&tid) {
                *p &= !sig_bit(sig);
            }
        } else {
            self.process_pending &= !sig_bit(sig);
        }
        Some(sig)
    }

    /// `rt_sigsuspend`: thread `tid` waits with mask `temporary`; its mask
    /// until then is kept for the handler's frame ([`Self::frame_mask`]).
    pub fn suspend(&mut self, tid: u32, temporary: u64) {
        let old = self.mask(tid);
        self.suspended_masks.entry(tid).or_insert(old);
        self.set_mask(tid, temporary);
    }

    /// The mask a signal frame for `tid` saves (and `rt_sigreturn` puts
    /// back): the one `rt_sigsuspend` replaced, if it did, else the
    /// current one.
    pub fn frame_mask(&mut self, tid: u32) -> u64 {
        match self.suspended_masks.remove(&tid) {
            Some(m) => m,
            None => self.mask(tid),
        }
    }

    /// Ends a suspension that no handler ran for: the old mask returns.
    pub fn end_suspend(&mut self, tid: u32) {
        if let Some(m) = self.suspended_masks.remove(&tid) {
            self.set_mask(tid, m);
        }
    }

    /// A thread `child` was created by `parent`: it inherits the mask.
    pub fn thread_created(&mut self, parent: u32, child: u32) {
        let mask = self.mask(parent);
        self.masks.insert(child, mask);
        self.alt_stacks.remove(&child);
    }

    /// How many threads the process has, its main thread `main`
    /// included (every other thread got a mask when created).
    pub fn thread_count(&self, main: u32) -> usize {
        self.masks.keys().filter(|&&t| t != main).count() + 1
    }

    /// Thread `tid` exited: forget its state.
    pub fn thread_exited(&mut self, tid: u32) {
        self.masks.remove(&tid);
        self.thread_pending.remove(&tid);
        self.alt_stacks.remove(&tid);
    }

    /// The state of a forked child whose one thread `child` copies
    /// `parent`: the same actions, `parent`'s mask, nothing pending, no
    /// alternate stack (Linux keeps the alternate stack of the forking
    /// thread; it lives in memory the child has a copy of).
    pub fn forked(&self, parent: u32, child: u32) -> Self {
        let mut s = Self {
            actions: self.actions.clone(),
            ..Self::default()
        };
        s.masks.insert(child, self.mask(parent));
        if let Some(alt) = self.alt_stacks.get(&parent) {
            s.alt_stacks.insert(child, *alt);
        }
        s
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_summary_follows_every_unlock() {
        let signals = Signals::new();
        assert!(!signals.maybe_pending());
        let handled = SigAction {
            handler: 0x1000,
            ..SigAction::default()
        };
        signals.lock().set_action(2, handled).unwrap();
        assert!(!signals.maybe_pending(), "an action is not a signal");
        signals.lock().send_to_thread(7, 2).unwrap();
        assert!(signals.maybe_pending(), "a thread's signal");
        assert!(signals.lock().take_deliverable(7).is_some());
        assert!(!signals.maybe_pending(), "taken");
        signals.lock().send_to_process(2).unwrap();
        assert!(signals.maybe_pending(), "the process's signal");
        signals.lock().set_mask(7, sig_bit(2));
        assert!(signals.maybe_pending(), "blocked is still pending");
        assert!(signals.lock().take_deliverable(7).is_none());
        signals.lock().set_mask(7, 0);
        assert!(signals.lock().take_deliverable(7).is_some());
        assert!(!signals.maybe_pending());
    }

    const SIGUSR1: u32 = 10;
    const SIGALRM: u32 = 14;
    const SIGCHLD: u32 = 17;

    #[test]
    fn pending_signals_are_taken_lowest_first_respecting_masks() {
        let mut s = SignalState::new();
        let handler = SigAction {
            handler: 0x1000,
            ..SigAction::default()
        };
        s.set_action(SIGALRM, handler).unwrap();
        s.send_to_process(SIGALRM).unwrap();
        s.send_to_thread(2, SIGUSR1).unwrap();
        assert!(s.has_deliverable(1) && s.has_deliverable(2));
        // Thread 2 takes its own signal first.
        assert_eq!(s.take_deliverable(2).map(|d| d.0), Some(SIGUSR1));
        s.set_mask(2, sig_bit(SIGALRM));
        assert_eq!(s.take_deliverable(2), None, "masked");
        assert_eq!(s.take_deliverable(1), Some((SIGALRM, handler)));
        assert_eq!(s.take_deliverable(1), None);
        assert!(!s.has_deliverable(2));
    }

    #[test]
    fn ignored_signals_are_discarded_on_sending() {
        let mut s = SignalState::new();
        s.send_to_process(SIGCHLD).unwrap();
        assert_eq!(s.pending(1), 0, "SIGCHLD is ignored by default");
        s.set_action(
            SIGUSR1,
            SigAction {
                handler: SIG_IGN,
                ..SigAction::default()
            },
        )
        .unwrap();
        s.send_to_thread(1, SIGUSR1).unwrap();
        assert_eq!(s.pending(1), 0);
        assert!(s.send_to_thread(1, 65).is_err());
        assert_eq!(default_action(SIGALRM), DefaultAction::Terminate);
        s.send_to_thread(3, SIGALRM).unwrap();
        s.thread_exited(3);
        assert_eq!(s.pending(3), 0);
    }

    #[test]
    fn a_pending_signal_keeps_its_first_sender_until_delivered() {
        const SIGHUP: u32 = 1;
        let mut s = SignalState::new();
        s.set_action(
            SIGHUP,
            SigAction {
                handler: 0x1000,
                ..SigAction::default()
            },
        )
        .unwrap();
        s.send_to_process_from(SIGHUP, 7).unwrap();
        s.send_to_process_from(SIGHUP, 8).unwrap();
        assert_eq!(s.take_deliverable(1).map(|(sig, _)| sig), Some(SIGHUP));
        assert_eq!(s.take_origin(SIGHUP), Some(Origin::Process(7)));
        assert_eq!(s.take_origin(SIGHUP), None);
        // Raised by the kernel: no sender.
        s.send_to_process(SIGHUP).unwrap();
        assert_eq!(s.take_origin(SIGHUP), None);
    }
}
