//! Record locks through `fcntl` between a process and its forked child.

use alloc::sync::Arc;

use crate::error::Errno;
use crate::process::Process;
use crate::syscall::syscall_number;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const MEM: u64 = 0x10000;
const FLOCK: u64 = MEM + 0x100;
const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_OFD_SETLK: u64 = 37;

fn call(s: &Sys, p: &Process, name: &str, args: &[u64]) -> i64 {
    let mut raw = [0u64; 6];
    raw[..args.len()].copy_from_slice(args);
    s.t.dispatch(p, syscall_number(name).unwrap(), raw) as i64
}

/// Writes a `struct flock` (from the start of the file) at `at`.
fn flock(s: &Sys, at: u64, kind: i16, start: i64, len: i64) {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[8..16].copy_from_slice(&start.to_le_bytes());
    b[16..24].copy_from_slice(&len.to_le_bytes());
    s.m.write_user(at, &b).unwrap();
}

/// Opens `/f` read-write in `p`.
fn open(s: &Sys, p: &Process) -> u64 {
    let fd = call(s, p, "open", &[MEM, 0o102, 0o644]); // O_RDWR|O_CREAT
    assert!(fd >= 0, "{fd}");
    fd as u64
}

#[test]
fn posix_locks_exclude_between_processes_until_closed_or_exit() {
    let s = Sys::new(MEM, 0x1000);
    s.p.processes.insert_init(s.p.clone());
    s.m.write_user(MEM, b"/f\0").unwrap();
    let fd = open(&s, &s.p);
    let child = Arc::new(s.p.fork(2, 1));
    s.p.processes.add_child(1, child.clone()).unwrap();
    let cfd = open(&s, &child);
    // The parent write-locks bytes 0..100; the child cannot lock inside.
    flock(&s, FLOCK, 1, 0, 100);
    assert_eq!(call(&s, &s.p, "fcntl", &[fd, F_SETLK, FLOCK]), 0);
    flock(&s, FLOCK, 0, 50, 10);
    assert_eq!(
        call(&s, &child, "fcntl", &[cfd, F_SETLK, FLOCK]),
        err(Errno::EAGAIN)
    );
    // Past the range it can; F_GETLK names the parent's lock.
    flock(&s, FLOCK, 1, 100, 0);
    assert_eq!(call(&s, &child, "fcntl", &[cfd, F_SETLK, FLOCK]), 0);
    flock(&s, FLOCK, 0, 10, 1);
    assert_eq!(call(&s, &child, "fcntl", &[cfd, F_GETLK, FLOCK]), 0);
    let mut got = [0u8; 32];
    s.m.read_user(FLOCK, &mut got).unwrap();
    assert_eq!(i16::from_le_bytes([got[0], got[1]]), 1, "F_WRLCK");
    assert_eq!(got[8], 0, "start");
    assert_eq!(got[16], 100, "len");
    assert_eq!(i32::from_le_bytes([got[24], got[25], got[26], got[27]]), 1);
    // The child waits in F_SETLKW until the parent closes its fd.
    let waiter = {
        let (t, c) = (s.t.clone(), child.clone());
        flock(&s, FLOCK + 0x40, 1, 0, 10);
        std::thread::spawn(move || {
            t.dispatch(
                &c,
                syscall_number("fcntl").unwrap(),
                [cfd, F_SETLKW, FLOCK + 0x40, 0, 0, 0],
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(call(&s, &s.p, "close", &[fd]), 0);
    assert_eq!(waiter.join().unwrap(), 0);
    // The child's exit drops its locks.
    let fd = open(&s, &s.p);
    flock(&s, FLOCK, 1, 0, 0);
    assert_eq!(
        call(&s, &s.p, "fcntl", &[fd, F_SETLK, FLOCK]),
        err(Errno::EAGAIN)
    );
    child.release_at_exit();
    assert_eq!(call(&s, &s.p, "fcntl", &[fd, F_SETLK, FLOCK]), 0);
}

#[test]
fn ofd_locks_belong_to_the_description_and_bad_requests_fail() {
    let s = Sys::new(MEM, 0x1000);
    s.m.write_user(MEM, b"/f\0").unwrap();
    let (a, b) = (open(&s, &s.p), open(&s, &s.p));
    flock(&s, FLOCK, 1, 0, 0);
    assert_eq!(call(&s, &s.p, "fcntl", &[a, F_OFD_SETLK, FLOCK]), 0);
    // Another description of the same process conflicts.
    assert_eq!(
        call(&s, &s.p, "fcntl", &[b, F_OFD_SETLK, FLOCK]),
        err(Errno::EAGAIN)
    );
    assert_eq!(call(&s, &s.p, "close", &[a]), 0);
    assert_eq!(call(&s, &s.p, "fcntl", &[b, F_OFD_SETLK, FLOCK]), 0);
    // A bad type, a range before the start, a write lock on a read-only fd.
    flock(&s, FLOCK, 7, 0, 0);
    assert_eq!(
        call(&s, &s.p, "fcntl", &[b, F_SETLK, FLOCK]),
        err(Errno::EINVAL)
    );
    flock(&s, FLOCK, 0, 5, -10);
    assert_eq!(
        call(&s, &s.p, "fcntl", &[b, F_SETLK, FLOCK]),
        err(Errno::EINVAL)
    );
    let ro = call(&s, &s.p, "open", &[MEM, 0, 0]) as u64;
    flock(&s, FLOCK, 1, 0, 1);
    assert_eq!(
        call(&s, &s.p, "fcntl", &[ro, F_SETLK, FLOCK]),
        err(Errno::EBADF)
    );
    assert_eq!(
        call(&s, &s.p, "fcntl", &[b, F_SETLK, 0xdead_0000]),
        err(Errno::EFAULT)
    );
}
