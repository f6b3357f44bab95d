//! `poll` and `ppoll` over [`FileLike::poll`](crate::fd::FileLike::poll)
//! readiness, waiting through the platform's
//! [`Blocker`](crate::platform::Blocker).

use alloc::vec::Vec;

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fd::PollEvents;
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[(7, "poll", sys_poll), (271, "ppoll", sys_ppoll)];

/// One `struct pollfd`.
#[derive(Debug, Clone, Copy)]
struct PollFd {
    fd: i32,
    events: u16,
    revents: u16,
}

/// Fills in `revents` for every entry; returns how many are non-zero.
fn evaluate(p: &Process, fds: &mut [PollFd]) -> usize {
    let table = p.fds.lock();
    let mut ready = 0;
    for pfd in fds.iter_mut() {
        pfd.revents = if pfd.fd < 0 {
            0
        } else {
            match table.get(pfd.fd) {
                Ok(file) => {
                    let always = PollEvents::ERR | PollEvents::HUP;
                    let wanted = PollEvents::from_bits_truncate(pfd.events) | always;
                    (file.poll() & wanted).bits()
                }
                Err(_) => PollEvents::NVAL.bits(),
            }
        };
        if pfd.revents != 0 {
            ready += 1;
        }
    }
    ready
}

/// Waits until an entry is ready or `deadline_ns` passes (`None`: forever).
fn do_poll(p: &Process, addr: u64, nfds: usize, deadline_ns: Option<u64>) -> Result<usize> {
    if nfds > p.fds.lock().limit() {
        return_errno!(Errno::EINVAL);
    }
    let bytes = UserSliceRead::new(addr, nfds * 8)?.read_to_vec(&*p.platform)?;
    let mut fds: Vec<PollFd> = bytes
        .chunks_exact(8)
        .map(|c| PollFd {
            fd: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            events: u16::from_le_bytes([c[4], c[5]]),
            revents: 0,
        })
        .collect();
    let mut ready = evaluate(p, &mut fds);
    if ready == 0 && deadline_ns != Some(0) {
        let deadline = deadline_ns.map(|d| p.platform.monotonic_ns().saturating_add(d));
        p.platform
            .block_until(&mut || evaluate(p, &mut fds.clone()) > 0, deadline)?;
        ready = evaluate(p, &mut fds);
    }
    let mut out = bytes;
    for (chunk, pfd) in out.chunks_exact_mut(8).zip(&fds) {
        chunk[6..8].copy_from_slice(&pfd.revents.to_le_bytes());
    }
    UserSliceWrite::new(addr, out.len())?.write(&*p.platform, &out)?;
    Ok(ready)
}

/// `poll(fds, nfds, timeout_ms)`: a negative timeout waits forever.
pub fn sys_poll(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout_ms = a.i32(2);
    let timeout_ns = u64::try_from(timeout_ms).ok().map(|ms| ms * 1_000_000);
    do_poll(p, a.u64(0), a.usize(1), timeout_ns)
}

/// `ppoll(fds, nfds, timeout, sigmask, sigsetsize)`: `timeout` is a
/// `struct timespec *` (NULL waits forever). The signal mask is not
/// applied during the wait (signals are the kernel's, not done yet).
pub fn sys_ppoll(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout_ns = if a.u64(2) == 0 {
        None
    } else {
        let secs = UserPtr::<i64>::new(a.u64(2)).read(&*p.platform)?;
        let nanos = UserPtr::<i64>::new(a.u64(2) + 8).read(&*p.platform)?;
        if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
            return_errno!(Errno::EINVAL);
        }
        Some(
            (secs as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    };
    do_poll(p, a.u64(0), a.usize(1), timeout_ns)
}

#[cfg(test)]
mod tests;
