//! How many argument registers each x86-64 Linux system call takes, by
//! number (the kernel's `SYSCALL_DEFINEn`): the audit log stores only
//! those, so a `getpid` record carries no six stale registers.

/// Arguments of syscalls 0–334, in number order.
#[rustfmt::skip]
const LOW: [u8; 335] = [
    /*   0 */ 3, 3, 3, 1, 2, 2, 2, 3, 3, 6, 3, 2, 1, 4, 4, 0, 3, 4, 4, 3,
    /*  20 */ 3, 2, 1, 5, 0, 5, 3, 3, 3, 3, 3, 3, 1, 2, 0, 2, 2, 1, 3, 0,
    /*  40 */ 4, 3, 3, 3, 6, 6, 3, 3, 2, 3, 2, 3, 3, 4, 5, 5, 5, 0, 0, 3,
    /*  60 */ 1, 4, 2, 1, 3, 3, 4, 1, 2, 4, 5, 3, 3, 2, 1, 1, 2, 2, 3, 2,
    /*  80 */ 1, 1, 2, 2, 1, 2, 2, 1, 2, 3, 2, 2, 3, 3, 3, 1, 2, 2, 2, 1,
    /* 100 */ 1, 4, 0, 3, 0, 1, 1, 0, 0, 2, 0, 0, 0, 2, 2, 2, 2, 3, 3, 3,
    /* 120 */ 3, 1, 1, 1, 1, 2, 2, 2, 4, 3, 2, 2, 2, 3, 1, 1, 2, 2, 2, 3,
    /* 140 */ 2, 3, 2, 2, 3, 1, 1, 1, 2, 2, 2, 1, 0, 0, 3, 2, 1, 5, 2, 1,
    /* 160 */ 2, 1, 0, 1, 2, 5, 2, 2, 1, 4, 2, 2, 1, 3, 2, 3, 2, 1, 5, 4,
    /* 180 */ 3, 5, 5, 5, 3, 3, 0, 3, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2,
    /* 200 */ 2, 1, 6, 3, 3, 1, 2, 1, 5, 3, 3, 1, 3, 1, 4, 4, 5, 3, 1, 0,
    /* 220 */ 4, 4, 3, 4, 2, 1, 1, 2, 2, 2, 4, 1, 4, 4, 3, 2, 5, 6, 3, 5,
    /* 240 */ 4, 1, 5, 5, 2, 3, 4, 5, 5, 4, 5, 3, 2, 0, 3, 2, 4, 4, 3, 4,
    /* 260 */ 5, 3, 4, 3, 4, 5, 3, 4, 3, 3, 6, 5, 1, 2, 3, 6, 4, 4, 4, 6,
    /* 280 */ 4, 6, 3, 2, 1, 4, 4, 2, 4, 4, 2, 1, 3, 2, 1, 4, 4, 4, 5, 5,
    /* 300 */ 2, 5, 4, 5, 3, 2, 1, 4, 2, 3, 6, 6, 5, 3, 3, 4, 5, 3, 3, 2,
    /* 320 */ 5, 3, 5, 1, 3, 3, 6, 6, 6, 4, 2, 1, 5, 6, 4,
];

/// Arguments of syscalls 424–467 (the numbers shared by every
/// architecture since Linux 5.1, up to 6.15's `open_tree_attr`), in number
/// order.
#[rustfmt::skip]
const COMMON: [u8; 44] = [
    /* 424 */ 4, 2, 6, 4, 3, 5, 2, 5, 3, 3, 2, 2, 3, 4, 3, 4, 5, 6, 5, 4,
    /* 444 */ 3, 4, 2, 1, 2, 5, 4, 4, 4, 3, 4, 6, 4, 4, 4, 4, 4, 3, 3, 6,
    /* 464 */ 6, 5, 4, 5,
];

/// The number of arguments syscall `nr` takes; `None` for numbers Linux
/// does not assign on x86-64 (an audit record then keeps all six).
pub fn syscall_arg_count(nr: usize) -> Option<u8> {
    match nr {
        0..=334 => LOW.get(nr).copied(),
        424..=467 => COMMON.get(nr - 424).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::names::syscall_name;

    #[test]
    fn well_known_arities() {
        let of = |n| syscall_arg_count(n).unwrap();
        // read, close, mmap, getpid, clone, futex, epoll_wait, exit_group
        assert_eq!(
            [
                of(0),
                of(3),
                of(9),
                of(39),
                of(56),
                of(202),
                of(232),
                of(231)
            ],
            [3, 1, 6, 0, 5, 6, 4, 1]
        );
        // pidfd_send_signal, clone3, openat2, futex_waitv, mseal
        assert_eq!(
            [of(424), of(435), of(437), of(449), of(462)],
            [4, 2, 4, 5, 3]
        );
        for nr in [335, 423, 468, 10_000] {
            assert_eq!(syscall_arg_count(nr), None, "{nr}");
        }
    }

    #[test]
    fn every_named_syscall_has_an_arity_and_none_exceeds_six() {
        for nr in 0..crate::syscall::names::SYSCALL_COUNT {
            if syscall_name(nr).is_some() {
                let n = syscall_arg_count(nr);
                assert!(
                    n.is_some_and(|n| n <= 6),
                    "{nr} {:?}: {n:?}",
                    syscall_name(nr)
                );
            }
        }
    }
}
