//! The process table's family and wait rules.

use super::*;
use crate::syscall::testing::Sys;

/// A table with init (pid 1) and children 2 and 3 of init, 4 of 2.
fn family() -> (Sys, Vec<Arc<Process>>) {
    let s = Sys::new(0x10000, 4096);
    let t = s.p.processes.clone();
    t.insert_init(s.p.clone());
    let mut kids = Vec::new();
    for (pid, parent) in [(2, 1), (3, 1), (4, 2)] {
        let c = Arc::new(s.p.fork(pid, 1));
        t.add_child(parent, c.clone()).unwrap();
        kids.push(c);
    }
    (s, kids)
}

use alloc::vec::Vec;

#[test]
fn wait_statuses_use_the_linux_layout() {
    assert_eq!(ExitStatus::Exited(3).wait_status(), 0x300);
    assert_eq!(ExitStatus::Signaled(9).wait_status(), 9);
    assert_eq!(ExitStatus::Exited(7).code_and_status(), (1, 7));
    assert_eq!(ExitStatus::Signaled(15).code_and_status(), (2, 15));
}

#[test]
fn wait4_pid_argument_selects_children() {
    assert_eq!(WaitFor::from_wait4(-1, 5), WaitFor::Any);
    assert_eq!(WaitFor::from_wait4(0, 5), WaitFor::Group(5));
    assert_eq!(WaitFor::from_wait4(-7, 5), WaitFor::Group(7));
    assert_eq!(WaitFor::from_wait4(9, 5), WaitFor::Pid(9));
}

#[test]
fn an_exited_child_is_a_zombie_until_reaped_once() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    assert_eq!(t.try_wait(1, WaitFor::Any, true).unwrap(), None);
    assert_eq!(t.exit(3, ExitStatus::Exited(42)), 1);
    assert!(t.process(3).is_none(), "a zombie is not a live process");
    // WNOWAIT-style peek leaves it.
    assert_eq!(
        t.try_wait(1, WaitFor::Pid(3), false).unwrap(),
        Some((3, ExitStatus::Exited(42)))
    );
    assert_eq!(
        t.try_wait(1, WaitFor::Any, true).unwrap(),
        Some((3, ExitStatus::Exited(42)))
    );
    assert_eq!(
        t.try_wait(1, WaitFor::Pid(3), true).unwrap_err().errno(),
        Errno::ECHILD
    );
    // Not init's child: ECHILD for init, found for its parent.
    assert_eq!(
        t.try_wait(1, WaitFor::Pid(4), true).unwrap_err().errno(),
        Errno::ECHILD
    );
    assert_eq!(t.try_wait(2, WaitFor::Pid(4), true).unwrap(), None);
}

#[test]
fn exit_sends_sigchld_to_the_parent() {
    let (s, _kids) = family();
    // SIGCHLD's default action ignores it (not even pending): handle it.
    let handled = crate::signal::SigAction {
        handler: 0x1000,
        ..Default::default()
    };
    s.p.signals.lock().set_action(SIGCHLD, handled).unwrap();
    assert!(!s.p.signals.lock().any_pending());
    s.p.processes.exit(2, ExitStatus::Signaled(9));
    assert_eq!(
        s.p.signals.lock().pending(1) & (1 << (SIGCHLD - 1)),
        1 << (SIGCHLD - 1)
    );
}

#[test]
fn orphans_go_to_init() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    t.exit(2, ExitStatus::Exited(0));
    assert_eq!(t.parent_of(4), 1);
    t.exit(4, ExitStatus::Exited(5));
    let mut reaped = Vec::new();
    while let Some((pid, st)) = t.try_wait(1, WaitFor::Any, true).unwrap() {
        reaped.push((pid, st));
    }
    assert_eq!(
        reaped,
        [(2, ExitStatus::Exited(0)), (4, ExitStatus::Exited(5))]
    );
    // 3 is still running: no ECHILD, nothing to report.
    assert_eq!(t.try_wait(1, WaitFor::Any, true).unwrap(), None);
}

#[test]
fn a_parent_ignoring_sigchld_leaves_no_zombies() {
    let (s, _kids) = family();
    let ign = crate::signal::SigAction {
        handler: SIG_IGN,
        ..Default::default()
    };
    s.p.signals.lock().set_action(SIGCHLD, ign).unwrap();
    s.p.processes.exit(3, ExitStatus::Exited(1));
    assert_eq!(
        s.p.processes
            .try_wait(1, WaitFor::Pid(3), true)
            .unwrap_err()
            .errno(),
        Errno::ECHILD
    );
}

#[test]
fn groups_follow_the_parent() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    assert_eq!(t.pgid_of(4), Some(1));
    t.exit(4, ExitStatus::Exited(0));
    assert_eq!(
        t.try_wait(2, WaitFor::Group(1), true).unwrap(),
        Some((4, ExitStatus::Exited(0)))
    );
}

#[test]
fn the_limit_counts_zombies() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    t.set_limit(4);
    assert_eq!(t.check_room().unwrap_err().errno(), Errno::EAGAIN);
    t.exit(3, ExitStatus::Exited(0));
    assert!(t.check_room().is_err());
    t.try_wait(1, WaitFor::Pid(3), true).unwrap();
    assert!(t.check_room().is_ok());
}

#[test]
fn setpgid_and_setsid_follow_linux_rules() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    // Init leads its session: it cannot change group or start a session.
    assert_eq!(t.set_pgid(1, 1, 1).unwrap_err().errno(), Errno::EPERM);
    assert_eq!(t.set_sid(1).unwrap_err().errno(), Errno::EPERM);
    // A child gets a group of its own, then a sibling joins it.
    t.set_pgid(1, 2, 2).unwrap();
    assert_eq!(t.pgid_of(2), Some(2));
    t.set_pgid(1, 3, 2).unwrap();
    assert_eq!(t.pgid_of(3), Some(2));
    // A group that does not exist, and a grandchild.
    assert_eq!(t.set_pgid(1, 3, 77).unwrap_err().errno(), Errno::EPERM);
    assert_eq!(t.set_pgid(1, 4, 4).unwrap_err().errno(), Errno::ESRCH);
    // 2 leads a group: no setsid; 4 (in group 1) may.
    assert_eq!(t.set_sid(2).unwrap_err().errno(), Errno::EPERM);
    assert_eq!(t.set_sid(4), Ok(4));
    assert_eq!((t.sid_of(4), t.pgid_of(4)), (Some(4), Some(4)));
    // Its parent may no longer move it: another session.
    assert_eq!(t.set_pgid(2, 4, 2).unwrap_err().errno(), Errno::EPERM);
}

#[test]
fn kill_targets_select_by_pid_group_and_all() {
    let (s, _kids) = family();
    let t = &s.p.processes;
    let pids = |v: Vec<Arc<Process>>| v.iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(pids(t.kill_targets(1, 3).unwrap()), [3]);
    assert_eq!(pids(t.kill_targets(1, 0).unwrap()), [1, 2, 3, 4]);
    t.set_pgid(1, 2, 2).unwrap();
    assert_eq!(pids(t.kill_targets(1, -2).unwrap()), [2]);
    assert_eq!(pids(t.kill_targets(2, -1).unwrap()), [3, 4]);
    assert_eq!(t.kill_targets(1, 99).unwrap_err().errno(), Errno::ESRCH);
    assert_eq!(t.kill_targets(1, -99).unwrap_err().errno(), Errno::ESRCH);
    t.exit(3, ExitStatus::Exited(0));
    assert!(
        t.kill_targets(1, 3).unwrap().is_empty(),
        "a zombie: found, nothing sent"
    );
}

#[test]
fn orphans_get_their_parent_death_signal() {
    let (s, kids) = family();
    // 4 (child of 2) asks for SIGTERM when its parent dies; 3 asks nothing.
    kids[2]
        .death_signal
        .store(15, core::sync::atomic::Ordering::Relaxed);
    s.p.processes.exit(2, ExitStatus::Exited(0));
    assert_eq!(kids[2].signals.lock().pending(4) & (1 << 14), 1 << 14);
    assert!(!kids[1].signals.lock().any_pending());
    assert_eq!(
        s.p.fork(9, 1)
            .death_signal
            .load(core::sync::atomic::Ordering::Relaxed),
        0,
        "not inherited"
    );
}
