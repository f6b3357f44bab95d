//! `epoll_create(1)`, `epoll_ctl`, `epoll_wait`, `epoll_pwait`,
//! `epoll_pwait2` over [`Epoll`].

use alloc::sync::Arc;

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fs::file::open_flags::O_CLOEXEC;
use crate::ipc::Epoll;
use crate::process::Process;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};
use crate::{return_errno, return_errno_with_message};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (213, "epoll_create", sys_epoll_create),
    (232, "epoll_wait", sys_epoll_wait),
    (233, "epoll_ctl", sys_epoll_ctl),
    (281, "epoll_pwait", sys_epoll_pwait),
    (291, "epoll_create1", sys_epoll_create1),
    (441, "epoll_pwait2", sys_epoll_pwait2),
];

/// Size of the packed x86-64 `struct epoll_event`.
const EVENT_BYTES: usize = 12;

fn create(p: &Process, flags: u32) -> Result<usize> {
    if flags & !O_CLOEXEC != 0 {
        return_errno!(Errno::EINVAL);
    }
    Ok(p.fds.lock().insert(Arc::new(Epoll::new()), flags != 0)? as usize)
}

/// `epoll_create1(flags)`: `EPOLL_CLOEXEC` only.
pub fn sys_epoll_create1(p: &Process, a: &SyscallArgs) -> Result<usize> {
    create(p, a.u32(0))
}

/// `epoll_create(size)`: `size` must be positive and is otherwise ignored.
pub fn sys_epoll_create(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.i32(0) <= 0 {
        return_errno!(Errno::EINVAL);
    }
    create(p, 0)
}

fn epoll_of(p: &Process, epfd: i32) -> Result<Arc<dyn crate::fd::FileLike>> {
    let file = p.fds.lock().get(epfd)?;
    if !file.as_any().is::<Epoll>() {
        return_errno_with_message!(Errno::EINVAL, "not an epoll fd");
    }
    Ok(file)
}

/// `epoll_ctl(epfd, op, fd, event)`: `EPOLL_CTL_ADD`, `_DEL`, `_MOD`.
pub fn sys_epoll_ctl(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (epfd, op, fd) = (a.i32(0), a.i32(1), a.i32(2));
    let ep_file = epoll_of(p, epfd)?;
    let target = p.fds.lock().get(fd)?;
    if fd == epfd {
        return_errno!(Errno::EINVAL);
    }
    let Some(ep) = ep_file.as_any().downcast_ref::<Epoll>() else {
        return_errno!(Errno::EINVAL);
    };
    let event = || -> Result<(u32, u64)> {
        let bytes = UserSliceRead::new(a.u64(3), EVENT_BYTES)?.read_to_vec(&*p.platform)?;
        let events = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let mut data = [0u8; 8];
        data.copy_from_slice(&bytes[4..12]);
        Ok((events, u64::from_le_bytes(data)))
    };
    match op {
        1 => {
            let (events, data) = event()?;
            ep.add(fd, &target, events, data)?;
        }
        2 => ep.delete(fd)?,
        3 => {
            let (events, data) = event()?;
            ep.modify(fd, events, data)?;
        }
        _ => return_errno!(Errno::EINVAL),
    }
    Ok(0)
}

/// Waits up to `timeout_ns` (`None`: forever) and writes the events.
fn wait(
    p: &Process,
    epfd: i32,
    events_addr: u64,
    max_events: i32,
    timeout_ns: Option<u64>,
) -> Result<usize> {
    let max = usize::try_from(max_events)
        .ok()
        .filter(|&m| m > 0 && m <= i32::MAX as usize / EVENT_BYTES)
        .ok_or(Errno::EINVAL)?;
    let out = UserSliceWrite::new(events_addr, max * EVENT_BYTES)?;
    let file = epoll_of(p, epfd)?;
    let Some(ep) = file.as_any().downcast_ref::<Epoll>() else {
        return_errno!(Errno::EINVAL);
    };
    // Sockets' readiness is what the stack last processed: drive it first.
    p.net.poll();
    let epoch = || {
        p.would_block_epoch
            .load(core::sync::atomic::Ordering::Relaxed)
    };
    let mut ready = ep.gather(max, true, Some(epoch()));
    if ready.is_empty() {
        // Nothing to read: what the program sent goes out now, even if
        // it polls again at once instead of blocking.
        p.net.flush_device();
    }
    if ready.is_empty() && timeout_ns != Some(0) {
        let deadline = timeout_ns.map(|t| p.platform.monotonic_ns().saturating_add(t));
        if p.platform.block_until(
            &mut || {
                p.net.poll();
                !ep.collect(1, false, Some(epoch())).is_empty()
            },
            deadline,
        )? {
            ready = ep.gather(max, true, Some(epoch()));
        }
    }
    let mut bytes = crate::fallible::with_capacity(ready.len() * EVENT_BYTES)?;
    for r in &ready {
        bytes.extend_from_slice(&r.events.to_le_bytes());
        bytes.extend_from_slice(&r.data.to_le_bytes());
    }
    // Only what reached the program counts as reported: an EFAULT leaves
    // every event ready (an edge-triggered one would otherwise be lost).
    out.write(&*p.platform, &bytes)?;
    ep.report(&ready, Some(epoch()));
    Ok(ready.len())
}

fn timeout_ms(ms: i32) -> Option<u64> {
    u64::try_from(ms).ok().map(|ms| ms * 1_000_000)
}

/// `epoll_wait(epfd, events, maxevents, timeout_ms)`
pub fn sys_epoll_wait(p: &Process, a: &SyscallArgs) -> Result<usize> {
    wait(p, a.i32(0), a.u64(1), a.i32(2), timeout_ms(a.i32(3)))
}

/// `epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask, sigsetsize)`:
/// the signal mask is not applied (no signals yet).
pub fn sys_epoll_pwait(p: &Process, a: &SyscallArgs) -> Result<usize> {
    wait(p, a.i32(0), a.u64(1), a.i32(2), timeout_ms(a.i32(3)))
}

/// `epoll_pwait2(epfd, events, maxevents, timeout, sigmask, sigsetsize)`
/// with a `struct timespec *` timeout (NULL: forever).
pub fn sys_epoll_pwait2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let timeout = if a.u64(3) == 0 {
        None
    } else {
        let secs = UserPtr::<i64>::new(a.u64(3)).read(&*p.platform)?;
        let nanos = UserPtr::<i64>::new(a.u64(3) + 8).read(&*p.platform)?;
        if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
            return_errno!(Errno::EINVAL);
        }
        Some(
            (secs as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    };
    wait(p, a.i32(0), a.u64(1), a.i32(2), timeout)
}
