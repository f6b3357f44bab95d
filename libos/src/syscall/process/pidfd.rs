//! `pidfd_open(pid, flags)`: an fd that refers to a process and becomes
//! readable (`POLLIN`) when it ends — what `os.pidfd_open` and event loops
//! that wait for children without `SIGCHLD` use. Held by the process's
//! identity, not its number: a pid used again by another process does not
//! make the fd refer to it. Not done: `pidfd_send_signal`, `pidfd_getfd`,
//! `waitid(P_PIDFD)` (each `ENOSYS`/`EINVAL`).

use alloc::sync::{Arc, Weak};
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};

use super::super::SyscallArgs;
use crate::error::{Errno, Result};
use crate::fd::{FileLike, PollEvents};
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::fs::{InodeType, Metadata};
use crate::ipc::next_anon_ino;
use crate::process::Process;
use crate::ptable::ProcessTable;
use crate::return_errno;

/// `PIDFD_NONBLOCK` (= `O_NONBLOCK`), the one flag.
const PIDFD_NONBLOCK: u32 = O_NONBLOCK;

/// An open pidfd.
#[derive(Debug)]
pub struct PidFd {
    pid: u32,
    process: Weak<Process>,
    table: Arc<ProcessTable>,
    flags: AtomicU32,
    ino: u64,
}

impl PidFd {
    /// Whether the process it refers to has ended (a zombie, reaped, or
    /// its pid now another process's).
    fn ended(&self) -> bool {
        match (self.process.upgrade(), self.table.process(self.pid)) {
            (Some(mine), Some(live)) => !Arc::ptr_eq(&mine, &live),
            _ => true,
        }
    }
}

impl FileLike for PidFd {
    fn metadata(&self) -> Result<Metadata> {
        Ok(Metadata::unnamed(self.ino, InodeType::Regular, 0o600))
    }
    fn poll(&self) -> PollEvents {
        if self.ended() {
            PollEvents::IN | PollEvents::RDNORM
        } else {
            PollEvents::empty()
        }
    }
    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }
    fn set_status_flags(&self, flags: u32) -> Result<()> {
        crate::net::socket::merge_nonblock(&self.flags, flags);
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `pidfd_open(pid, flags)`: `EINVAL` for a pid ≤ 0 or a flag other than
/// `PIDFD_NONBLOCK`, `ESRCH` for no live process; the fd is close-on-exec,
/// as Linux makes it.
pub fn sys_pidfd_open(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (pid, flags) = (a.i32(0), a.u32(1));
    if pid <= 0 || flags & !PIDFD_NONBLOCK != 0 {
        return_errno!(Errno::EINVAL);
    }
    let pid = pid as u32;
    let Some(target) = p.processes.process(pid) else {
        return_errno!(Errno::ESRCH);
    };
    let file = PidFd {
        pid,
        process: Arc::downgrade(&target),
        table: p.processes.clone(),
        flags: AtomicU32::new(O_RDWR | (flags & PIDFD_NONBLOCK)),
        ino: next_anon_ino(),
    };
    let fd = p.fds.lock().insert(Arc::new(file), true)?;
    Ok(fd as usize)
}
