//! The API for an application linked with the kernel: Cloister as a guest
//! runtime (a unikernel), the way Hermit and Unikraft are used.
//!
//! An application is an ordinary `#![no_std]`, `#![no_main]` crate built
//! with stable Rust for `x86_64-unknown-none` that depends on this crate and
//! names its `main` with [`entry!`](crate::entry). The kernel boots as
//! usual (memory, heap, clocks, interrupts, the audit log, the network
//! card), then runs `main` as the first thread of the scheduler; when `main`
//! returns, its status is reported to the host (`CLOISTER_EXIT=`, what
//! `cloister run --app` exits with) and the machine powers off. See
//! docs/RUNTIME.md for a template and `kernel/examples/` for three programs.
//!
//! What it offers, one module each:
//! - `alloc` (`Box`, `Vec`, `String`, collections): the kernel's heap;
//! - [`thread`]: spawn, join, sleep and yield (cooperative: a thread runs
//!   until it waits, sleeps or yields);
//! - [`time`]: the monotonic clock and the wall clock;
//! - [`fs`]: the files of the image (the initramfs), read in place;
//! - [`net`]: TCP over the kernel's smoltcp stack, blocking and
//!   readiness-based (`try_` calls and [`net::TcpStream::readiness`]);
//! - [`audit`]: an application event in the sealed audit log;
//! - [`print!`](crate::print)/[`println!`](crate::println) (the program's
//!   standard output, COM2, as a Linux program's), the `log` crate's macros
//!   (the kernel console, COM1), and [`exit`].
//!
//! Everything here is safe Rust; errors are the LibOS's [`Error`] with its
//! Linux [`Errno`]. The application runs in ring 0 with the kernel's
//! privilege: nothing keeps a bug in it from the kernel's memory, the audit
//! log's included (docs/RUNTIME.md, "Guarantees").
//!
//! The `kernel` binary's Linux-ABI run mode ([`crate::linux_abi_main`]) is
//! another client of the same boot; it takes the machine over itself
//! (`entry!(machine: …)`), its program's threads being user threads.

pub mod audit;
pub mod fs;
pub mod net;
pub mod thread;
pub mod time;

use alloc::sync::Arc;

pub use libos::error::{Errno, Error};

use crate::run::KernelPlatform;

/// The result of a runtime call.
pub type Result<T> = core::result::Result<T, Error>;

/// What the runtime keeps for the application.
struct State {
    /// Clocks and the CSPRNG, as the Linux-ABI mode's.
    platform: Arc<KernelPlatform>,
}

static STATE: spin::Once<State> = spin::Once::new();

fn state() -> &'static State {
    STATE.call_once(|| State {
        platform: Arc::new(KernelPlatform::new(command_line_has("time.host"))),
    })
}

/// Whether the kernel command line has the word or key `key`.
fn command_line_has(key: &str) -> bool {
    let info = crate::BOOT_INFO.read();
    libos::boot::cmdline::KernelArgs::parse(info.cmdline()).has(key)
}

/// A `main`'s return value as an exit status, as `std::process::Termination`.
pub trait ExitStatus {
    /// The status reported to the host (0–255).
    fn exit_status(self) -> u8;
}

impl ExitStatus for () {
    fn exit_status(self) -> u8 {
        0
    }
}

impl ExitStatus for u8 {
    fn exit_status(self) -> u8 {
        self
    }
}

/// As Linux's `exit`: the low 8 bits.
impl ExitStatus for i32 {
    fn exit_status(self) -> u8 {
        self.to_le_bytes()[0]
    }
}

/// `Err` is logged and is status 1.
impl<E: core::fmt::Debug> ExitStatus for core::result::Result<(), E> {
    fn exit_status(self) -> u8 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                log::error!("main returned an error: {e:?}");
                1
            }
        }
    }
}

/// Names the application's entry. Exactly one per image.
///
/// `entry!(main)` runs `fn main() -> T` (`T`: `()`, `u8`, `i32` or
/// `Result<(), E>`, see [`ExitStatus`]) as the first thread once the kernel
/// has booted, and exits with its status when it returns.
///
/// `entry!(machine: f)` hands the booted machine to `fn f() -> !` on the
/// boot stack, before any thread exists: for clients that bring their own
/// threads (the Linux-ABI run mode).
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// kernel::entry!(main);
/// fn main() -> u8 {
///     kernel::println!("hello");
///     7
/// }
/// ```
#[macro_export]
macro_rules! entry {
    (machine: $main:path) => {
        /// The boot's last step (`kernel::arch::boot::app_entry`).
        #[allow(unsafe_code, reason = "the one symbol the kernel's boot calls")]
        #[unsafe(no_mangle)]
        fn __cloister_app_entry() -> ! {
            $main()
        }
    };
    ($main:path) => {
        /// The boot's last step (`kernel::arch::boot::app_entry`).
        #[allow(unsafe_code, reason = "the one symbol the kernel's boot calls")]
        #[unsafe(no_mangle)]
        fn __cloister_app_entry() -> ! {
            $crate::runtime::start(|| $crate::runtime::ExitStatus::exit_status($main()))
        }
    };
}

/// Starts the application: `main` becomes the first thread; its status
/// ends the run. Called by [`entry!`](crate::entry).
pub fn start(main: fn() -> u8) -> ! {
    if !crate::app_console::init() {
        log::warn!("no UART at COM2: the application's output is lost");
    }
    state();
    net::init();
    crate::audit::record_text(format_args!("application started"));
    // The host holds input back until this line (`tools::qemu`).
    crate::kprintln!("CLOISTER_STDIN_READY");
    if let Err(e) = thread::spawn_first(main) {
        crate::kprintln!("cannot start the application: {e}");
        exit(125)
    }
    crate::task::start()
}

/// Ends the application with `status`: records it in the audit log,
/// seals the log, reports the status to the host and powers off. Other
/// threads end with it.
pub fn exit(status: u8) -> ! {
    crate::run::exit_program(status)
}

/// Writes `bytes` to the application's standard output (COM2; `cloister
/// run` shows it as the program's stdout).
pub fn write_stdout(bytes: &[u8]) {
    crate::app_console::write(bytes);
}

/// Writes `bytes` to the application's standard error.
pub fn write_stderr(bytes: &[u8]) {
    crate::app_console::write_err(bytes);
}

/// Formats to the application's standard output (no allocation beyond
/// the formatted text).
pub fn print_fmt(args: core::fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => write_stdout(s.as_bytes()),
        None => write_stdout(alloc::fmt::format(args).as_bytes()),
    }
}

/// Prints to the application's standard output, as `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::runtime::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the application's standard output, as `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::runtime::write_stdout(b"\n") };
    ($($arg:tt)*) => {
        $crate::runtime::print_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The kernel's `log` crate, for the application's own log lines (the
/// kernel console, filtered by `log=` on the command line).
pub use log;

/// Command-line keys that start with this are the application's own
/// settings (`app.port=8080`): the kernel does not warn about them.
pub const APP_KEY_PREFIX: &str = "app.";

/// The value of `key=value` on the kernel command line (`cloister run
/// --kernel-arg key=value`), for an application's own settings (name them
/// `app.…`, [`APP_KEY_PREFIX`], so the kernel does not warn about them).
pub fn command_line_value(key: &str) -> Option<alloc::string::String> {
    let info = crate::BOOT_INFO.read();
    libos::boot::cmdline::KernelArgs::parse(info.cmdline())
        .get(key)
        .map(alloc::string::String::from)
}
