//! The kernel-stack switch between threads: [`SwitchContext`] (a thread's
//! kernel stack, saved stack pointer and FPU image) and the safe
//! [`start`]/[`switch_to`] the scheduler (`crate::task`) drives, which keep
//! the running context and the one just switched out alive across the
//! switch (as Linux's `finish_task_switch` drops the previous task).

use alloc::sync::Arc;
use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;

use super::fpu::FpuState;
use super::mm::stack::{self, KernelStack};
use super::smp::MAX_CPUS;

global_asm!(
    r#"
    .text
    .global task_switch
task_switch:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

unsafe extern "C" {
    /// Saves the callee-saved registers and stack pointer into `*save_rsp`
    /// and resumes the thread whose saved stack pointer is `next_rsp`.
    fn task_switch(save_rsp: *mut u64, next_rsp: u64);
}

/// Switches from the running kernel stack to `next_rsp`.
///
/// # Safety
/// `save_rsp` must stay valid until this thread is resumed, and `next_rsp`
/// must be a value saved by an earlier switch (or [`initial_frame`]) for a
/// thread that is not running.
unsafe fn switch(save_rsp: *mut u64, next_rsp: u64) {
    // SAFETY: the caller's contract; `task_switch` follows the C ABI.
    unsafe { task_switch(save_rsp, next_rsp) }
}

/// Prepares a fresh stack whose first switch "returns" into `entry` with a
/// call-aligned stack; returns the stack pointer to switch to.
///
/// # Safety
/// `top` must be the 16-byte-aligned top of a mapped stack of at least one
/// page that nothing else uses.
unsafe fn initial_frame(top: u64, entry: extern "C" fn() -> !) -> u64 {
    let words: [u64; 8] = [0, 0, 0, 0, 0, 0, entry as usize as u64, 0];
    let rsp = top - 8 * words.len() as u64;
    // SAFETY: the caller guarantees `rsp .. top` is mapped, writable and
    // unused. Layout (low to high): r15 r14 r13 r12 rbp rbx, the return
    // address, and a zero "return address" of `entry` itself so that `entry`
    // starts with rsp ≡ 8 (mod 16) as after a call.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), rsp as *mut u64, words.len()) };
    rsp
}

/// What the scheduler switches between: anything that holds a
/// [`SwitchContext`] (the scheduler's threads).
pub trait Switchable: Send + Sync {
    /// The thread's kernel-side CPU state.
    fn switch_context(&self) -> &SwitchContext;
}

/// A thread's kernel-side CPU state: its own kernel stack, the stack
/// pointer and FPU image saved while it is switched out, and whether it
/// runs. Made only by [`SwitchContext::new`] (on a stack it allocates) and
/// switched only by [`start`] and [`switch_to`], which check the states
/// that make the switch sound: the context switching out is the one on the
/// CPU, the one switching in is not and was never retired.
pub struct SwitchContext {
    saved_rsp: UnsafeCell<u64>,
    fpu: UnsafeCell<FpuState>,
    /// Set while this context runs on the CPU.
    on_cpu: AtomicBool,
    /// Set once its stack was freed: it never runs again.
    retired: AtomicBool,
    stack: KernelStack,
    entry: fn() -> !,
}

// SAFETY: the cells are touched only by `start` and `switch_to`, with
// interrupts off and (with several CPUs) under the big kernel lock, which
// the switching CPU holds until the switch is complete: the context
// switching out is the one on this CPU (`on_cpu`), the one switching in
// runs nowhere, so no two accesses overlap. Everything else is atomic or immutable.
unsafe impl Sync for SwitchContext {}

impl core::fmt::Debug for SwitchContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SwitchContext")
            .field("on_cpu", &self.on_cpu.load(Ordering::Relaxed))
            .field("retired", &self.retired.load(Ordering::Relaxed))
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

impl SwitchContext {
    /// A context on a fresh kernel stack of `stack_pages` pages whose first
    /// switch runs `entry` with `fpu` loaded; `None` without memory.
    pub fn new(stack_pages: u64, entry: fn() -> !, fpu: FpuState) -> Option<Self> {
        let stack = stack::alloc(stack_pages)?;
        // SAFETY: the stack was just allocated and mapped, 16-byte aligned
        // at its top, and nothing else has it.
        let rsp = unsafe { initial_frame(stack.top, first_entry) };
        Some(Self {
            saved_rsp: UnsafeCell::new(rsp),
            fpu: UnsafeCell::new(fpu),
            on_cpu: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            stack,
            entry,
        })
    }

    /// Its kernel stack (for diagnostics).
    pub fn stack(&self) -> KernelStack {
        self.stack
    }

    /// Whether it runs on a CPU now (the scheduler skips it then).
    pub fn is_on_cpu(&self) -> bool {
        self.on_cpu.load(Ordering::Acquire)
    }

    /// Frees the stack of a context that will never run again (a thread
    /// that exited and switched away for good); switching to it afterwards
    /// stops the kernel.
    ///
    /// # Panics
    /// If the context is running.
    pub fn retire(&self) {
        assert!(
            !self.on_cpu.load(Ordering::Acquire),
            "retiring the running context"
        );
        if !self.retired.swap(true, Ordering::AcqRel) {
            // SAFETY: not on the CPU, and `retired` makes every later
            // switch to it panic, so nothing runs on the stack again; only
            // the saved stack pointer pointed into it.
            unsafe { stack::free(&self.stack) };
        }
    }

    /// Marks the context running, for the switch into it.
    fn claim_cpu(&self) {
        assert!(
            !self.retired.load(Ordering::Acquire),
            "switching to a retired context"
        );
        assert!(
            !self.on_cpu.swap(true, Ordering::AcqRel),
            "switching to a running context"
        );
    }
}

impl Drop for SwitchContext {
    fn drop(&mut self) {
        // The running context is held by `CURRENT`, so it is never dropped.
        self.retire();
    }
}

/// A per-CPU slot holding a context.
type Slot = Mutex<Option<Arc<dyn Switchable>>>;

/// Each CPU's running context (none while its boot stack runs).
static CURRENT: [Slot; MAX_CPUS] = [const { Mutex::new(None) }; MAX_CPUS];
/// The context that just switched out on each CPU, kept alive until the
/// switch is complete and dropped by the next one ([`finish_switch`]; a
/// switch starts and ends on one CPU).
static PREVIOUS: [Slot; MAX_CPUS] = [const { Mutex::new(None) }; MAX_CPUS];

/// This CPU's slot in `slots`.
fn mine(slots: &'static [Slot; MAX_CPUS]) -> &'static Slot {
    &slots[super::smp::cpu_index() % MAX_CPUS]
}

/// The end of every switch, on the stack switched to.
fn finish_switch() {
    let previous = mine(&PREVIOUS).lock().take();
    drop(previous);
}

/// Where a new context's first switch lands: finish the switch, then run
/// the context's entry.
extern "C" fn first_entry() -> ! {
    finish_switch();
    let entry = mine(&CURRENT)
        .lock()
        .as_ref()
        .map(|c| c.switch_context().entry)
        .expect("a context runs");
    entry()
}

/// Starts running `first`, leaving the boot stack for good. Call with
/// interrupts off.
///
/// # Panics
/// If a context already runs, or `first` is running or retired.
pub fn start(first: Arc<dyn Switchable>) -> ! {
    assert!(
        !super::interrupts::are_enabled(),
        "switch with interrupts on"
    );
    assert!(
        mine(&CURRENT).lock().is_none(),
        "start after the first switch"
    );
    let ctx = first.switch_context();
    ctx.claim_cpu();
    // SAFETY: `ctx` was not running (`claim_cpu`), so its FPU image and
    // saved stack pointer are no one else's, and the latter is a resume
    // point made by `initial_frame` or a switch.
    let to = unsafe {
        (*ctx.fpu.get()).restore();
        *ctx.saved_rsp.get()
    };
    *mine(&CURRENT).lock() = Some(first);
    let mut boot_rsp = 0u64;
    // SAFETY: `boot_rsp` receives the boot stack's pointer, which is never
    // resumed; `to` is a valid resume point of a context that now runs.
    unsafe { switch(&mut boot_rsp, to) };
    unreachable!("the boot stack is never resumed")
}

/// Switches from the running context to `next` and returns when the
/// running context is switched to again (never, for one that exited).
/// Call with interrupts off; a switch to the running context itself
/// returns at once.
///
/// # Panics
/// Before [`start`], or if `next` is retired.
pub fn switch_to(next: Arc<dyn Switchable>) {
    assert!(
        !super::interrupts::are_enabled(),
        "switch with interrupts on"
    );
    let next_ctx: *const SwitchContext = next.switch_context();
    let me = {
        let mut current = mine(&CURRENT).lock();
        let me = current.take().expect("switch_to before start");
        if core::ptr::eq(me.switch_context(), next_ctx) {
            *current = Some(me);
            return;
        }
        *current = Some(next);
        me
    };
    // SAFETY: `CURRENT` holds `next` (so the context lives) from here
    // until `next` itself switches away, which is after this switch.
    let next_ctx = unsafe { &*next_ctx };
    next_ctx.claim_cpu();
    let me_ctx = me.switch_context();
    assert!(
        me_ctx.on_cpu.swap(false, Ordering::AcqRel),
        "the running context was not marked running"
    );
    let save = me_ctx.saved_rsp.get();
    // SAFETY:
    // 1. `me_ctx` is the running context: its FPU image is ours to save;
    // 2. `next_ctx` is not running (`claim_cpu`): its FPU image is valid
    //    (made by `new` or saved by its last switch) and its saved stack
    //    pointer a resume point made by `initial_frame` or a switch.
    let to = unsafe {
        (*me_ctx.fpu.get()).save();
        (*next_ctx.fpu.get()).restore();
        *next_ctx.saved_rsp.get()
    };
    // `me` stays alive until the next context finished the switch; no
    // reference to any context stays on this stack across it (a context
    // that exited is never resumed, and must not keep one alive).
    let stale = mine(&PREVIOUS).lock().replace(me);
    drop(stale);
    // SAFETY: `save` points into `me`'s context, alive until
    // `finish_switch` runs on the other side, after the switch wrote it;
    // `to` is a valid resume point of a context not running until now.
    unsafe { switch(save, to) };
    finish_switch();
}
