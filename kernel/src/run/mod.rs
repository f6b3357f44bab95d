//! Running the application: the LibOS on top of the kernel.
//!
//! When the boot loader passed an initramfs (QEMU `-initrd`), [`start`]
//! unpacks it into the VFS, reads the program's arguments from
//! `/.cloister/argv` and its environment from `/.cloister/envp` (written by
//! `cloister run`), loads the ELF (and its interpreter), and runs it in ring
//! 3. Each thread's kernel side is [`thread_main`]: run user code until it
//! needs the kernel, dispatch the syscall through the LibOS table, resolve a
//! demand fault, or end the program on a fatal fault.
//!
//! The end of the program is reported on COM1 as the control line
//! `CLOISTER_EXIT=<status>` (the host runner's exit status), then QEMU is
//! told to exit.

mod entropy;
mod fault;
mod host_time;
mod observer;
mod platform;
mod procs;
mod sigframe;
mod signal;
mod syscalls;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use libos::boot::cmdline::KernelArgs;
use libos::exec::{AddressLayout, prepare_exec};
use libos::fs::stdio::{ConsoleInput, StdioConfig};
use libos::fs::{DeviceRegistry, Vfs};
use libos::mm::FaultAccess;
use libos::process::Process;
use libos::syscall::{SyscallArgs, SyscallTable};

use crate::arch::fpu::FpuState;
use crate::arch::user::{self, ReturnReason, UserContext};
use crate::boot_info::BootInfo;
use crate::exit::{ExitCode, exit};
use crate::task::{self, Thread};
// Shared with the linked-application runtime (`crate::runtime`): clocks.
pub(crate) use platform::KernelPlatform;

/// The first process (init) and the syscall table all share.
struct Runtime {
    /// Pid 1; the others are in [`procs`].
    process: Arc<Process>,
    table: SyscallTable,
    /// The program's console input (Ctrl-C marks from the host).
    console: Arc<ConsoleInput>,
}

/// Linux's `SIGINT`.
const SIGINT: u32 = 2;

/// Turns Ctrl-C presses the host forwarded on the console line into
/// `SIGINT` for the program (called on console interrupts and from
/// waits, so a blocked program is interrupted too). The line is read only
/// when its interrupt fired since the last look, so the scheduler's
/// per-thread checks stay free of device access.
pub(crate) fn poll_console_interrupt() {
    let pump = crate::app_console::take_input_pending();
    if let Some(rt) = RUNTIME.get()
        && rt.console.take_interrupts(pump) > 0
    {
        let _ = rt.process.signals.lock().send_to_process(SIGINT);
    }
}

static RUNTIME: spin::Once<Runtime> = spin::Once::new();

/// Wakes up to `count` futex waiters on `addr` (thread exit's
/// `clear_child_tid`).
pub(crate) fn futex_wake(process: &Process, addr: u64, count: usize) {
    process.futexes.wake(addr, count, u32::MAX);
}

/// A kernel access to user memory (a user copy) stopped at `addr`: gives
/// the page its frame (kernel demand paging, then the LibOS: stack
/// growth, a reservation made accessible after the fact, a large area's
/// first touch). `Resolved`: retry; `OutOfMemory`: a valid page no memory
/// can back (the caller ends the program with the OOM kill).
pub(crate) fn user_copy_demand(addr: u64, access: FaultAccess) -> crate::mm::user::Demand {
    // The page-fault error code of a not-present kernel-mode access.
    let error_code = if access == FaultAccess::Write { 2 } else { 0 };
    demand_user_fault(addr, error_code)
}

/// Asks the LibOS to populate the user page at `addr` for `access`,
/// telling a page it would give but memory cannot back (`OutOfMemory`)
/// from an invalid access (`NotLazy`).
fn user_page_demand(addr: u64, access: FaultAccess) -> crate::mm::user::Demand {
    use crate::mm::user::Demand;
    match procs::current_process().map(|p| libos::mm::handle_page_fault(&p, addr, access)) {
        Some(Ok(())) => Demand::Resolved,
        Some(Err(e)) if e.errno() == libos::error::Errno::ENOMEM => Demand::OutOfMemory,
        Some(Err(e))
            if matches!(
                e.errno(),
                libos::error::Errno::ENXIO | libos::error::Errno::ENOSPC
            ) =>
        {
            Demand::BusError
        }
        _ => Demand::NotLazy,
    }
}

/// How a user page fault is answered: demand paging in the kernel, then
/// the LibOS (areas without page-table entries yet).
fn demand_user_fault(cr2: u64, error_code: u64) -> crate::mm::user::Demand {
    use crate::mm::user::{Demand, demand_fault, fault_access};
    match demand_fault(cr2, error_code) {
        Demand::NotLazy if error_code & 1 == 0 => user_page_demand(cr2, fault_access(error_code)),
        other => other,
    }
}

/// The platform whose wall clock an idle CPU keeps (`KernelPlatform::keep_clock`).
static CLOCK_KEEPER: spin::Once<Arc<KernelPlatform>> = spin::Once::new();

/// Drives the network stack (from idle waits: frames may have arrived).
pub(crate) fn poll_network() {
    if let Some(rt) = RUNTIME.get() {
        rt.process.net.poll();
    }
}

/// Whether the current thread's blocking wait must end with `EINTR`.
pub(crate) fn wait_interrupted() -> bool {
    let Some(me) = task::current() else {
        return false;
    };
    procs::process_of(me.tid)
        .is_some_and(|p| procs::must_leave(p.pid, me.tid) || signal::interrupts_wait(&p, me.tid))
}

/// The network path's stall counters (`crate::net::summary`), if the
/// program runs with a card. Takes no lock (the NMI stop path calls it).
pub(crate) fn net_summary() -> Option<crate::net::Summary> {
    RUNTIME
        .get()
        .and_then(|rt| crate::net::summary(&rt.process.net))
}

/// Reports the program's exit status to the host and powers off.
pub fn exit_program(status: u8) -> ! {
    crate::audit::record_text(format_args!("program exited with status {status}"));
    // A report bound to a checkpoint of the whole run, then nothing
    // recorded may stay unauthenticated: seal the open block.
    crate::audit::attest("exit");
    crate::audit::seal();
    if let Some(line) = observer::unsupported_summary() {
        crate::kprintln!("{line}");
    }
    if let Some(line) = crate::platform::mmio_emulation::summary() {
        crate::kprintln!("{line}");
    }
    if let Some(line) = RUNTIME
        .get()
        .and_then(|rt| crate::net::summary(&rt.process.net))
    {
        crate::kprintln!("{line}");
    }
    if let Some(line) = crate::arch::smp::summary() {
        crate::kprintln!("{line}");
    }
    // The host stops reading the program's console lines soon after this
    // line (`cloister run` gives QEMU a grace period): everything the
    // program wrote must be out first.
    crate::app_console::drain();
    crate::kprintln!("CLOISTER_EXIT={status}");
    exit(ExitCode::Success)
}

/// Ends the program before it ran: prints `msg` on the application console
/// (where a shell would print it) and the log, exits with `status`.
fn fail_to_start(status: u8, msg: core::fmt::Arguments<'_>) -> ! {
    let text = alloc::format!("cloister: {msg}\n");
    crate::app_console::write_err(text.as_bytes());
    log::error!("{msg}");
    exit_program(status)
}

/// NUL-separated strings from a file in the VFS.
fn read_list(vfs: &Vfs, path: &[u8]) -> Option<Vec<Vec<u8>>> {
    let root = vfs.root().clone();
    let inode = vfs.resolve(&root, path, true).ok()?;
    let bytes = libos::exec::read_whole(&inode).ok()?;
    Some(
        bytes
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// Command-line keys the run mode reads besides the LibOS's own: which of
/// the host's standard fds are terminals, and the terminal's size
/// (`libos::fs::stdio`); `learn` reports lookups that found nothing;
/// `tmpfs.size`/`tmpfs.nr_inodes` limit the file system
/// (`libos::fs::FsLimits`); `time.host` takes the wall clock from the
/// host runner over COM1 (`host_time`).
pub const CMDLINE_KEYS: &[&str] = &[
    "console.tty",
    "console.size",
    "learn",
    "tmpfs.size",
    "tmpfs.nr_inodes",
    "time.host",
];

/// Runs the program in the initramfs `archive`; never returns.
pub fn start(info: &BootInfo, args: &KernelArgs<'_>, archive: &[u8]) -> ! {
    if !crate::app_console::init() {
        log::warn!("no UART at COM2: the program's output is lost");
    }
    let platform = Arc::new(KernelPlatform::new(args.has("time.host")));
    CLOCK_KEEPER.call_once(|| platform.clone());
    let devices = DeviceRegistry::standard(platform.clone(), platform.clone());
    let vfs = Arc::new(Vfs::new(platform.clone(), devices));
    match vfs.unpack_cpio(archive) {
        Ok(r) => log::info!(
            "initramfs: {} entries, {} KiB of data, {} skipped",
            r.entries,
            r.data_bytes >> 10,
            r.skipped
        ),
        Err(e) => fail_to_start(125, format_args!("bad initramfs: {e}")),
    }
    // The file system's limits, as tmpfs's: by default what the image
    // holds plus half the memory left for data and an inode per two free
    // pages; `tmpfs.size=` / `tmpfs.nr_inodes=` set them (`df` and `df -i`
    // show them; growth past them fails with ENOSPC).
    let (total, free) = crate::mm::frames::memory_bytes();
    let (_, image_pages) = vfs.space().pages();
    let (_, image_inodes) = vfs.space().inodes();
    let limits = libos::fs::FsLimits::default_for(free, image_pages, image_inodes);
    match limits.with_options(args.get("tmpfs.size"), args.get("tmpfs.nr_inodes"), total) {
        Ok(chosen) => vfs.space().set_limits(chosen),
        Err(key) => {
            log::warn!("ignoring a bad {key}= on the command line: using the default");
            vfs.space().set_limits(limits);
        }
    }
    let argv = read_list(&vfs, b"/.cloister/argv").unwrap_or_default();
    let envp = read_list(&vfs, b"/.cloister/envp").unwrap_or_default();
    let Some(path) = argv.first().cloned() else {
        fail_to_start(
            125,
            format_args!("no program: /.cloister/argv is missing or empty"),
        )
    };
    let info_proc = Arc::new(observer::ProcInfo::new(envp.clone()));
    if let Err(e) = libos::fs::procfs::install(&vfs, info_proc, platform.clone()) {
        log::warn!("cannot create /proc: {e}");
    }
    let _ = libos::fs::procfs::set_exe(&vfs, &path);
    let mut seed = [0u8; 8];
    libos::random::Csprng::fill_bytes(&*platform, &mut seed);
    let config = libos::net::NetConfig {
        random_seed: u64::from_le_bytes(seed),
        ..crate::net::config(args)
    };
    let net = Arc::new(libos::net::NetStack::new(
        crate::net::device(),
        config,
        platform.clone(),
    ));
    let mut process = Process::with_net(platform.clone(), vfs.clone(), net);
    process.vdso = platform.vdso(&vfs);
    let process = Arc::new(process);
    // The process limit: a process needs a kernel stack, page tables and
    // the pages it writes after the fork (copy-on-write); one per 4 MiB of
    // guest memory keeps a fork bomb to EAGAIN before memory runs out.
    process
        .processes
        .set_limit(((total >> 22) as usize).max(16));
    let stdio = StdioConfig::from_args(args.get("console.tty"), args.get("console.size"));
    let input = Arc::new(ConsoleInput::new(platform.clone()));
    if let Err(e) = process.open_stdio(&stdio, input.clone()) {
        fail_to_start(125, format_args!("cannot open the standard streams: {e}"));
    }
    // The host holds the program's stdin back until the UART's receive side
    // is set up (`tools::qemu::STDIN_READY_LINE`).
    crate::kprintln!("CLOISTER_STDIN_READY");
    let argv_refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp_refs: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    let layout = AddressLayout::for_process(&process);
    let cwd = vfs.root().clone();
    let shown = String::from_utf8_lossy(&path).into_owned();
    let image = match prepare_exec(
        &vfs, &cwd, &path, &argv_refs, &envp_refs, &*platform, &layout,
    ) {
        Ok(image) => image,
        Err(e) => {
            // As a shell: 127 for a missing file, 126 for one that cannot run.
            let status = if e.errno() == libos::error::Errno::ENOENT {
                127
            } else {
                126
            };
            fail_to_start(status, format_args!("cannot execute {shown}: {e}"))
        }
    };
    let rsp = match libos::mm::load_image(&process, &image) {
        Ok(rsp) => rsp,
        Err(e) => fail_to_start(126, format_args!("cannot load {shown}: {e}")),
    };
    let mut table = SyscallTable::new();
    syscalls::register(&mut table);
    table.set_observer(Arc::new(observer::Observer::new(
        args.get("trace").is_some(),
        args.has("learn").then(|| platform.clone()),
    )));
    RUNTIME.call_once(|| Runtime {
        process: process.clone(),
        table,
        console: input,
    });

    let ctx = UserContext {
        rip: image.entry,
        rsp,
        ..UserContext::default()
    };
    let Some(fpu) = FpuState::initial() else {
        fail_to_start(125, format_args!("out of memory for the first thread"))
    };
    task::set_entry(thread_main);
    task::set_idle_hook(|| {
        if let Some(p) = CLOCK_KEEPER.get() {
            p.keep_clock();
        }
    });
    task::set_signal_check(|tid| {
        poll_console_interrupt();
        procs::process_of(tid)
            .is_some_and(|p| procs::must_leave(p.pid, tid) || signal::interrupts_wait(&p, tid))
    });
    match task::spawn(ctx, fpu, 0) {
        Ok(tid) => procs::register_init(process, tid),
        Err(_) => fail_to_start(125, format_args!("out of memory for the first thread")),
    }
    log::info!(
        "starting {shown} (entry {:#x}, {} MiB free)",
        image.entry,
        (crate::mm::frames::free_frames() * 4096) >> 20
    );
    let _ = info;
    task::start()
}

/// Whether system call `nr` may make a signal pending for, or end,
/// threads other than the caller: `kill`, `rt_sigqueueinfo`, `tkill`,
/// `exit_group`, `tgkill`, `rt_tgsigqueueinfo`. Only consulted with
/// threads on several CPUs.
#[inline(always)]
fn signals_others(nr: u64) -> bool {
    matches!(nr, 62 | 129 | 200 | 231 | 234 | 297)
}

/// A thread's kernel side: runs its user code and serves its syscalls.
/// Whether threads run on several CPUs, and whether the audit log records
/// their system calls, are fixed before the first thread starts
/// (`task::start`; the log is installed at boot): the loop is compiled for
/// each case, so one vCPU pays no check of the big kernel lock per system
/// call, an unaudited program no check of the log, and an audited one no
/// call into the recording path.
fn thread_main(me: Arc<Thread>) -> ! {
    match (crate::arch::smp::bkl::active(), crate::audit::is_enabled()) {
        (true, true) => thread_loop::<true, true>(me),
        (true, false) => thread_loop::<true, false>(me),
        (false, true) => thread_loop::<false, true>(me),
        (false, false) => thread_loop::<false, false>(me),
    }
}

/// Serves system call `args` of thread `me` of `process` through the table;
/// its result for `rax`. With `AUDIT`, the call is timed and recorded.
#[inline(always)]
fn serve_syscall<const SMP: bool, const AUDIT: bool>(
    rt: &Runtime,
    process: &Arc<Process>,
    me: &Thread,
    args: &SyscallArgs,
) -> u64 {
    if AUDIT {
        return serve_audited::<SMP>(rt, process, me, args);
    }
    let ret = rt.table.dispatch_args(process, args);
    after_syscall::<SMP>(args.nr as u64);
    ret
}

/// [`serve_syscall`] when the audit log records system calls: timed only
/// then (two TSC reads per call are not free under emulation). Inlined
/// into the audited loop: 27 instructions a call fewer than out of line
/// (its frame and the arguments' moves), under -icount.
#[inline(always)]
fn serve_audited<const SMP: bool>(
    rt: &Runtime,
    process: &Arc<Process>,
    me: &Thread,
    args: &SyscallArgs,
) -> u64 {
    let start = crate::time::now_ns();
    let ret = rt.table.dispatch_args(process, args);
    after_syscall::<SMP>(args.nr as u64);
    let end = crate::time::now_ns();
    crate::audit::record_syscall_at(
        args.nr as u64,
        &args.raw,
        ret as i64,
        me.tid,
        end.saturating_sub(start),
        Some(end),
        // Without the big kernel lock only the boot CPU runs threads.
        (!SMP).then_some(0),
    );
    ret
}

/// After system call `nr`: whatever it changed, generic waits may now be
/// ready (on an idle CPU too).
#[inline(always)]
fn after_syscall<const SMP: bool>(nr: u64) {
    task::bump_epoch();
    if SMP {
        task::wake_idle_cpus();
        if signals_others(nr) {
            // A thread in user mode on another CPU sees a signal or the
            // end of its process at its next kernel entry: make that now.
            crate::arch::smp::kick_running();
        }
    }
}

/// [`thread_main`]'s loop; `SMP`: the big kernel lock is in use; `AUDIT`:
/// the audit log records every system call.
fn thread_loop<const SMP: bool, const AUDIT: bool>(me: Arc<Thread>) -> ! {
    let rt = RUNTIME.get().expect("runtime set before threads start");
    // The thread's process, fixed for its life (`execve` keeps it).
    let process = procs::process_of(me.tid).unwrap_or_else(|| rt.process.clone());
    // `rax` as the thread goes back to user mode: the context's, or the
    // last system call's result, stored under the loan that runs the
    // thread again (one loan per system call, not two). Only the thread
    // itself reads or writes its context (`Thread::with_context`); what
    // does so between two runs (the slow paths below) has `rax` stored
    // first and read back after. Handlers that set registers
    // (`rt_sigreturn`, `execve`) do so inside the dispatch, before the
    // result is stored, as before.
    let mut rax = me.with_context(|c| c.rax);
    loop {
        if procs::leaves(&process, &me) || signal::may_deliver(&process) {
            me.with_context(|c| c.rax = rax);
            if procs::leaves(&process, &me) {
                break;
            }
            // A default action may have ended the process.
            if signal::deliver_pending(&process, &me) && procs::leaves(&process, &me) {
                break;
            }
            rax = me.with_context(|c| c.rax);
        }
        // `me`'s own kernel code; the loan (which also stores `rax` and
        // reads the syscall's number and arguments) ends before anything
        // that could switch threads.
        let (reason, args) = me.with_context(|c| {
            c.rax = rax;
            let reason = user::execute_on::<SMP>(c);
            let raw = [c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9];
            (reason, SyscallArgs::new(c.rax as usize, raw))
        });
        if matches!(reason, ReturnReason::Syscall) {
            // The dispatch may have switched threads and back; no loan
            // was out across it.
            rax = serve_syscall::<SMP, AUDIT>(rt, &process, &me, &args);
        } else {
            // `rax` is the context's; the handling may change it.
            handle_exit(rt, &process, &me);
            rax = me.with_context(|c| c.rax);
        }
    }
    // The thread ends here, not inside a call below, so that the process
    // and the thread are dropped (a frame that never returns keeps what
    // it holds: every ended process and thread would stay allocated).
    procs::leave(&process, &me);
    drop(process);
    drop(me);
    task::exit_current()
}

/// What the run loop does when user mode left `me` for something other
/// than a system call (the reason is in its context,
/// [`user::trap_reason`]): a fault resolved or turned into a signal, a
/// confidential VM's exception answered, an interrupt served. Out of line,
/// so the run loop's system-call path keeps its registers.
#[inline(never)]
fn handle_exit(rt: &Runtime, process: &Arc<Process>, me: &Thread) {
    match me.with_context(|c| user::trap_reason(c)) {
        // Not a trap (`trap_reason` never says so): nothing to do.
        ReturnReason::Syscall => {}
        ReturnReason::Exception {
            vector: 14,
            error_code,
            cr2,
        } if match demand_user_fault(cr2, error_code) {
            // The page is there now: retry the access.
            crate::mm::user::Demand::Resolved => true,
            // A valid access memory cannot back: the OOM kill.
            crate::mm::user::Demand::OutOfMemory => {
                // The OOM kill: the loop's next turn ends the thread.
                fault::out_of_memory(me.tid, cr2);
                true
            }
            // Past the end of a mapped file: SIGBUS, to a handler if
            // the program has one.
            crate::mm::user::Demand::BusError => {
                let fault = signal::Fault {
                    vector: 14,
                    error_code,
                    cr2,
                };
                if !signal::fault_has_handler(process, me.tid, u32::from(fault::SIGBUS), fault) {
                    let rip = me.with_context(|c| c.rip);
                    fault::bus_error(me.tid, cr2, rip);
                }
                true
            }
            crate::mm::user::Demand::NotLazy => false,
        } => {}
        // A confidential VM's #VE/#VC for the program's CPUID (or
        // RDTSC): answered through the host, and the program goes on.
        ReturnReason::Exception {
            vector: vector @ (20 | 29),
            error_code,
            ..
        } if me.with_context(|c| crate::platform::user_exception(vector, error_code, c)) => {}
        ReturnReason::Exception {
            vector,
            error_code,
            cr2,
        } => {
            let (sig, _) = fault::signal_for(vector);
            let fault = signal::Fault {
                vector,
                error_code,
                cr2,
            };
            if !signal::fault_has_handler(process, me.tid, u32::from(sig), fault) {
                let rip = me.with_context(|c| c.rip);
                fault::kill(me.tid, vector, error_code, cr2, rip);
            }
        }
        ReturnReason::Interrupt(v) => {
            // Timer ticks drive TCP's timers and frames queued for ARP;
            // the card's interrupt means frames arrived.
            rt.process.net.poll();
            if v == u64::from(crate::arch::trap::CONSOLE_VECTOR) {
                poll_console_interrupt();
            }
            if v == u64::from(crate::arch::trap::TIMER_VECTOR) {
                task::yield_now();
            }
        }
    }
}
