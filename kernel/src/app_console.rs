//! The application's console, kept apart from the kernel log on COM1 so
//! the host sees the program's streams byte for byte: COM2 (I/O port
//! 0x2f8) carries stdout out and stdin in, COM3 (0x3e8) carries stderr.
//!
//! fds 0–2 (`libos::fs::stdio`) and `/dev/console` use these. The host
//! runner (`cloister run`) connects COM2 to its standard output and input
//! and COM3 to its standard error; without COM3, stderr shares COM2. Bytes
//! go out unchanged (no newline translation): the program's output is
//! data. Input is polled (the receive FIFO is read when the program reads
//! or polls its stdin, and re-checked on every timer tick while it waits).

use crate::arch::interrupts;
use spin::Mutex;
use uart_16550::Uart16550;
use uart_16550::spec::registers::IER;

use crate::platform::port::{self, SeamPort};

const COM2: u16 = 0x2f8;
const COM3: u16 = 0x3e8;

static UART: Mutex<Option<Uart16550<SeamPort>>> = Mutex::new(None);
static ERR_UART: Mutex<Option<Uart16550<SeamPort>>> = Mutex::new(None);

/// COM2's ISA interrupt line.
const COM2_IRQ: u32 = 3;

/// A 16550 at `port`, initialised with `interrupts`, if one answers there.
fn open(base: u16, interrupts: IER) -> Option<Uart16550<SeamPort>> {
    // `base` is COM2's or COM3's fixed I/O base on PC-compatible machines;
    // nothing else in the kernel drives them.
    let mut uart = port::uart(base)?;
    let config = uart_16550::Config {
        interrupts,
        ..uart_16550::Config::default()
    };
    uart.init(config).ok()?;
    Some(uart)
}

/// Initialises COM2 (and COM3 if present); returns whether COM2 answered.
/// COM2 raises its interrupt when input arrives (so a reader waiting for
/// stdin wakes at once rather than at the next tick), if the I/O APIC
/// takes the route.
pub fn init() -> bool {
    let Some(uart) = open(COM2, IER::DATA_READY) else {
        return false;
    };
    crate::arch::irq::register(crate::arch::trap::CONSOLE_VECTOR, on_interrupt);
    if let Err(e) = crate::arch::ioapic::route_edge(COM2_IRQ, crate::arch::trap::CONSOLE_VECTOR) {
        log::info!("console: input polled on timer ticks (no interrupt route: {e:?})");
    }
    let err = open(COM3, IER::empty());
    interrupts::without_interrupts(|| {
        *UART.lock() = Some(uart);
        *ERR_UART.lock() = err;
    });
    true
}

/// Writes `bytes` to the program's output stream (dropped if there is none).
pub fn write(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            uart.send_bytes_exact(bytes);
        }
    });
}

/// Writes `bytes` to the program's error stream: COM3, or COM2 without it.
pub fn write_err(bytes: &[u8]) {
    let sent = interrupts::without_interrupts(|| match ERR_UART.lock().as_mut() {
        Some(uart) => {
            uart.send_bytes_exact(bytes);
            true
        }
        None => false,
    });
    if !sent {
        write(bytes);
    }
}

/// Waits until COM2 and COM3 have handed every byte of the program's
/// output to the host (bounded: [`crate::console::wait_sent`]), so that an
/// exit right after the program's last write loses nothing.
pub fn drain() {
    crate::console::wait_sent(COM2);
    crate::console::wait_sent(COM3);
}

/// Set by COM2's interrupt: input arrived that nobody has read yet.
static INPUT_PENDING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// For the interrupt handler: COM2 has input.
pub fn note_input() {
    INPUT_PENDING.store(true, core::sync::atomic::Ordering::Release);
}

/// COM2's interrupt: note the input, and wake waiters (the waiting reader
/// re-checks the FIFO once the CPU is awake).
fn on_interrupt() {
    note_input();
    crate::task::bump_epoch();
}

/// Whether COM2's interrupt fired since the last call.
pub fn take_input_pending() -> bool {
    INPUT_PENDING.swap(false, core::sync::atomic::Ordering::AcqRel)
}

/// Moves bytes waiting in COM2's receive FIFO into `buf`; 0 if none.
pub fn read_input(buf: &mut [u8]) -> usize {
    interrupts::without_interrupts(|| {
        UART.lock()
            .as_mut()
            .map_or(0, |uart| uart.receive_bytes(buf))
    })
}
