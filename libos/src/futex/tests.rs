//! Futex tests with real threads over the mock's polling `Blocker`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use super::*;
use crate::platform::Clock;
use crate::platform::mock::MockPlatform;

const WORD: u64 = 0x10_0000;

fn setup() -> (Arc<MockPlatform>, Arc<FutexTable>) {
    let m = Arc::new(MockPlatform::new());
    m.map(WORD, 0x1000);
    (m, Arc::new(FutexTable::new()))
}

fn set(m: &MockPlatform, addr: u64, v: u32) {
    m.write_user(addr, &v.to_le_bytes()).unwrap();
}

/// Spins until `n` threads wait on `addr`.
fn until_waiting(t: &FutexTable, addr: u64, n: usize) {
    while t.waiters(addr) < n {
        thread::yield_now();
    }
}

#[test]
fn wait_checks_value_and_times_out() {
    let (m, t) = setup();
    set(&m, WORD, 5);
    let e = t
        .wait(&*m, &*m, WORD, 4, BITSET_MATCH_ANY, None)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EAGAIN);
    let deadline = m.monotonic_ns() + 1000;
    let e = t
        .wait(&*m, &*m, WORD, 5, BITSET_MATCH_ANY, Some(deadline))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ETIMEDOUT);
    assert_eq!(t.waiters(WORD), 0, "a timed-out waiter leaves the queue");
    let e = t
        .wait(&*m, &*m, 0xdead_0000, 0, BITSET_MATCH_ANY, None)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EFAULT);
    assert_eq!(t.wake(WORD, 1, BITSET_MATCH_ANY), 0);
}

#[test]
fn wake_wakes_count_in_fifo_order_and_by_bitset() {
    let (m, t) = setup();
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (i, bits) in [(0u32, 1u32), (1, 2), (2, 1)] {
        let (m2, t2, order) = (m.clone(), t.clone(), order.clone());
        handles.push(thread::spawn(move || {
            t2.wait(&*m2, &*m2, WORD, 0, bits, None).unwrap();
            order.lock().push(i);
        }));
        until_waiting(&t, WORD, i as usize + 1);
    }
    assert_eq!(t.wake(WORD, 1, 2), 1);
    handles.remove(1).join().unwrap();
    assert_eq!(t.wake(WORD, 5, 1), 2);
    for h in handles {
        h.join().unwrap();
    }
    let order = order.lock().clone();
    assert_eq!(order[0], 1);
    assert_eq!(t.waiters(WORD), 0);
}

#[test]
fn requeue_moves_waiters_and_cmp_requeue_checks() {
    let (m, t) = setup();
    let target = WORD + 8;
    let woken = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (m, t, woken) = (m.clone(), t.clone(), woken.clone());
            thread::spawn(move || {
                t.wait(&*m, &*m, WORD, 0, BITSET_MATCH_ANY, None).unwrap();
                woken.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    until_waiting(&t, WORD, 4);
    set(&m, WORD, 1);
    let e = t.requeue(&*m, WORD, 1, target, 10, Some(0)).unwrap_err();
    assert_eq!(e.errno(), Errno::EAGAIN);
    assert_eq!(t.requeue(&*m, WORD, 1, target, 2, Some(1)).unwrap(), 3);
    assert_eq!((t.waiters(WORD), t.waiters(target)), (1, 2));
    assert_eq!(t.requeue(&*m, WORD, 0, target, 5, None).unwrap(), 1);
    assert_eq!(t.wake(target, 10, BITSET_MATCH_ANY), 3);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(woken.load(Ordering::SeqCst), 4);
}

#[test]
fn wake_op_updates_the_second_word_and_wakes_conditionally() {
    let (m, t) = setup();
    let second = WORD + 4;
    set(&m, second, 3);
    // FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_GT, 1): old 3 > 1, wake both.
    let op = WakeOp::decode((1 << 28) | (4 << 24) | (2 << 12) | 1).unwrap();
    let handles: Vec<_> = [WORD, second]
        .into_iter()
        .map(|addr| {
            let (m, t) = (m.clone(), t.clone());
            let expected = if addr == WORD { 0 } else { 3 };
            thread::spawn(move || t.wait(&*m, &*m, addr, expected, BITSET_MATCH_ANY, None))
        })
        .collect();
    until_waiting(&t, WORD, 1);
    until_waiting(&t, second, 1);
    assert_eq!(t.wake_op(&*m, WORD, 1, second, 1, op).unwrap(), 2);
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let mut b = [0u8; 4];
    m.read_user(second, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 5);
    // OPARG_SHIFT: OR with 1 << 4; CMP_EQ 0 fails, nobody on second woken.
    let op = WakeOp::decode(((8 | 2) << 28) | (4 << 12)).unwrap();
    assert_eq!(op.oparg, 16);
    assert_eq!(t.wake_op(&*m, WORD, 1, second, 1, op).unwrap(), 0);
    m.read_user(second, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 21);
    assert_eq!(WakeOp::decode(6 << 28).unwrap_err().errno(), Errno::ENOSYS);
    assert_eq!(WakeOp::decode(9 << 24).unwrap_err().errno(), Errno::ENOSYS);
    assert_eq!(
        t.wake_op(&*m, WORD, 1, 0xdead_0000, 1, op)
            .unwrap_err()
            .errno(),
        Errno::EFAULT
    );
}

/// Ping-pong on one word: each side sets the word, wakes the other and
/// waits for its answer. A lost wake-up leaves a side blocked until the
/// mock gives up with `EDEADLK`, which fails the test.
#[test]
fn no_lost_wakeups_under_stress() {
    let (m, t) = setup();
    m.set_block_spins(1_000_000);
    const ROUNDS: u32 = 2000;
    fn wait_while(m: &MockPlatform, t: &FutexTable, value: u32) {
        loop {
            let mut b = [0u8; 4];
            m.read_user(WORD, &mut b).unwrap();
            if u32::from_le_bytes(b) != value {
                return;
            }
            match t.wait(m, m, WORD, value, BITSET_MATCH_ANY, None) {
                Ok(()) => {}
                Err(e) if e.errno() == Errno::EAGAIN => {}
                Err(e) => panic!("value {value}: {e}"),
            }
        }
    }
    let answerer = {
        let (m, t) = (m.clone(), t.clone());
        thread::spawn(move || {
            for r in 0..ROUNDS {
                wait_while(&m, &t, 2 * r);
                set(&m, WORD, 2 * r + 2);
                t.wake(WORD, 1, BITSET_MATCH_ANY);
            }
        })
    };
    for r in 0..ROUNDS {
        set(&m, WORD, 2 * r + 1);
        t.wake(WORD, 1, BITSET_MATCH_ANY);
        wait_while(&m, &t, 2 * r + 1);
    }
    answerer.join().unwrap();
    assert_eq!(t.waiters(WORD), 0);
}
