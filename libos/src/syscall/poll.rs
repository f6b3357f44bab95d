//! `poll`, `ppoll`, `select` and `pselect6` over [`FileLike::poll`](crate::fd::FileLike::poll)
//! readiness, waiting through the platform's
//! [`Blocker`](crate::platform::Blocker).

use alloc::vec::Vec;

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fallible::{TryVec, with_capacity};
use crate::fd::PollEvents;
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (7, "poll", sys_poll),
    (23, "select", sys_select),
    (270, "pselect6", sys_pselect6),
    (271, "ppoll", sys_ppoll),
];

/// One `struct pollfd`.
#[derive(Debug, Clone, Copy)]
struct PollFd {
    fd: i32,
    events: u16,
    revents: u16,
}

/// Fills in `revents` for every entry; returns how many are non-zero.
fn evaluate(p: &Process, fds: &mut [PollFd]) -> usize {
    // Sockets' readiness is what the stack last processed.
    p.net.poll();
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
    let mut fds: Vec<PollFd> = with_capacity(nfds)?;
    fds.extend(bytes.chunks_exact(8).map(|c| PollFd {
        fd: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        events: u16::from_le_bytes([c[4], c[5]]),
        revents: 0,
    }));
    let mut ready = evaluate(p, &mut fds);
    if ready == 0 {
        // As in `epoll_wait`: nothing ready, so what was sent goes out.
        p.net.flush_device();
    }
    if ready == 0 && deadline_ns != Some(0) {
        let deadline = deadline_ns.map(|d| p.platform.monotonic_ns().saturating_add(d));
        let mut scratch = with_capacity(nfds)?;
        scratch.extend_from_slice(&fds);
        p.platform
            .block_until(&mut || evaluate(p, &mut scratch) > 0, deadline)?;
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

/// Reads a `struct timespec` (`None` for a NULL pointer), in nanoseconds.
fn read_timespec(p: &Process, addr: u64) -> Result<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    let secs = UserPtr::<i64>::new(addr).read(&*p.platform)?;
    let nanos = UserPtr::<i64>::new(addr + 8).read(&*p.platform)?;
    if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
        return_errno!(Errno::EINVAL);
    }
    Ok(Some(
        (secs as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(nanos as u64),
    ))
}

/// Zeroed bit words for `nfds` descriptors (`ENOMEM` if they cannot be
/// had).
fn zeroed_words(nfds: usize) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    v.try_resize(nfds.div_ceil(64), 0)?;
    Ok(v)
}

/// One `fd_set` argument: its address (0 = absent) and bits.
struct FdSet {
    addr: u64,
    bits: Vec<u64>,
}

impl FdSet {
    fn read(p: &Process, addr: u64, nfds: usize) -> Result<Self> {
        let mut bits = zeroed_words(nfds)?;
        if addr != 0 {
            for (i, w) in bits.iter_mut().enumerate() {
                *w = UserPtr::<u64>::new(addr + 8 * i as u64).read(&*p.platform)?;
            }
        }
        Ok(Self { addr, bits })
    }

    fn contains(&self, fd: usize) -> bool {
        self.bits[fd / 64] & (1 << (fd % 64)) != 0
    }

    fn write(&self, p: &Process, result: &[u64]) -> Result<()> {
        if self.addr != 0 {
            for (i, w) in result.iter().enumerate() {
                UserPtr::<u64>::new(self.addr + 8 * i as u64).write(&*p.platform, *w)?;
            }
        }
        Ok(())
    }
}

/// Evaluates the three sets; returns the result sets and the count of bits.
fn select_once(p: &Process, nfds: usize, sets: &[FdSet; 3]) -> Result<([Vec<u64>; 3], usize)> {
    let mut out = [
        zeroed_words(nfds)?,
        zeroed_words(nfds)?,
        zeroed_words(nfds)?,
    ];
    let mut count = 0;
    p.net.poll();
    let table = p.fds.lock();
    let masks = [
        PollEvents::IN | PollEvents::RDNORM | PollEvents::HUP | PollEvents::ERR,
        PollEvents::OUT | PollEvents::WRNORM | PollEvents::ERR,
        PollEvents::PRI,
    ];
    for fd in 0..nfds {
        if !sets.iter().any(|s| s.contains(fd)) {
            continue;
        }
        let ready = table.get(fd as i32)?.poll();
        for k in 0..3 {
            if sets[k].contains(fd) && ready.intersects(masks[k]) {
                out[k][fd / 64] |= 1 << (fd % 64);
                count += 1;
            }
        }
    }
    Ok((out, count))
}

fn do_select(p: &Process, nfds: i32, addrs: [u64; 3], timeout_ns: Option<u64>) -> Result<usize> {
    let nfds = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?;
    if nfds > p.fds.lock().limit() {
        return_errno!(Errno::EINVAL);
    }
    let sets = [
        FdSet::read(p, addrs[0], nfds)?,
        FdSet::read(p, addrs[1], nfds)?,
        FdSet::read(p, addrs[2], nfds)?,
    ];
    let (mut result, mut count) = select_once(p, nfds, &sets)?;
    if count == 0 {
        // As in `epoll_wait`: nothing ready, so what was sent goes out.
        p.net.flush_device();
    }
    if count == 0 && timeout_ns != Some(0) {
        let deadline = timeout_ns.map(|t| p.platform.monotonic_ns().saturating_add(t));
        p.platform.block_until(
            &mut || select_once(p, nfds, &sets).map_or(true, |(_, n)| n > 0),
            deadline,
        )?;
        (result, count) = select_once(p, nfds, &sets)?;
    }
    for (set, bits) in sets.iter().zip(&result) {
        set.write(p, bits)?;
    }
    Ok(count)
}

/// `select(nfds, readfds, writefds, exceptfds, timeout)`: `timeout` is a
/// `struct timeval *` (NULL waits forever); it is not updated with the
/// time left. `EBADF` for a closed fd in a set.
pub fn sys_select(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout_ns = if a.u64(4) == 0 {
        None
    } else {
        let secs = UserPtr::<i64>::new(a.u64(4)).read(&*p.platform)?;
        let micros = UserPtr::<i64>::new(a.u64(4) + 8).read(&*p.platform)?;
        if secs < 0 || !(0..1_000_000).contains(&micros) {
            return_errno!(Errno::EINVAL);
        }
        Some(
            (secs as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(micros as u64 * 1000),
        )
    };
    do_select(p, a.i32(0), [a.u64(1), a.u64(2), a.u64(3)], timeout_ns)
}

/// `pselect6(nfds, readfds, writefds, exceptfds, timeout, sigmask)`: a
/// `timespec` timeout; the signal mask is not applied (no signals yet).
pub fn sys_pselect6(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout_ns = read_timespec(p, a.u64(4))?;
    do_select(p, a.i32(0), [a.u64(1), a.u64(2), a.u64(3)], timeout_ns)
}

/// `ppoll(fds, nfds, timeout, sigmask, sigsetsize)`: `timeout` is a
/// `struct timespec *` (NULL waits forever). The signal mask is not
/// applied during the wait (signals are the kernel's, not done yet).
pub fn sys_ppoll(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout_ns = read_timespec(p, a.u64(2))?;
    do_poll(p, a.u64(0), a.usize(1), timeout_ns)
}

#[cfg(test)]
mod tests;
