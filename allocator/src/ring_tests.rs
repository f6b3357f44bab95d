//! Tests of [`super::RingArena`]: in order, out of order, wrapping, and a
//! random run checked against the ranges out.

use std::vec::Vec;

use super::RingArena;

#[test]
fn ranges_follow_each_other_and_wrap_when_the_end_has_no_room() {
    let mut a = RingArena::<8>::new(1000, 64);
    assert_eq!(a.alloc(100), Some(0));
    assert_eq!(a.alloc(100), Some(128));
    assert_eq!(a.alloc(600), Some(256));
    // 856..1000 is too short for 200, and 0..128 is still out.
    assert_eq!(a.alloc(200), None);
    assert!(a.free(0));
    // 0..128 came back: 120 bytes fit there (not at 896), 200 nowhere.
    assert_eq!(a.alloc(200), None);
    assert_eq!(a.alloc(120), Some(0));
    // Wrapped: free from 128 (the newest's end rounded) to 128 (the
    // oldest's start): nothing.
    assert_eq!(a.alloc(1), None);
    assert!(a.free(128));
    assert_eq!(a.alloc(100), Some(128));
    assert!(a.free(256));
    assert!(a.free(0));
    assert!(a.free(128));
    assert_eq!(a.ranges(), 0);
    // Empty: back to the start, the whole arena free.
    assert_eq!(a.alloc(1000), Some(0));
}

#[test]
fn a_range_returned_early_waits_for_those_before_it() {
    let mut a = RingArena::<4>::new(300, 1);
    assert_eq!(a.alloc(100), Some(0));
    assert_eq!(a.alloc(100), Some(100));
    assert_eq!(a.alloc(100), Some(200));
    assert!(a.free(100));
    // 100..200 is back but 0..100, before it, is not: no room yet.
    assert_eq!(a.alloc(50), None);
    assert_eq!(a.ranges(), 3);
    assert!(a.free(0));
    assert_eq!(a.ranges(), 1);
    assert_eq!(a.alloc(200), Some(0));
}

#[test]
fn bad_requests_and_returns_change_nothing() {
    let mut a = RingArena::<2>::new(256, 16);
    assert_eq!(a.alloc(0), None);
    assert_eq!(a.alloc(257), None);
    assert_eq!(a.alloc(usize::MAX), None);
    assert!(!a.free(0));
    assert_eq!(a.alloc(10), Some(0));
    assert!(!a.free(1), "not a range's start");
    assert_eq!(a.alloc(10), Some(16));
    // N ranges out: no third, however much room.
    assert_eq!(a.alloc(10), None);
    assert!(a.free(16));
    assert!(!a.free(16), "returned twice");
    assert!(a.free(0));
    assert_eq!(a.ranges(), 0);
}

#[test]
fn a_random_run_never_hands_out_overlapping_or_outside_ranges() {
    const SIZE: usize = 64 * 1024;
    let mut a = RingArena::<32>::new(SIZE, 64);
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut x = 0x9e37_79b9_u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    let (mut granted, mut refused) = (0, 0);
    for _ in 0..200_000 {
        if next() % 3 != 0 || out.is_empty() {
            // Mostly short, some up to a quarter of the arena.
            let len = if next() % 4 == 0 {
                1 + next() % (SIZE / 4)
            } else {
                1 + next() % 4500
            };
            match a.alloc(len) {
                Some(at) => {
                    granted += 1;
                    assert_eq!(at % 64, 0);
                    assert!(at + len <= SIZE, "{at}+{len} past the end");
                    for &(s, l) in &out {
                        assert!(at + len <= s || s + l <= at, "{at}+{len} overlaps {s}+{l}");
                    }
                    out.push((at, len));
                }
                None => refused += 1,
            }
        } else {
            // Mostly the oldest, as a device returns them; some out of order.
            let i = if next() % 4 == 0 {
                next() % out.len()
            } else {
                0
            };
            let (at, _) = out.remove(i);
            assert!(a.free(at));
        }
        assert!(a.ranges() >= out.len() && a.ranges() <= 32);
    }
    assert!(granted > 50_000 && refused > 1_000, "{granted} {refused}");
    for (at, _) in out.drain(..) {
        assert!(a.free(at));
    }
    assert_eq!(a.ranges(), 0);
}
