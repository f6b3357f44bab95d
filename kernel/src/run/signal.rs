//! Signal delivery: the signals of expired interval timers (kept by the
//! LibOS, `libos::itimer`), `kill`/`tgkill`, handlers run on a Linux-layout frame
//! ([`super::sigframe`]) and `rt_sigreturn`.
//!
//! The LibOS keeps actions, masks and pending sets (`libos::signal`); the
//! kernel decides when to deliver: just before a thread returns to user
//! mode ([`deliver_pending`]), and it ends blocking waits early when a
//! signal arrives ([`interrupts_wait`], which makes them return `EINTR`).

use libos::error::{Errno, Result};
use libos::process::Process;
use libos::return_errno;
use libos::signal::{
    DefaultAction, Origin, SI_TIMER, SIG_DFL, SIG_IGN, SigAction, default_action, sig_bit,
};
use libos::syscall::SyscallArgs;

use super::sigframe::{self, FrameInfo};
use crate::arch::fpu::FpuState;
use crate::task::Thread;

/// The interval timers' signals: `SIGALRM`, `SIGVTALRM`, `SIGPROF`.
const TIMER_SIGNALS: [u32; 3] = [14, 26, 27];
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SS_ONSTACK: u32 = 1;
/// `si_code` for a signal from `kill`.
const SI_USER: i32 = 0;
/// `si_code` for a signal from `tgkill`.
const SI_TKILL: i32 = -6;
/// `si_code` of a signal the kernel raised (timer expiry, a fault).
const SI_KERNEL: i32 = 0x80;

/// Makes the signals of expired interval timers pending (the timers and
/// their clocks are the LibOS's: `libos::itimer`).
fn check_timer(process: &Process) {
    process.raise_expired_timers();
}

/// Whether a blocking wait of thread `tid` must end with `EINTR` now.
pub fn interrupts_wait(process: &Process, tid: u32) -> bool {
    check_timer(process);
    process.signals.lock().has_deliverable(tid)
}

/// Ends the process for signal `sig` whose action is the default; the
/// end of the first process (the program) is reported on its console.
/// Returns for a child: its threads leave at their run loops.
fn terminate(sig: u32, tid: u32) {
    if super::procs::current_process().is_some_and(|p| p.pid != 1) {
        // A child: its parent learns it from `wait`, as on Linux.
        super::procs::die(sig);
        return;
    }
    let text = alloc::format!("cloister: program killed by signal {sig} (thread {tid})\n");
    crate::app_console::write_err(text.as_bytes());
    log::info!("{}", text.trim_end());
    super::procs::die(sig)
}

/// Whether [`deliver_pending`] may have work: a timer is armed or a
/// signal may be pending. `false` in the common case, where the run loop
/// goes straight back to user mode. Inline: the run loop is compiled
/// twice (one CPU, several), and this is a few flag checks, not worth a
/// call.
#[inline(always)]
pub fn may_deliver(process: &Process) -> bool {
    process.timers_armed() || process.signals.maybe_pending()
}

/// Delivers the pending signals of `me` before it returns to user mode:
/// default actions end the program, handlers get a frame. Called with no
/// reference to `me`'s context held, and with the context up to date (it
/// reads and writes it). `false` when nothing was pending (nothing
/// changed).
pub fn deliver_pending(process: &Process, me: &Thread) -> bool {
    check_timer(process);
    // The common case, without the lock: nothing pending anywhere.
    if !process.signals.maybe_pending() {
        return false;
    }
    deliver_pending_slow(process, me)
}

/// [`deliver_pending`] once a signal may be pending.
#[inline(never)]
fn deliver_pending_slow(process: &Process, me: &Thread) -> bool {
    loop {
        let Some((sig, action)) = process.signals.lock().take_deliverable(me.tid) else {
            return true;
        };
        match action.handler {
            SIG_IGN => continue,
            SIG_DFL => match default_action(sig) {
                DefaultAction::Ignore => continue,
                DefaultAction::Terminate => {
                    // The thread leaves at the top of its run loop.
                    terminate(sig, me.tid);
                    return true;
                }
            },
            _ => {
                let code = if TIMER_SIGNALS.contains(&sig) || is_fault(sig) {
                    SI_KERNEL
                } else if TKILLS.lock().remove(&(me.tid, sig)) {
                    // glibc's cancellation handler acts only on this code.
                    SI_TKILL
                } else {
                    SI_USER
                };
                if setup_frame(process, me, sig, code, &action).is_err() {
                    // As Linux: a frame that cannot be written kills with
                    // SIGSEGV.
                    terminate(11, me.tid);
                }
                // One handler per return to user mode, as Linux.
                return true;
            }
        }
    }
}

/// Pushes a signal frame for `sig` on `me`'s stack and points it at the
/// handler.
fn setup_frame(process: &Process, me: &Thread, sig: u32, code: i32, act: &SigAction) -> Result<()> {
    if act.flags & SA_RESTORER == 0 {
        // x86-64 has no kernel-provided return trampoline.
        return_errno!(Errno::EFAULT);
    }
    let platform = &*process.platform;
    let (old_mask, alt, origin) = {
        let mut s = process.signals.lock();
        // After `rt_sigsuspend`, the mask it replaced.
        (
            s.frame_mask(me.tid),
            s.alt_stack(me.tid),
            s.take_origin(sig),
        )
    };
    // A copy, stored back once the frame is written (an error leaves the
    // registers as they were).
    let mut ctx = me.with_context(|c| *c);
    let on_alt = alt.is_some_and(|a| ctx.rsp >= a.sp && ctx.rsp < a.sp + a.size);
    let mut sp = match alt {
        Some(a) if act.flags & SA_ONSTACK != 0 && !on_alt => a.sp + a.size,
        // Skip the 128-byte red zone below the interrupted stack pointer.
        _ => ctx.rsp - 128,
    };
    let mut fpu = FpuState::initial().ok_or(Errno::ENOMEM)?;
    fpu.save();
    let fp_bytes = fpu.as_bytes();
    sp = (sp - fp_bytes.len() as u64) & !63;
    let fpstate = sp;
    let frame_addr = ((fpstate - sigframe::FRAME_BYTES) & !15) - 8;
    let (code, addr, value) = match origin.and_then(Origin::timer) {
        // A POSIX timer's: its id, overrun count and value.
        Some(t) => (
            SI_TIMER,
            u64::from(t.timer_id as u32) | (u64::from(t.overrun) << 32),
            t.value,
        ),
        None if code == SI_USER || code == SI_TKILL => {
            let sender = origin.and_then(Origin::sender);
            (code, u64::from(sender.unwrap_or(process.pid)), 0)
        }
        None => (code, 0, 0),
    };
    let (code, addr, err, trapno, cr2) = match is_fault(sig).then(|| fault_info(me.tid, sig)) {
        Some(Some(f)) => f,
        _ => (code, addr, 0, 0, 0),
    };
    let info = FrameInfo {
        signo: sig,
        code,
        addr,
        value,
        old_mask,
        err,
        trapno,
        cr2,
        altstack: alt.map_or((0, 2, 0), |a| {
            (
                a.sp,
                if on_alt { SS_ONSTACK } else { a.flags as u32 },
                a.size,
            )
        }),
    };
    let frame = sigframe::build(&ctx, &info, act.restorer, fpstate);
    platform.write_user(fpstate, fp_bytes)?;
    platform.write_user(frame_addr, &frame)?;
    {
        let mut s = process.signals.lock();
        let mut mask = old_mask | act.mask;
        if act.flags & SA_NODEFER == 0 {
            mask |= sig_bit(sig);
        }
        s.set_mask(me.tid, mask);
        if act.flags & SA_RESETHAND != 0 {
            let _ = s.set_action(sig, SigAction::default());
        }
    }
    ctx.rsp = frame_addr;
    ctx.rip = act.handler;
    ctx.rdi = u64::from(sig);
    ctx.rsi = frame_addr + 8 + 296 + 8;
    ctx.rdx = frame_addr + 8;
    ctx.rax = 0;
    me.with_context(|c| *c = ctx);
    Ok(())
}

fn is_fault(sig: u32) -> bool {
    matches!(sig, 4 | 5 | 7 | 8 | 11)
}

/// A fault raised signal `sig` in thread `tid`: if the program handles it
/// (and does not block it), queue it and return `true`; otherwise the
/// caller ends the program.
pub fn fault_has_handler(process: &Process, tid: u32, sig: u32, fault: Fault) -> bool {
    let mut s = process.signals.lock();
    if s.handler_for(sig).is_none() || s.mask(tid) & sig_bit(sig) != 0 {
        return false;
    }
    let sent = s.send_to_thread(tid, sig).is_ok();
    if sent {
        FAULTS.lock().insert(tid, (sig, fault));
    }
    sent
}

/// What a CPU exception tells the handler of the signal it raised.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// The exception vector (`uc_mcontext.trapno`).
    pub vector: u64,
    /// The CPU error code (`uc_mcontext.err`).
    pub error_code: u64,
    /// CR2 for a page fault.
    pub cr2: u64,
}

/// `si_code` of a SIGSEGV for a page that is not mapped / mapped without
/// the access.
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
/// `si_code` of a SIGBUS for a nonexistent physical address (past the end
/// of a mapped file).
const BUS_ADRERR: i32 = 2;

/// The last fault of each thread whose signal is queued for its handler.
static FAULTS: spin::Mutex<alloc::collections::BTreeMap<u32, (u32, Fault)>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

/// The siginfo and context fields of a fault's signal, as Linux fills
/// them: a page fault's SIGSEGV has `SEGV_MAPERR` (no page) or
/// `SEGV_ACCERR` (no right) and `si_addr` = CR2; other faults `SI_KERNEL`.
/// Returns `(code, addr, err, trapno, cr2)`.
fn fault_info(tid: u32, sig: u32) -> Option<(i32, u64, u64, u64, u64)> {
    let (queued, f) = FAULTS.lock().remove(&tid)?;
    if queued != sig {
        return None;
    }
    let code = match (sig, f.vector) {
        (11, 14) if f.error_code & 1 != 0 => SEGV_ACCERR,
        (11, 14) => SEGV_MAPERR,
        // A page past the end of a mapped file.
        (7, 14) => BUS_ADRERR,
        _ => SI_KERNEL,
    };
    let addr = if f.vector == 14 { f.cr2 } else { 0 };
    Some((code, addr, f.error_code, f.vector, addr))
}

/// `rt_sigreturn()`: restores the registers, mask and FPU state saved by
/// [`setup_frame`]; a corrupt frame kills the program with SIGSEGV.
pub fn sys_rt_sigreturn(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    let me = crate::task::current_thread();
    let ctx = me.with_context(|c| *c);
    // The handler's `ret` popped `pretcode`.
    let frame_addr = ctx.rsp - 8;
    let mut frame = alloc::vec![0u8; sigframe::FRAME_BYTES as usize];
    if p.platform.read_user(frame_addr, &mut frame).is_err() {
        terminate(11, me.tid);
        return Ok(0);
    }
    let mut restored = ctx;
    let (mask, fpstate) = sigframe::parse(&frame, &mut restored);
    let mut fpu = FpuState::initial().ok_or(Errno::ENOMEM)?;
    let mut image = alloc::vec![0u8; fpu.as_bytes().len()];
    if fpstate != 0 {
        if p.platform.read_user(fpstate, &mut image).is_err() || !fpu.load_checked(&image) {
            terminate(11, me.tid);
            return Ok(0);
        }
        fpu.restore();
    }
    p.signals.lock().set_mask(me.tid, mask);
    me.with_context(|c| *c = restored);
    // The dispatcher stores the result in rax: hand back the restored one.
    Ok(restored.rax as usize)
}

/// `kill(pid, sig)`: to a process (`pid` > 0), the caller's group (0),
/// every process but init and the caller (-1) or a group (< -1), as the
/// LibOS's process table selects them; `sig` 0 only checks.
pub fn sys_kill(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (pid, sig) = (a.i32(0), a.u32(1));
    if sig > libos::signal::NSIG {
        return_errno!(Errno::EINVAL);
    }
    if pid == i32::MIN {
        return_errno!(Errno::ESRCH);
    }
    let targets = p.processes.kill_targets(p.pid, pid)?;
    if sig != 0 {
        for target in targets {
            target.signals.lock().send_to_process_from(sig, p.pid)?;
        }
    }
    Ok(0)
}

/// `tgkill(tgid, tid, sig)` and `tkill(tid, sig)`.
fn kill_thread(p: &Process, tid: i32, sig: u32) -> Result<usize> {
    let Some(t) = u32::try_from(tid).ok().and_then(crate::task::find) else {
        return_errno!(Errno::ESRCH);
    };
    if sig != 0 {
        p.signals.lock().send_to_thread(t.tid, sig)?;
        TKILLS.lock().insert((t.tid, sig));
    }
    Ok(0)
}

/// Signals pending for a thread through `tgkill`/`tkill` (`(tid, sig)`):
/// delivered with `si_code` `SI_TKILL`, as Linux.
static TKILLS: spin::Mutex<alloc::collections::BTreeSet<(u32, u32)>> =
    spin::Mutex::new(alloc::collections::BTreeSet::new());

/// `tgkill(tgid, tid, sig)`
pub fn sys_tgkill(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.i32(0) != p.pid as i32 {
        return_errno!(Errno::ESRCH);
    }
    kill_thread(p, a.i32(1), a.u32(2))
}

/// `tkill(tid, sig)`
pub fn sys_tkill(p: &Process, a: &SyscallArgs) -> Result<usize> {
    kill_thread(p, a.i32(0), a.u32(1))
}
