//! Hello, world as a Cloister guest application: prints a line with the
//! clocks, spawns a thread and joins it, talks to itself over loopback
//! TCP and UDP, records an audit event, and exits
//! with a status chosen on the kernel command line (`app.status=N`,
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

use core::net::{Ipv4Addr, SocketAddrV4};

use kernel::runtime::net::{TcpListener, TcpStream, UdpSocket};
use kernel::runtime::{Result, audit, thread, time};

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
    match loopback_tcp() {
        Ok(()) => kernel::println!("tcp loopback: ok"),
        Err(e) => kernel::println!("tcp loopback: {e}"),
    }
    match loopback_udp() {
        Ok(()) => kernel::println!("udp loopback: ok"),
        Err(e) => kernel::println!("udp loopback: {e}"),
    }
    audit::record("hello: done");
    status()
}

/// A listener and a client thread on 127.0.0.1: the client's bytes come
/// back uppercased.
fn loopback_tcp() -> Result<()> {
    let listener = TcpListener::bind_addr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let client = thread::spawn(move || -> Result<Vec<u8>> {
        let stream = TcpStream::connect(addr)?;
        stream.write_all(b"linked")?;
        stream.shutdown_write()?;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(got),
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    })?;
    let (stream, _) = listener.accept()?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    stream.write_all(&buf[..n].to_ascii_uppercase())?;
    stream.shutdown_write()?;
    let got = client.join()?;
    if got != b"LINKED" {
        return Err(kernel::runtime::Errno::EIO.into());
    }
    Ok(())
}

/// A datagram to a second socket on 127.0.0.1 and back.
fn loopback_udp() -> Result<()> {
    let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    let (a, b) = (UdpSocket::bind(any)?, UdpSocket::bind(any)?);
    a.send_to(b"ping", b.local_addr()?)?;
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf)?;
    b.send_to(&buf[..n], from)?;
    let (n, _) = a.recv_from(&mut buf)?;
    if &buf[..n] != b"ping" || from != a.local_addr()? {
        return Err(kernel::runtime::Errno::EIO.into());
    }
    Ok(())
}

/// The exit status the kernel command line asks for.
fn status() -> u8 {
    kernel::runtime::command_line_value("app.status")
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}
