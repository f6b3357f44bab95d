//! Tests of the time and system families.

use alloc::sync::Arc;

use crate::error::Errno;
use crate::fs::{DeviceRegistry, Vfs};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::syscall::{SyscallTable, syscall_number};
use crate::user::UserMemory;

const BUF: u64 = 0x20_0000;

fn setup() -> (Arc<MockPlatform>, Process, SyscallTable) {
    let platform = Arc::new(MockPlatform::new());
    let vfs = Arc::new(Vfs::new(
        platform.clone(),
        DeviceRegistry::standard(platform.clone(), platform.clone()),
    ));
    platform.map(BUF, 0x1000);
    (
        platform.clone(),
        Process::new(platform, vfs),
        SyscallTable::new(),
    )
}

fn call(t: &SyscallTable, p: &Process, name: &str, args: &[u64]) -> i64 {
    let mut raw = [0u64; 6];
    raw[..args.len()].copy_from_slice(args);
    t.dispatch(p, syscall_number(name).unwrap(), raw) as i64
}

fn u64_at(m: &MockPlatform, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    m.read_user(addr, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn clocks() {
    let (m, p, t) = setup();
    assert_eq!(call(&t, &p, "clock_gettime", &[0, BUF]), 0);
    assert_eq!(u64_at(&m, BUF), 1_767_225_600);
    assert_eq!(u64_at(&m, BUF + 8), 0);
    m.advance_ns(1_500_000_123);
    assert_eq!(call(&t, &p, "clock_gettime", &[1, BUF]), 0);
    assert_eq!((u64_at(&m, BUF), u64_at(&m, BUF + 8)), (2, 500_000_123));
    assert_eq!(
        call(&t, &p, "clock_gettime", &[99, BUF]),
        -i64::from(Errno::EINVAL.as_i32())
    );
    assert_eq!(
        call(&t, &p, "clock_gettime", &[0, 0xdead_0000]),
        -i64::from(Errno::EFAULT.as_i32())
    );
    assert_eq!(call(&t, &p, "clock_getres", &[6, BUF]), 0);
    assert_eq!(u64_at(&m, BUF + 8), 4_000_000);
    assert_eq!(call(&t, &p, "clock_getres", &[1, 0]), 0);
    assert_eq!(call(&t, &p, "gettimeofday", &[BUF, 0]), 0);
    assert_eq!(
        (u64_at(&m, BUF), u64_at(&m, BUF + 8)),
        (1_767_225_601, 500_000)
    );
    assert_eq!(call(&t, &p, "time", &[BUF + 32]), 1_767_225_601);
    assert_eq!(u64_at(&m, BUF + 32), 1_767_225_601);
    assert_eq!(call(&t, &p, "time", &[0]), 1_767_225_601);
}

#[test]
fn the_wall_clock_cannot_be_set() {
    let (m, p, t) = setup();
    let e = |errno: Errno| -i64::from(errno.as_i32());
    m.write_user(BUF, &[0; 16]).unwrap();
    m.write_user(BUF, &1_800_000_000u64.to_le_bytes()).unwrap();
    assert_eq!(call(&t, &p, "clock_settime", &[0, BUF]), e(Errno::EPERM));
    assert_eq!(call(&t, &p, "clock_settime", &[1, BUF]), e(Errno::EINVAL));
    assert_eq!(call(&t, &p, "clock_settime", &[99, BUF]), e(Errno::EINVAL));
    assert_eq!(
        call(&t, &p, "clock_settime", &[0, 0xdead_0000]),
        e(Errno::EFAULT)
    );
    m.write_user(BUF + 8, &2_000_000_000u64.to_le_bytes())
        .unwrap();
    assert_eq!(call(&t, &p, "clock_settime", &[0, BUF]), e(Errno::EINVAL));
    assert_eq!(call(&t, &p, "settimeofday", &[0, 0]), 0);
    assert_eq!(call(&t, &p, "settimeofday", &[BUF, 0]), e(Errno::EINVAL));
    m.write_user(BUF + 8, &5u64.to_le_bytes()).unwrap();
    assert_eq!(call(&t, &p, "settimeofday", &[BUF, 0]), e(Errno::EPERM));
    assert_eq!(
        call(&t, &p, "settimeofday", &[0xdead_0000, 0]),
        e(Errno::EFAULT)
    );
    // The clock is untouched.
    assert_eq!(call(&t, &p, "clock_gettime", &[0, BUF]), 0);
    assert_eq!(u64_at(&m, BUF), 1_767_225_600);
}

#[test]
fn uname_ids_and_random() {
    let (m, p, t) = setup();
    assert_eq!(call(&t, &p, "uname", &[BUF]), 0);
    let mut u = [0u8; 390];
    m.read_user(BUF, &mut u).unwrap();
    assert_eq!(&u[..6], b"Linux\0");
    assert_eq!(&u[4 * 65..4 * 65 + 7], b"x86_64\0");
    assert!(u[2 * 65..].starts_with(b"6.1.0"));
    assert_eq!(call(&t, &p, "geteuid", &[]), 0);
    m.write_user(BUF, &[0xff; 12]).unwrap();
    assert_eq!(call(&t, &p, "getresuid", &[BUF, BUF + 4, BUF + 8]), 0);
    assert_eq!(u64_at(&m, BUF), 0);
    m.write_user(BUF, &[0; 64]).unwrap();
    assert_eq!(call(&t, &p, "getrandom", &[BUF, 64, 0]), 64);
    let mut r = [0u8; 64];
    m.read_user(BUF, &mut r).unwrap();
    assert!(r.iter().filter(|&&b| b == 0).count() < 8);
    assert_eq!(
        call(&t, &p, "getrandom", &[BUF, 8, 8]),
        -i64::from(Errno::EINVAL.as_i32())
    );
    assert_eq!(
        call(&t, &p, "getrandom", &[BUF, 8, 6]),
        -i64::from(Errno::EINVAL.as_i32())
    );
    assert_eq!(
        call(&t, &p, "getrandom", &[0xdead_0000, 8, 0]),
        -i64::from(Errno::EFAULT.as_i32())
    );
    assert_eq!(call(&t, &p, "getrandom", &[BUF, 0, 1]), 0);
}

#[test]
fn cpu_clock_ids_of_the_caller_read_its_cpu_time() {
    use crate::platform::CurrentThread as _;
    let (m, p, t) = setup();
    let clock = |who: u32, thread: bool, kind: i32| -> u64 {
        (((!(who as i32)) << 3) | if thread { 4 } else { 0 } | kind) as i64 as u64
    };
    m.advance_ns(2_000_000_000);
    let tid = m.current_tid();
    // pthread_getcpuclockid: the thread's SCHED clock.
    assert_eq!(
        call(&t, &p, "clock_gettime", &[clock(tid, true, 2), BUF]),
        0
    );
    assert_eq!(call(&t, &p, "clock_gettime", &[3, BUF + 16]), 0);
    assert_eq!(
        (u64_at(&m, BUF), u64_at(&m, BUF + 8)),
        (u64_at(&m, BUF + 16), u64_at(&m, BUF + 24)),
        "what CLOCK_THREAD_CPUTIME_ID reads"
    );
    // clock_getcpuclockid(0) and of the own pid.
    assert_eq!(call(&t, &p, "clock_gettime", &[clock(0, false, 2), BUF]), 0);
    assert_eq!(
        call(&t, &p, "clock_gettime", &[clock(p.pid, false, 0), BUF]),
        0
    );
    assert_eq!(
        call(&t, &p, "clock_getres", &[clock(p.pid, false, 1), 0]),
        0
    );
    let einval = -i64::from(Errno::EINVAL.as_i32());
    assert_eq!(
        call(&t, &p, "clock_gettime", &[clock(tid, true, 3), BUF]),
        einval
    );
    assert_eq!(
        call(&t, &p, "clock_gettime", &[clock(4242, true, 2), BUF]),
        einval
    );
    assert_eq!(
        call(&t, &p, "clock_gettime", &[clock(4242, false, 2), BUF]),
        einval
    );
}

#[test]
fn nginx_workers_drop_to_nobody_through_the_id_calls() {
    let (m, p, t) = setup();
    let eperm = -i64::from(Errno::EPERM.as_i32());
    m.write_user(BUF, &65534u32.to_le_bytes()).unwrap();
    assert_eq!(call(&t, &p, "setgid", &[65534]), 0);
    assert_eq!(call(&t, &p, "setgroups", &[1, BUF]), 0);
    assert_eq!(call(&t, &p, "setuid", &[65534]), 0);
    for name in ["getuid", "geteuid", "getgid", "getegid"] {
        assert_eq!(call(&t, &p, name, &[]), 65534, "{name}");
    }
    assert_eq!(call(&t, &p, "getgroups", &[0, 0]), 1);
    m.write_user(BUF + 0x100, &[0; 8]).unwrap();
    assert_eq!(call(&t, &p, "getgroups", &[2, BUF + 0x100]), 1);
    assert_eq!(u64_at(&m, BUF + 0x100), 65534);
    assert_eq!(call(&t, &p, "getresuid", &[BUF, BUF + 4, BUF + 8]), 0);
    assert_eq!(u64_at(&m, BUF), 65534 | (65534 << 32));
    // No way back to root, and no groups for a non-root process.
    assert_eq!(call(&t, &p, "setuid", &[0]), eperm);
    assert_eq!(call(&t, &p, "setresuid", &[0, 0, 0]), eperm);
    assert_eq!(call(&t, &p, "setgroups", &[0, 0]), eperm);
    // A fork keeps the ids.
    assert_eq!(call(&t, &p.fork(2, 1), "geteuid", &[]), 65534);
    // And the capabilities are gone, as Linux clears them.
    m.write_user(BUF, &0x2008_0522u32.to_le_bytes()).unwrap();
    m.write_user(BUF + 4, &0i32.to_le_bytes()).unwrap();
    m.write_user(BUF + 0x100, &[0xff; 24]).unwrap();
    assert_eq!(call(&t, &p, "capget", &[BUF, BUF + 0x100]), 0);
    let mut sets = [0xffu8; 24];
    m.read_user(BUF + 0x100, &mut sets).unwrap();
    assert_eq!(sets, [0; 24]);
    assert_eq!(
        call(&t, &p, "capset", &[BUF, BUF + 0x100]),
        0,
        "what it has"
    );
}

#[test]
fn capabilities_are_root_s_and_cannot_be_dropped() {
    let (m, p, t) = setup();
    let (hdr, data) = (BUF, BUF + 0x100);
    let e = |errno: Errno| -i64::from(errno.as_i32());
    let set_header = |version: u32, pid: i32| {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&version.to_le_bytes());
        b[4..].copy_from_slice(&pid.to_le_bytes());
        m.write_user(hdr, &b).unwrap();
    };
    // Version 3: two data structs, all 41 capabilities effective and
    // permitted, none inheritable.
    set_header(0x2008_0522, 0);
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), 0);
    let mut got = [0u8; 24];
    m.read_user(data, &mut got).unwrap();
    let words = |got: &[u8; 24]| -> [u32; 6] {
        core::array::from_fn(|i| u32::from_le_bytes(got[i * 4..i * 4 + 4].try_into().unwrap()))
    };
    assert_eq!(words(&got), [u32::MAX, u32::MAX, 0, 0x1ff, 0x1ff, 0]);
    // An unknown version: the preferred one written back, EINVAL; a null
    // data pointer only checks the version.
    set_header(1234, 0);
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), e(Errno::EINVAL));
    let mut v = [0u8; 4];
    m.read_user(hdr, &mut v).unwrap();
    assert_eq!(u32::from_le_bytes(v), 0x2008_0522);
    assert_eq!(call(&t, &p, "capget", &[hdr, 0]), 0);
    // Another process that does not exist, a negative pid, a bad pointer.
    set_header(0x2008_0522, 4242);
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), e(Errno::ESRCH));
    set_header(0x2008_0522, -1);
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), e(Errno::EINVAL));
    assert_eq!(
        call(&t, &p, "capget", &[0xdead_0000, data]),
        e(Errno::EFAULT)
    );
    // capset: what it has succeeds; dropping one is refused, not faked.
    set_header(0x2008_0522, 0);
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), 0);
    assert_eq!(call(&t, &p, "capset", &[hdr, data]), 0);
    m.write_user(data, &(u32::MAX - 1).to_le_bytes()).unwrap();
    assert_eq!(call(&t, &p, "capset", &[hdr, data]), e(Errno::EPERM));
    // Version 1: one struct of the low 32 capabilities.
    set_header(0x1998_0330, 0);
    m.write_user(data + 12, &[0xaa; 12]).unwrap();
    assert_eq!(call(&t, &p, "capget", &[hdr, data]), 0);
    m.read_user(data, &mut got).unwrap();
    assert_eq!(words(&got)[..3], [u32::MAX, u32::MAX, 0]);
    assert_eq!(got[12..], [0xaa; 12], "only one struct written");
}
