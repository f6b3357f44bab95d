//! The interrupt table: who handles which vector, and the hooks the trap
//! path calls, registered by the subsystems at boot, so that
//! [`super::trap`] names none of them.
//!
//! - Device interrupts ([`register`]): the timer, the network card, the
//!   console line. The trap path calls the handler, then signals the end
//!   of the interrupt to the local APIC; an unregistered vector is logged
//!   and acknowledged.
//! - Exceptions ([`set_hooks`]): the resolution of a kernel access to a
//!   lazy user page (mm), the record of a fatal exception (audit), the
//!   failure report of an in-guest test (ktest), the host's stop request
//!   (NMI) and the end of the guest after a fatal exception.
//!
//! Handlers and hooks are plain `fn` pointers written once at boot, before
//! interrupts are enabled, and read lock-free from interrupt context.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A device-interrupt handler (runs with interrupts off, in the context of
/// whatever was interrupted — kernel or user).
pub type Handler = fn();

/// Handlers by vector, as `fn` addresses (0: none).
static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

/// Makes `handler` the handler of `vector` (replacing any before).
pub fn register(vector: u8, handler: Handler) {
    HANDLERS[usize::from(vector)].store(handler as usize, Ordering::Release);
}

/// The handler of `vector`, if one is registered.
pub fn handler(vector: u64) -> Option<Handler> {
    let slot = HANDLERS.get(usize::try_from(vector).ok()?)?;
    match slot.load(Ordering::Acquire) {
        0 => None,
        addr => {
            // SAFETY: only `register` stores non-zero values, and it stores
            // the address of a `fn()`; function pointers and `usize` have
            // the same size on x86_64.
            Some(unsafe { core::mem::transmute::<usize, Handler>(addr) })
        }
    }
}

/// What the trap path asks the rest of the kernel (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// A kernel-mode page fault at `cr2` with `error_code`: `true` if it
    /// was a lazy user page now present (the access is retried).
    pub kernel_page_fault: fn(cr2: u64, error_code: u64) -> bool,
    /// A fatal kernel exception, before the guest ends: record it.
    pub fatal_exception: fn(vector: u8, error_code: u64, rip: u64, cr2: u64),
    /// The guest ends after a fatal exception: report (in-guest tests).
    pub before_fatal_exit: fn(),
    /// The host asked the guest to stop (NMI). Does not return.
    pub host_stop: fn() -> !,
    /// Ends the guest as failed. Does not return.
    pub fatal_exit: fn() -> !,
}

static HOOKS: spin::Once<Hooks> = spin::Once::new();

/// Installs the hooks (once; later calls are ignored).
pub fn set_hooks(hooks: Hooks) {
    HOOKS.call_once(|| hooks);
}

/// The hooks, once installed.
pub fn hooks() -> Option<&'static Hooks> {
    HOOKS.get()
}
