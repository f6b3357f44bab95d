//! Pseudo-terminals through the system calls a program makes.

use alloc::vec::Vec;

use super::request::*;
use crate::error::Errno;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const MEM: u64 = 0x40000;
const O_RDWR: u64 = 2;
const O_NONBLOCK: u64 = 0o4000;

struct H(Sys);

impl H {
    fn new() -> Self {
        Self(Sys::new(MEM, 64 * 1024))
    }
    fn put(&self, at: u64, bytes: &[u8]) -> u64 {
        self.0.m.write_user(MEM + at, bytes).unwrap();
        MEM + at
    }
    fn get(&self, at: u64, len: usize) -> Vec<u8> {
        let mut v = alloc::vec![0; len];
        self.0.m.read_user(MEM + at, &mut v).unwrap();
        v
    }
    fn call(&self, name: &str, args: &[u64]) -> i64 {
        self.0.call(name, args)
    }
    fn open(&self, path: &str, flags: u64) -> i64 {
        let p = self.put(0x100, &[path.as_bytes(), b"\0"].concat());
        self.call("open", &[p, flags, 0])
    }
    fn write(&self, fd: i64, bytes: &[u8]) -> i64 {
        let p = self.put(0x1000, bytes);
        self.call("write", &[fd as u64, p, bytes.len() as u64])
    }
    /// Reads up to 256 bytes: the bytes, or the negative errno.
    fn read(&self, fd: i64) -> Result<Vec<u8>, i64> {
        let r = self.call("read", &[fd as u64, MEM + 0x2000, 256]);
        if r < 0 {
            return Err(r);
        }
        Ok(self.get(0x2000, r as usize))
    }
    fn ioctl_int(&self, fd: i64, cmd: u32, value: i32) -> i64 {
        let p = self.put(0x300, &value.to_le_bytes());
        self.call("ioctl", &[fd as u64, u64::from(cmd), p])
    }
    fn ioctl_get(&self, fd: i64, cmd: u32, len: usize) -> Vec<u8> {
        assert_eq!(
            self.call("ioctl", &[fd as u64, u64::from(cmd), MEM + 0x400]),
            0
        );
        self.get(0x400, len)
    }
    /// A new pair, unlocked: (master, slave, n).
    fn pair(&self) -> (i64, i64, u32) {
        let m = self.open("/dev/ptmx", O_RDWR | O_NONBLOCK);
        assert!(m >= 0, "open /dev/ptmx: {m}");
        let n = u32::from_le_bytes(self.ioctl_get(m, TIOCGPTN, 4).try_into().unwrap());
        let path = alloc::format!("/dev/pts/{n}");
        assert_eq!(self.open(&path, O_RDWR), err(Errno::EIO), "locked at first");
        assert_eq!(self.ioctl_int(m, TIOCSPTLCK, 0), 0);
        let s = self.open(&path, O_RDWR | O_NONBLOCK);
        assert!(s >= 0, "open {path}: {s}");
        (m, s, n)
    }
}

#[test]
fn a_pair_carries_lines_both_ways_through_the_line_discipline() {
    let h = H::new();
    let (m, s, n) = h.pair();
    // Nothing yet: EAGAIN on both sides.
    assert_eq!(h.read(m), Err(err(Errno::EAGAIN)));
    assert_eq!(h.read(s), Err(err(Errno::EAGAIN)));
    // Slave output: \n becomes \r\n (OPOST|ONLCR).
    assert_eq!(h.write(s, b"I wish to buy a fish license.\n"), 30);
    assert_eq!(h.read(m).unwrap(), b"I wish to buy a fish license.\r\n");
    // Master input, canonical: echoed, not readable until the line ends,
    // \r read as \n (ICRNL), VERASE (DEL) edits the line.
    assert_eq!(h.write(m, b"helo\x7fp"), 6);
    assert_eq!(h.read(s), Err(err(Errno::EAGAIN)));
    assert_eq!(h.write(m, b"!\r"), 2);
    assert_eq!(h.read(s).unwrap(), b"help!\n");
    assert_eq!(h.read(m).unwrap(), b"helo\x08 \x08p!\r\n");
    // One line per read; VEOF at a line's start reads as end of file.
    assert_eq!(h.write(m, b"a\nb\n\x04"), 5);
    assert_eq!(h.read(s).unwrap(), b"a\n");
    assert_eq!(h.read(s).unwrap(), b"b\n");
    assert_eq!(h.read(s).unwrap(), b"");
    assert_eq!(h.read(m).unwrap(), b"a\r\nb\r\n", "echoed, not the VEOF");
    // FIONREAD counts what the other side wrote.
    h.write(s, b"xyz");
    assert_eq!(h.ioctl_get(m, FIONREAD, 4), 3i32.to_le_bytes());
    // The slave's node is a character device (136, n).
    let path = h.put(0x500, alloc::format!("/dev/pts/{n}\0").as_bytes());
    assert_eq!(h.call("stat", &[path, MEM + 0x600]), 0);
    let mode = u32::from_le_bytes(h.get(0x600 + 24, 4).try_into().unwrap());
    assert_eq!(mode & 0o170000, 0o020000);
    let rdev = u64::from_le_bytes(h.get(0x600 + 40, 8).try_into().unwrap());
    assert_eq!(rdev >> 8 & 0xfff, 136);
}

#[test]
fn raw_mode_settings_and_window_size_are_shared() {
    let h = H::new();
    let (m, s, _) = h.pair();
    let mut t = h.ioctl_get(s, TCGETS, 36);
    assert_eq!(h.ioctl_get(m, TCGETS, 36), t, "one set of settings");
    // cfmakeraw-like: no ICANON, ECHO, OPOST.
    let lflag = u32::from_le_bytes(t[12..16].try_into().unwrap()) & !0o12;
    t[12..16].copy_from_slice(&lflag.to_le_bytes());
    t[4..8].copy_from_slice(&0u32.to_le_bytes());
    let p = h.put(0x700, &t);
    assert_eq!(h.call("ioctl", &[s as u64, u64::from(TCSETS), p]), 0);
    assert_eq!(h.ioctl_get(m, TCGETS, 36), t);
    assert_eq!(h.write(m, b"ab"), 2);
    assert_eq!(h.read(s).unwrap(), b"ab", "raw: no line needed");
    assert_eq!(h.read(m), Err(err(Errno::EAGAIN)), "no echo");
    h.write(s, b"x\n");
    assert_eq!(h.read(m).unwrap(), b"x\n", "no output processing");
    let ws = h.put(0x800, &[24, 0, 80, 0, 0, 0, 0, 0]);
    assert_eq!(h.call("ioctl", &[m as u64, u64::from(TIOCSWINSZ), ws]), 0);
    assert_eq!(h.ioctl_get(s, TIOCGWINSZ, 8), [24, 0, 80, 0, 0, 0, 0, 0]);
    // A regular file is no terminal.
    let f = h.open("/f", 0o100 | O_RDWR);
    assert_eq!(
        h.call("ioctl", &[f as u64, u64::from(TCSETS), 0]),
        err(Errno::ENOTTY)
    );
}

#[test]
fn hang_ups_and_peers() {
    let h = H::new();
    let (m, s, n) = h.pair();
    // TIOCGPTPEER opens another slave; closing all slaves makes the
    // master's read EIO.
    let peer = h.call("ioctl", &[m as u64, u64::from(TIOCGPTPEER), O_RDWR]);
    assert!(peer >= 0);
    assert_eq!(h.call("close", &[s as u64]), 0);
    assert_eq!(h.read(m), Err(err(Errno::EAGAIN)));
    assert_eq!(h.call("close", &[peer as u64]), 0);
    assert_eq!(h.read(m), Err(err(Errno::EIO)));
    // A slave outliving its master reads end of file and cannot write;
    // the node goes with the master.
    let (m2, s2, n2) = h.pair();
    assert_ne!(n, n2);
    assert_eq!(h.call("close", &[m2 as u64]), 0);
    assert_eq!(h.read(s2).unwrap(), b"");
    assert_eq!(h.write(s2, b"x"), err(Errno::EIO));
    let gone = alloc::format!("/dev/pts/{n2}");
    assert_eq!(h.open(&gone, O_RDWR), err(Errno::ENOENT));
    assert_eq!(
        h.call("ioctl", &[s2 as u64, u64::from(TIOCGPTPEER), O_RDWR]),
        err(Errno::EINVAL)
    );
    let _ = m;
}
