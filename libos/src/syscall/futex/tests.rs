//! `futex` through the syscall table: argument checks and timeouts.

use alloc::sync::Arc;

use super::cmd::*;
use crate::error::Errno;
use crate::fs::{DeviceRegistry, Vfs};
use crate::platform::Clock;
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::syscall::{SyscallTable, syscall_number};
use crate::user::UserMemory;

const BUF: u64 = 0x20_0000;
const WORD: u64 = BUF;
const TS: u64 = BUF + 0x100;

fn setup() -> (Arc<MockPlatform>, Process, SyscallTable) {
    let m = Arc::new(MockPlatform::new());
    let vfs = Arc::new(Vfs::new(
        m.clone(),
        DeviceRegistry::standard(m.clone(), m.clone()),
    ));
    m.map(BUF, 0x1000);
    (m.clone(), Process::new(m, vfs), SyscallTable::new())
}

fn futex(t: &SyscallTable, p: &Process, args: [u64; 6]) -> i64 {
    t.dispatch(p, syscall_number("futex").unwrap(), args) as i64
}

fn err(e: Errno) -> i64 {
    -i64::from(e.as_i32())
}

fn timespec(m: &MockPlatform, ns: u64) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    m.write_user(TS, &b).unwrap();
}

#[test]
fn waits_time_out_relative_and_absolute() {
    let (m, p, t) = setup();
    let private = u64::from(FUTEX_PRIVATE_FLAG);
    let wait = u64::from(FUTEX_WAIT) | private;
    assert_eq!(futex(&t, &p, [WORD, wait, 1, 0, 0, 0]), err(Errno::EAGAIN));
    timespec(&m, 5_000_000);
    let before = m.monotonic_ns();
    assert_eq!(
        futex(&t, &p, [WORD, wait, 0, TS, 0, 0]),
        err(Errno::ETIMEDOUT)
    );
    assert_eq!(m.monotonic_ns(), before + 5_000_000);
    // WAIT_BITSET takes an absolute time, realtime with the flag.
    let bitset = u64::from(FUTEX_WAIT_BITSET) | private;
    timespec(&m, m.monotonic_ns() + 1000);
    assert_eq!(
        futex(&t, &p, [WORD, bitset, 0, TS, 0, 1]),
        err(Errno::ETIMEDOUT)
    );
    let realtime = bitset | u64::from(FUTEX_CLOCK_REALTIME);
    let before = m.monotonic_ns();
    timespec(&m, m.realtime_ns() + 2_000_000);
    assert_eq!(
        futex(&t, &p, [WORD, realtime, 0, TS, 0, 1]),
        err(Errno::ETIMEDOUT)
    );
    assert_eq!(m.monotonic_ns(), before + 2_000_000);
    // A deadline in the past times out at once.
    timespec(&m, 1);
    assert_eq!(
        futex(&t, &p, [WORD, realtime, 0, TS, 0, 1]),
        err(Errno::ETIMEDOUT)
    );
    // Nobody waits: wakes report 0.
    assert_eq!(futex(&t, &p, [WORD, u64::from(FUTEX_WAKE), 1, 0, 0, 0]), 0);
}

#[test]
fn bad_arguments() {
    let (m, p, t) = setup();
    let wait = u64::from(FUTEX_WAIT);
    assert_eq!(
        futex(&t, &p, [WORD + 2, wait, 0, 0, 0, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        futex(&t, &p, [0xdead_0000, wait, 0, 0, 0, 0]),
        err(Errno::EFAULT)
    );
    let bitset = u64::from(FUTEX_WAIT_BITSET);
    assert_eq!(
        futex(&t, &p, [WORD, bitset, 0, 0, 0, 0]),
        err(Errno::EINVAL)
    );
    let wake_bitset = u64::from(FUTEX_WAKE_BITSET);
    assert_eq!(
        futex(&t, &p, [WORD, wake_bitset, 1, 0, 0, 0]),
        err(Errno::EINVAL)
    );
    m.write_user(TS, &[0xff; 16]).unwrap();
    assert_eq!(futex(&t, &p, [WORD, wait, 0, TS, 0, 0]), err(Errno::EINVAL));
    let wake_rt = u64::from(FUTEX_WAKE | FUTEX_CLOCK_REALTIME);
    assert_eq!(
        futex(&t, &p, [WORD, wake_rt, 1, 0, 0, 0]),
        err(Errno::ENOSYS)
    );
    assert_eq!(
        futex(&t, &p, [WORD, 6, 0, 0, 0, 0]),
        err(Errno::ENOSYS),
        "LOCK_PI"
    );
    assert_eq!(futex(&t, &p, [WORD, 99, 0, 0, 0, 0]), err(Errno::ENOSYS));
    let requeue = u64::from(FUTEX_CMP_REQUEUE);
    assert_eq!(
        futex(&t, &p, [WORD, requeue, 1, u64::MAX, WORD + 4, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        futex(&t, &p, [WORD, requeue, 1, 1, WORD + 4, 7]),
        err(Errno::EAGAIN)
    );
    assert_eq!(futex(&t, &p, [WORD, requeue, 1, 1, WORD + 4, 0]), 0);
    let wake_op = u64::from(FUTEX_WAKE_OP);
    assert_eq!(futex(&t, &p, [WORD, wake_op, 1, 1, WORD + 4, 0]), 0);
    assert_eq!(
        futex(&t, &p, [WORD, wake_op, 1, 1, WORD + 4, 7 << 28]),
        err(Errno::ENOSYS)
    );
}

/// Issue 12: a shared futex on `MAP_SHARED` memory is keyed by the shared
/// object, so a waiter in a forked child is woken by its parent; a
/// private wake, or a shared one on private (copy-on-write) memory, does
/// not reach it, as on Linux.
#[test]
fn a_shared_futex_on_map_shared_memory_wakes_across_processes() {
    use crate::syscall::testing::Sys;
    use std::thread;
    const PRW: u64 = 3;
    const SHARED_ANON: u64 = 0x01 | 0x20;
    const PRIVATE_ANON: u64 = 0x02 | 0x20;
    let s = Sys::new(0x10000, 4096);
    s.p.processes.insert_init(s.p.clone());
    let shared = s.call("mmap", &[0, 8192, PRW, SHARED_ANON, u64::MAX, 0]) as u64;
    let private = s.call("mmap", &[0, 4096, PRW, PRIVATE_ANON, u64::MAX, 0]) as u64;
    // The word is in the second page, so the key's offset is not 0.
    let word = shared + 4096 + 8;
    let child = Arc::new(s.p.fork(2, 1));
    s.p.processes.add_child(1, child.clone()).unwrap();
    let key = super::locate(&s.p, word, false).unwrap().1.key;
    assert_eq!(super::locate(&child, word, false).unwrap().1.key, key);
    assert_ne!(key, word);
    let waiter = |addr: u64| {
        let (t, c) = (s.t.clone(), child.clone());
        thread::spawn(move || futex(&t, &c, [addr, u64::from(FUTEX_WAIT), 0, 0, 0, 0]))
    };
    let in_child = waiter(word);
    while s.p.shared_futexes.waiters(key) == 0 {
        thread::yield_now();
    }
    // Not through the parent's private queues.
    let wake_private = u64::from(FUTEX_WAKE | FUTEX_PRIVATE_FLAG);
    let wake = u64::from(FUTEX_WAKE);
    assert_eq!(futex(&s.t, &s.p, [word, wake_private, 1, 0, 0, 0]), 0);
    assert_eq!(futex(&s.t, &s.p, [word, wake, 1, 0, 0, 0]), 1);
    assert_eq!(in_child.join().unwrap(), 0);
    // On private memory a shared futex stays within the process.
    let on_private = waiter(private);
    while child.futexes.waiters(private) == 0 {
        thread::yield_now();
    }
    assert_eq!(futex(&s.t, &s.p, [private, wake, 1, 0, 0, 0]), 0);
    assert_eq!(futex(&s.t, &child, [private, wake, 1, 0, 0, 0]), 1);
    assert_eq!(on_private.join().unwrap(), 0);
    // A requeue between shared and private words is refused.
    let requeue = [word, u64::from(FUTEX_REQUEUE), 1, 1, private, 0];
    assert_eq!(futex(&s.t, &s.p, requeue), err(Errno::EINVAL));
}
