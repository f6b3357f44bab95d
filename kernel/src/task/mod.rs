//! Threads of the application and the scheduler that shares the CPUs
//! between them.
//!
//! With several CPUs (`arch::smp::threads_on_aps`) each CPU has its own
//! running thread ([`current`]) and picks the next from the one shared run
//! queue, skipping threads that run on another CPU; all of this runs under
//! the big kernel lock (`arch::smp::bkl`), which only user mode runs
//! without. An AP with nothing to run halts; a thread that may now run
//! on an idle CPU wakes it ([`wake_idle_cpus`]).
//!
//! Each user thread has its own kernel stack; the kernel code for a thread
//! (its syscall handlers, its blocking waits) runs on that stack, and
//! [`yield_now`] switches stacks. The policy is round robin:
//! - user code is preempted on every timer tick (the run loop calls
//!   [`yield_now`] when `execute` returns for the timer interrupt);
//! - kernel code is never preempted (interrupts are off in the kernel except
//!   while idling), so spin locks held across no yield are safe;
//! - a blocking wait ([`block_until`]) marks the thread blocked and
//!   re-checks its condition when it is picked again. A blocked thread is
//!   picked only when something may have changed: a *generic* wait after
//!   the wake epoch moved ([`bump_epoch`]: any thread's system call, an
//!   interrupt), a wait *on a flag* ([`block_on_flag`], futexes) once the
//!   flag is set or a signal is pending for it ([`set_signal_check`]), and
//!   any wait once its deadline passed. Picking skips the others without
//!   switching to them, so thousands of parked threads cost a scan of
//!   atomics, not thousands of context switches. When no thread can be
//!   picked the CPU halts until the next interrupt, so an idle program
//!   costs no CPU.
//!
//! Threads that exit are dropped from the run queue at the next switch by
//! another thread, and their kernel stacks' frames are freed then (nothing
//! runs on a dead thread's stack after its last switch).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use crate::arch::fpu::FpuState;
use crate::arch::smp::{self, MAX_CPUS};
use crate::arch::switch::{self, SwitchContext, Switchable};
use crate::arch::user::UserContext;
use crate::mm::stack::KernelStack;

/// Pages of each thread's kernel stack.
const THREAD_STACK_PAGES: u64 = 16;

/// A thread's scheduling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Running or ready to run.
    Runnable = 0,
    /// Waiting in [`block_until`].
    Blocked = 1,
    /// Exited; never runs again.
    Dead = 2,
}

/// A user thread.
pub struct Thread {
    /// Thread id (the main thread's equals the pid).
    pub tid: u32,
    /// User registers; only this thread's kernel code touches them.
    /// The user registers, lent to the thread's own kernel code
    /// ([`Thread::with_context`]).
    ctx: Mutex<UserContext>,
    /// The kernel stack, saved stack pointer and FPU image.
    switch: SwitchContext,
    /// The user's FS base (TLS), loaded on every switch to this thread.
    fs_base: AtomicU64,
    /// Its process's address space (`mm::space`; 0: the kernel's), loaded
    /// on every switch to this thread.
    address_space: AtomicU64,
    state: AtomicU8,
    /// `set_tid_address`/`CLONE_CHILD_CLEARTID`: zeroed and woken at exit.
    pub clear_child_tid: AtomicU64,
    /// `set_robust_list` head, kept for `get_robust_list`.
    pub robust_list: AtomicU64,
    /// The thread asked to end (`exit`): it leaves at its next return to
    /// its run loop, which drops what it holds first.
    pub leaving: AtomicBool,
    /// While blocked: the wake epoch its condition was last checked at.
    seen_epoch: AtomicU64,
    /// While blocked: the monotonic deadline (`u64::MAX`: none).
    deadline_ns: AtomicU64,
    /// While blocked on a flag: the flag ([`block_on_flag`]).
    wait_flag: Mutex<Option<Arc<AtomicBool>>>,
    /// CPU time used before the current run (ns).
    cpu_ns: AtomicU64,
    /// When the current run began (monotonic ns; moved past idle halts).
    ran_since: AtomicU64,
}

impl Switchable for Thread {
    fn switch_context(&self) -> &SwitchContext {
        &self.switch
    }
}

impl core::fmt::Debug for Thread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Thread")
            .field("tid", &self.tid)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Thread {
    /// Runs `f` with the thread's user registers: the safe way for the
    /// thread's own kernel code (the LibOS glue in `run`) to reach them.
    /// A second loan while one is out is a kernel bug and stops the kernel
    /// rather than alias the registers.
    pub fn with_context<R>(&self, f: impl FnOnce(&mut UserContext) -> R) -> R {
        let mut ctx = self
            .ctx
            .try_lock()
            .unwrap_or_else(|| panic!("thread {}: user registers lent twice", self.tid));
        f(&mut ctx)
    }

    /// Its kernel stack (for diagnostics).
    pub fn stack(&self) -> KernelStack {
        self.switch.stack()
    }

    /// The scheduling state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Runnable,
            1 => State::Blocked,
            _ => State::Dead,
        }
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Sets the FS base, now if this thread is running.
    pub fn set_fs_base(&self, base: u64) {
        self.fs_base.store(base, Ordering::Relaxed);
        if current().is_some_and(|c| c.tid == self.tid) {
            crate::arch::cpu::set_fs_base(base);
        }
    }

    /// The FS base.
    pub fn fs_base(&self) -> u64 {
        self.fs_base.load(Ordering::Relaxed)
    }

    /// Sets the address space the thread runs in (before it first runs).
    pub fn set_address_space(&self, root: u64) {
        self.address_space.store(root, Ordering::Relaxed);
    }

    /// The address space the thread runs in.
    pub fn address_space(&self) -> u64 {
        self.address_space.load(Ordering::Relaxed)
    }
}

struct Scheduler {
    threads: Vec<Arc<Thread>>,
}

static SCHED: Mutex<Scheduler> = Mutex::new(Scheduler {
    threads: Vec::new(),
});
/// Each CPU's running thread.
static RUNNING: [Mutex<Option<Arc<Thread>>>; MAX_CPUS] = [const { Mutex::new(None) }; MAX_CPUS];

/// This CPU's running-thread slot.
fn running_slot() -> &'static Mutex<Option<Arc<Thread>>> {
    &RUNNING[smp::cpu_index() % MAX_CPUS]
}
static NEXT_TID: AtomicU32 = AtomicU32::new(1);
/// Moves whenever a blocked thread's condition may have changed.
static WAKE_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Dead threads still in the run queue (reaped at the next switch).
static DEAD: AtomicUsize = AtomicUsize::new(0);
/// CPU time of threads that have been reaped (ns).
static REAPED_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// CPU time the running thread has used (ns): its past runs plus the
/// current one, idle halts excluded.
pub fn current_cpu_ns() -> u64 {
    current().map_or(0, |t| cpu_of(&t, true))
}

/// CPU time of every thread of the program, reaped ones included (ns).
pub fn process_cpu_ns() -> u64 {
    let s = SCHED.lock();
    let live: u64 = s
        .threads
        .iter()
        .map(|t| cpu_of(t, t.switch.is_on_cpu()))
        .sum();
    REAPED_CPU_NS.load(Ordering::Relaxed) + live
}

fn cpu_of(t: &Thread, running: bool) -> u64 {
    let past = t.cpu_ns.load(Ordering::Relaxed);
    if running && t.state() != State::Dead {
        past + crate::time::now_ns().saturating_sub(t.ran_since.load(Ordering::Relaxed))
    } else {
        past
    }
}
/// Whether a signal is pending that must end thread `tid`'s wait.
static SIGNAL_CHECK: spin::Once<fn(u32) -> bool> = spin::Once::new();
/// Run before an idle CPU halts (the wall clock's upkeep).
static IDLE_HOOK: spin::Once<fn()> = spin::Once::new();
/// What a new thread runs (the LibOS run loop).
static ENTRY: spin::Once<fn(Arc<Thread>) -> !> = spin::Once::new();

/// Why a thread could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// As many threads as the memory allows exist ([`max_threads`]).
    Limit,
    /// No memory for its kernel stack.
    NoMemory,
}

/// The most live threads: Linux's `threads-max` rule, RAM / 128 KiB
/// (one 16 KiB kernel stack per 8 × its size).
pub fn max_threads() -> usize {
    (crate::mm::frames::total_bytes() / (128 << 10)) as usize
}

/// Something a blocked thread waits for may have changed (a system call
/// completed, an interrupt arrived): generic waits get re-checked.
pub fn bump_epoch() {
    WAKE_EPOCH.fetch_add(1, Ordering::Release);
}

/// Sets what an idle CPU runs before it halts.
pub fn set_idle_hook(hook: fn()) {
    IDLE_HOOK.call_once(|| hook);
}

/// Sets the test for a pending signal that ends a wait on a flag.
pub fn set_signal_check(check: fn(u32) -> bool) {
    SIGNAL_CHECK.call_once(|| check);
}

/// Whether `t` may run now (see the module docs); `epoch` and `now` are
/// read once per scan.
fn eligible(t: &Thread, epoch: u64, now: u64) -> bool {
    match t.state() {
        State::Runnable => true,
        State::Dead => false,
        State::Blocked => {
            if now >= t.deadline_ns.load(Ordering::Relaxed) {
                return true;
            }
            match &*t.wait_flag.lock() {
                None => t.seen_epoch.load(Ordering::Acquire) != epoch,
                Some(flag) => {
                    flag.load(Ordering::Acquire)
                        || SIGNAL_CHECK.get().is_some_and(|check| check(t.tid))
                }
            }
        }
    }
}

/// Sets the function every new thread runs on its kernel stack.
pub fn set_entry(entry: fn(Arc<Thread>) -> !) {
    ENTRY.call_once(|| entry);
}

/// The running thread, once the first has started.
pub fn current() -> Option<Arc<Thread>> {
    running_slot().lock().clone()
}

/// The live thread with id `tid`.
pub fn find(tid: u32) -> Option<Arc<Thread>> {
    SCHED
        .lock()
        .threads
        .iter()
        .find(|t| t.tid == tid && t.state() != State::Dead)
        .cloned()
}

/// The running thread, for code that only runs on one (syscall handlers).
///
/// # Panics
/// Before the first thread starts.
pub fn current_thread() -> Arc<Thread> {
    current().expect("called on a thread")
}

/// Number of live threads.
pub fn thread_count() -> usize {
    let s = SCHED.lock();
    s.threads.len() - DEAD.load(Ordering::Relaxed).min(s.threads.len())
}

fn thread_start() -> ! {
    let me = current_thread();
    let entry = ENTRY
        .get()
        .expect("task::set_entry before the first thread");
    entry(me)
}

/// Creates a runnable thread that will enter user mode with `ctx`, `fpu`
/// and FS base `fs_base`. Returns its tid.
pub fn spawn(ctx: UserContext, fpu: FpuState, fs_base: u64) -> Result<u32, SpawnError> {
    if thread_count() >= max_threads() {
        return Err(SpawnError::Limit);
    }
    // A kernel stack comes from the kernel's memory, but the program asks
    // for it: leave the kernel's reserve alone.
    let needed = crate::mm::frames::kernel_reserve_frames() + THREAD_STACK_PAGES as usize;
    if crate::mm::frames::free_frames() < needed {
        return Err(SpawnError::NoMemory);
    }
    let switch =
        SwitchContext::new(THREAD_STACK_PAGES, thread_start, fpu).ok_or(SpawnError::NoMemory)?;
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    // A new thread runs in its creator's address space unless told
    // otherwise (`Thread::set_address_space`, for a forked process).
    let space = current().map_or(0, |c| c.address_space());
    let t = Arc::new(Thread {
        tid,
        ctx: Mutex::new(ctx),
        switch,
        fs_base: AtomicU64::new(fs_base),
        address_space: AtomicU64::new(space),
        state: AtomicU8::new(State::Runnable as u8),
        clear_child_tid: AtomicU64::new(0),
        robust_list: AtomicU64::new(0),
        leaving: AtomicBool::new(false),
        seen_epoch: AtomicU64::new(0),
        deadline_ns: AtomicU64::new(u64::MAX),
        wait_flag: Mutex::new(None),
        cpu_ns: AtomicU64::new(0),
        ran_since: AtomicU64::new(0),
    });
    crate::arch::interrupts::without_interrupts(|| SCHED.lock().threads.push(t));
    wake_idle_cpus();
    Ok(tid)
}

/// Starts the first spawned thread; the boot stack is abandoned.
/// With several CPUs, the APs take threads from here on (under the big
/// kernel lock, which this CPU then holds).
pub fn start() -> ! {
    crate::arch::interrupts::disable();
    let first = SCHED
        .lock()
        .threads
        .first()
        .cloned()
        .expect("a thread to start");
    if smp::threads_on_aps() {
        smp::tlb::note_loaded(crate::mm::space::current());
        smp::bkl::activate();
        crate::kprintln!("cpus: threads run on {} CPUs", smp::thread_cpus());
    }
    run_first(first)
}

/// Makes `t` this CPU's running thread and switches to it from the boot
/// or idle stack, which is left for good.
fn run_first(t: Arc<Thread>) -> ! {
    *running_slot().lock() = Some(t.clone());
    t.ran_since.store(crate::time::now_ns(), Ordering::Relaxed);
    crate::arch::cpu::set_fs_base(t.fs_base());
    crate::mm::space::activate(t.address_space());
    smp::note_thread_run();
    switch::start(t)
}

/// An idle AP (holding the big kernel lock, interrupts off): runs a
/// thread that may run and is on no CPU, leaving the idle stack; returns
/// if there is none.
pub fn run_here() {
    let next = {
        let s = SCHED.lock();
        let (epoch, now) = (WAKE_EPOCH.load(Ordering::Acquire), crate::time::now_ns());
        s.threads
            .iter()
            .find(|t| !t.switch.is_on_cpu() && eligible(t, epoch, now))
            .cloned()
    };
    if let Some(t) = next {
        run_first(t)
    }
}

/// Wakes idle CPUs if a thread may run that no CPU runs, or that halts
/// on an idle CPU. With one CPU, or none idle, one relaxed load (inline:
/// it runs after every system call).
#[inline(always)]
pub fn wake_idle_cpus() {
    if smp::any_idle() {
        wake_idle_cpus_slow();
    }
}

#[inline(never)]
fn wake_idle_cpus_slow() {
    let waiting = {
        let s = SCHED.lock();
        let (epoch, now) = (WAKE_EPOCH.load(Ordering::Acquire), crate::time::now_ns());
        s.threads.iter().any(|t| {
            (t.state() == State::Blocked || !t.switch.is_on_cpu()) && eligible(t, epoch, now)
        })
    };
    if waiting {
        smp::wake_idle();
    }
}

/// Switches to the next thread that may run ([`eligible`], round robin);
/// returns `false` if there is none besides the caller. Dead threads other
/// than the caller leave the run queue here.
pub fn yield_now() -> bool {
    crate::arch::interrupts::disable();
    let me = current_thread();
    let (me, next) = {
        let mut s = SCHED.lock();
        let mut cur = s
            .threads
            .iter()
            .position(|t| Arc::ptr_eq(t, &me))
            .expect("the running thread is queued");
        if DEAD.load(Ordering::Relaxed) > 0 {
            // Drop threads that have exited and switched away for good
            // (a dead thread another CPU still halts on stays).
            let mut index = 0;
            let mut reaped = 0;
            s.threads.retain(|t| {
                let reap =
                    t.state() == State::Dead && !Arc::ptr_eq(t, &me) && !t.switch.is_on_cpu();
                if reap {
                    REAPED_CPU_NS.fetch_add(t.cpu_ns.load(Ordering::Relaxed), Ordering::Relaxed);
                    // A dead thread other than the running one made its
                    // last switch already: its stack's frames go back now
                    // (references its frames still held are never
                    // dropped, so they do not keep the stack).
                    t.switch.retire();
                    reaped += 1;
                } else {
                    if Arc::ptr_eq(t, &me) {
                        cur = index;
                    }
                    index += 1;
                }
                !reap
            });
            DEAD.fetch_sub(reaped, Ordering::Relaxed);
        }
        let n = s.threads.len();
        let (epoch, now) = (WAKE_EPOCH.load(Ordering::Acquire), crate::time::now_ns());
        let next = (1..n).map(|k| (cur + k) % n).find(|&i| {
            let t = &s.threads[i];
            !t.switch.is_on_cpu() && eligible(t, epoch, now)
        });
        match next {
            None => return false,
            Some(i) => (me, s.threads[i].clone()),
        }
    };
    *running_slot().lock() = Some(next.clone());
    // CPU time: `me`'s run ends, `next`'s begins.
    let now = crate::time::now_ns();
    let ran = now.saturating_sub(me.ran_since.load(Ordering::Relaxed));
    me.cpu_ns.fetch_add(ran, Ordering::Relaxed);
    next.ran_since.store(now, Ordering::Relaxed);
    crate::arch::cpu::set_fs_base(next.fs_base());
    crate::mm::space::activate(next.address_space());
    smp::note_thread_run();
    // No reference to a thread stays on this stack across the switch: a
    // thread that exited never comes back to drop it.
    drop(me);
    switch::switch_to(next);
    true
}

/// Blocks the current thread until `ready()` or the monotonic clock passes
/// `deadline_ns`. Returns whether `ready()` became true. `ready` is
/// re-checked whenever the wake epoch moved.
pub fn block_until(ready: &mut dyn FnMut() -> bool, deadline_ns: Option<u64>) -> bool {
    wait(None, ready, deadline_ns)
}

/// [`block_until`] for a condition that only `flag` being set (or a signal
/// for the thread, or the deadline) can make true: the thread is not
/// picked for anything else, however busy the others are.
pub fn block_on_flag(
    flag: Arc<AtomicBool>,
    ready: &mut dyn FnMut() -> bool,
    deadline_ns: Option<u64>,
) -> bool {
    wait(Some(flag), ready, deadline_ns)
}

fn wait(
    flag: Option<Arc<AtomicBool>>,
    ready: &mut dyn FnMut() -> bool,
    deadline_ns: Option<u64>,
) -> bool {
    let me = current_thread();
    *me.wait_flag.lock() = flag;
    me.deadline_ns
        .store(deadline_ns.unwrap_or(u64::MAX), Ordering::Relaxed);
    let result = loop {
        // Read the epoch before the check, so a change during it is seen.
        let epoch = WAKE_EPOCH.load(Ordering::Acquire);
        if ready() {
            break true;
        }
        if deadline_ns.is_some_and(|d| crate::time::now_ns() >= d) {
            break false;
        }
        me.seen_epoch.store(epoch, Ordering::Release);
        me.set_state(State::Blocked);
        if !yield_now()
            && !eligible(
                &me,
                WAKE_EPOCH.load(Ordering::Acquire),
                crate::time::now_ns(),
            )
        {
            // Nothing can change until an interrupt: wait for one. The
            // halt is idle time, not this thread's CPU time.
            if let Some(hook) = IDLE_HOOK.get() {
                hook();
            }
            let halted = crate::time::now_ns();
            smp::idle_halt();
            let idle = crate::time::now_ns().saturating_sub(halted);
            me.ran_since.fetch_add(idle, Ordering::Relaxed);
        }
        me.set_state(State::Runnable);
    };
    *me.wait_flag.lock() = None;
    me.deadline_ns.store(u64::MAX, Ordering::Relaxed);
    result
}

/// Ends the current thread. The caller has checked it is not the last.
pub fn exit_current() -> ! {
    let me = current_thread();
    me.set_state(State::Dead);
    DEAD.fetch_add(1, Ordering::Relaxed);
    bump_epoch();
    drop(me);
    wake_idle_cpus();
    // The others may all be waiting: halt until one of them can run.
    loop {
        if yield_now() {
            unreachable!("a dead thread was resumed");
        }
        smp::idle_halt();
    }
}
