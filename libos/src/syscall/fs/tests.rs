//! The fs syscalls end to end through the dispatch table, over the mock
//! platform, with arguments in (mock) user memory.

use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use crate::error::Errno;
use crate::fs::{DeviceRegistry, Vfs};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::syscall::{SyscallArgs, SyscallObserver, SyscallTable, syscall_name, syscall_number};
use crate::user::UserMemory;

const O_RDONLY: u64 = 0;
const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_DIRECTORY: u64 = 0o200000;
const O_NOFOLLOW: u64 = 0o400000;
const O_CLOEXEC: u64 = 0o2000000;
const AT_FDCWD: u64 = -100i64 as u64;

const SCRATCH: u64 = 0x10_0000;
const SCRATCH_BYTES: usize = 0x10_0000;

#[derive(Default)]
struct Recorder {
    unsupported: Mutex<Vec<(usize, Option<&'static str>, bool)>>,
    completed: Mutex<Vec<(usize, isize)>>,
}

impl SyscallObserver for Recorder {
    fn unsupported(&self, nr: usize, name: Option<&'static str>, first_time: bool) {
        self.unsupported.lock().push((nr, name, first_time));
    }
    fn completed(&self, args: &SyscallArgs, ret: isize) {
        self.completed.lock().push((args.nr, ret));
    }
}

struct Harness {
    platform: Arc<MockPlatform>,
    process: Process,
    table: SyscallTable,
    recorder: Arc<Recorder>,
    next: u64,
}

impl Harness {
    fn new() -> Self {
        let platform = Arc::new(MockPlatform::new());
        let devices = DeviceRegistry::standard(platform.clone(), platform.clone());
        let vfs = Arc::new(Vfs::new(platform.clone(), devices));
        let process = Process::new(platform.clone(), vfs);
        process.open_console_stdio().unwrap();
        platform.map(SCRATCH, SCRATCH_BYTES);
        let recorder = Arc::new(Recorder::default());
        let mut table = SyscallTable::new();
        table.set_observer(recorder.clone());
        Self {
            platform,
            process,
            table,
            recorder,
            next: SCRATCH,
        }
    }

    /// Calls syscall `name`; returns rax as a signed value.
    fn call(&self, name: &str, args: &[u64]) -> i64 {
        let nr = syscall_number(name).unwrap();
        let mut raw = [0u64; 6];
        raw[..args.len()].copy_from_slice(args);
        self.table.dispatch(&self.process, nr, raw) as i64
    }

    fn alloc(&mut self, len: usize) -> u64 {
        let at = self.next;
        self.next = (self.next + len as u64 + 15) & !15;
        at
    }

    fn bytes(&mut self, data: &[u8]) -> u64 {
        let at = self.alloc(data.len());
        self.platform.write_user(at, data).unwrap();
        at
    }

    fn cstr(&mut self, s: &str) -> u64 {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(&v)
    }

    fn mem(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = alloc::vec![0u8; len];
        self.platform.read_user(addr, &mut v).unwrap();
        v
    }

    fn u64_at(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.mem(addr, 8).try_into().unwrap())
    }

    fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.mem(addr, 4).try_into().unwrap())
    }
}

fn err(e: Errno) -> i64 {
    -i64::from(e.as_i32())
}

#[test]
fn table_numbers_match_names() {
    let mut seen = alloc::collections::BTreeSet::new();
    let all = crate::syscall::families();
    for &(nr, name, _) in all.into_iter().flatten() {
        assert_eq!(syscall_name(nr), Some(name), "number {nr}");
        assert!(seen.insert(nr), "{name} registered twice");
    }
    let t = SyscallTable::new();
    assert_eq!(t.supported().count(), seen.len());
}

#[test]
fn unsupported_is_enosys_and_reported_once_as_first() {
    let h = Harness::new();
    assert_eq!(h.call("fork", &[0, 4096]), err(Errno::ENOSYS));
    assert_eq!(h.call("fork", &[0, 4096]), err(Errno::ENOSYS));
    assert_eq!(
        h.table.dispatch(&h.process, 100_000, [0; 6]) as i64,
        err(Errno::ENOSYS)
    );
    let u = h.recorder.unsupported.lock().clone();
    assert_eq!(
        u,
        [
            (57, Some("fork"), true),
            (57, Some("fork"), false),
            (100_000, None, true)
        ]
    );
    assert_eq!(h.recorder.completed.lock().len(), 3);
}

#[test]
fn console_write_and_bad_pointer() {
    let mut h = Harness::new();
    let msg = h.bytes(b"hello, world\n");
    assert_eq!(h.call("write", &[1, msg, 13]), 13);
    assert_eq!(h.platform.console_output(), b"hello, world\n");
    assert_eq!(h.call("write", &[1, 0xdead_0000, 10]), err(Errno::EFAULT));
    assert_eq!(
        h.call("write", &[1, 0xffff_8000_0000_0000, 10]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("write", &[1, 0, 0]), 0);
    assert_eq!(h.call("write", &[42, msg, 1]), err(Errno::EBADF));
    // Terminal queries on the console, ENOTTY elsewhere.
    let termios = h.alloc(60);
    assert_eq!(h.call("ioctl", &[1, 0x5401, termios]), 0);
    assert_eq!(h.u32_at(termios + 12) & 2, 2, "ICANON set");
    let ws = h.alloc(8);
    assert_eq!(h.call("ioctl", &[1, 0x5413, ws]), 0);
    assert_eq!(h.mem(ws, 4), [24, 0, 80, 0]);
    let null = h.cstr("/dev/null");
    let fd = h.call("openat", &[AT_FDCWD, null, O_RDWR]) as u64;
    assert_eq!(h.call("ioctl", &[fd, 0x5401, termios]), err(Errno::ENOTTY));
    assert_eq!(h.call("lseek", &[1, 0, 0]), err(Errno::ESPIPE));
    assert_eq!(h.call("read", &[0, termios, 10]), 0);
    let completed = h.recorder.completed.lock().clone();
    assert_eq!(completed[0], (1, 13));
}

#[test]
fn open_read_write_seek() {
    let mut h = Harness::new();
    let path = h.cstr("/tmp/f.txt");
    assert_eq!(
        h.call("openat", &[AT_FDCWD, path, O_RDWR | O_CREAT, 0o666]),
        err(Errno::ENOENT)
    );
    let tmp = h.cstr("/tmp");
    assert_eq!(h.call("mkdir", &[tmp, 0o777]), 0);
    let fd = h.call(
        "openat",
        &[AT_FDCWD, path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666],
    );
    assert_eq!(fd, 3);
    let fd = fd as u64;
    let data = h.bytes(b"0123456789");
    assert_eq!(h.call("write", &[fd, data, 10]), 10);
    assert_eq!(h.call("lseek", &[fd, 2, 0]), 2);
    let buf = h.alloc(64);
    assert_eq!(h.call("read", &[fd, buf, 4]), 4);
    assert_eq!(h.mem(buf, 4), b"2345");
    assert_eq!(h.call("lseek", &[fd, -3i64 as u64, 2]), 7);
    assert_eq!(h.call("read", &[fd, buf, 64]), 3);
    assert_eq!(h.call("read", &[fd, buf, 64]), 0);
    assert_eq!(
        h.call("lseek", &[fd, -100i64 as u64, 1]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("lseek", &[fd, 0, 9]), err(Errno::EINVAL));
    assert_eq!(h.call("lseek", &[fd, 3, 3]), 3, "SEEK_DATA");
    assert_eq!(h.call("lseek", &[fd, 3, 4]), 10, "SEEK_HOLE");
    assert_eq!(h.call("lseek", &[fd, 10, 3]), err(Errno::ENXIO));
    // umask 022 applied to 0666.
    let st = h.alloc(144);
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u32_at(st + 24), 0o100644);
    assert_eq!(h.u64_at(st + 48), 10);
    // pread/pwrite leave the offset alone.
    assert_eq!(h.call("pread64", &[fd, buf, 3, 5]), 3);
    assert_eq!(h.mem(buf, 3), b"567");
    assert_eq!(h.call("pwrite64", &[fd, data, 2, 20]), 2);
    assert_eq!(
        h.call("pread64", &[fd, buf, 3, -1i64 as u64]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("lseek", &[fd, 0, 1]), 10);
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u64_at(st + 48), 22);
    // Reading into a bad buffer faults.
    assert_eq!(
        h.call("pread64", &[fd, 0xdead_0000, 3, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("close", &[fd]), 0);
    assert_eq!(h.call("close", &[fd]), err(Errno::EBADF));

    // O_EXCL, O_TRUNC, O_APPEND, O_WRONLY.
    assert_eq!(
        h.call(
            "openat",
            &[AT_FDCWD, path, O_CREAT | O_EXCL | O_RDWR, 0o600]
        ),
        err(Errno::EEXIST)
    );
    let fd = h.call("open", &[path, O_WRONLY | O_APPEND]) as u64;
    assert_eq!(h.call("write", &[fd, data, 1]), 1);
    assert_eq!(h.call("read", &[fd, buf, 1]), err(Errno::EBADF));
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u64_at(st + 48), 23);
    let fd = h.call("open", &[path, O_WRONLY | O_TRUNC]) as u64;
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u64_at(st + 48), 0);
    // Directories.
    assert_eq!(h.call("open", &[tmp, O_RDWR]), err(Errno::EISDIR));
    assert_eq!(
        h.call("open", &[path, O_RDONLY | O_DIRECTORY]),
        err(Errno::ENOTDIR)
    );
    assert!(h.call("open", &[tmp, O_RDONLY | O_DIRECTORY]) > 0);
    // O_NOFOLLOW on a symlink.
    let link = h.cstr("/tmp/link");
    assert_eq!(h.call("symlink", &[path, link]), 0);
    assert_eq!(
        h.call("open", &[link, O_RDONLY | O_NOFOLLOW]),
        err(Errno::ELOOP)
    );
    assert!(h.call("open", &[link, O_RDONLY]) > 0);
    // Bad path pointer.
    assert_eq!(h.call("open", &[0xdead_0000, O_RDONLY]), err(Errno::EFAULT));
}

#[test]
fn vectored_io_and_urandom() {
    let mut h = Harness::new();
    let a = h.bytes(b"abc");
    let b = h.bytes(b"defg");
    let mut iov = Vec::new();
    for (base, len) in [(a, 3u64), (b, 4)] {
        iov.extend_from_slice(&base.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    let iov_addr = h.bytes(&iov);
    assert_eq!(h.call("writev", &[1, iov_addr, 2]), 7);
    assert_eq!(h.platform.console_output(), b"abcdefg");
    assert_eq!(h.call("writev", &[1, iov_addr, 5000]), err(Errno::EINVAL));
    let path = h.cstr("/dev/urandom");
    let fd = h.call("open", &[path, O_RDONLY]) as u64;
    // readv into two buffers fills both.
    let (x, y) = (h.alloc(3), h.alloc(4));
    let mut iov = Vec::new();
    for (base, len) in [(x, 3u64), (y, 4)] {
        iov.extend_from_slice(&base.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    let iov_addr = h.bytes(&iov);
    assert_eq!(h.call("readv", &[fd, iov_addr, 2]), 7);
    let big = h.alloc(200_000);
    assert_eq!(h.call("read", &[fd, big, 200_000]), 200_000);
    let sample = h.mem(big + 150_000, 64);
    assert!(sample.iter().any(|&v| v != 0));
}

#[test]
fn stat_family() {
    let mut h = Harness::new();
    let etc = h.cstr("/etc");
    assert_eq!(h.call("mkdir", &[etc, 0o755]), 0);
    let passwd = h.cstr("/etc/passwd");
    let fd = h.call("open", &[passwd, O_CREAT | O_WRONLY, 0o644]) as u64;
    let data = h.bytes(b"root:x:0:0\n");
    h.call("write", &[fd, data, 11]);
    let link = h.cstr("/etc/link");
    assert_eq!(h.call("symlink", &[passwd, link]), 0);
    let st = h.alloc(144);
    assert_eq!(h.call("stat", &[link, st]), 0);
    assert_eq!((h.u32_at(st + 24), h.u64_at(st + 48)), (0o100644, 11));
    assert_eq!(h.u64_at(st + 16), 1, "nlink");
    assert_eq!(h.u64_at(st + 56), 4096, "blksize");
    assert_eq!(h.u64_at(st + 64), 8, "blocks: one 4 KiB page");
    assert_eq!(h.u64_at(st + 88), 1_767_225_600, "mtime seconds");
    let ino = h.u64_at(st + 8);
    assert_eq!(h.call("lstat", &[link, st]), 0);
    assert_eq!(h.u32_at(st + 24), 0o120777);
    assert_eq!(h.u64_at(st + 48), 11, "symlink size is the target length");
    // newfstatat relative to a directory fd, and AT_EMPTY_PATH.
    let dirfd = h.call("open", &[etc, O_RDONLY | O_DIRECTORY]) as u64;
    let rel = h.cstr("passwd");
    assert_eq!(h.call("newfstatat", &[dirfd, rel, st, 0]), 0);
    assert_eq!(h.u64_at(st + 8), ino);
    let empty = h.cstr("");
    assert_eq!(
        h.call("newfstatat", &[fd, empty, st, 0]),
        err(Errno::ENOENT)
    );
    assert_eq!(h.call("newfstatat", &[fd, empty, st, 0x1000]), 0);
    assert_eq!(h.u64_at(st + 8), ino);
    assert_eq!(h.call("newfstatat", &[fd, rel, st, 0]), err(Errno::ENOTDIR));
    assert_eq!(
        h.call("newfstatat", &[dirfd, rel, st, 0x4]),
        err(Errno::EINVAL)
    );
    // /dev/null: a character device 1:3.
    let null = h.cstr("/dev/null");
    assert_eq!(h.call("stat", &[null, st]), 0);
    assert_eq!(h.u32_at(st + 24), 0o020666);
    assert_eq!(h.u64_at(st + 40), 0x103);
    // statx.
    let sx = h.alloc(256);
    assert_eq!(h.call("statx", &[AT_FDCWD, passwd, 0, 0x7ff, sx]), 0);
    assert_eq!(h.u32_at(sx), 0x7ff);
    assert_eq!(h.u32_at(sx + 28) & 0xffff, 0o100644);
    assert_eq!(h.u64_at(sx + 32), ino);
    assert_eq!(h.u64_at(sx + 40), 11);
    assert_eq!(h.u64_at(sx + 112), 1_767_225_600);
    assert_eq!(h.call("statx", &[AT_FDCWD, null, 0, 0x7ff, sx]), 0);
    assert_eq!((h.u32_at(sx + 128), h.u32_at(sx + 132)), (1, 3));
    assert_eq!(
        h.call("statx", &[AT_FDCWD, passwd, 0, 0x8000_0000, sx]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("stat", &[passwd, 0xdead_0000]), err(Errno::EFAULT));
}

#[test]
fn fstat_through_newfstatat_works_on_pipes() {
    // glibc's fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH): it must work
    // on fds without an inode (Python's io.open(pipe_fd), `sort < pipe`).
    let mut h = Harness::new();
    let fds = h.alloc(8);
    assert_eq!(h.call("pipe2", &[fds, 0]), 0);
    let r = u64::from(h.u32_at(fds));
    let (st, sx, empty) = (h.alloc(144), h.alloc(256), h.cstr(""));
    assert_eq!(h.call("newfstatat", &[r, empty, st, 0x1000]), 0);
    assert_eq!(h.u32_at(st + 24) & 0o170000, 0o010000, "S_IFIFO");
    assert_eq!(h.call("statx", &[r, empty, 0x1000, 0x7ff, sx]), 0);
    assert_eq!(h.u32_at(sx + 28) & 0o170000, 0o010000);
    assert_eq!(
        h.call("newfstatat", &[99, empty, st, 0x1000]),
        err(Errno::EBADF)
    );
}

/// Parses `linux_dirent64` records into `(ino, off, type, name)`.
fn parse_dirents(bytes: &[u8]) -> Vec<(u64, u64, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let ino = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let off = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        let reclen = u16::from_le_bytes(bytes[at + 16..at + 18].try_into().unwrap()) as usize;
        assert_eq!(reclen % 8, 0);
        let name_bytes = &bytes[at + 19..at + reclen];
        let name = name_bytes[..name_bytes.iter().position(|&b| b == 0).unwrap()].to_vec();
        out.push((ino, off, bytes[at + 18], name));
        at += reclen;
    }
    out
}

#[test]
fn getdents64_lists_and_resumes() {
    let mut h = Harness::new();
    let d = h.cstr("/d");
    h.call("mkdir", &[d, 0o755]);
    for name in ["/d/b", "/d/a"] {
        let p = h.cstr(name);
        h.call("open", &[p, O_CREAT | O_WRONLY, 0o644]);
    }
    let sub = h.cstr("/d/sub");
    h.call("mkdir", &[sub, 0o755]);
    let fd = h.call("open", &[d, O_RDONLY | O_DIRECTORY]) as u64;
    let buf = h.alloc(4096);
    // A 10-byte buffer cannot hold one record.
    assert_eq!(h.call("getdents64", &[fd, buf, 10]), err(Errno::EINVAL));
    // 48 bytes hold two 24-byte records: "." and "..".
    assert_eq!(h.call("getdents64", &[fd, buf, 48]), 48);
    let first = parse_dirents(&h.mem(buf, 48));
    assert_eq!(
        first.iter().map(|e| e.3.as_slice()).collect::<Vec<_>>(),
        [&b"."[..], b".."]
    );
    assert_eq!(first[1].1, 2, "d_off of the second record");
    let n = h.call("getdents64", &[fd, buf, 4096]) as usize;
    let rest = parse_dirents(&h.mem(buf, n));
    let names: Vec<_> = rest.iter().map(|e| (e.3.as_slice(), e.2)).collect();
    assert_eq!(names, [(&b"a"[..], 8), (b"b", 8), (b"sub", 4)]);
    assert_eq!(h.call("getdents64", &[fd, buf, 4096]), 0);
    // Rewinding starts over.
    assert_eq!(h.call("lseek", &[fd, 0, 0]), 0);
    assert_eq!(
        parse_dirents(&h.mem(buf, h.call("getdents64", &[fd, buf, 4096]) as usize)).len(),
        5
    );
    let f = h.cstr("/d/a");
    let file_fd = h.call("open", &[f, O_RDONLY]) as u64;
    assert_eq!(
        h.call("getdents64", &[file_fd, buf, 4096]),
        err(Errno::ENOTDIR)
    );
    assert_eq!(h.call("getdents64", &[1, buf, 4096]), err(Errno::ENOTDIR));
}

#[test]
fn dup_and_fcntl() {
    let mut h = Harness::new();
    assert_eq!(h.call("dup", &[1]), 3);
    assert_eq!(h.call("dup2", &[1, 10]), 10);
    assert_eq!(h.call("dup2", &[10, 10]), 10);
    assert_eq!(h.call("dup3", &[1, 10, 0]), 10);
    assert_eq!(h.call("dup3", &[1, 1, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("dup3", &[1, 11, O_CLOEXEC]), 11);
    assert_eq!(h.call("dup3", &[1, 12, 1]), err(Errno::EINVAL));
    assert_eq!(h.call("fcntl", &[11, 1]), 1, "F_GETFD: FD_CLOEXEC");
    assert_eq!(h.call("fcntl", &[11, 2, 0]), 0);
    assert_eq!(h.call("fcntl", &[11, 1]), 0);
    assert_eq!(h.call("fcntl", &[1, 1030, 20]), 20, "F_DUPFD_CLOEXEC");
    assert_eq!(h.call("fcntl", &[20, 1]), 1);
    assert_eq!(h.call("fcntl", &[1, 0, 0]), 4, "F_DUPFD lowest free");
    assert_eq!(h.call("fcntl", &[1, 3]), 2, "F_GETFL: O_RDWR");
    assert_eq!(h.call("fcntl", &[1, 4, 0o4000]), 0);
    assert_eq!(
        h.call("fcntl", &[3, 3]),
        2 | 0o4000,
        "status flags are shared by dups"
    );
    let flock = h.bytes(&[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.call("fcntl", &[1, 5, flock]), 0);
    assert_eq!(h.mem(flock, 2), [2, 0], "F_GETLK reports F_UNLCK");
    assert_eq!(h.call("fcntl", &[1, 6, flock]), 0);
    assert_eq!(h.call("fcntl", &[1, 9999]), err(Errno::EINVAL));
    assert_eq!(h.call("fcntl", &[99, 1]), err(Errno::EBADF));
    assert_eq!(h.call("ioctl", &[1, 0x5451]), 0, "FIOCLEX");
    assert_eq!(h.call("fcntl", &[1, 1]), 1);
}

#[test]
fn path_operations() {
    let mut h = Harness::new();
    let buf = h.alloc(256);
    assert_eq!(h.call("getcwd", &[buf, 256]), 2);
    assert_eq!(h.mem(buf, 2), b"/\0");
    let a = h.cstr("/a");
    let ab = h.cstr("/a/b");
    assert_eq!(h.call("mkdirat", &[AT_FDCWD, a, 0o777]), 0);
    assert_eq!(h.call("mkdirat", &[AT_FDCWD, a, 0o777]), err(Errno::EEXIST));
    assert_eq!(h.call("mkdir", &[ab, 0o777]), 0);
    let st = h.alloc(144);
    h.call("stat", &[ab, st]);
    assert_eq!(h.u32_at(st + 24), 0o040755, "umask applied");
    assert_eq!(h.call("chdir", &[ab]), 0);
    assert_eq!(h.call("getcwd", &[buf, 256]), 5);
    assert_eq!(h.mem(buf, 5), b"/a/b\0");
    assert_eq!(h.call("getcwd", &[buf, 4]), err(Errno::ERANGE));
    let dotdot = h.cstr("..");
    assert_eq!(h.call("chdir", &[dotdot]), 0);
    assert_eq!(h.call("getcwd", &[buf, 256]), 3);
    // Relative creation from the cwd, then rename and unlink.
    let f = h.cstr("f");
    let fd = h.call("open", &[f, O_CREAT | O_WRONLY, 0o755]);
    assert!(fd > 0);
    let g = h.cstr("b/g");
    assert_eq!(h.call("renameat", &[AT_FDCWD, f, AT_FDCWD, g]), 0);
    assert_eq!(h.call("access", &[f, 0]), err(Errno::ENOENT));
    assert_eq!(h.call("faccessat", &[AT_FDCWD, g, 1]), 0, "X_OK on 0755");
    assert_eq!(h.call("faccessat", &[AT_FDCWD, g, 8]), err(Errno::EINVAL));
    assert_eq!(h.call("chmod", &[g, 0o644]), 0);
    assert_eq!(
        h.call("faccessat2", &[AT_FDCWD, g, 1, 0]),
        err(Errno::EACCES)
    );
    assert_eq!(h.call("faccessat2", &[AT_FDCWD, g, 6, 0]), 0);
    let bdir = h.cstr("b");
    assert_eq!(
        h.call("renameat2", &[AT_FDCWD, g, AT_FDCWD, bdir, 1]),
        err(Errno::EEXIST)
    );
    assert_eq!(
        h.call("renameat2", &[AT_FDCWD, g, AT_FDCWD, bdir, 2]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("unlinkat", &[AT_FDCWD, ab, 0]), err(Errno::EISDIR));
    assert_eq!(
        h.call("unlinkat", &[AT_FDCWD, ab, 0x200]),
        err(Errno::ENOTEMPTY)
    );
    assert_eq!(h.call("unlinkat", &[AT_FDCWD, g, 0]), 0);
    assert_eq!(h.call("rmdir", &[ab]), 0);
    assert_eq!(h.call("unlinkat", &[AT_FDCWD, ab, 0x1]), err(Errno::EINVAL));
    // Symlinks and readlink.
    let target = h.cstr("/some/where");
    let l = h.cstr("/a/l");
    assert_eq!(h.call("symlinkat", &[target, AT_FDCWD, l]), 0);
    assert_eq!(h.call("readlinkat", &[AT_FDCWD, l, buf, 256]), 11);
    assert_eq!(h.mem(buf, 11), b"/some/where");
    assert_eq!(h.call("readlink", &[l, buf, 4]), 4);
    assert_eq!(h.call("readlink", &[a, buf, 256]), err(Errno::EINVAL));
    assert_eq!(h.call("readlink", &[l, buf, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("stat", &[l, st]), err(Errno::ENOENT));
    // umask returns the old value.
    assert_eq!(h.call("umask", &[0o077]), 0o022);
    assert_eq!(h.call("umask", &[0o022]), 0o077);
    // truncate / ftruncate.
    let t = h.cstr("/a/t");
    let fd = h.call("open", &[t, O_CREAT | O_RDWR, 0o644]) as u64;
    assert_eq!(h.call("ftruncate", &[fd, 100]), 0);
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u64_at(st + 48), 100);
    assert_eq!(h.call("truncate", &[t, 5]), 0);
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    assert_eq!(h.u64_at(st + 48), 5);
    assert_eq!(h.call("truncate", &[t, -1i64 as u64]), err(Errno::EINVAL));
    let ro = h.call("open", &[t, O_RDONLY]) as u64;
    assert_eq!(h.call("ftruncate", &[ro, 0]), err(Errno::EINVAL));
    // fchdir.
    let root = h.cstr("/");
    let rootfd = h.call("open", &[root, O_RDONLY | O_DIRECTORY]) as u64;
    assert_eq!(h.call("fchdir", &[rootfd]), 0);
    assert_eq!(h.call("getcwd", &[buf, 256]), 2);
    assert_eq!(h.call("fchdir", &[fd]), err(Errno::ENOTDIR));
    // Hard links.
    let h1 = h.cstr("/a/h1");
    let h2 = h.cstr("/a/h2");
    assert_eq!(h.call("link", &[t, h1]), 0);
    assert_eq!(h.call("linkat", &[AT_FDCWD, t, AT_FDCWD, h2, 0x400]), 0);
    assert_eq!(h.call("stat", &[h2, st]), 0);
    assert_eq!(h.u64_at(st + 16), 3, "nlink");
    assert_eq!(h.call("link", &[t, h1]), err(Errno::EEXIST));
    let dirlink = h.cstr("/a/dirlink");
    assert_eq!(h.call("link", &[a, dirlink]), err(Errno::EPERM));
    assert_eq!(
        h.call("linkat", &[AT_FDCWD, t, AT_FDCWD, h2, 0x1]),
        err(Errno::EINVAL)
    );
    // A path that is too long.
    let long = h.cstr(&"x".repeat(5000));
    assert_eq!(h.call("mkdir", &[long, 0o755]), err(Errno::ENAMETOOLONG));
}

#[test]
fn abi_doc_lists_every_handler() {
    let doc = include_str!("../../../../docs/LINUX_ABI.md");
    let all = crate::syscall::families();
    for &(nr, name, _) in all.into_iter().flatten() {
        let row = alloc::format!("| {nr} | {name} |");
        assert!(doc.contains(&row), "docs/LINUX_ABI.md has no row `{row}`");
    }
}

#[test]
fn abi_doc_claims_only_registered_handlers() {
    let doc = include_str!("../../../../docs/LINUX_ABI.md");
    let handled = doc
        .split("## Handled")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let table = SyscallTable::new();
    let mut rows = 0;
    for line in handled
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| nr"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let nr: usize = cells[1].parse().unwrap();
        assert_eq!(syscall_name(nr), Some(cells[2]), "row {line}");
        assert!(
            table.is_supported(nr),
            "{} documented but not registered",
            cells[2]
        );
        rows += 1;
    }
    assert_eq!(rows, table.supported().count());
}

#[test]
fn sendfile_and_copy_file_range_copy_between_fds() {
    let mut h = Harness::new();
    let src = h.cstr("/src");
    let dst = h.cstr("/dst");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let buf = h.bytes(&data);
    let fin = h.call("open", &[src, 0o102, 0o644]) as u64; // O_RDWR|O_CREAT
    assert_eq!(
        h.call("write", &[fin, buf, data.len() as u64]),
        data.len() as i64
    );
    let fout = h.call("open", &[dst, 0o101, 0o644]) as u64; // O_WRONLY|O_CREAT
    // With an offset pointer: the input's file offset stays at the end.
    let off = h.bytes(&10u64.to_le_bytes());
    assert_eq!(h.call("sendfile", &[fout, fin, off, 1000]), 1000);
    assert_eq!(h.u64_at(off), 1010);
    // Without one: from the file offset, rewound first; stops at end of file.
    assert_eq!(h.call("lseek", &[fin, 1010, 0]), 1010);
    assert_eq!(
        h.call("sendfile", &[fout, fin, 0, 1 << 30]),
        (data.len() - 1010) as i64
    );
    assert_eq!(h.call("lseek", &[fin, 0, 1]), data.len() as i64);
    let back = h.alloc(data.len());
    let fcheck = h.call("open", &[dst, 0, 0]) as u64;
    assert_eq!(
        h.call("read", &[fcheck, back, data.len() as u64]),
        (data.len() - 10) as i64
    );
    assert_eq!(h.mem(back, data.len() - 10), data[10..]);
    // copy_file_range with explicit offsets leaves the file offsets alone.
    let (o_in, o_out) = (h.bytes(&0u64.to_le_bytes()), h.bytes(&0u64.to_le_bytes()));
    assert_eq!(
        h.call("copy_file_range", &[fin, o_in, fout, o_out, 4096, 0]),
        4096
    );
    assert_eq!((h.u64_at(o_in), h.u64_at(o_out)), (4096, 4096));
    assert_eq!(
        h.call("copy_file_range", &[fin, o_in, fout, o_out, 1, 1]),
        err(Errno::EINVAL)
    );
    // A pipe cannot be the input; the console can be the output.
    let fds = h.alloc(8);
    assert_eq!(h.call("pipe2", &[fds, 0]), 0);
    let rd = u64::from(h.u32_at(fds));
    assert_eq!(h.call("sendfile", &[1, rd, 0, 10]), err(Errno::EINVAL));
    assert_eq!(h.call("sendfile", &[1, fin, off, 5]), 5);
    assert_eq!(h.call("sendfile", &[1, 99, 0, 5]), err(Errno::EBADF));
}

#[test]
fn chown_and_fsync() {
    let mut h = Harness::new();
    let path = h.cstr("/owned");
    let fd = h.call("open", &[path, 0o101, 0o4755]) as u64; // O_WRONLY|O_CREAT, setuid
    assert_eq!(h.call("fchmod", &[fd, 0o4755]), 0);
    assert_eq!(h.call("chown", &[path, 65534, u64::from(u32::MAX)]), 0);
    let st = h.alloc(144);
    assert_eq!(h.call("stat", &[path, st]), 0);
    assert_eq!(h.u32_at(st + 28), 65534, "uid");
    assert_eq!(h.u32_at(st + 32), 0, "gid kept");
    assert_eq!(h.u32_at(st + 24) & 0o7777, 0o755, "set-uid cleared");
    assert_eq!(h.call("fchown", &[fd, 0, 7]), 0);
    assert_eq!(h.call("fchownat", &[AT_FDCWD, path, 1, 2, 0x100]), 0);
    assert_eq!(h.call("stat", &[path, st]), 0);
    assert_eq!((h.u32_at(st + 28), h.u32_at(st + 32)), (1, 2));
    assert_eq!(
        h.call("fchownat", &[AT_FDCWD, path, 1, 2, 0x1]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("fsync", &[fd]), 0);
    assert_eq!(h.call("fdatasync", &[fd]), 0);
    let fds = h.alloc(8);
    assert_eq!(h.call("pipe2", &[fds, 0]), 0);
    assert_eq!(
        h.call("fsync", &[u64::from(h.u32_at(fds))]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("fsync", &[99]), err(Errno::EBADF));
    assert_eq!(h.call("sync", &[]), 0);
}

#[test]
fn epipe_raises_sigpipe_for_the_writer() {
    let mut h = Harness::new();
    let fds = h.alloc(8);
    assert_eq!(h.call("pipe2", &[fds, 0]), 0);
    let (rd, wr) = (u64::from(h.u32_at(fds)), u64::from(h.u32_at(fds + 4)));
    let buf = h.bytes(b"x");
    let tid = crate::platform::CurrentThread::current_tid(&*h.platform);
    let sigpipe = 1u64 << (crate::signal::SIGPIPE - 1);
    assert_eq!(h.call("write", &[wr, buf, 1]), 1);
    assert_eq!(h.process.signals.lock().pending(tid) & sigpipe, 0);
    assert_eq!(h.call("close", &[rd]), 0);
    assert_eq!(h.call("write", &[wr, buf, 1]), err(Errno::EPIPE));
    assert_ne!(h.process.signals.lock().pending(tid) & sigpipe, 0);
}
