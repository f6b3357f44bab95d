//! `rt_sigtimedwait`: takes a pending signal of a set instead of running
//! its handler (glibc's `sigwait`, `sigwaitinfo` and `sigtimedwait`).
//!
//! The signal is taken from the thread's pending set first, then the
//! process's, whether or not it is blocked (programs block the signals
//! they wait for, so nothing else takes them). With none pending the
//! thread waits for one, until the timeout (`EAGAIN`) or until another
//! signal runs its handler (`EINTR`). The `siginfo_t` written has the
//! signal number and, for a POSIX timer's signal, `si_code` `SI_TIMER`
//! with the timer id, overrun count and value (what glibc's `SIGEV_THREAD`
//! helper thread reads); otherwise `SI_USER` with the sending process's
//! pid when it is known (`kill`, a child's `SIGCHLD`), else 0, and uid 0.

use super::SyscallArgs;
use super::futex::read_timespec_ns;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::signal::Origin;
use crate::user::{UserPtr, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[(128, "rt_sigtimedwait", sys_rt_sigtimedwait)];

/// Size of the kernel's `sigset_t`.
const SIGSET_BYTES: usize = 8;
/// Size of `siginfo_t`.
const SIGINFO_BYTES: usize = 128;
/// `SIGKILL` and `SIGSTOP` cannot be waited for (Linux drops them from
/// the set).
const UNWAITABLE: u64 = (1 << (9 - 1)) | (1 << (19 - 1));

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)`: the signal taken.
pub fn sys_rt_sigtimedwait(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.usize(3) != SIGSET_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let set = UserPtr::<u64>::new(a.u64(0)).read(&*p.platform)? & !UNWAITABLE;
    let deadline = match a.u64(2) {
        0 => None,
        addr => Some(
            p.platform
                .monotonic_ns()
                .saturating_add(read_timespec_ns(p, addr)?),
        ),
    };
    let tid = p.platform.current_tid();
    let mut taken = p.signals.lock().take_from_set(tid, set);
    if taken.is_none() && deadline != Some(p.platform.monotonic_ns()) {
        let signals = &p.signals;
        let waited = p.platform.block_until(
            &mut || {
                taken = signals.lock().take_from_set(tid, set);
                taken.is_some()
            },
            deadline,
        );
        match waited {
            Ok(true) => {}
            Ok(false) => taken = None,
            // A signal of the set that the thread does not block ends the
            // wait too: it is taken rather than handled.
            Err(e) => {
                taken = p.signals.lock().take_from_set(tid, set);
                if taken.is_none() {
                    return Err(e);
                }
            }
        }
    }
    let Some(sig) = taken.or_else(|| p.signals.lock().take_from_set(tid, set)) else {
        return_errno!(Errno::EAGAIN);
    };
    // Taken with the signal, whether or not the caller asked for them.
    let origin = p.signals.lock().take_origin(sig);
    if a.u64(1) != 0 {
        let mut info = [0u8; SIGINFO_BYTES];
        info[..4].copy_from_slice(&(sig as i32).to_le_bytes());
        match origin.and_then(Origin::timer) {
            Some(t) => {
                info[8..12].copy_from_slice(&crate::signal::SI_TIMER.to_le_bytes());
                info[16..20].copy_from_slice(&t.timer_id.to_le_bytes());
                info[20..24].copy_from_slice(&t.overrun.to_le_bytes());
                info[24..32].copy_from_slice(&t.value.to_le_bytes());
            }
            None => {
                let sender = origin.and_then(Origin::sender).unwrap_or(0);
                info[16..20].copy_from_slice(&sender.to_le_bytes());
            }
        }
        UserSliceWrite::new(a.u64(1), SIGINFO_BYTES)?.write(&*p.platform, &info)?;
    }
    Ok(sig as usize)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::syscall::testing::{Sys, err};
    use crate::user::UserMemory;

    const BUF: u64 = 0x60_0000;
    const SIGUSR1: u32 = 10;
    const SIGALRM: u32 = 14;

    fn set(s: &Sys, sigs: &[u32]) -> u64 {
        let bits = sigs.iter().fold(0u64, |b, &sig| b | 1 << (sig - 1));
        s.m.write_user(BUF, &bits.to_le_bytes()).unwrap();
        BUF
    }

    fn zero_timeout(s: &Sys) -> u64 {
        s.m.write_user(BUF + 0x10, &[0u8; 16]).unwrap();
        BUF + 0x10
    }

    #[test]
    fn takes_a_pending_signal_of_the_set_and_writes_its_info() {
        let s = Sys::new(BUF, 0x1000);
        // A handler is installed: the signal is not discarded as ignored.
        let mut act = [0u8; 32];
        act[..8].copy_from_slice(&0x1234u64.to_le_bytes());
        s.m.write_user(BUF + 0x100, &act).unwrap();
        assert_eq!(
            s.call("rt_sigaction", &[u64::from(SIGALRM), BUF + 0x100, 0, 8]),
            0
        );
        s.p.signals.lock().send_to_process(SIGALRM).unwrap();
        s.p.signals.lock().send_to_process(SIGUSR1).unwrap();
        let info = BUF + 0x200;
        s.m.write_user(info, &[0xff; 128]).unwrap();
        let t = zero_timeout(&s);
        assert_eq!(
            s.call("rt_sigtimedwait", &[set(&s, &[SIGALRM]), info, t, 8]),
            i64::from(SIGALRM)
        );
        let mut got = [0u8; 128];
        s.m.read_user(info, &mut got).unwrap();
        assert_eq!(
            i32::from_le_bytes(got[..4].try_into().unwrap()),
            SIGALRM as i32
        );
        assert!(got[4..].iter().all(|&b| b == 0));
        // Taken: nothing left of the set; SIGUSR1 is still pending.
        assert_eq!(
            s.call("rt_sigtimedwait", &[set(&s, &[SIGALRM]), 0, t, 8]),
            err(Errno::EAGAIN)
        );
        assert_ne!(
            s.p.signals
                .lock()
                .pending(crate::platform::CurrentThread::current_tid(&*s.m))
                & (1 << (SIGUSR1 - 1)),
            0
        );
    }

    #[test]
    fn a_timeout_gives_eagain_and_bad_arguments_einval() {
        let s = Sys::new(BUF, 0x1000);
        // 1 ms: the mock clock moves to the deadline.
        s.m.write_user(BUF + 0x10, &0u64.to_le_bytes()).unwrap();
        s.m.write_user(BUF + 0x18, &1_000_000u64.to_le_bytes())
            .unwrap();
        assert_eq!(
            s.call("rt_sigtimedwait", &[set(&s, &[SIGUSR1]), 0, BUF + 0x10, 8]),
            err(Errno::EAGAIN)
        );
        assert_eq!(
            s.call("rt_sigtimedwait", &[set(&s, &[SIGUSR1]), 0, 0, 4]),
            err(Errno::EINVAL)
        );
        s.m.write_user(BUF + 0x18, &2_000_000_000u64.to_le_bytes())
            .unwrap();
        assert_eq!(
            s.call("rt_sigtimedwait", &[set(&s, &[SIGUSR1]), 0, BUF + 0x10, 8]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            s.call("rt_sigtimedwait", &[0xdead_0000, 0, 0, 8]),
            err(Errno::EFAULT)
        );
    }
}
