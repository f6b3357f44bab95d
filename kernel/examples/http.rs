//! A static-file HTTP/1.1 server as a Cloister guest application: `GET`
//! and `HEAD` of the files of the image under `/www` (`/` is
//! `/www/index.html`), served from the initramfs in place (no copy of the
//! body), one thread per connection, one request per connection
//! (`Connection: close`).
//!
//! Listens on port 80, or `app.port=N` on the kernel command line; with
//! `app.requests=N` it exits (status 0) after serving N connections. Boot
//! it with `cloister run --app …/examples/http --file site/:/www -p
//! 8080:80` (docs/RUNTIME.md).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;

use kernel::runtime::net::{TcpListener, TcpStream};
use kernel::runtime::{Result, command_line_value, fs, thread};

kernel::entry!(main);

/// The most bytes of request head read before answering 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

fn main() -> Result<()> {
    let port = command_line_value("app.port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(80);
    let limit: Option<u64> = command_line_value("app.requests").and_then(|n| n.parse().ok());
    let listener = TcpListener::bind(port)?;
    kernel::println!("http: serving /www on port {port}");
    let mut served = Vec::new();
    let mut accepted = 0u64;
    while limit.is_none_or(|n| accepted < n) {
        let (stream, peer) = listener.accept()?;
        accepted += 1;
        match thread::spawn(move || {
            if let Err(e) = serve(&stream) {
                log::debug!("http: {peer}: {e}");
            }
        }) {
            // Without a limit nobody joins: keep no handles.
            Ok(handle) if limit.is_some() => served.push(handle),
            Ok(_) => {}
            Err(e) => log::warn!("http: cannot serve {peer}: {e}"),
        }
    }
    for handle in served {
        handle.join();
    }
    kernel::println!("http: served {accepted} connections");
    Ok(())
}

/// Reads the request head (up to the blank line).
fn read_head(stream: &TcpStream) -> Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// Answers one request.
fn serve(stream: &TcpStream) -> Result<()> {
    let Some(head) = read_head(stream)? else {
        return respond(stream, "431 Request Header Fields Too Large", b"", true);
    };
    let line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or(&[]), words.next().unwrap_or(&[]));
    let with_body = match method {
        b"GET" => true,
        b"HEAD" => false,
        _ => return respond(stream, "405 Method Not Allowed", b"", true),
    };
    // The path without a query; no `..` (the image has no way up anyway,
    // but a request must not name files outside /www).
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    let Ok(path) = core::str::from_utf8(path) else {
        return respond(stream, "400 Bad Request", b"", true);
    };
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return respond(stream, "400 Bad Request", b"", true);
    }
    let file = if path.ends_with('/') {
        format!("/www{path}index.html")
    } else {
        format!("/www{path}")
    };
    match fs::read(&file) {
        Ok(body) => respond(stream, "200 OK", body, with_body),
        Err(_) => respond(stream, "404 Not Found", b"not found\n", with_body),
    }
}

/// Writes a response with `body` (left out for HEAD) and closes.
fn respond(stream: &TcpStream, status: &str, body: &[u8], with_body: bool) -> Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nServer: cloister-runtime-example\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.shutdown_write()?;
    // A lingering close: wait for the client to close its side, which it
    // does once it has the whole response (so nothing is lost if the
    // application exits next).
    let mut rest = [0u8; 512];
    while stream.read(&mut rest)? > 0 {}
    Ok(())
}
