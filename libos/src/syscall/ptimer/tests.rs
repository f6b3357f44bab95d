//! Host tests of the POSIX timer calls: arguments, errors, and the signal
//! an expiry makes pending with its `SI_TIMER` details.

use crate::error::Errno;
use crate::signal::Origin;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const MEM: u64 = 0x40000;
const SIGALRM: u32 = 14;
const SIGUSR1: u32 = 10;

fn sigevent(value: u64, signo: i32, notify: i32, tid: i32) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&value.to_le_bytes());
    b[8..12].copy_from_slice(&signo.to_le_bytes());
    b[12..16].copy_from_slice(&notify.to_le_bytes());
    b[16..20].copy_from_slice(&tid.to_le_bytes());
    b
}

fn itimerspec(interval_ns: u64, value_ns: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, ns) in [interval_ns, value_ns].into_iter().enumerate() {
        b[16 * i..16 * i + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[16 * i + 8..16 * i + 16].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    }
    b
}

impl Sys {
    fn create(&self, clock: u64, sev: Option<[u8; 64]>) -> i64 {
        let sevp = match sev {
            Some(b) => {
                self.m.write_user(MEM + 0x100, &b).unwrap();
                MEM + 0x100
            }
            None => 0,
        };
        match self.call("timer_create", &[clock, sevp, MEM]) {
            0 => {
                let mut id = [0u8; 4];
                self.m.read_user(MEM, &mut id).unwrap();
                i64::from(i32::from_le_bytes(id))
            }
            e => e,
        }
    }

    fn settime(&self, id: i64, flags: u64, interval_ns: u64, value_ns: u64) -> i64 {
        self.m
            .write_user(MEM + 0x200, &itimerspec(interval_ns, value_ns))
            .unwrap();
        self.call(
            "timer_settime",
            &[id as u64, flags, MEM + 0x200, MEM + 0x300],
        )
    }
}

#[test]
fn an_expiry_makes_its_signal_pending_with_the_timer_s_details() {
    let s = Sys::new(MEM, 0x1000);
    let id = s.create(1, Some(sigevent(0xfeed, SIGUSR1 as i32, 0, 0)));
    assert_eq!(id, 0);
    assert_eq!(s.settime(id, 0, 0, 5_000_000), 0);
    s.p.raise_expired_timers();
    assert_eq!(s.p.signals.lock().pending(1), 0, "not yet");
    s.m.advance_ns(5_000_000);
    s.p.raise_expired_timers();
    let mut sig = s.p.signals.lock();
    assert_eq!(sig.pending(1), 1 << (SIGUSR1 - 1));
    let info = sig
        .take_origin(SIGUSR1)
        .and_then(Origin::timer)
        .expect("timer details");
    assert_eq!(
        (info.timer_id, info.value, info.overrun, info.tid),
        (0, 0xfeed, 0, None)
    );
}

#[test]
fn a_periodic_timer_whose_signal_is_pending_counts_overruns() {
    let s = Sys::new(MEM, 0x1000);
    let id = s.create(1, None);
    assert_eq!(s.settime(id, 0, 1_000_000, 1_000_000), 0);
    s.m.advance_ns(1_000_000);
    s.p.raise_expired_timers();
    // Three more periods pass, checked twice, while SIGALRM is pending.
    s.m.advance_ns(2_000_000);
    s.p.raise_expired_timers();
    s.m.advance_ns(1_000_000);
    s.p.raise_expired_timers();
    assert_eq!(s.call("timer_getoverrun", &[id as u64]), 3);
    let info =
        s.p.signals
            .lock()
            .take_origin(SIGALRM)
            .and_then(Origin::timer);
    let info = info.expect("timer details");
    // A null sigevent: SIGALRM with the timer id as its value.
    assert_eq!((info.timer_id, info.value, info.overrun), (0, 0, 3));
    // timer_gettime: the next expiry is a period away.
    assert_eq!(s.call("timer_gettime", &[id as u64, MEM + 0x400]), 0);
    let mut b = [0u8; 32];
    s.m.read_user(MEM + 0x400, &mut b).unwrap();
    assert_eq!(b, itimerspec(1_000_000, 1_000_000));
}

#[test]
fn bad_arguments_get_linux_errors_and_delete_forgets_the_timer() {
    let s = Sys::new(MEM, 0x1000);
    assert_eq!(s.create(3, None), err(Errno::EINVAL), "thread CPU clock");
    assert_eq!(s.create(99, None), err(Errno::EINVAL));
    assert_eq!(
        s.create(1, Some(sigevent(0, 0, 0, 0))),
        err(Errno::EINVAL),
        "signal 0"
    );
    assert_eq!(s.create(1, Some(sigevent(0, 65, 0, 0))), err(Errno::EINVAL));
    assert_eq!(
        s.create(1, Some(sigevent(0, 10, 2, 0))),
        err(Errno::EINVAL),
        "SIGEV_THREAD"
    );
    assert_eq!(
        s.create(1, Some(sigevent(0, 10, 4, 777))),
        err(Errno::EINVAL),
        "no such thread"
    );
    assert_eq!(
        s.create(1, Some(sigevent(0, 10, 4, 1))),
        0,
        "SIGEV_THREAD_ID to the first thread"
    );
    assert_eq!(
        s.call("timer_create", &[1, 0, 0xdead_0000]),
        err(Errno::EFAULT)
    );
    assert_eq!(s.settime(0, 2, 0, 1), err(Errno::EINVAL), "unknown flag");
    s.m.write_user(MEM + 0x200, &itimerspec(0, 0)).unwrap();
    s.m.write_user(MEM + 0x218, &1_000_000_000u64.to_le_bytes())
        .unwrap();
    assert_eq!(
        s.call("timer_settime", &[0, 0, MEM + 0x200, 0]),
        err(Errno::EINVAL),
        "nanoseconds out of range"
    );
    assert_eq!(s.settime(42, 0, 0, 1), err(Errno::EINVAL), "no such timer");
    // TIMER_ABSTIME with a past time: due at once.
    assert_eq!(s.settime(0, 1, 0, 1), 0);
    s.p.raise_expired_timers();
    assert_eq!(s.p.signals.lock().pending(1), 1 << 9);
    assert_eq!(s.call("timer_delete", &[0]), 0);
    assert!(s.p.signals.lock().take_origin(10).is_none(), "forgotten");
    assert_eq!(s.call("timer_delete", &[0]), err(Errno::EINVAL));
    assert_eq!(s.call("timer_getoverrun", &[0]), err(Errno::EINVAL));
}

#[test]
fn sigtimedwait_takes_a_timer_signal_with_its_si_timer_details() {
    // What glibc's SIGEV_THREAD helper thread does: block the signal, wait
    // for it with sigwaitinfo, read si_code and si_value.
    let s = Sys::new(MEM, 0x1000);
    let sigtimer = 32;
    let id = s.create(1, Some(sigevent(0xabcd_0000_1234, sigtimer, 0, 0)));
    assert_eq!(s.settime(id, 0, 0, 1_000), 0);
    s.m.advance_ns(1_000);
    s.p.raise_expired_timers();
    let set = 1u64 << (sigtimer - 1);
    s.m.write_user(MEM + 0x500, &set.to_le_bytes()).unwrap();
    s.m.write_user(MEM + 0x510, &[0u8; 16]).unwrap();
    assert_eq!(
        s.call(
            "rt_sigtimedwait",
            &[MEM + 0x500, MEM + 0x600, MEM + 0x510, 8]
        ),
        i64::from(sigtimer)
    );
    let mut info = [0u8; 32];
    s.m.read_user(MEM + 0x600, &mut info).unwrap();
    let int = |at: usize| i32::from_le_bytes(info[at..at + 4].try_into().unwrap());
    assert_eq!(
        (int(0), int(8), int(16), int(20)),
        (sigtimer, -2, id as i32, 0)
    );
    assert_eq!(
        u64::from_le_bytes(info[24..32].try_into().unwrap()),
        0xabcd_0000_1234
    );
    // The details went with the signal.
    assert!(s.p.signals.lock().take_origin(sigtimer as u32).is_none());
}
