//! Tests of the process, scheduling and signal families.

use crate::error::Errno;
use crate::platform::Clock;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const BUF: u64 = 0x20_0000;

type H = Sys;

fn setup() -> H {
    Sys::new(BUF, 0x1000)
}

impl Sys {
    fn words<const N: usize>(&self, addr: u64) -> [u64; N] {
        let mut b = [0u8; 128];
        self.m.read_user(addr, &mut b[..8 * N]).unwrap();
        core::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()))
    }

    fn put(&self, addr: u64, words: &[u64]) {
        let b: alloc::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.m.write_user(addr, &b).unwrap();
    }
}

#[test]
fn ids_groups_and_sessions() {
    let h = setup();
    assert_eq!(h.call("getpid", &[]), 1);
    assert_eq!(h.call("getppid", &[]), 0);
    assert_eq!(h.call("getpgrp", &[]), 1);
    assert_eq!(h.call("getpgid", &[0]), 1);
    assert_eq!(h.call("getsid", &[1]), 1);
    assert_eq!(h.call("getpgid", &[7]), err(Errno::ESRCH));
    assert_eq!(h.call("setsid", &[]), err(Errno::EPERM));
    assert_eq!(h.call("setpgid", &[0, 0]), err(Errno::EPERM));
    assert_eq!(h.call("setpgid", &[5, 0]), err(Errno::ESRCH));
    assert_eq!(h.call("setpgid", &[0, u64::MAX]), err(Errno::EINVAL));
}

#[test]
fn rlimits_default_set_and_nofile_applies() {
    let h = setup();
    assert_eq!(h.call("getrlimit", &[3, BUF]), 0);
    assert_eq!(h.words::<2>(BUF), [8 << 20, u64::MAX]);
    assert_eq!(h.call("prlimit64", &[0, 7, 0, BUF]), 0);
    assert_eq!(h.words::<2>(BUF), [1024, 1 << 20]);
    h.put(BUF, &[3, 10]);
    assert_eq!(h.call("prlimit64", &[0, 7, BUF, BUF + 16]), 0);
    assert_eq!(h.words::<2>(BUF + 16), [1024, 1 << 20], "old value");
    assert_eq!(h.p.fds.lock().limit(), 3);
    h.put(BUF, &[5, 4]);
    assert_eq!(h.call("setrlimit", &[7, BUF]), err(Errno::EINVAL));
    h.put(BUF, &[5, 1 << 21]);
    assert_eq!(h.call("setrlimit", &[7, BUF]), err(Errno::EPERM));
    assert_eq!(h.call("getrlimit", &[16, BUF]), err(Errno::EINVAL));
    assert_eq!(h.call("prlimit64", &[9, 7, 0, BUF]), err(Errno::ESRCH));
    assert_eq!(h.call("getrlimit", &[7, 0xdead_0000]), err(Errno::EFAULT));
    // A bad pointer changes nothing; a limit of 0 makes opening EMFILE.
    assert_eq!(h.call("setrlimit", &[7, 0xdead_0000]), err(Errno::EFAULT));
    assert_eq!(h.p.fds.lock().limit(), 3);
    h.put(BUF, &[0, 0]);
    assert_eq!(h.call("setrlimit", &[7, BUF]), 0);
    assert_eq!(h.call("eventfd2", &[0, 0]), err(Errno::EMFILE));
}

#[test]
fn sysinfo_rusage_and_times() {
    let h = setup();
    h.m.advance_ns(800_000_000);
    // CPU time is what the program ran, not the wall time that passed.
    h.m.advance_cpu_ns(700_000_000);
    assert_eq!(h.call("sysinfo", &[BUF]), 0);
    let info = h.words::<14>(BUF);
    assert_eq!(info[0], 3, "2.5 s of uptime rounds up");
    assert_eq!(info[4], 1 << 30);
    assert!(info[5] > 0 && info[5] < 1 << 30);
    assert_eq!(info[10] & 0xffff, 1, "procs");
    assert_eq!(h.call("getrusage", &[0, BUF]), 0);
    assert_eq!(h.words::<2>(BUF), [0, 700_000]);
    assert_eq!(h.call("getrusage", &[u64::MAX, BUF]), 0);
    assert_eq!(h.words::<2>(BUF), [0, 0]);
    assert_eq!(h.call("getrusage", &[5, BUF]), err(Errno::EINVAL));
    assert_eq!(h.call("times", &[BUF]), 250, "elapsed ticks");
    assert_eq!(h.words::<2>(BUF), [70, 0], "tms_utime: CPU time");
    assert_eq!(h.call("times", &[0]), 250);
}

#[test]
fn affinity_yield_and_sleeps() {
    let h = setup();
    assert_eq!(h.call("sched_getaffinity", &[0, 128, BUF]), 8);
    assert_eq!(h.words::<1>(BUF), [1]);
    assert_eq!(
        h.call("sched_getaffinity", &[0, 4, BUF]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.call("sched_getaffinity", &[99, 8, BUF]),
        err(Errno::ESRCH)
    );
    // A negative pid names no task (EINVAL would make glibc's and
    // CPython's callers grow the mask forever).
    assert_eq!(
        h.call("sched_getaffinity", &[-1i64 as u64, 8, BUF]),
        err(Errno::ESRCH)
    );
    assert_eq!(h.call("sched_setaffinity", &[0, 8, BUF]), 0);
    h.put(BUF, &[2]);
    assert_eq!(
        h.call("sched_setaffinity", &[0, 8, BUF]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("sched_yield", &[]), 0);
    // Two CPUs: both in the mask, a mask of CPU 1 alone is valid, one of
    // CPU 2 alone is not; getcpu reports the caller's (the mock's last).
    h.m.set_cpus(2);
    assert_eq!(h.call("sched_getaffinity", &[0, 8, BUF]), 8);
    assert_eq!(h.words::<1>(BUF), [3]);
    assert_eq!(h.call("sched_setaffinity", &[0, 8, BUF]), 0);
    h.put(BUF, &[4]);
    assert_eq!(
        h.call("sched_setaffinity", &[0, 8, BUF]),
        err(Errno::EINVAL)
    );
    h.put(BUF, &[u64::MAX, u64::MAX]);
    assert_eq!(h.call("getcpu", &[BUF, BUF + 4, 0]), 0);
    assert_eq!(h.words::<1>(BUF), [1], "cpu 1, node 0");
    assert_eq!(h.call("getcpu", &[0, 0, 0]), 0);
    assert_eq!(h.call("getcpu", &[8, 0, 0]), err(Errno::EFAULT));
    h.m.set_cpus(1);
    // nanosleep advances the mock clock to the deadline.
    let start = h.m.monotonic_ns();
    h.put(BUF, &[1, 500]);
    assert_eq!(h.call("nanosleep", &[BUF, 0]), 0);
    assert_eq!(h.m.monotonic_ns(), start + 1_000_000_500);
    // Interrupted: EINTR and the time left.
    h.put(BUF, &[2, 0]);
    h.m.interrupt_next_wait_after(500_000_000);
    assert_eq!(h.call("nanosleep", &[BUF, BUF + 16]), err(Errno::EINTR));
    assert_eq!(h.words::<2>(BUF + 16), [1, 500_000_000]);
    h.put(BUF, &[0, 1_000_000_000]);
    assert_eq!(h.call("nanosleep", &[BUF, 0]), err(Errno::EINVAL));
    // clock_nanosleep, relative and absolute.
    h.put(BUF, &[0, 1000]);
    let start = h.m.monotonic_ns();
    assert_eq!(h.call("clock_nanosleep", &[1, 0, BUF, 0]), 0);
    assert_eq!(h.m.monotonic_ns(), start + 1000);
    let target = h.m.realtime_ns() + 5000;
    h.put(BUF, &[target / 1_000_000_000, target % 1_000_000_000]);
    let start = h.m.monotonic_ns();
    assert_eq!(h.call("clock_nanosleep", &[0, 1, BUF, 0]), 0);
    assert_eq!(h.m.monotonic_ns(), start + 5000);
    assert_eq!(
        h.call("clock_nanosleep", &[3, 0, BUF, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.call("clock_nanosleep", &[4, 0, BUF, 0]),
        err(Errno::EOPNOTSUPP)
    );
    // On the process CPU clock: over once another thread has worked that
    // long; a signal ends it with the CPU time left.
    h.put(BUF, &[0, 1_000_000]);
    let worker = {
        let m = h.m.clone();
        std::thread::spawn(move || {
            for _ in 0..10 {
                std::thread::sleep(std::time::Duration::from_millis(2));
                m.advance_cpu_ns(100_000);
            }
        })
    };
    h.m.set_block_spins(u64::MAX);
    let cpu = h.m.process_cpu_ns();
    assert_eq!(h.call("clock_nanosleep", &[2, 0, BUF, 0]), 0);
    assert!(h.m.process_cpu_ns() >= cpu + 1_000_000);
    worker.join().unwrap();
    h.m.interrupt_next_wait_after(1);
    assert_eq!(
        h.call("clock_nanosleep", &[2, 0, BUF, BUF + 16]),
        err(Errno::EINTR)
    );
    assert_eq!(h.words::<2>(BUF + 16), [0, 1_000_000]);
}

#[test]
fn sigaction_masks_and_altstacks() {
    let h = setup();
    let act = BUF;
    let old = BUF + 64;
    h.put(
        act,
        &[0x40_1000, 0x0400_0004, 0x40_2000, (1 << 8) | (1 << 1)],
    );
    assert_eq!(h.call("rt_sigaction", &[11, act, old, 8]), 0);
    assert_eq!(h.words::<4>(old), [0; 4]);
    assert_eq!(h.call("rt_sigaction", &[11, 0, old, 8]), 0);
    assert_eq!(
        h.words::<4>(old),
        [0x40_1000, 0x0400_0004, 0x40_2000, 1 << 1],
        "SIGKILL dropped"
    );
    let seg = h.p.signals.lock().handler_for(11).unwrap();
    assert_eq!(seg.handler, 0x40_1000);
    assert!(h.p.signals.lock().handler_for(10).is_none());
    assert_eq!(h.call("rt_sigaction", &[9, act, 0, 8]), err(Errno::EINVAL));
    assert_eq!(
        h.call("rt_sigaction", &[19, 0, old, 8]),
        0,
        "reading is fine"
    );
    assert_eq!(h.call("rt_sigaction", &[65, 0, old, 8]), err(Errno::EINVAL));
    assert_eq!(h.call("rt_sigaction", &[0, 0, old, 8]), err(Errno::EINVAL));
    assert_eq!(
        h.call("rt_sigaction", &[11, act, old, 4]),
        err(Errno::EINVAL)
    );
    // Masks are per thread.
    h.put(act, &[(1 << 1) | (1 << 8) | (1 << 18)]);
    assert_eq!(h.call("rt_sigprocmask", &[0, act, old, 8]), 0);
    assert_eq!(h.words::<1>(old), [0]);
    h.put(act, &[1 << 1]);
    assert_eq!(h.call("rt_sigprocmask", &[1, act, old, 8]), 0);
    assert_eq!(h.words::<1>(old), [1 << 1], "SIGKILL/SIGSTOP never blocked");
    assert_eq!(h.call("rt_sigprocmask", &[1, 0, old, 8]), 0);
    assert_eq!(h.words::<1>(old), [0]);
    assert_eq!(
        h.call("rt_sigprocmask", &[7, act, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("rt_sigprocmask", &[7, 0, 0, 8]), 0);
    h.put(act, &[1 << 3]);
    assert_eq!(h.call("rt_sigprocmask", &[2, act, 0, 8]), 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            h.m.set_current_tid(2);
            assert_eq!(h.call("rt_sigprocmask", &[0, 0, old, 8]), 0);
            assert_eq!(h.words::<1>(old), [0], "another thread's mask");
        });
    });
    assert_eq!(h.call("rt_sigpending", &[old, 8]), 0);
    assert_eq!(h.words::<1>(old), [0]);
    assert_eq!(h.call("rt_sigpending", &[old, 9]), err(Errno::EINVAL));
    // Alternate stacks.
    assert_eq!(h.call("sigaltstack", &[0, old]), 0);
    assert_eq!(h.words::<3>(old), [0, 2, 0]);
    h.put(act, &[0x7000_0000, 0, 64 * 1024]);
    assert_eq!(h.call("sigaltstack", &[act, old]), 0);
    assert_eq!(h.call("sigaltstack", &[0, old]), 0);
    assert_eq!(h.words::<3>(old), [0x7000_0000, 0, 64 * 1024]);
    h.put(act, &[0x7000_0000, 0, 1024]);
    assert_eq!(h.call("sigaltstack", &[act, 0]), err(Errno::ENOMEM));
    h.put(act, &[0x7000_0000, 4, 64 * 1024]);
    assert_eq!(h.call("sigaltstack", &[act, 0]), err(Errno::EINVAL));
    h.put(act, &[0, 2, 0]);
    assert_eq!(h.call("sigaltstack", &[act, 0]), 0);
    assert_eq!(h.call("sigaltstack", &[0, old]), 0);
    assert_eq!(h.words::<3>(old), [0, 2, 0]);
}

#[test]
fn pidfd_open_refers_to_a_process_until_it_ends() {
    let h = setup();
    h.p.processes.insert_init(h.p.clone());
    let child = alloc::sync::Arc::new(h.p.fork(2, 1));
    h.p.processes.add_child(1, child).unwrap();
    assert_eq!(h.call("pidfd_open", &[u64::MAX, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("pidfd_open", &[0, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("pidfd_open", &[2, 1]), err(Errno::EINVAL));
    assert_eq!(h.call("pidfd_open", &[99, 0]), err(Errno::ESRCH));
    let me = h.call("pidfd_open", &[1, 0]);
    let fd = h.call("pidfd_open", &[2, 0o4000]);
    assert!(me >= 0 && fd >= 0);
    // Close-on-exec, as Linux makes it; not readable while the child runs.
    assert_eq!(h.call("fcntl", &[fd as u64, 1]), 1);
    let file = h.p.fds.lock().get(fd as i32).unwrap();
    assert!(file.poll().is_empty());
    // The child ends: readable (a zombie until reaped).
    h.p.processes.exit(2, crate::ptable::ExitStatus::Exited(0));
    assert!(file.poll().contains(crate::fd::PollEvents::IN));
    let mine = h.p.fds.lock().get(me as i32).unwrap();
    assert!(mine.poll().is_empty());
}
