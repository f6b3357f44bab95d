//! Signal bookkeeping syscalls over [`SignalState`](crate::signal::SignalState):
//! `rt_sigaction`, `rt_sigprocmask`, `rt_sigpending`, `rt_sigsuspend`,
//! `sigaltstack`.
//! Actions are per process, masks and alternate stacks per thread (by
//! `CurrentThread::current_tid`). Signals are not delivered yet.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::signal::{AltStack, SigAction};
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};

/// A write whose reader is gone fails with `EPIPE` and, as on Linux, also
/// raises `SIGPIPE` for the writing thread (whose default action ends the
/// program). Every write path (write, pwrite64, writev, sendfile,
/// copy_file_range, and send* without `MSG_NOSIGNAL`) passes its result
/// through here.
pub(crate) fn sigpipe_on_epipe(p: &Process, r: Result<usize>) -> Result<usize> {
    if r.as_ref().is_err_and(|e| e.errno() == Errno::EPIPE) {
        let tid = p.platform.current_tid();
        // SIGPIPE is a valid signal number: sending cannot fail.
        let _ = p.signals.lock().send_to_thread(tid, crate::signal::SIGPIPE);
    }
    r
}

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (13, "rt_sigaction", sys_rt_sigaction),
    (14, "rt_sigprocmask", sys_rt_sigprocmask),
    (127, "rt_sigpending", sys_rt_sigpending),
    (130, "rt_sigsuspend", sys_rt_sigsuspend),
    (131, "sigaltstack", sys_sigaltstack),
];

/// `rt_sigsuspend(mask, sigsetsize)`: waits with `mask` until a signal
/// is delivered, then `EINTR`; the handler's frame saves the previous
/// mask, so it is back after the handler returns.
pub fn sys_rt_sigsuspend(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.usize(1) != SIGSET_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let mask = UserPtr::<u64>::new(a.u64(0)).read(&*p.platform)?;
    let tid = p.platform.current_tid();
    p.signals.lock().suspend(tid, mask);
    // Only a signal ends it (`EINTR`); the platform's wait reports one.
    let r = p.platform.block_until(&mut || false, None);
    if r.is_ok() {
        // Cannot happen without a deadline; put the mask back anyway.
        p.signals.lock().end_suspend(tid);
    }
    return_errno!(Errno::EINTR)
}

/// Size of the kernel's `sigset_t` (64 signals).
const SIGSET_BYTES: usize = 8;

fn words<const N: usize>(p: &Process, addr: u64) -> Result<[u64; N]> {
    let bytes = UserSliceRead::new(addr, 8 * N)?.read_to_vec(&*p.platform)?;
    Ok(core::array::from_fn(|i| {
        u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap_or_default())
    }))
}

fn write_words(p: &Process, addr: u64, words: &[u64]) -> Result<()> {
    let bytes: alloc::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    UserSliceWrite::new(addr, bytes.len())?.write(&*p.platform, &bytes)?;
    Ok(())
}

/// `rt_sigaction(sig, act, oact, sigsetsize)`: `EINVAL` for a bad signal
/// number or set size, or for changing `SIGKILL`/`SIGSTOP`.
pub fn sys_rt_sigaction(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.usize(3) != SIGSET_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let sig = a.u32(0);
    let new = if a.u64(1) != 0 {
        let [handler, flags, restorer, mask] = words::<4>(p, a.u64(1))?;
        Some(SigAction {
            handler,
            flags,
            restorer,
            mask,
        })
    } else {
        None
    };
    let old = {
        let mut signals = p.signals.lock();
        match new {
            Some(new) => signals.set_action(sig, new)?,
            None => signals.action(sig)?,
        }
    };
    if a.u64(2) != 0 {
        write_words(
            p,
            a.u64(2),
            &[old.handler, old.flags, old.restorer, old.mask],
        )?;
    }
    Ok(0)
}

/// `SIG_BLOCK`, `SIG_UNBLOCK`, `SIG_SETMASK`
const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;

/// `rt_sigprocmask(how, set, oset, sigsetsize)` for the calling thread.
pub fn sys_rt_sigprocmask(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.usize(3) != SIGSET_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let tid = p.platform.current_tid();
    let set = if a.u64(1) != 0 {
        if !matches!(a.i32(0), SIG_BLOCK | SIG_UNBLOCK | SIG_SETMASK) {
            return_errno!(Errno::EINVAL);
        }
        Some(UserPtr::<u64>::new(a.u64(1)).read(&*p.platform)?)
    } else {
        None
    };
    let old = {
        let mut signals = p.signals.lock();
        let old = signals.mask(tid);
        if let Some(set) = set {
            let new = match a.i32(0) {
                SIG_BLOCK => old | set,
                SIG_UNBLOCK => old & !set,
                _ => set,
            };
            signals.set_mask(tid, new);
        }
        old
    };
    if a.u64(2) != 0 {
        UserPtr::<u64>::new(a.u64(2)).write(&*p.platform, old)?;
    }
    Ok(0)
}

/// `rt_sigpending(set, sigsetsize)`: the thread's and the process's pending signals.
pub fn sys_rt_sigpending(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let size = a.usize(1);
    if size > SIGSET_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let pending = p.signals.lock().pending(p.platform.current_tid());
    UserSliceWrite::new(a.u64(0), size)?.write(&*p.platform, &pending.to_le_bytes()[..size])?;
    Ok(0)
}

const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
/// `MINSIGSTKSZ` on x86-64.
const MIN_SIGNAL_STACK_BYTES: u64 = 2048;

/// `sigaltstack(ss, old_ss)` for the calling thread: `EINVAL` for bad
/// flags, `ENOMEM` below `MINSIGSTKSZ`. Never `EPERM` (no handler runs on
/// it yet).
pub fn sys_sigaltstack(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let tid = p.platform.current_tid();
    let new = if a.u64(0) != 0 {
        let [sp, flags, size] = words::<3>(p, a.u64(0))?;
        let flags = flags as u32 as i32;
        let mode = flags & !SS_AUTODISARM;
        if !matches!(mode, 0 | SS_ONSTACK | SS_DISABLE) {
            return_errno!(Errno::EINVAL);
        }
        if mode == SS_DISABLE {
            Some(None)
        } else {
            if size < MIN_SIGNAL_STACK_BYTES {
                return_errno!(Errno::ENOMEM);
            }
            Some(Some(AltStack {
                sp,
                flags: flags & SS_AUTODISARM,
                size,
            }))
        }
    } else {
        None
    };
    let old = {
        let mut signals = p.signals.lock();
        let old = signals.alt_stack(tid);
        if let Some(new) = new {
            signals.set_alt_stack(tid, new);
        }
        old
    };
    if a.u64(1) != 0 {
        let (sp, flags, size) = match old {
            Some(s) => (s.sp, s.flags, s.size),
            None => (0, SS_DISABLE, 0),
        };
        write_words(p, a.u64(1), &[sp, u64::from(flags as u32), size])?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::platform::UserMemory;
    use crate::syscall::testing::{Sys, err};

    const BUF: u64 = 0x30000;

    #[test]
    fn sigsuspend_waits_with_its_mask_and_the_frame_gets_the_old_one() {
        let s = Sys::new(BUF, 4096);
        let tid = 1;
        s.m.set_current_tid(tid);
        s.p.signals.lock().set_mask(tid, u64::MAX);
        s.m.write_user(BUF, &0u64.to_le_bytes()).unwrap();
        s.m.interrupt_next_wait_after(1_000);
        assert_eq!(s.call("rt_sigsuspend", &[BUF, 8]), err(Errno::EINTR));
        let mut sig = s.p.signals.lock();
        assert_eq!(sig.mask(tid), 0, "the temporary mask holds until delivery");
        let full = !crate::signal::UNBLOCKABLE;
        assert_eq!(sig.frame_mask(tid), full, "the frame saves the old mask");
        assert_eq!(sig.frame_mask(tid), 0, "once");
        drop(sig);
        assert_eq!(s.call("rt_sigsuspend", &[BUF, 4]), err(Errno::EINVAL));
    }
}
