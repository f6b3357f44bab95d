//! [`SyscallTable`]: the one dispatch table, and the one place where a
//! handler's result becomes the value returned to user space.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::args::SyscallArgs;
use super::names::{SYSCALL_COUNT, syscall_name};
use crate::error::{Errno, Result};
use crate::process::Process;

/// A syscall handler: returns the non-negative result or an error.
pub type Handler = fn(&Process, &SyscallArgs) -> Result<usize>;

/// Told about syscalls as they complete (for `--trace` and audit) and
/// about unsupported ones (to log them once by name).
pub trait SyscallObserver: Send + Sync {
    /// Syscall `nr` has no handler; `-ENOSYS` is returned. `first_time` is
    /// set on the first occurrence of this number.
    fn unsupported(&self, nr: usize, name: Option<&'static str>, first_time: bool);
    /// A syscall finished with `ret` (negative errno on failure).
    fn completed(&self, _args: &SyscallArgs, _ret: isize) {}
    /// Whether [`SyscallObserver::completed`] is to be called at all
    /// (asked once, when the observer is set: the call is on every
    /// syscall's path).
    fn wants_completions(&self) -> bool {
        true
    }
}

/// Syscall number → handler.
pub struct SyscallTable {
    handlers: Vec<Option<Handler>>,
    reported: Vec<AtomicBool>,
    observer: Option<Arc<dyn SyscallObserver>>,
    /// The observer's [`SyscallObserver::wants_completions`].
    observe_completions: bool,
}

impl core::fmt::Debug for SyscallTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyscallTable")
            .field("supported", &self.supported().count())
            .finish_non_exhaustive()
    }
}

impl Default for SyscallTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SyscallTable {
    /// A table with no handlers.
    pub fn empty() -> Self {
        Self {
            handlers: vec![None; SYSCALL_COUNT],
            reported: (0..SYSCALL_COUNT).map(|_| AtomicBool::new(false)).collect(),
            observer: None,
            observe_completions: false,
        }
    }

    /// A table with every family the LibOS implements.
    ///
    /// # Panics
    /// Never: every family's numbers are below [`SYSCALL_COUNT`] (tested).
    pub fn new() -> Self {
        let mut t = Self::empty();
        let families = super::families();
        for &(nr, _, handler) in families.into_iter().flatten() {
            t.register(nr, handler);
        }
        t
    }

    /// Installs `handler` for `nr`, returning the one it replaces.
    ///
    /// # Panics
    /// If `nr` is not below [`SYSCALL_COUNT`] (a programming error).
    pub fn register(&mut self, nr: usize, handler: Handler) -> Option<Handler> {
        self.handlers[nr].replace(handler)
    }

    /// Sets the observer told about unsupported and completed syscalls.
    pub fn set_observer(&mut self, observer: Arc<dyn SyscallObserver>) {
        self.observe_completions = observer.wants_completions();
        self.observer = Some(observer);
    }

    /// Whether `nr` has a handler.
    pub fn is_supported(&self, nr: usize) -> bool {
        self.handlers.get(nr).is_some_and(Option::is_some)
    }

    /// The numbers that have handlers, ascending.
    pub fn supported(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.handlers.len()).filter(|&nr| self.is_supported(nr))
    }

    /// Runs syscall `nr` and returns the value for `rax`: the result, or
    /// `-errno` as two's complement.
    #[inline]
    pub fn dispatch(&self, process: &Process, nr: usize, raw: [u64; 6]) -> u64 {
        self.dispatch_args(process, &SyscallArgs::new(nr, raw))
    }

    /// [`Self::dispatch`] of arguments already gathered (the kernel's run
    /// loop builds them straight from the user registers).
    #[inline]
    pub fn dispatch_args(&self, process: &Process, args: &SyscallArgs) -> u64 {
        let nr = args.nr;
        let result = match self.handlers.get(nr).copied().flatten() {
            Some(handler) => handler(process, args),
            None => {
                let first_time = self
                    .reported
                    .get(nr)
                    .is_none_or(|r| !r.swap(true, Ordering::Relaxed));
                if let Some(o) = &self.observer {
                    o.unsupported(nr, syscall_name(nr), first_time);
                }
                Err(Errno::ENOSYS.into())
            }
        };
        let ret = to_return_value(result);
        if self.observe_completions
            && let Some(o) = &self.observer
        {
            o.completed(args, ret as isize);
        }
        ret
    }
}

/// The single conversion of a handler result to a syscall return value.
fn to_return_value(result: Result<usize>) -> u64 {
    match result {
        // Results above isize::MAX would read as errors; no handler makes them.
        Ok(v) => v as u64,
        Err(e) => e.errno().as_syscall_return() as u64,
    }
}
