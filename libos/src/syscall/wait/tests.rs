//! `wait4`, `waitid` and `getppid` over the mock platform.

use alloc::sync::Arc;

use crate::error::Errno;
use crate::ptable::ExitStatus;
use crate::syscall::testing::{Sys, err};

const BUF: u64 = 0x20000;

/// Init with children 2 and 3.
fn family() -> Sys {
    let s = Sys::new(BUF, 4096);
    s.p.processes.insert_init(s.p.clone());
    for pid in [2, 3] {
        s.p.processes
            .add_child(1, Arc::new(s.p.fork(pid, 1)))
            .unwrap();
    }
    s
}

fn read_u32(s: &Sys, addr: u64) -> u32 {
    let mut b = [0u8; 4];
    s.m.peek(addr, &mut b).unwrap();
    u32::from_le_bytes(b)
}

#[test]
fn wait4_reports_the_exit_status_and_reaps() {
    let s = family();
    assert_eq!(
        s.call("wait4", &[u64::MAX, BUF, 1, 0]),
        0,
        "WNOHANG, none exited"
    );
    s.p.processes.exit(3, ExitStatus::Exited(7));
    assert_eq!(s.call("wait4", &[u64::MAX, BUF, 0, BUF + 64]), 3);
    assert_eq!(read_u32(&s, BUF), 7 << 8);
    s.p.processes.exit(2, ExitStatus::Signaled(9));
    assert_eq!(s.call("wait4", &[2, BUF, 0, 0]), 2);
    assert_eq!(read_u32(&s, BUF), 9);
    assert_eq!(s.call("wait4", &[u64::MAX, BUF, 0, 0]), err(Errno::ECHILD));
}

#[test]
fn wait4_without_children_is_echild_and_bad_options_einval() {
    let s = Sys::new(BUF, 4096);
    assert_eq!(s.call("wait4", &[u64::MAX, 0, 0, 0]), err(Errno::ECHILD));
    assert_eq!(s.call("wait4", &[u64::MAX, 0, 0x10, 0]), err(Errno::EINVAL));
}

#[test]
fn a_blocked_wait4_ends_with_eintr_on_a_signal() {
    let s = family();
    s.m.interrupt_next_wait_after(1000);
    assert_eq!(s.call("wait4", &[u64::MAX, 0, 0, 0]), err(Errno::EINTR));
}

#[test]
fn a_blocked_wait4_returns_when_a_child_exits() {
    let s = family();
    let p = s.p.clone();
    let exiter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        p.processes.exit(2, ExitStatus::Exited(1));
    });
    s.m.set_block_spins(u64::MAX);
    assert_eq!(s.call("wait4", &[2, BUF, 0, 0]), 2);
    exiter.join().unwrap();
    assert_eq!(read_u32(&s, BUF), 1 << 8);
}

#[test]
fn waitid_fills_siginfo_and_wnowait_keeps_the_zombie() {
    let s = family();
    const WEXITED: u64 = 4;
    const WNOWAIT: u64 = 0x0100_0000;
    assert_eq!(s.call("waitid", &[0, 0, BUF, WEXITED | 1, 0]), 0);
    assert_eq!(
        read_u32(&s, BUF + 16),
        0,
        "si_pid 0 with WNOHANG and no zombie"
    );
    s.p.processes.exit(2, ExitStatus::Exited(5));
    assert_eq!(s.call("waitid", &[1, 2, BUF, WEXITED | WNOWAIT, 0]), 0);
    assert_eq!(read_u32(&s, BUF), 17);
    assert_eq!(read_u32(&s, BUF + 8), 1, "CLD_EXITED");
    assert_eq!(read_u32(&s, BUF + 16), 2);
    assert_eq!(read_u32(&s, BUF + 24), 5);
    assert_eq!(s.call("waitid", &[1, 2, BUF, WEXITED, 0]), 0);
    assert_eq!(
        s.call("waitid", &[1, 2, BUF, WEXITED, 0]),
        err(Errno::ECHILD)
    );
    assert_eq!(s.call("waitid", &[0, 0, BUF, 0, 0]), err(Errno::EINVAL));
    assert_eq!(
        s.call("waitid", &[3, 0, BUF, WEXITED, 0]),
        err(Errno::EINVAL)
    );
}

#[test]
fn getppid_is_the_parent() {
    let s = family();
    assert_eq!(s.call("getppid", &[]), 0);
    let child = s.p.processes.process(2).unwrap();
    let r = s.t.dispatch(
        &child,
        crate::syscall::syscall_number("getppid").unwrap(),
        [0; 6],
    );
    assert_eq!(r, 1);
}
