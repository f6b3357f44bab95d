//! The line discipline between a pseudo-terminal's two sides (Linux's
//! `n_tty`, the parts programs rely on): the terminal settings
//! ([`Termios`], the kernel's 36-byte `struct termios`), input from the
//! master processed for the slave (`ICRNL`/`INLCR`/`IGNCR`; in canonical
//! mode lines edited with `VERASE` and `VKILL` and delivered whole, `VEOF`
//! ending a line or reading as end of file; `ECHO`/`ECHONL` back to the
//! master), and output from the slave processed for the master
//! (`OPOST`+`ONLCR`: `\n` becomes `\r\n`).
//!
//! Not done: `ISIG` (the `VINTR`/`VQUIT`/`VSUSP` characters are input
//! like any other, no signal is sent), `VMIN`/`VTIME` (a non-canonical
//! read returns what is there, at least one byte), flow control
//! (`IXON`), `ECHOCTL`'s `^X` forms.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes of `struct termios` as the kernel's `TCGETS` copies it.
pub const TERMIOS_BYTES: usize = 36;
/// Most bytes waiting for the slave to read (Linux's `N_TTY_BUF_SIZE`).
pub const INPUT_MAX: usize = 4096;

/// `c_iflag` bits.
pub mod iflag {
    /// Translate `\r` to `\n` on input.
    pub const ICRNL: u32 = 0o400;
    /// Translate `\n` to `\r` on input.
    pub const INLCR: u32 = 0o100;
    /// Drop `\r` on input.
    pub const IGNCR: u32 = 0o200;
}
/// `c_oflag` bits.
pub mod oflag {
    /// Output processing.
    pub const OPOST: u32 = 0o1;
    /// `\n` becomes `\r\n` on output.
    pub const ONLCR: u32 = 0o4;
}
/// `c_lflag` bits.
pub mod lflag {
    /// Canonical (line) mode.
    pub const ICANON: u32 = 0o2;
    /// Echo input.
    pub const ECHO: u32 = 0o10;
    /// `VERASE` erases the character on the screen.
    pub const ECHOE: u32 = 0o20;
    /// Echo `\n` even without `ECHO`.
    pub const ECHONL: u32 = 0o100;
}
/// `c_cc` indices.
mod cc {
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VEOL: usize = 11;
    pub const VEOL2: usize = 16;
}
/// Offset of `c_cc` in the structure (four flag words and `c_line`).
const CC_OFFSET: usize = 17;

/// A terminal's settings, in the kernel's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios(pub [u8; TERMIOS_BYTES]);

impl Default for Termios {
    /// Linux's defaults for a new pseudo-terminal (`tty_std_termios`):
    /// `ICRNL|IXON`, `OPOST|ONLCR`, `B38400|CS8|CREAD|HUPCL`,
    /// `ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN`.
    fn default() -> Self {
        let bytes: [u8; TERMIOS_BYTES] = crate::fs::file::console_termios()
            .try_into()
            .unwrap_or([0; TERMIOS_BYTES]);
        Self(bytes)
    }
}

impl Termios {
    fn word(&self, i: usize) -> u32 {
        let b = &self.0[i * 4..i * 4 + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    /// `c_iflag`
    pub fn iflag(&self) -> u32 {
        self.word(0)
    }
    /// `c_oflag`
    pub fn oflag(&self) -> u32 {
        self.word(1)
    }
    /// `c_lflag`
    pub fn lflag(&self) -> u32 {
        self.word(3)
    }
    /// Control character `i` (`None` when disabled, `_POSIX_VDISABLE` 0).
    fn cc(&self, i: usize) -> Option<u8> {
        self.0.get(CC_OFFSET + i).copied().filter(|&c| c != 0)
    }
    /// Canonical mode.
    pub fn canonical(&self) -> bool {
        self.lflag() & lflag::ICANON != 0
    }
}

/// The input side: what the master wrote, processed, waiting for the
/// slave. In canonical mode a read returns at most one line; an empty line
/// (a `VEOF` at the start of a line) reads as end of file.
#[derive(Debug, Default)]
pub struct Input {
    /// Whole lines (canonical) or runs of bytes (raw), in order.
    ready: VecDeque<Vec<u8>>,
    /// Bytes in `ready`.
    ready_bytes: usize,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
}

impl Input {
    /// Whether a read would return now (data or an end of file).
    pub fn readable(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Bytes a read could return (`FIONREAD`).
    pub fn available(&self) -> usize {
        self.ready_bytes
    }

    /// Room for more input.
    pub fn room(&self) -> usize {
        INPUT_MAX.saturating_sub(self.ready_bytes + self.line.len())
    }

    /// Processes `bytes` the master wrote under `t`; returns how many were
    /// taken (fewer when the input is full) and appends what is echoed to
    /// `echo` (before output processing).
    pub fn write(&mut self, t: &Termios, bytes: &[u8], echo: &mut Vec<u8>) -> usize {
        let (iflags, lflags) = (t.iflag(), t.lflag());
        let echoing = lflags & lflag::ECHO != 0;
        let mut taken = 0;
        // Raw input is delivered as one run per write.
        let mut raw = Vec::new();
        for &b in bytes {
            if self.room() <= raw.len() {
                break;
            }
            taken += 1;
            let c = match b {
                b'\r' if iflags & iflag::IGNCR != 0 => continue,
                b'\r' if iflags & iflag::ICRNL != 0 => b'\n',
                b'\n' if iflags & iflag::INLCR != 0 => b'\r',
                c => c,
            };
            if !t.canonical() {
                raw.push(c);
                if echoing {
                    echo.push(c);
                }
                continue;
            }
            if Some(c) == t.cc(cc::VERASE) {
                if self.line.pop().is_some() && echoing && lflags & lflag::ECHOE != 0 {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                continue;
            }
            if Some(c) == t.cc(cc::VKILL) {
                self.line.clear();
                if echoing {
                    echo.push(b'\n');
                }
                continue;
            }
            if Some(c) == t.cc(cc::VEOF) {
                // Ends the line without itself; at a line's start, an end
                // of file for the reader.
                let line = core::mem::take(&mut self.line);
                self.push(line);
                continue;
            }
            self.line.push(c);
            if echoing || (c == b'\n' && lflags & lflag::ECHONL != 0) {
                echo.push(c);
            }
            if c == b'\n' || Some(c) == t.cc(cc::VEOL) || Some(c) == t.cc(cc::VEOL2) {
                let line = core::mem::take(&mut self.line);
                self.push(line);
            }
        }
        if !raw.is_empty() {
            self.push(raw);
        }
        taken
    }

    fn push(&mut self, chunk: Vec<u8>) {
        self.ready_bytes += chunk.len();
        self.ready.push_back(chunk);
    }

    /// Reads into `buf` under `t`: canonical, at most one line (0 for an
    /// end-of-file mark); raw, everything there up to `buf`'s size. `None`
    /// when nothing is ready.
    pub fn read(&mut self, t: &Termios, buf: &mut [u8]) -> Option<usize> {
        if t.canonical() {
            let first = self.ready.front_mut()?;
            let n = first.len().min(buf.len());
            buf[..n].copy_from_slice(&first[..n]);
            first.drain(..n);
            if first.is_empty() {
                self.ready.pop_front();
            }
            self.ready_bytes -= n;
            return Some(n);
        }
        let mut n = 0;
        while n < buf.len() {
            let Some(first) = self.ready.front_mut() else {
                break;
            };
            let k = first.len().min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&first[..k]);
            first.drain(..k);
            n += k;
            self.ready_bytes -= k;
            if first.is_empty() {
                self.ready.pop_front();
            }
        }
        (n > 0).then_some(n)
    }

    /// Leaving canonical mode: the partial line becomes readable.
    pub fn flush_line(&mut self) {
        if !self.line.is_empty() {
            let line = core::mem::take(&mut self.line);
            self.push(line);
        }
    }

    /// `TCFLSH`/`TCSETSF`: discards all pending input.
    pub fn discard(&mut self) {
        self.ready.clear();
        self.ready_bytes = 0;
        self.line.clear();
    }
}

/// Output processing of what the slave writes (or what is echoed), under
/// `t`, appended to `out`.
pub fn output(t: &Termios, bytes: &[u8], out: &mut VecDeque<u8>) {
    let onlcr = t.oflag() & (oflag::OPOST | oflag::ONLCR) == oflag::OPOST | oflag::ONLCR;
    if !onlcr {
        out.extend(bytes);
        return;
    }
    for &b in bytes {
        if b == b'\n' {
            out.push_back(b'\r');
        }
        out.push_back(b);
    }
}
