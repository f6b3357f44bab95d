//! `/proc/<pid>` through the syscalls of two processes (a parent and its
//! forked child): what `ps` and Python read, `/proc/self` per caller,
//! `fd` links, and entries following the process table.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::on_lookup;
use crate::process::Process;
use crate::ptable::ExitStatus;
use crate::syscall::syscall_number;
use crate::syscall::testing::Sys;
use crate::user::UserMemory;

const MEM: u64 = 0x10000;

/// Reads the whole file at `path` as `p` through `open`/`read`.
fn read_as(s: &Sys, p: &Process, path: &str) -> String {
    let call = |name: &str, args: [u64; 6]| s.t.dispatch(p, syscall_number(name).unwrap(), args);
    let mut z = path.as_bytes().to_vec();
    z.push(0);
    s.m.write_user(MEM, &z).unwrap();
    let fd = call("open", [MEM, 0, 0, 0, 0, 0]) as i64;
    assert!(fd >= 0, "open {path}: {fd}");
    let n = call("read", [fd as u64, MEM + 0x400, 0xc00, 0, 0, 0]) as i64;
    assert!(n >= 0, "read {path}: {n}");
    call("close", [fd as u64, 0, 0, 0, 0, 0]);
    let mut buf = alloc::vec![0u8; n as usize];
    s.m.read_user(MEM + 0x400, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// `name:\tvalue` from a status file.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t"))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// The names in directory `path` (after `.` and `..`).
fn list(p: &Process, path: &str) -> Vec<String> {
    let path = on_lookup(p, path.as_bytes().to_vec());
    let dir = p.vfs.resolve(&p.vfs.root().clone(), &path, true).unwrap();
    let mut out = Vec::new();
    dir.visit_dir(2, |n, _, _| {
        out.push(String::from_utf8_lossy(n).into_owned());
        true
    })
    .unwrap();
    out
}

fn setup() -> (Sys, Arc<Process>) {
    let s = Sys::new(MEM, 0x1000);
    s.p.processes.insert_init(s.p.clone());
    s.p.vfs.mkdir_all(b"/proc", 0o555).unwrap();
    *s.p.image.lock() = (
        b"/usr/bin/python3".to_vec(),
        b"python3\0-c\0pass\0".to_vec(),
    );
    let child = Arc::new(s.p.fork(2, 1));
    s.p.processes.add_child(1, child.clone()).unwrap();
    *child.image.lock() = (b"/bin/busybox".to_vec(), b"sleep\x0030\0".to_vec());
    child.creds.lock().setuid(65534).unwrap();
    (s, child)
}

#[test]
fn status_shows_the_signal_masks() {
    let (s, _) = setup();
    let none = read_as(&s, &s.p, "/proc/self/status");
    assert_eq!(field(&none, "SigIgn"), "0000000000000000");
    {
        let mut sig = s.p.signals.lock();
        let ignore = crate::signal::SigAction {
            handler: crate::signal::SIG_IGN,
            ..Default::default()
        };
        sig.set_action(13, ignore).unwrap();
        let catch = crate::signal::SigAction {
            handler: 0x40_1000,
            ..Default::default()
        };
        sig.set_action(10, catch).unwrap();
        sig.set_mask(1, 1 << 11);
        sig.send_to_thread(1, 12).unwrap();
    }
    let st = read_as(&s, &s.p, "/proc/self/status");
    assert_eq!(field(&st, "SigIgn"), "0000000000001000", "SIGPIPE");
    assert_eq!(field(&st, "SigCgt"), "0000000000000200", "SIGUSR1");
    assert_eq!(field(&st, "SigBlk"), "0000000000000800", "SIGUSR2");
    assert_eq!(field(&st, "SigPnd"), "0000000000000800");
    assert_eq!(field(&st, "ShdPnd"), "0000000000000000");
}

#[test]
fn status_stat_cmdline_and_exe_per_process_and_self_per_caller() {
    let (s, child) = setup();
    let mine = read_as(&s, &s.p, "/proc/self/status");
    assert_eq!(field(&mine, "Name"), "python3");
    assert_eq!(field(&mine, "Pid"), "1");
    assert_eq!(field(&mine, "PPid"), "0");
    assert_eq!(field(&mine, "Uid"), "0\t0\t0\t0");
    assert_eq!(field(&mine, "Threads"), "1");
    // The child's, read by the parent and by the child through self.
    let theirs = read_as(&s, &s.p, "/proc/2/status");
    assert_eq!(read_as(&s, &child, "/proc/self/status"), theirs);
    assert_eq!(field(&theirs, "Name"), "busybox");
    assert_eq!(field(&theirs, "Pid"), "2");
    assert_eq!(field(&theirs, "PPid"), "1");
    assert_eq!(field(&theirs, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(read_as(&s, &s.p, "/proc/2/cmdline"), "sleep\x0030\0");
    assert_eq!(
        read_as(&s, &child, "/proc/1/cmdline"),
        "python3\0-c\0pass\0"
    );
    // stat as ps splits it: after the last ')', 50 more fields.
    let stat = read_as(&s, &s.p, "/proc/2/stat");
    assert!(stat.starts_with("2 (busybox) S 1 "), "{stat}");
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    assert_eq!(rest.len(), 50, "{stat}");
    assert_eq!(rest[17], "1", "num_threads");
    let root = s.p.vfs.root().clone();
    let exe = on_lookup(&child, b"/proc/self/exe".to_vec());
    let link = s.p.vfs.resolve(&root, &exe, false).unwrap();
    assert_eq!(link.read_link().unwrap(), b"/bin/busybox");
    // readlink("/proc/self") is the caller's pid.
    s.m.write_user(MEM, b"/proc/self\0").unwrap();
    let readlink = syscall_number("readlink").unwrap();
    assert_eq!(
        s.t.dispatch(&child, readlink, [MEM, MEM + 0x100, 16, 0, 0, 0]),
        1
    );
    let mut b = [0u8; 1];
    s.m.read_user(MEM + 0x100, &mut b).unwrap();
    assert_eq!(&b, b"2");
    // A new program: exe follows.
    *child.image.lock() = (b"/bin/true".to_vec(), b"true\0".to_vec());
    let exe = on_lookup(&s.p, b"/proc/2/exe".to_vec());
    let link = s.p.vfs.resolve(&root, &exe, false).unwrap();
    assert_eq!(link.read_link().unwrap(), b"/bin/true");
}

#[test]
fn proc_lists_live_processes_and_fd_lists_open_fds() {
    let (s, child) = setup();
    let pids: Vec<String> = list(&s.p, "/proc")
        .into_iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(pids, ["1", "2"]);
    // The child's fds: a pipe at 0 and 1 (from a pipe2 of its own).
    let pipe2 = syscall_number("pipe2").unwrap();
    assert_eq!(s.t.dispatch(&child, pipe2, [MEM + 0x800, 0, 0, 0, 0, 0]), 0);
    assert_eq!(list(&child, "/proc/self/fd"), ["0", "1"]);
    let root = s.p.vfs.root().clone();
    let target = s.p.vfs.resolve(&root, b"/proc/2/fd/0", false).unwrap();
    let target = String::from_utf8(target.read_link().unwrap()).unwrap();
    assert!(target.starts_with("pipe:["), "{target}");
    // Closing one shows on the next look.
    let close = syscall_number("close").unwrap();
    assert_eq!(s.t.dispatch(&child, close, [1, 0, 0, 0, 0, 0]), 0);
    assert_eq!(list(&s.p, "/proc/2/fd"), ["0"]);
    // The child exits: its entry goes.
    child.release_at_exit();
    s.p.processes.exit(2, ExitStatus::Exited(0));
    assert!(!list(&s.p, "/proc").contains(&String::from("2")));
    assert!(
        s.p.vfs
            .resolve(&root, &on_lookup(&s.p, b"/proc/2/stat".to_vec()), true)
            .is_err()
    );
}
