//! The second serial port (COM2, I/O port 0x2f8, IRQ 3), which carries a
//! program's console output when `cloister run` boots one.
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

/// The chardev id QEMU knows the port by.
const CHARDEV_ID: &str = "app";

/// The QEMU arguments that create COM2 with its output on the Unix socket
/// `socket` (which QEMU creates).
pub(super) fn qemu_args(socket: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!(
            "socket,id={CHARDEV_ID},path={},server=on,wait=on",
            socket.display()
        ),
        "-device".into(),
        format!("isa-serial,chardev={CHARDEV_ID},iobase=0x2f8,irq=3"),
    ]
}

/// A thread that connects to QEMU's socket and forwards what arrives.
#[derive(Debug)]
pub(super) struct Reader {
    thread: JoinHandle<()>,
    give_up: Arc<AtomicBool>,
}

impl Reader {
    /// Starts connecting to `socket` (retrying until QEMU has created it or
    /// [`Reader::finish`] is called) and sends each chunk as
    /// [`Message::App`].
    pub(super) fn spawn(socket: PathBuf, tx: Sender<Message>) -> Self {
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
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Message::App(buf[..n].to_vec())).is_err() {
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
