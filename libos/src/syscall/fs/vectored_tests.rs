//! `preadv`/`pwritev`(2), `fallocate`, `fadvise64`, `fcntl`'s pipe sizes
//! and extended attributes through the dispatch table over the mock
//! platform.

use crate::error::Errno;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const BUF: u64 = 0x30_0000;
const O_RDWR: u64 = 2;
const O_RDONLY: u64 = 0;
const O_CREAT: u64 = 0o100;
const O_APPEND: u64 = 0o2000;
const AT_FDCWD: u64 = -100i64 as u64;
const RWF_HIPRI: u64 = 1;
const RWF_NOWAIT: u64 = 8;
const RWF_APPEND: u64 = 0x10;
const FALLOC_FL_KEEP_SIZE: u64 = 1;
const FALLOC_FL_PUNCH_HOLE: u64 = 2;

/// A file `name` opened with `flags`; returns the fd.
fn open(s: &Sys, name: &str, flags: u64) -> u64 {
    let mut b = name.as_bytes().to_vec();
    b.push(0);
    s.m.write_user(BUF, &b).unwrap();
    let fd = s.call("openat", &[AT_FDCWD, BUF, flags | O_CREAT, 0o644]);
    assert!(fd >= 0, "open {name}: {fd}");
    fd as u64
}

/// Two iovecs at `BUF + 0x100` over `BUF + 0x200` (`a` bytes) and
/// `BUF + 0x300` (`b` bytes); returns the array's address.
fn iov2(s: &Sys, a: u64, b: u64) -> u64 {
    let mut v = Vec::new();
    for (base, len) in [(BUF + 0x200, a), (BUF + 0x300, b)] {
        v.extend_from_slice(&base.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
    }
    s.m.write_user(BUF + 0x100, &v).unwrap();
    BUF + 0x100
}

fn bytes(s: &Sys, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.m.read_user(at, &mut b).unwrap();
    b
}

fn size_of(s: &Sys, fd: u64) -> (u64, u64) {
    assert_eq!(s.call("fstat", &[fd, BUF + 0x800]), 0);
    let st = bytes(s, BUF + 0x800, 144);
    let size = u64::from_le_bytes(st[48..56].try_into().unwrap());
    let blocks = u64::from_le_bytes(st[64..72].try_into().unwrap());
    (size, blocks)
}

#[test]
fn positioned_vectored_reads_and_writes_leave_the_offset_alone() {
    let s = Sys::new(BUF, 0x1000);
    let fd = open(&s, "v", O_RDWR);
    s.m.write_user(BUF + 0x200, b"hello").unwrap();
    s.m.write_user(BUF + 0x300, b"world").unwrap();
    let iov = iov2(&s, 5, 5);
    assert_eq!(s.call("pwritev", &[fd, iov, 2, 3, 0]), 10);
    assert_eq!(s.call("lseek", &[fd, 0, 1]), 0, "the offset stays");
    let iov = iov2(&s, 4, 3);
    assert_eq!(s.call("preadv", &[fd, iov, 2, 4, 0]), 7);
    assert_eq!(bytes(&s, BUF + 0x200, 4), b"ello");
    assert_eq!(bytes(&s, BUF + 0x300, 3), b"wor");
    // Past the end: a short count, then 0.
    assert_eq!(s.call("preadv", &[fd, iov, 2, 11, 0]), 2);
    assert_eq!(s.call("preadv", &[fd, iov, 2, 100, 0]), 0);
    assert_eq!(
        s.call("preadv", &[fd, iov, 2, -1i64 as u64, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(s.call("preadv", &[99, iov, 2, 0, 0]), err(Errno::EBADF));
    let mut fds = [0u8; 8];
    assert_eq!(s.call("pipe2", &[BUF + 0x900, 0]), 0);
    s.m.read_user(BUF + 0x900, &mut fds).unwrap();
    let pipe_read = u64::from(u32::from_le_bytes(fds[..4].try_into().unwrap()));
    assert_eq!(
        s.call("preadv", &[pipe_read, iov, 2, 0, 0]),
        err(Errno::ESPIPE)
    );
}

#[test]
fn the_v2_forms_take_the_file_offset_and_flags() {
    let s = Sys::new(BUF, 0x1000);
    let fd = open(&s, "v2", O_RDWR);
    s.m.write_user(BUF + 0x200, b"abcde").unwrap();
    s.m.write_user(BUF + 0x300, b"fgh").unwrap();
    let iov = iov2(&s, 5, 3);
    // Offset -1: the file offset, which moves.
    assert_eq!(s.call("pwritev2", &[fd, iov, 2, -1i64 as u64, 0, 0]), 8);
    assert_eq!(s.call("lseek", &[fd, 0, 1]), 8);
    let iov = iov2(&s, 2, 2);
    assert_eq!(s.call("preadv2", &[fd, iov, 2, 1, 0, RWF_HIPRI]), 4);
    assert_eq!(bytes(&s, BUF + 0x200, 2), b"bc");
    assert_eq!(bytes(&s, BUF + 0x300, 2), b"de");
    // RWF_APPEND writes at the end whatever the offset.
    let iov = iov2(&s, 1, 1);
    assert_eq!(s.call("pwritev2", &[fd, iov, 2, 0, 0, RWF_APPEND]), 2);
    assert_eq!(size_of(&s, fd).0, 10);
    assert_eq!(
        s.call("preadv2", &[fd, iov, 2, 0, 0, RWF_NOWAIT]),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        s.call("preadv2", &[fd, iov, 2, 0, 0, 0x100]),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        s.call("preadv2", &[fd, iov, 2, 0, 0, RWF_APPEND]),
        err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn fallocate_allocates_and_grows_and_checks_like_linux() {
    let s = Sys::new(BUF, 0x1000);
    let fd = open(&s, "f", O_RDWR);
    assert_eq!(s.call("fallocate", &[fd, 0, 0, 10000]), 0);
    let (size, blocks) = size_of(&s, fd);
    assert_eq!(size, 10000);
    assert_eq!(blocks, 3 * 8, "three pages of 512-byte blocks");
    assert_eq!(
        s.call("fallocate", &[fd, FALLOC_FL_KEEP_SIZE, 20000, 100]),
        0
    );
    assert_eq!(size_of(&s, fd), (10000, 4 * 8));
    assert_eq!(s.call("fallocate", &[fd, 0, 0, 0]), err(Errno::EINVAL));
    assert_eq!(
        s.call("fallocate", &[fd, 0, -1i64 as u64, 1]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        s.call("fallocate", &[fd, 0, i64::MAX as u64, 2]),
        err(Errno::EFBIG)
    );
    assert_eq!(
        s.call(
            "fallocate",
            &[fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1]
        ),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(s.call("fallocate", &[99, 0, 0, 1]), err(Errno::EBADF));
    let ro = open(&s, "f", O_RDONLY);
    assert_eq!(s.call("fallocate", &[ro, 0, 0, 1]), err(Errno::EBADF));
    let app = open(&s, "f", O_RDWR | O_APPEND);
    assert_eq!(s.call("fallocate", &[app, 0, 0, 1]), 0);
}

#[test]
fn fadvise_checks_its_arguments() {
    let s = Sys::new(BUF, 0x1000);
    let fd = open(&s, "a", O_RDWR);
    assert_eq!(s.call("fadvise64", &[fd, 0, 100, 4]), 0);
    assert_eq!(s.call("fadvise64", &[fd, 0, 100, 6]), err(Errno::EINVAL));
    assert_eq!(s.call("fadvise64", &[99, 0, 100, 0]), err(Errno::EBADF));
    assert_eq!(s.call("pipe2", &[BUF + 0x900, 0]), 0);
    let mut fds = [0u8; 4];
    s.m.read_user(BUF + 0x900, &mut fds).unwrap();
    assert_eq!(
        s.call("fadvise64", &[u64::from(u32::from_le_bytes(fds)), 0, 0, 0]),
        err(Errno::ESPIPE)
    );
}

#[test]
fn fcntl_gets_and_sets_a_pipes_size() {
    const F_SETPIPE_SZ: u64 = 1031;
    const F_GETPIPE_SZ: u64 = 1032;
    let s = Sys::new(BUF, 0x1000);
    assert_eq!(s.call("pipe2", &[BUF + 0x900, 0]), 0);
    let mut fds = [0u8; 8];
    s.m.read_user(BUF + 0x900, &mut fds).unwrap();
    let w = u64::from(u32::from_le_bytes(fds[4..].try_into().unwrap()));
    assert_eq!(s.call("fcntl", &[w, F_GETPIPE_SZ]), 65536);
    assert_eq!(s.call("fcntl", &[w, F_SETPIPE_SZ, 32768]), 32768);
    assert_eq!(s.call("fcntl", &[w, F_GETPIPE_SZ]), 32768);
    let file = open(&s, "p", O_RDWR);
    assert_eq!(s.call("fcntl", &[file, F_GETPIPE_SZ]), err(Errno::EBADF));
}

#[test]
fn extended_attributes_set_get_list_and_remove() {
    let s = Sys::new(BUF, 0x1000);
    let fd = open(&s, "x", O_RDWR);
    let put = |at: u64, b: &[u8]| s.m.write_user(at, b).unwrap();
    put(BUF + 0x400, b"x\0");
    put(BUF + 0x500, b"user.test\0");
    put(BUF + 0x600, b"hello");
    let (path, name, value, out) = (BUF + 0x400, BUF + 0x500, BUF + 0x600, BUF + 0x700);
    assert_eq!(
        s.call("getxattr", &[path, name, out, 64]),
        err(Errno::ENODATA)
    );
    assert_eq!(s.call("setxattr", &[path, name, value, 5, 0]), 0);
    assert_eq!(
        s.call("setxattr", &[path, name, value, 5, 1]),
        err(Errno::EEXIST)
    );
    assert_eq!(
        s.call("fgetxattr", &[fd, name, 0, 0]),
        5,
        "size 0: the length"
    );
    assert_eq!(s.call("fgetxattr", &[fd, name, out, 2]), err(Errno::ERANGE));
    assert_eq!(s.call("lgetxattr", &[path, name, out, 64]), 5);
    assert_eq!(bytes(&s, out, 5), b"hello");
    assert_eq!(s.call("flistxattr", &[fd, out, 64]), 10);
    assert_eq!(bytes(&s, out, 10), b"user.test\0");
    put(BUF + 0x580, b"system.posix_acl_access\0");
    assert_eq!(
        s.call("fsetxattr", &[fd, BUF + 0x580, value, 5, 0]),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(s.call("fremovexattr", &[fd, name]), 0);
    assert_eq!(s.call("removexattr", &[path, name]), err(Errno::ENODATA));
    assert_eq!(s.call("listxattr", &[path, out, 64]), 0);
    assert_eq!(s.call("pipe2", &[BUF + 0x900, 0]), 0);
    let mut fds = [0u8; 4];
    s.m.read_user(BUF + 0x900, &mut fds).unwrap();
    let pipe = u64::from(u32::from_le_bytes(fds));
    assert_eq!(
        s.call("fsetxattr", &[pipe, name, value, 5, 0]),
        err(Errno::EOPNOTSUPP)
    );
}

/// `(read end, write end)` of a new pipe.
fn pipe(s: &Sys) -> (u64, u64) {
    assert_eq!(s.call("pipe2", &[BUF + 0x900, 0]), 0);
    let mut fds = [0u8; 8];
    s.m.read_user(BUF + 0x900, &mut fds).unwrap();
    let end = |i: usize| u64::from(u32::from_le_bytes(fds[i..i + 4].try_into().unwrap()));
    (end(0), end(4))
}

#[test]
fn splice_moves_bytes_between_a_pipe_and_a_file() {
    let s = Sys::new(BUF, 0x1000);
    let f = open(&s, "s", O_RDWR);
    s.m.write_user(BUF + 0x200, b"0123456789").unwrap();
    assert_eq!(s.call("write", &[f, BUF + 0x200, 10]), 10);
    assert_eq!(s.call("lseek", &[f, 2, 0]), 2);
    let (r, w) = pipe(&s);
    // File to pipe from the file offset, which moves.
    assert_eq!(s.call("splice", &[f, 0, w, 0, 5, 0]), 5);
    assert_eq!(s.call("lseek", &[f, 0, 1]), 7);
    // With an offset pointer: that moves instead.
    s.m.write_user(BUF + 0x300, &1i64.to_le_bytes()).unwrap();
    assert_eq!(s.call("splice", &[f, BUF + 0x300, w, 0, 2, 0]), 2);
    assert_eq!(bytes(&s, BUF + 0x300, 8), 3i64.to_le_bytes());
    assert_eq!(s.call("lseek", &[f, 0, 1]), 7);
    // Pipe to file at an offset: "23456" then "12".
    s.m.write_user(BUF + 0x300, &20i64.to_le_bytes()).unwrap();
    assert_eq!(s.call("splice", &[r, 0, f, BUF + 0x300, 100, 0]), 7);
    assert_eq!(bytes(&s, BUF + 0x300, 8), 27i64.to_le_bytes());
    assert_eq!(s.call("pread64", &[f, BUF + 0x400, 7, 20]), 7);
    assert_eq!(bytes(&s, BUF + 0x400, 7), b"2345612");
    // An empty pipe with SPLICE_F_NONBLOCK: EAGAIN.
    assert_eq!(s.call("splice", &[r, 0, f, 0, 4, 2]), err(Errno::EAGAIN));
    // Pipe to pipe.
    let (r2, w2) = pipe(&s);
    assert_eq!(s.call("splice", &[f, BUF + 0x300, w, 0, 0, 0]), 0, "len 0");
    s.m.write_user(BUF + 0x300, &0i64.to_le_bytes()).unwrap();
    assert_eq!(s.call("splice", &[f, BUF + 0x300, w, 0, 3, 0]), 3);
    assert_eq!(s.call("splice", &[r, 0, w2, 0, 64, 0]), 3);
    assert_eq!(s.call("read", &[r2, BUF + 0x400, 64]), 3);
    assert_eq!(bytes(&s, BUF + 0x400, 3), b"012");
    // Linux's errors.
    let g = open(&s, "t", O_RDWR);
    assert_eq!(
        s.call("splice", &[f, 0, g, 0, 4, 0]),
        err(Errno::EINVAL),
        "no pipe"
    );
    assert_eq!(
        s.call("splice", &[r, BUF + 0x300, f, 0, 4, 0]),
        err(Errno::ESPIPE)
    );
    assert_eq!(
        s.call("splice", &[f, 0, w, 0, 4, 0x100]),
        err(Errno::EINVAL)
    );
    let app = open(&s, "t", O_RDWR | O_APPEND);
    assert_eq!(s.call("splice", &[r, 0, app, 0, 4, 0]), err(Errno::EINVAL));
    let _ = w2;
}

#[test]
fn flock_conflicts_between_open_file_descriptions_only() {
    const LOCK_SH: u64 = 1;
    const LOCK_EX: u64 = 2;
    const LOCK_NB: u64 = 4;
    const LOCK_UN: u64 = 8;
    let s = Sys::new(BUF, 0x1000);
    let a = open(&s, "l", O_RDWR);
    let b = open(&s, "l", O_RDWR);
    let dup = s.call("dup", &[a]) as u64;
    assert_eq!(s.call("flock", &[a, LOCK_EX]), 0);
    assert_eq!(
        s.call("flock", &[dup, LOCK_EX | LOCK_NB]),
        0,
        "the same description"
    );
    assert_eq!(s.call("flock", &[b, LOCK_SH | LOCK_NB]), err(Errno::EAGAIN));
    assert_eq!(s.call("flock", &[a, LOCK_SH]), 0, "converted");
    assert_eq!(s.call("flock", &[b, LOCK_SH | LOCK_NB]), 0);
    assert_eq!(s.call("flock", &[b, LOCK_EX | LOCK_NB]), err(Errno::EAGAIN));
    // Closing every fd of a's description releases its lock.
    assert_eq!(s.call("close", &[a]), 0);
    assert_eq!(
        s.call("flock", &[b, LOCK_EX | LOCK_NB]),
        err(Errno::EAGAIN),
        "dup still holds it"
    );
    assert_eq!(s.call("close", &[dup]), 0);
    assert_eq!(s.call("flock", &[b, LOCK_EX | LOCK_NB]), 0);
    assert_eq!(s.call("flock", &[b, LOCK_UN]), 0);
    assert_eq!(s.call("flock", &[b, 0]), err(Errno::EINVAL));
    assert_eq!(s.call("flock", &[b, LOCK_SH | LOCK_EX]), err(Errno::EINVAL));
    assert_eq!(s.call("flock", &[99, LOCK_SH]), err(Errno::EBADF));
    let (r, _w) = pipe(&s);
    assert_eq!(s.call("flock", &[r, LOCK_EX | LOCK_NB]), 0);
}
