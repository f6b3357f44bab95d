//! System information: `uname`, `getrandom`, and the capabilities
//! ([`caps`]; the user and group ids are in [`super::cred`]).

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::user::UserSliceWrite;

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (63, "uname", sys_uname),
    (125, "capget", caps::sys_capget),
    (126, "capset", caps::sys_capset),
    (318, "getrandom", sys_getrandom),
];

/// What `uname` reports: `(sysname, nodename, release, version, machine,
/// domainname)`. The release is a Linux version glibc accepts.
pub const UTSNAME: [&str; 6] = [
    "Linux",
    "cloister",
    "6.1.0-cloister",
    "#1 SMP Cloister LibOS",
    "x86_64",
    "(none)",
];

/// `uname(buf)`: six NUL-padded 65-byte fields.
pub fn sys_uname(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let mut buf = [0u8; 6 * 65];
    for (i, field) in UTSNAME.iter().enumerate() {
        buf[i * 65..i * 65 + field.len()].copy_from_slice(field.as_bytes());
    }
    UserSliceWrite::new(a.u64(0), buf.len())?.write(&*p.platform, &buf)?;
    Ok(0)
}

/// Largest `getrandom` result, as Linux (`INT_MAX >> 6`... rounded: 32 MiB - 1).
const GETRANDOM_MAX_BYTES: usize = (1 << 25) - 1;

/// `getrandom(buf, len, flags)`: from the CSPRNG, which is seeded before
/// the program starts, so it never blocks. Flags `GRND_NONBLOCK`,
/// `GRND_RANDOM`, `GRND_INSECURE` are accepted (and change nothing).
pub fn sys_getrandom(p: &Process, a: &SyscallArgs) -> Result<usize> {
    const GRND_ALL: u32 = 0x1 | 0x2 | 0x4;
    let flags = a.u32(2);
    if flags & !GRND_ALL != 0 || flags & 0x6 == 0x6 {
        return_errno!(Errno::EINVAL);
    }
    let len = a.usize(1).min(GETRANDOM_MAX_BYTES);
    let addr = a.u64(0);
    UserSliceWrite::new(addr, len)?;
    let mut chunk = crate::fallible::bounce_buffer(len, 64 * 1024)?;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        p.platform.fill_bytes(&mut chunk[..n]);
        p.platform.write_user(addr + done as u64, &chunk[..n])?;
        done += n;
    }
    Ok(done)
}

pub mod caps;
#[cfg(test)]
mod tests;
