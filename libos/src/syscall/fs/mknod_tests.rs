//! `mknod`/`mknodat` and what they make: FIFOs (opened with Linux's
//! waiting rules), socket and device nodes; `/dev/tty` without a
//! controlling terminal; `FIONREAD`, `FIONBIO`, `FIOCLEX` and `fstat` on
//! every kind of fd.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::error::Errno;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const BUF: u64 = 0x20_0000;
const O_RDONLY: u64 = 0;
const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_NONBLOCK: u64 = 0o4000;
const S_IFIFO: u64 = 0o010000;
const S_IFCHR: u64 = 0o020000;
const S_IFSOCK: u64 = 0o140000;
const AT_FDCWD: u64 = -100i64 as u64;
const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const FIOCLEX: u64 = 0x5451;
const FIONCLEX: u64 = 0x5450;

fn h() -> Sys {
    Sys::new(BUF, 0x4000)
}

impl Sys {
    fn text(&self, at: u64, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.m.write_user(at, &b).unwrap();
        at
    }

    fn word(&self, at: u64) -> u32 {
        let mut b = [0u8; 4];
        self.m.read_user(at, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    /// `st_mode` and `st_ino` of `path`.
    fn stat_of(&self, path: u64) -> (u32, u64) {
        assert_eq!(self.call("stat", &[path, BUF + 0x800]), 0);
        let mut st = [0u8; 144];
        self.m.read_user(BUF + 0x800, &mut st).unwrap();
        let ino = u64::from_le_bytes(st[8..16].try_into().unwrap());
        (u32::from_le_bytes(st[24..28].try_into().unwrap()), ino)
    }

    /// `st_mode` and `st_ino` of `fd` through glibc's `fstat`.
    fn fstat_of(&self, fd: u64) -> (u32, u64) {
        let empty = self.text(BUF + 0x7f0, "");
        assert_eq!(
            self.call("newfstatat", &[fd, empty, BUF + 0x800, 0x1000]),
            0
        );
        let mut st = [0u8; 144];
        self.m.read_user(BUF + 0x800, &mut st).unwrap();
        let ino = u64::from_le_bytes(st[8..16].try_into().unwrap());
        (u32::from_le_bytes(st[24..28].try_into().unwrap()), ino)
    }

    /// `FIONREAD` on `fd`: the count, or the error.
    fn fionread(&self, fd: u64) -> i64 {
        match self.call("ioctl", &[fd, FIONREAD, BUF + 0x900]) {
            0 => i64::from(self.word(BUF + 0x900) as i32),
            e => e,
        }
    }
}

#[test]
fn mkfifo_makes_a_fifo_whose_ends_share_data() {
    let h = h();
    assert_eq!(h.call("umask", &[0o022]), 0o022);
    let path = h.text(BUF, "/tmp-fifo");
    assert_eq!(h.call("mknodat", &[AT_FDCWD, path, S_IFIFO | 0o666, 0]), 0);
    let (mode, ino) = h.stat_of(path);
    assert_eq!(mode, 0o010644, "S_IFIFO, umask applied");
    assert_eq!(
        h.call("mknod", &[path, S_IFIFO | 0o600, 0]),
        err(Errno::EEXIST)
    );
    // No reader yet: a non-blocking writer is refused, a non-blocking
    // reader is not.
    assert_eq!(
        h.call("open", &[path, O_WRONLY | O_NONBLOCK, 0]),
        err(Errno::ENXIO)
    );
    let r = h.call("open", &[path, O_RDONLY | O_NONBLOCK, 0]) as u64;
    let w = h.call("open", &[path, O_WRONLY | O_NONBLOCK, 0]) as u64;
    assert_eq!((r, w), (0, 1));
    let data = h.text(BUF + 0x100, "through the fifo");
    assert_eq!(h.call("write", &[w, data, 16]), 16);
    assert_eq!(h.fionread(r), 16);
    assert_eq!(h.call("read", &[r, BUF + 0x200, 64]), 16);
    let mut got = [0u8; 16];
    h.m.read_user(BUF + 0x200, &mut got).unwrap();
    assert_eq!(&got, b"through the fifo");
    assert_eq!(h.call("read", &[r, BUF + 0x200, 64]), err(Errno::EAGAIN));
    // fstat of an end is the FIFO's inode; seeking is not possible.
    assert_eq!(h.fstat_of(r), (0o010644, ino));
    assert_eq!(h.call("lseek", &[r, 0, 0]), err(Errno::ESPIPE));
    // The last writer gone: end of file; data left when every end closed
    // is gone at the next open.
    assert_eq!(h.call("close", &[w]), 0);
    assert_eq!(h.call("read", &[r, BUF + 0x200, 64]), 0);
    let rw = h.call("open", &[path, O_RDWR, 0]) as u64;
    assert_eq!(h.call("write", &[rw, data, 5]), 5);
    assert_eq!(h.call("close", &[rw]), 0);
    assert_eq!(h.call("close", &[r]), 0);
    let rw = h.call("open", &[path, O_RDWR, 0]) as u64;
    assert_eq!(h.fionread(rw), 0, "a FIFO nobody has open holds nothing");
    // O_RDWR reads and writes without waiting for anybody.
    assert_eq!(h.call("write", &[rw, data, 7]), 7);
    assert_eq!(h.call("read", &[rw, BUF + 0x200, 64]), 7);
    assert_eq!(h.call("unlink", &[path]), 0);
    assert_eq!(
        h.call("write", &[rw, data, 3]),
        3,
        "an unlinked FIFO works on"
    );
}

#[test]
fn a_fifo_opener_waits_for_the_other_side() {
    let h = Arc::new(h());
    let path = h.text(BUF, "/fifo");
    assert_eq!(h.call("mknod", &[path, S_IFIFO | 0o600, 0]), 0);
    // A signal ends the wait: EINTR, and the would-be reader is gone.
    h.m.interrupt_next_wait_after(1_000);
    assert_eq!(h.call("open", &[path, O_RDONLY, 0]), err(Errno::EINTR));
    assert_eq!(
        h.call("open", &[path, O_WRONLY | O_NONBLOCK, 0]),
        err(Errno::ENXIO)
    );
    // A blocking reader returns once a writer has opened.
    let writer = {
        let h = h.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            h.call("open", &[BUF, O_WRONLY, 0])
        })
    };
    h.m.set_block_spins(u64::MAX);
    let r = h.call("open", &[path, O_RDONLY, 0]);
    let w = writer.join().unwrap();
    assert!(r >= 0 && w >= 0, "{r} {w}");
    // And a blocking writer once a reader has.
    assert_eq!(h.call("close", &[r as u64]), 0);
    assert_eq!(h.call("close", &[w as u64]), 0);
    let reader = {
        let h = h.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            h.call("open", &[BUF, O_RDONLY, 0])
        })
    };
    let w = h.call("open", &[path, O_WRONLY, 0]);
    let r = reader.join().unwrap();
    assert!(r >= 0 && w >= 0, "{r} {w}");
}

#[test]
fn mknod_makes_files_and_nodes_and_refuses_the_rest() {
    let h = h();
    let file = h.text(BUF, "/plain");
    assert_eq!(h.call("mknod", &[file, 0o640, 0]), 0, "type 0: regular");
    assert_eq!(h.stat_of(file).0, 0o100640);
    let dir = h.text(BUF + 0x40, "/d");
    assert_eq!(
        h.call("mknod", &[dir, 0o040755, 0]),
        err(Errno::EPERM),
        "directories need mkdir"
    );
    assert_eq!(h.call("mknod", &[dir, 0o060600, 0x801]), err(Errno::EPERM));
    assert_eq!(h.call("mknod", &[dir, 0o170600, 0]), err(Errno::EINVAL));
    let missing = h.text(BUF + 0x80, "/no/such/fifo");
    assert_eq!(
        h.call("mknod", &[missing, S_IFIFO | 0o600, 0]),
        err(Errno::ENOENT)
    );
    // 1:3 is /dev/null here too.
    let null = h.text(BUF + 0xc0, "/my-null");
    assert_eq!(h.call("mknod", &[null, S_IFCHR | 0o666, 0x103]), 0);
    let (mode, _) = h.stat_of(null);
    assert_eq!(mode, 0o020644, "umask applied");
    let fd = h.call("open", &[null, O_RDWR, 0]) as u64;
    assert_eq!(h.call("write", &[fd, BUF, 4]), 4);
    assert_eq!(h.call("read", &[fd, BUF + 0x100, 4]), 0);
    // A number nothing drives: the node exists, opening it is ENXIO.
    let odd = h.text(BUF + 0x100, "/odd");
    assert_eq!(h.call("mknod", &[odd, S_IFCHR | 0o600, 0x6301]), 0);
    assert_eq!(h.call("stat", &[odd, BUF + 0x800]), 0);
    let mut st = [0u8; 144];
    h.m.read_user(BUF + 0x800, &mut st).unwrap();
    let rdev = u64::from_le_bytes(st[40..48].try_into().unwrap());
    assert_eq!(rdev, 0x6301, "st_rdev 99:1");
    assert_eq!(h.call("open", &[odd, O_RDWR, 0]), err(Errno::ENXIO));
    // A socket node: S_IFSOCK, and it does not open.
    let sock = h.text(BUF + 0x140, "/sock");
    assert_eq!(h.call("mknod", &[sock, S_IFSOCK | 0o755, 0]), 0);
    assert_eq!(h.stat_of(sock).0, 0o140755);
    assert_eq!(h.call("open", &[sock, O_RDONLY, 0]), err(Errno::ENXIO));
    assert!(
        h.call("open", &[sock, 0o10000000, 0]) >= 0,
        "O_PATH opens it"
    );
}

#[test]
fn dev_tty_exists_but_there_is_no_controlling_terminal() {
    let h = h();
    let tty = h.text(BUF, "/dev/tty");
    assert_eq!(h.stat_of(tty).0, 0o020666);
    assert_eq!(h.call("open", &[tty, O_RDWR, 0]), err(Errno::ENXIO));
    // Pseudo-terminals exist (fs::pty::tests): /dev/ptmx opens a master.
    let ptmx = h.text(BUF + 0x40, "/dev/ptmx");
    assert!(h.call("open", &[ptmx, O_RDWR, 0]) >= 0);
}

#[test]
fn generic_ioctls_and_fstat_work_on_every_kind_of_fd() {
    let h = h();
    // A pipe, an eventfd, an epoll instance, a socket, a file, a directory.
    assert_eq!(h.call("pipe2", &[BUF, 0]), 0);
    let (r, w) = (u64::from(h.word(BUF)), u64::from(h.word(BUF + 4)));
    let efd = h.call("eventfd2", &[0, 0]) as u64;
    let ep = h.call("epoll_create1", &[0]) as u64;
    let sock = h.call("socket", &[2, 1, 0]) as u64;
    let path = h.text(BUF + 0x40, "/f");
    let file = h.call("open", &[path, 0o102, 0o644]) as u64;
    let root = h.text(BUF + 0x80, "/");
    let dir = h.call("open", &[root, 0o200000, 0]) as u64;
    let all: Vec<u64> = [r, w, efd, ep, sock, file, dir].to_vec();
    assert!(all.iter().all(|&fd| (fd as i64) >= 0), "{all:?}");
    h.m.write_user(BUF + 0x10, &1i32.to_le_bytes()).unwrap();
    h.m.write_user(BUF + 0x14, &0i32.to_le_bytes()).unwrap();
    for &fd in &all {
        // FIONBIO sets and clears O_NONBLOCK, visible through F_GETFL.
        assert_eq!(h.call("ioctl", &[fd, FIONBIO, BUF + 0x10]), 0, "fd {fd}");
        assert_ne!(
            h.call("fcntl", &[fd, 3, 0]) as u64 & O_NONBLOCK,
            0,
            "fd {fd}"
        );
        assert_eq!(h.call("ioctl", &[fd, FIONBIO, BUF + 0x14]), 0);
        assert_eq!(
            h.call("fcntl", &[fd, 3, 0]) as u64 & O_NONBLOCK,
            0,
            "fd {fd}"
        );
        // F_SETFL does the same.
        let flags = h.call("fcntl", &[fd, 3, 0]) as u64;
        assert_eq!(h.call("fcntl", &[fd, 4, flags | O_NONBLOCK]), 0);
        assert_ne!(
            h.call("fcntl", &[fd, 3, 0]) as u64 & O_NONBLOCK,
            0,
            "fd {fd}"
        );
        // FIOCLEX / FIONCLEX: the close-on-exec flag.
        assert_eq!(h.call("ioctl", &[fd, FIOCLEX, 0]), 0);
        assert_eq!(h.call("fcntl", &[fd, 1, 0]), 1, "fd {fd}");
        assert_eq!(h.call("ioctl", &[fd, FIONCLEX, 0]), 0);
        assert_eq!(h.call("fcntl", &[fd, 1, 0]), 0, "fd {fd}");
        // glibc's fstat works on all of them.
        let _ = h.fstat_of(fd);
    }
    // FIONREAD: queued bytes of a pipe, bytes left to read in a file, 0 on
    // an idle socket; not a question for eventfds, epoll or directories.
    let data = h.text(BUF + 0x100, "0123456789");
    assert_eq!(h.call("write", &[w, data, 10]), 10);
    assert_eq!(h.fionread(r), 10);
    assert_eq!(h.call("write", &[file, data, 10]), 10);
    assert_eq!(h.call("lseek", &[file, 4, 0]), 4);
    assert_eq!(h.fionread(file), 6);
    assert_eq!(h.fionread(sock), 0);
    for fd in [efd, ep, dir] {
        assert_eq!(h.fionread(fd), err(Errno::ENOTTY), "fd {fd}");
    }
    assert_eq!(h.fstat_of(r).0 & 0o170000, 0o010000);
    assert_eq!(h.fstat_of(sock).0 & 0o170000, 0o140000);
    assert_eq!(h.fstat_of(efd).0 & 0o170000, 0, "anonymous inode");
}
