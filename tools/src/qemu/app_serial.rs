//! The program's console lines when `cloister run` boots one: COM2 (I/O
//! port 0x2f8, IRQ 3) carries its stdout to the host and its stdin to the
//! guest, COM3 (0x3e8) its stderr.
//!
//! Input is framed as `libos::fs::stdio` decodes it: every byte as is,
//! except 0xff, sent twice; the end of the host's input as 0xff 0x00
//! ([`encode_input`]).
//!
//! QEMU's `microvm` machine with `-nodefaults` has one UART; a second
//! `-serial` does not create COM2 there, so the port is an explicit
//! `isa-serial` device. Its chardev is a Unix socket on which QEMU listens
//! and *waits* (`server=on,wait=on`): QEMU does not start the guest until
//! the runner has connected, so no early byte is lost, and the socket closes
//! when QEMU exits, so the reader sees every byte up to EOF.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Message;

/// The chardev id QEMU knows COM2 by.
const CHARDEV_ID: &str = "app";
/// The chardev id QEMU knows COM3 by.
const ERR_CHARDEV_ID: &str = "app-err";

/// The QEMU arguments that create COM2 on the Unix socket `socket` (which
/// QEMU creates).
pub(super) fn qemu_args(socket: &Path) -> Vec<String> {
    port_args(CHARDEV_ID, socket, "iobase=0x2f8,irq=3")
}

/// The QEMU arguments that create COM3, the error stream, on `socket`.
pub(super) fn error_qemu_args(socket: &Path) -> Vec<String> {
    port_args(ERR_CHARDEV_ID, socket, "iobase=0x3e8,irq=6")
}

fn port_args(id: &str, socket: &Path, where_: &str) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!("socket,id={id},path={},server=on,wait=on", socket.display()),
        "-device".into(),
        format!("isa-serial,chardev={id},{where_}"),
    ]
}

/// What the program reads on its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppInput {
    /// These bytes, then the end of input.
    Bytes(Vec<u8>),
    /// The host's standard input, as it comes, then its end.
    HostStdin,
}

/// Frames `data` for the guest (0xff doubled); with `end`, the end-of-input
/// mark after it.
pub fn encode_input(data: &[u8], end: bool) -> Vec<u8> {
    use libos::fs::stdio::{EOF_MARK, ESCAPE};
    let mut out = Vec::with_capacity(data.len() + 2);
    for &b in data {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPE);
        }
    }
    if end {
        out.extend_from_slice(&[ESCAPE, EOF_MARK]);
    }
    out
}

/// Opens once: the guest's receive side is set up (a byte that arrived
/// before would be lost when the kernel resets the UART's FIFO).
#[derive(Debug, Default)]
pub(super) struct Gate {
    open: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// Lets the waiters through.
    pub(super) fn open(&self) {
        if let Ok(mut open) = self.open.lock() {
            *open = true;
            self.changed.notify_all();
        }
    }

    /// Waits until [`Gate::open`]; false if that never came before `give_up`.
    fn wait(&self, give_up: &AtomicBool) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        while !*open {
            if give_up.load(Ordering::Acquire) {
                return false;
            }
            match self.changed.wait_timeout(open, Duration::from_millis(50)) {
                Ok((guard, _)) => open = guard,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Where [`send_interrupt`] writes: the console line of the guest that
/// reads the host's stdin, once connected.
static INTERRUPT_SINK: std::sync::Mutex<Option<UnixStream>> = std::sync::Mutex::new(None);

/// Tells the guest that Ctrl-C was pressed on the host's terminal (the
/// kernel sends the program `SIGINT`): 0xff 0x03 on the console line.
/// `false` if no guest reads the host's stdin.
///
/// The program's first output can reach the host before the thread that
/// forwards stdin has seen the kernel's ready line (they travel on
/// different serial ports), so a press while the console line is still
/// being set up waits for it (at most 10 s).
pub fn send_interrupt() -> bool {
    use std::io::Write;
    let deadline = std::time::Instant::now() + INTERRUPT_SETUP_WAIT;
    loop {
        let Ok(mut sink) = INTERRUPT_SINK.lock() else {
            return false;
        };
        if let Some(s) = sink.as_mut() {
            return s
                .write_all(&[libos::fs::stdio::ESCAPE, libos::fs::stdio::INTERRUPT_MARK])
                .is_ok();
        }
        drop(sink);
        if !INTERRUPT_PENDING.load(Ordering::Acquire) || std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long a Ctrl-C waits for a console line that is being set up.
const INTERRUPT_SETUP_WAIT: Duration = Duration::from_secs(10);

/// Set while a guest that will read the host's stdin boots (its console
/// line not yet connected to [`INTERRUPT_SINK`]).
static INTERRUPT_PENDING: AtomicBool = AtomicBool::new(false);

/// Sends `input` through `stream` once `gate` opens, on a thread of its
/// own (the host's stdin may never end).
fn send_input(mut stream: UnixStream, input: AppInput, gate: Arc<Gate>, give_up: Arc<AtomicBool>) {
    use std::io::Write;
    let host_stdin = matches!(input, AppInput::HostStdin);
    if host_stdin {
        INTERRUPT_PENDING.store(true, Ordering::Release);
    }
    std::thread::spawn(move || {
        let open = gate.wait(&give_up);
        if !open {
            if host_stdin {
                INTERRUPT_PENDING.store(false, Ordering::Release);
            }
            return;
        }
        match input {
            AppInput::Bytes(data) => {
                let _ = stream.write_all(&encode_input(&data, true));
            }
            AppInput::HostStdin => {
                if let (Ok(clone), Ok(mut sink)) = (stream.try_clone(), INTERRUPT_SINK.lock()) {
                    *sink = Some(clone);
                }
                INTERRUPT_PENDING.store(false, Ordering::Release);
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            let _ = stream.write_all(&encode_input(&[], true));
                            return;
                        }
                        Ok(n) => {
                            if stream.write_all(&encode_input(&buf[..n], false)).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// A thread that connects to QEMU's socket and forwards what arrives.
#[derive(Debug)]
pub(super) struct Reader {
    thread: JoinHandle<()>,
    give_up: Arc<AtomicBool>,
}

impl Reader {
    /// Starts connecting to `socket` (retrying until QEMU has created it or
    /// [`Reader::finish`] is called), sends `input` into it if given, and
    /// sends each chunk that arrives as `wrap(chunk)`.
    pub(super) fn spawn(
        socket: PathBuf,
        tx: Sender<Message>,
        wrap: fn(Vec<u8>) -> Message,
        input: Option<(AppInput, Arc<Gate>)>,
    ) -> Self {
        let give_up = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&give_up);
        let thread = std::thread::spawn(move || {
            let mut stream = loop {
                match UnixStream::connect(&socket) {
                    Ok(s) => break s,
                    Err(_) if flag.load(Ordering::Acquire) => return,
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            if let Some((input, gate)) = input
                && let Ok(writer) = stream.try_clone()
            {
                send_input(writer, input, gate, flag.clone());
            }
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(wrap(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Self { thread, give_up }
    }

    /// Waits for the reader to reach EOF (call after QEMU has exited); a
    /// reader that never connected stops retrying.
    pub(super) fn finish(self) {
        self.give_up.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn input_is_framed_with_0xff_doubled_and_an_end_mark() {
        assert_eq!(
            super::encode_input(&[1, 0xff, 2], true),
            [1, 0xff, 0xff, 2, 0xff, 0x00]
        );
        assert_eq!(super::encode_input(b"ab", false), b"ab");
    }
}
