//! [`Rlimits`]: a process's resource limits (`getrlimit`/`setrlimit`/
//! `prlimit64`), with Linux's defaults for a process started by init.

use crate::error::{Errno, Result};
use crate::return_errno;

/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// Number of resources (`RLIM_NLIMITS`).
pub const RLIMIT_COUNT: usize = 16;
/// `RLIMIT_STACK`
pub const RLIMIT_STACK: usize = 3;
/// `RLIMIT_NOFILE`
pub const RLIMIT_NOFILE: usize = 7;
/// Largest `RLIMIT_NOFILE` (`fs.nr_open`).
pub const NR_OPEN: u64 = 1 << 20;

/// A soft and a hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `rlim_cur`
    pub soft: u64,
    /// `rlim_max`
    pub hard: u64,
}

const fn both(v: u64) -> Rlimit {
    Rlimit { soft: v, hard: v }
}

/// The limits of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimits {
    limits: [Rlimit; RLIMIT_COUNT],
}

impl Default for Rlimits {
    /// Linux's defaults: unlimited except `STACK` 8 MiB soft, `CORE` 0
    /// soft, `NPROC` and `SIGPENDING` 4096, `NOFILE` 1024 / 1048576,
    /// `MEMLOCK` 8 MiB, `MSGQUEUE` 819200, `NICE` and `RTPRIO` 0.
    fn default() -> Self {
        let inf = both(RLIM_INFINITY);
        let mut limits = [inf; RLIMIT_COUNT];
        limits[RLIMIT_STACK] = Rlimit {
            soft: 8 << 20,
            hard: RLIM_INFINITY,
        };
        limits[4] = Rlimit {
            soft: 0,
            hard: RLIM_INFINITY,
        };
        limits[6] = both(4096);
        limits[RLIMIT_NOFILE] = Rlimit {
            soft: 1024,
            hard: NR_OPEN,
        };
        limits[8] = both(8 << 20);
        limits[11] = both(4096);
        limits[12] = both(819_200);
        limits[13] = both(0);
        limits[14] = both(0);
        Self { limits }
    }
}

impl Rlimits {
    /// The limit of `resource` (`EINVAL` if there is no such resource).
    pub fn get(&self, resource: u32) -> Result<Rlimit> {
        match self.limits.get(resource as usize) {
            Some(l) => Ok(*l),
            None => return_errno!(Errno::EINVAL),
        }
    }

    /// Sets `resource` as root may: `EINVAL` if soft > hard or no such
    /// resource, `EPERM` for `NOFILE` above `fs.nr_open`.
    pub fn set(&mut self, resource: u32, new: Rlimit) -> Result<()> {
        let Some(slot) = self.limits.get_mut(resource as usize) else {
            return_errno!(Errno::EINVAL);
        };
        if new.soft > new.hard {
            return_errno!(Errno::EINVAL);
        }
        if resource as usize == RLIMIT_NOFILE && new.hard > NR_OPEN {
            return_errno!(Errno::EPERM);
        }
        *slot = new;
        Ok(())
    }
}
