//! The serial console (COM1, a 16550 UART through the `uart_16550` crate) and
//! the `log` backend on top of it.
//!
//! Output goes through one spin lock taken with interrupts disabled, so a
//! timer interrupt that logs cannot deadlock against the code it interrupted.
//! The panic path uses [`emergency_write`], which takes no lock.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::interrupts;
use spin::Mutex;
use uart_16550::Uart16550;

use crate::platform::port::{self, SeamPort};

const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<Uart16550<SeamPort>>> = Mutex::new(None);
static LOGGER: SerialLogger = SerialLogger;
static READY: AtomicBool = AtomicBool::new(false);

/// Initialises COM1 and installs the logger at `level`.
pub fn init(level: log::LevelFilter) {
    // 0x3f8 is COM1's fixed I/O base on every PC-compatible machine (QEMU's
    // pc, q35 and microvm all have it) and nothing else drives it.
    if let Some(mut uart) = port::uart(COM1) {
        // A failed init (no UART present) leaves the console silent rather
        // than stopping the boot.
        if uart.init(uart_16550::Config::default()).is_ok() {
            *SERIAL.lock() = Some(uart);
            READY.store(true, Ordering::Release);
        }
    }
    // `set_logger` fails only if called twice; the first logger stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Changes the log level (after the command line is read).
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

struct Writer<'a>(&'a mut Uart16550<SeamPort>);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().split_inclusive(|&b| b == b'\n') {
            match chunk.split_last() {
                Some((b'\n', body)) => {
                    self.0.send_bytes_exact(body);
                    self.0.send_bytes_exact(b"\r\n");
                }
                _ => self.0.send_bytes_exact(chunk),
            }
        }
        Ok(())
    }
}

/// Writes formatted text to the console (used by `kprint!`).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = SERIAL.lock().as_mut() {
            // Writing to the UART cannot fail.
            let _ = Writer(uart).write_fmt(args);
        }
    });
}

/// Writes to COM1 without any lock, polling the line status register: for
/// the panic and fatal-exception paths, where the console lock may be held by
/// the code that failed.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    struct Raw;
    impl Write for Raw {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &b in s.as_bytes() {
                if b == b'\n' {
                    raw_byte(b'\r');
                }
                raw_byte(b);
            }
            Ok(())
        }
    }
    let _ = Raw.write_fmt(args);
}

fn raw_byte(b: u8) {
    // COM1's line status and data registers; reading LSR has no side effect
    // and writing THR sends one byte. Racing a holder of SERIAL can only
    // interleave bytes, which the panic path accepts.
    for _ in 0..100_000 {
        if port::read_u8(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    port::write_u8(COM1, b);
}

/// How long [`wait_sent`] waits for a UART to empty at most: a host that
/// stopped reading must not keep the guest from exiting.
const DRAIN_NS: u64 = 2_000_000_000;
/// And how many times it reads the line status register at most (the TSC
/// clock may not be calibrated yet when an early failure exits).
const DRAIN_POLLS: u32 = 1 << 22;
/// The line status register's "transmitter empty" bit: FIFO and shift
/// register both empty, every byte handed to the other end.
const LSR_TEMT: u8 = 1 << 6;

/// Waits until the UART at `base` has handed every byte to the host (at
/// most [`DRAIN_NS`]). QEMU's 16550 holds up to 16 bytes in its FIFO plus
/// one in its shift register while its chardev cannot take them, and a
/// guest that leaves the VM then loses them (a CI run once lost the end of
/// `openssl speed`'s last line). Takes no lock: reading the line status
/// register has no side effect. A missing UART reads 0xff, "empty".
pub fn wait_sent(base: u16) {
    let start = crate::time::now_ns();
    for _ in 0..DRAIN_POLLS {
        if port::read_u8(base + 5) & LSR_TEMT != 0
            || crate::time::now_ns().wrapping_sub(start) > DRAIN_NS
        {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Waits until COM1 has sent everything written to it (see [`wait_sent`]).
pub fn drain() {
    wait_sent(COM1);
}

/// Prints to the serial console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

#[derive(Debug)]
struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = crate::time::now_ns();
        crate::kprintln!(
            "[{:>5}.{:06}] {:<5} {}",
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000,
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}
