//! A minimal QMP client: connect to the Unix socket QEMU serves with
//! `-qmp unix:PATH,server=on,wait=off`, negotiate capabilities, run a few
//! commands without arguments (`quit`, `inject-nmi`) and hang up.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

/// QEMU arguments for a QMP server at `socket` (which must not exist).
pub fn qemu_args(socket: &Path) -> [String; 2] {
    [
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ]
}

/// Runs each of `commands` (QMP command names without arguments) through
/// the socket at `socket`, waiting at most a few seconds for QEMU's answers.
pub fn execute(socket: &Path, commands: &[&str]) -> Result<()> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to QEMU's QMP socket {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut msg = String::from("{\"execute\":\"qmp_capabilities\"}\r\n");
    for c in commands {
        msg.push_str(&format!("{{\"execute\":\"{c}\"}}\r\n"));
    }
    s.write_all(msg.as_bytes())?;
    // QEMU answers each command; `quit` closes the socket, anything else
    // leaves it open until the read times out or enough has arrived.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let want = commands.len() + 1;
    while seen.iter().filter(|&&b| b == b'\n').count() < want + 1 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    Ok(())
}
