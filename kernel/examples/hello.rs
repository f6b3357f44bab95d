//! Hello, world as a Cloister guest application: prints a line with the
//! clocks, spawns a thread and joins it, records an audit event, and exits
//! with a status chosen on the kernel command line (`hello.status=N`,
//! default 7) so a test can tell a real exit from a default one.
//!
//! Build and boot: `cargo build -p kernel --target x86_64-unknown-none
//! --example hello`, then `cargo cloister run --app
//! target/x86_64-unknown-none/debug/examples/hello` (docs/RUNTIME.md).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::time::Duration;

use kernel::runtime::{audit, thread, time};

kernel::entry!(main);

fn main() -> u8 {
    kernel::println!("hello from a linked Cloister application");
    let started = time::monotonic();
    let worker = thread::spawn(|| (1..=10u64).collect::<Vec<_>>().iter().sum::<u64>());
    let sum = match worker {
        Ok(handle) => handle.join(),
        Err(e) => {
            kernel::println!("cannot spawn a thread: {e}");
            return 1;
        }
    };
    thread::sleep(Duration::from_millis(10));
    let slept = time::monotonic().saturating_sub(started);
    kernel::println!("sum from a thread: {sum}");
    kernel::println!(
        "slept at least 10 ms: {}",
        slept >= Duration::from_millis(10)
    );
    kernel::println!(
        "wall clock: {} s since the epoch",
        time::wall_clock().as_secs()
    );
    audit::record("hello: done");
    status()
}

/// The exit status the kernel command line asks for.
fn status() -> u8 {
    kernel::runtime::command_line_value("hello.status")
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}
