//! Host tests of the POSIX timers over the mock clock.

use super::*;
use crate::platform::mock::MockPlatform;

fn spec(value_ns: u64, interval_ns: u64) -> TimerSpec {
    TimerSpec {
        value_ns,
        interval_ns,
    }
}

fn sig(signo: u32, value: u64) -> Notify {
    Notify::Signal {
        signo,
        value,
        tid: None,
    }
}

#[test]
fn one_shot_and_periodic_timers_fire_and_count_missed_periods() {
    let m = MockPlatform::new();
    let t = PosixTimers::default();
    let a = t.create(TimerClock::Monotonic, sig(10, 7)).unwrap();
    let b = t.create(TimerClock::Monotonic, sig(12, 8)).unwrap();
    assert_eq!((a, b), (0, 1));
    assert!(t.due(&m).is_empty(), "disarmed");
    assert_eq!(t.set(a, spec(1_000, 0), false, &m).unwrap(), spec(0, 0));
    t.set(b, spec(500, 300), false, &m).unwrap();
    assert_eq!(t.get(a, &m).unwrap(), spec(1_000, 0));
    m.advance_ns(600);
    let f = t.due(&m);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].timer_id, f[0].signo, f[0].value, f[0].missed),
        (b, 12, 8, 0)
    );
    // b next at 800; at 1_500 a fires, and b has missed 2 periods (800, 1100)
    // beyond the one at 1_400.
    m.advance_ns(900);
    let f = t.due(&m);
    assert_eq!(
        f.iter().map(|f| (f.timer_id, f.missed)).collect::<Vec<_>>(),
        [(a, 0), (b, 2)]
    );
    assert_eq!(t.get(a, &m).unwrap(), spec(0, 0), "one-shot: disarmed");
    assert_eq!(t.get(b, &m).unwrap(), spec(200, 300), "next at 1_700");
    // Disarm, delete; unknown ids are EINVAL.
    assert_eq!(t.set(b, spec(0, 0), false, &m).unwrap(), spec(200, 300));
    m.advance_ns(10_000);
    assert!(t.due(&m).is_empty());
    t.delete(a).unwrap();
    assert_eq!(t.delete(a).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(t.get(99, &m).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        t.set(99, spec(1, 0), false, &m).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(t.overrun(99).unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn absolute_times_none_notification_default_signal_and_limits() {
    let m = MockPlatform::new();
    let t = PosixTimers::default();
    let now = m.realtime_ns();
    let r = t.create(TimerClock::Realtime, sig(14, 1)).unwrap();
    t.set(r, spec(now + 5_000, 0), true, &m).unwrap();
    assert_eq!(t.get(r, &m).unwrap(), spec(5_000, 0));
    // An absolute time already past fires at the next check.
    let past = t.create(TimerClock::Monotonic, sig(15, 2)).unwrap();
    t.set(past, spec(1, 0), true, &m).unwrap();
    assert_eq!(
        t.due(&m).iter().map(|f| f.timer_id).collect::<Vec<_>>(),
        [past]
    );
    // SIGEV_NONE: expires (readable), sends nothing.
    let quiet = t.create(TimerClock::Monotonic, Notify::None).unwrap();
    t.set(quiet, spec(100, 0), false, &m).unwrap();
    m.advance_ns(6_000);
    assert_eq!(
        t.due(&m).iter().map(|f| f.timer_id).collect::<Vec<_>>(),
        [r]
    );
    assert_eq!(t.get(quiet, &m).unwrap(), spec(0, 0));
    // A null sigevent: SIGALRM carrying the timer's id.
    let d = t.create_default(TimerClock::Monotonic).unwrap();
    t.set(d, spec(10, 0), false, &m).unwrap();
    m.advance_ns(10);
    let f = t.due(&m);
    assert_eq!((f[0].signo, f[0].value), (14, d as u64));
    // Clocks: thread CPU time and unknown ids are refused.
    assert_eq!(TimerClock::from_id(3).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(TimerClock::from_id(-6).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(TimerClock::from_id(7).unwrap(), TimerClock::Monotonic);
    // exec deletes them all.
    t.clear();
    assert_eq!(t.get(r, &m).unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn a_process_holds_at_most_max_timers() {
    let t = PosixTimers::default();
    for _ in 0..MAX_TIMERS {
        t.create(TimerClock::Monotonic, Notify::None).unwrap();
    }
    assert_eq!(
        t.create(TimerClock::Monotonic, Notify::None)
            .unwrap_err()
            .errno(),
        Errno::EAGAIN
    );
    t.delete(5).unwrap();
    // Ids go on counting up (a freed one is reused only after they wrap).
    assert_eq!(
        t.create(TimerClock::Monotonic, Notify::None).unwrap(),
        MAX_TIMERS as i32
    );
}
