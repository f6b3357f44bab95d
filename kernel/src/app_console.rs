//! The application's console: COM2 (I/O port 0x2f8), kept apart from the
//! kernel log on COM1 so the host sees the program's output byte for byte.
//!
//! `/dev/console` and fds 0–2 write here. The host runner (`cloister run`)
//! connects COM2 to its standard output. Bytes go out unchanged (no
//! newline translation): the program's output is data.

use spin::Mutex;
use uart_16550::Uart16550;
use uart_16550::backend::PioBackend;
use x86_64::instructions::interrupts;

const COM2: u16 = 0x2f8;

static UART: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

/// Initialises COM2; returns whether a UART answered.
pub fn init() -> bool {
    // SAFETY: 0x2f8 is COM2's fixed I/O base on PC-compatible machines;
    // nothing else in the kernel drives it.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM2) }) else {
        return false;
    };
    if uart.init(uart_16550::Config::default()).is_err() {
        return false;
    }
    interrupts::without_interrupts(|| *UART.lock() = Some(uart));
    true
}

/// Writes `bytes` to the application console (dropped if there is none).
pub fn write(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            uart.send_bytes_exact(bytes);
        }
    });
}
