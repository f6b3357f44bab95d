//! The program's standard input, output and error as the host has them.
//!
//! `cloister run` tells the kernel on its command line which of the host's
//! fds 0–2 are terminals (`console.tty=`, e.g. `012`, `1` or `none`) and the
//! terminal's size (`console.size=ROWSxCOLS`); [`StdioConfig`] reads that.
//! fds 0–2 of the program are then [`StdStream`]s: a terminal answers
//! `TCGETS`/`TIOCGWINSZ` and cannot seek; anything else is a stream that
//! looks like a pipe (`S_IFIFO`, `ENOTTY`, `ESPIPE`), so `isatty`,
//! colour and buffering decisions come out as on the host.
//!
//! Output: fd 1 goes to the console's output stream (COM2), fd 2 to its
//! error stream (COM3), through the kernel's [`ConsoleSink`]. Input: the
//! host sends its stdin on COM2's receive side, framed by
//! [`StdinDecoder`]: bytes pass through except [`ESCAPE`], which is followed
//! by [`ESCAPE`] (a literal `0xff`), [`EOF_MARK`] (the host's stdin ended)
//! or [`INTERRUPT_MARK`] (Ctrl-C on the host's terminal). A read that finds
//! nothing yet answers `EAGAIN`, which the syscall layer turns into a wait
//! for a blocking fd.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;

use super::device::ConsoleSink;
use super::file::tty_request;
use super::{InodeType, Metadata};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::return_errno;

/// Starts a control pair in the input stream.
pub const ESCAPE: u8 = 0xff;
/// After [`ESCAPE`]: the host's stdin has ended.
pub const EOF_MARK: u8 = 0x00;
/// After [`ESCAPE`]: Ctrl-C on the host's terminal.
pub const INTERRUPT_MARK: u8 = 0x03;

const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_NONBLOCK: u32 = 0o4000;
const FIONREAD: u32 = 0x541b;

/// Which standard fds are terminals, and the terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdioConfig {
    /// fd 0, 1, 2: a terminal on the host.
    pub tty: [bool; 3],
    /// Rows and columns of the host's terminal.
    pub rows_cols: (u16, u16),
}

impl Default for StdioConfig {
    /// Three terminals of 24×80: what the console was before the host said.
    fn default() -> Self {
        Self {
            tty: [true; 3],
            rows_cols: (24, 80),
        }
    }
}

impl StdioConfig {
    /// From `console.tty=` (the digits of the terminal fds, or `none`) and
    /// `console.size=ROWSxCOLS`; an absent or malformed value keeps the
    /// default.
    pub fn from_args(tty: Option<&str>, size: Option<&str>) -> Self {
        let mut c = Self::default();
        if let Some(t) = tty {
            c.tty = [t.contains('0'), t.contains('1'), t.contains('2')];
        }
        if let Some((r, col)) = size.and_then(|s| s.split_once('x'))
            && let (Ok(r), Ok(col)) = (r.parse(), col.parse())
        {
            c.rows_cols = (r, col);
        }
        c
    }
}

/// Decodes the framed input stream (see the module docs).
#[derive(Debug, Default)]
pub struct StdinDecoder {
    data: VecDeque<u8>,
    escaped: bool,
    eof: bool,
    interrupts: u32,
}

impl StdinDecoder {
    /// Takes raw bytes from the line. Bytes after the end of input are
    /// dropped. Fails with `ENOMEM` (keeping what it had) if the buffer
    /// cannot grow.
    pub fn feed(&mut self, raw: &[u8]) -> Result<()> {
        self.data
            .try_reserve(raw.len())
            .map_err(|_| Errno::ENOMEM)?;
        for &b in raw {
            if self.eof {
                break;
            }
            match (self.escaped, b) {
                (false, ESCAPE) => self.escaped = true,
                (false, b) => self.data.push_back(b),
                (true, ESCAPE) => {
                    self.escaped = false;
                    self.data.push_back(ESCAPE);
                }
                (true, EOF_MARK) => {
                    self.escaped = false;
                    self.eof = true;
                }
                (true, INTERRUPT_MARK) => {
                    self.escaped = false;
                    self.interrupts = self.interrupts.saturating_add(1);
                }
                // An unknown control byte: ignored, as a newer host's.
                (true, _) => self.escaped = false,
            }
        }
        Ok(())
    }

    /// Moves decoded bytes into `buf`; returns the count.
    pub fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = self.data.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(self.data.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// Decoded bytes waiting.
    pub fn available(&self) -> usize {
        self.data.len()
    }

    /// Whether the host's stdin has ended (and everything before was read).
    pub fn at_eof(&self) -> bool {
        self.eof && self.data.is_empty()
    }

    /// Ctrl-C presses not yet delivered; resets the count.
    pub fn take_interrupts(&mut self) -> u32 {
        core::mem::take(&mut self.interrupts)
    }
}

/// The input side shared by every fd that reads the console.
pub struct ConsoleInput {
    sink: Arc<dyn ConsoleSink>,
    decoder: Mutex<StdinDecoder>,
}

impl core::fmt::Debug for ConsoleInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConsoleInput").finish_non_exhaustive()
    }
}

impl ConsoleInput {
    /// Input read from `sink`'s line.
    pub fn new(sink: Arc<dyn ConsoleSink>) -> Self {
        Self {
            sink,
            decoder: Mutex::new(StdinDecoder::default()),
        }
    }

    /// Pulls what the line holds into the decoder; returns it locked.
    fn pump(&self) -> spin::MutexGuard<'_, StdinDecoder> {
        let mut d = self.decoder.lock();
        let mut raw = [0u8; 256];
        loop {
            let n = self.sink.read_console_input(&mut raw);
            if n == 0 || d.feed(&raw[..n]).is_err() {
                break;
            }
        }
        d
    }

    /// Ctrl-C presses seen on the line since the last call (the kernel
    /// turns each into `SIGINT`). With `pump`, the line is read first;
    /// without, only what reads already took from it counts (no device
    /// access: cheap enough for the scheduler's checks).
    pub fn take_interrupts(&self, pump: bool) -> u32 {
        if pump {
            self.pump().take_interrupts()
        } else {
            self.decoder.lock().take_interrupts()
        }
    }
}

/// One of the program's fds 0–2.
#[derive(Debug)]
pub struct StdStream {
    fd: u8,
    tty: bool,
    rows_cols: (u16, u16),
    input: Arc<ConsoleInput>,
    flags: AtomicU32,
    ino: u64,
}

impl StdStream {
    /// The three streams for `config`, reading `input` and writing its
    /// sink.
    pub fn standard(config: &StdioConfig, input: Arc<ConsoleInput>) -> [Arc<StdStream>; 3] {
        core::array::from_fn(|fd| {
            Arc::new(StdStream {
                fd: fd as u8,
                tty: config.tty[fd],
                rows_cols: config.rows_cols,
                input: input.clone(),
                flags: AtomicU32::new(if fd == 0 { O_RDONLY } else { O_WRONLY }),
                // Distinct from pipes' and sockets' numbers (those start low).
                ino: 0xc0_0000 + fd as u64,
            })
        })
    }

    /// Whether this stream is a terminal on the host.
    pub fn is_tty(&self) -> bool {
        self.tty
    }
}

impl FileLike for StdStream {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if self.fd != 0 {
            return_errno!(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut d = self.input.pump();
        match d.take(buf) {
            0 if d.at_eof() => Ok(0),
            0 => return_errno!(Errno::EAGAIN),
            n => Ok(n),
        }
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        match self.fd {
            1 => self.input.sink.write_console(buf),
            2 => self.input.sink.write_console_err(buf),
            _ => return_errno!(Errno::EBADF),
        }
        Ok(buf.len())
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(if self.tty {
            let mut m = Metadata::unnamed(self.ino, InodeType::CharDevice, 0o620);
            m.rdev = (136, 0);
            m
        } else {
            Metadata::unnamed(self.ino, InodeType::Fifo, 0o600)
        })
    }

    fn poll(&self) -> PollEvents {
        if self.fd != 0 {
            return PollEvents::OUT | PollEvents::WRNORM;
        }
        let d = self.input.pump();
        if d.available() > 0 {
            PollEvents::IN | PollEvents::RDNORM
        } else if d.at_eof() {
            PollEvents::IN | PollEvents::HUP
        } else {
            PollEvents::empty()
        }
    }

    fn ioctl(&self, cmd: u32, _arg: u64) -> Result<IoctlReply> {
        if cmd == FIONREAD && self.fd == 0 {
            let n = self.input.pump().available() as i32;
            return Ok(IoctlReply {
                out: n.to_le_bytes().to_vec(),
                ret: 0,
            });
        }
        if !self.tty {
            return_errno!(Errno::ENOTTY);
        }
        tty_request(cmd, self.rows_cols)
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        let old = self.flags.load(Ordering::Relaxed);
        self.flags.store(
            (old & !O_NONBLOCK) | (flags & O_NONBLOCK),
            Ordering::Relaxed,
        );
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::file::tty_ioctl;
    use alloc::vec;

    #[test]
    fn config_from_the_command_line() {
        let c = StdioConfig::from_args(Some("1"), Some("50x132"));
        assert_eq!(c.tty, [false, true, false]);
        assert_eq!(c.rows_cols, (50, 132));
        let none = StdioConfig::from_args(Some("none"), None);
        assert_eq!(none.tty, [false; 3]);
        assert_eq!(none.rows_cols, (24, 80));
        assert_eq!(
            StdioConfig::from_args(None, Some("junk")),
            StdioConfig::default()
        );
    }

    #[test]
    fn the_decoder_unescapes_and_sees_the_end_and_interrupts() {
        let mut d = StdinDecoder::default();
        d.feed(&[b'a', ESCAPE, ESCAPE, b'b', ESCAPE]).unwrap();
        // The escape's partner arrives in the next chunk.
        d.feed(&[INTERRUPT_MARK, b'c', ESCAPE, 0x42, b'd']).unwrap();
        let mut buf = [0u8; 16];
        let n = d.take(&mut buf);
        assert_eq!(&buf[..n], &[b'a', 0xff, b'b', b'c', b'd']);
        assert_eq!(d.take_interrupts(), 1);
        assert_eq!(d.take_interrupts(), 0);
        assert!(!d.at_eof());
        d.feed(&[b'e', ESCAPE, EOF_MARK, b'f']).unwrap();
        assert!(!d.at_eof(), "data before the end is read first");
        assert_eq!(d.take(&mut buf), 1);
        assert!(d.at_eof());
    }

    /// A line holding `raw`, recording what is written.
    struct Line {
        raw: Mutex<Vec<u8>>,
        out: Mutex<Vec<(u8, Vec<u8>)>>,
    }

    impl ConsoleSink for Line {
        fn write_console(&self, bytes: &[u8]) {
            self.out.lock().push((1, bytes.to_vec()));
        }
        fn write_console_err(&self, bytes: &[u8]) {
            self.out.lock().push((2, bytes.to_vec()));
        }
        fn read_console_input(&self, buf: &mut [u8]) -> usize {
            let mut raw = self.raw.lock();
            let n = raw.len().min(buf.len());
            buf[..n].copy_from_slice(&raw[..n]);
            raw.drain(..n);
            n
        }
    }

    fn streams(tty: &str, raw: &[u8]) -> (Arc<Line>, [Arc<StdStream>; 3]) {
        let line = Arc::new(Line {
            raw: Mutex::new(raw.to_vec()),
            out: Mutex::new(Vec::new()),
        });
        let input = Arc::new(ConsoleInput::new(line.clone()));
        let s = StdStream::standard(&StdioConfig::from_args(Some(tty), Some("30x100")), input);
        (line, s)
    }

    #[test]
    fn pipes_are_not_terminals_and_terminals_are() {
        let (_, [i, o, e]) = streams("1", b"");
        assert_eq!(
            i.ioctl(tty_ioctl::TCGETS, 0).unwrap_err().errno(),
            Errno::ENOTTY
        );
        assert_eq!(i.metadata().unwrap().file_type, InodeType::Fifo);
        assert_eq!(o.metadata().unwrap().file_type, InodeType::CharDevice);
        assert_eq!(o.ioctl(tty_ioctl::TCGETS, 0).unwrap().out.len(), 36);
        let ws = o.ioctl(tty_ioctl::TIOCGWINSZ, 0).unwrap().out;
        assert_eq!(&ws[..4], &[30, 0, 100, 0]);
        assert_eq!(
            e.ioctl(tty_ioctl::TIOCGWINSZ, 0).unwrap_err().errno(),
            Errno::ENOTTY
        );
        i.set_status_flags(O_NONBLOCK).unwrap();
        assert_eq!(i.status_flags() & O_NONBLOCK, O_NONBLOCK);
    }

    #[test]
    fn stdout_and_stderr_stay_apart() {
        let (line, [_, o, e]) = streams("none", b"");
        o.write(b"out").unwrap();
        e.write(b"err").unwrap();
        assert_eq!(
            *line.out.lock(),
            vec![(1, b"out".to_vec()), (2, b"err".to_vec())]
        );
        assert_eq!(o.read(&mut [0u8; 4]).unwrap_err().errno(), Errno::EBADF);
    }

    #[test]
    fn stdin_reads_data_waits_then_ends() {
        let (line, [i, _, _]) = streams("none", b"ab");
        let mut buf = [0u8; 8];
        assert_eq!(i.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(i.read(&mut buf).unwrap_err().errno(), Errno::EAGAIN);
        assert_eq!(i.poll(), PollEvents::empty());
        line.raw.lock().extend_from_slice(&[b'c', ESCAPE, EOF_MARK]);
        assert_eq!(i.poll(), PollEvents::IN | PollEvents::RDNORM);
        assert_eq!(i.ioctl(FIONREAD, 0).unwrap().out, 1i32.to_le_bytes());
        assert_eq!(i.read(&mut buf).unwrap(), 1);
        assert_eq!(i.read(&mut buf).unwrap(), 0, "end of file");
        assert!(i.poll().contains(PollEvents::HUP));
        assert_eq!(i.write(b"x").unwrap_err().errno(), Errno::EBADF);
    }
}
