//! The Linux system-call layer.
//!
//! - [`table`]: [`SyscallTable`], the one dispatch table from syscall
//!   number to handler, and [`SyscallTable::dispatch`], the one place a
//!   handler's `Result<usize>` becomes the `rax` value (`-errno` on error).
//!   Unsupported numbers return `-ENOSYS` and are reported to a
//!   [`SyscallObserver`] (which the kernel uses to log once by name and to
//!   audit); every completed call is reported too, for `--trace`.
//! - [`names`]: the name of every x86-64 syscall number.
//! - [`args`]: [`SyscallArgs`], the raw registers with typed accessors.
//! - [`fs`]: the file-system family (open/read/write/stat/getdents64/…).
//! - [`ipc`]: `pipe`, `pipe2`, `eventfd`, `eventfd2`.
//! - [`poll`]: `poll`, `ppoll` over `FileLike::poll` readiness.
//! - [`epoll`]: `epoll_create(1)`, `epoll_ctl`, `epoll_wait`, `epoll_pwait(2)`.
//! - [`net`](mod@net): sockets (`socket`, `bind`, `connect`, `accept4`,
//!   `sendmsg`, …) over `crate::net`.
//! - [`time`]: `clock_gettime`, `clock_getres`, `gettimeofday`, `time`.
//! - [`system`]: `uname`, `getrandom`.
//! - [`cred`]: user and group ids and supplementary groups, get and set.
//! - [`futex`]: `futex` over `crate::futex::FutexTable`.
//! - [`exec`]: `execve`'s reading of its arguments (the kernel swaps the image).
//! - [`wait`]: `wait4`, `waitid`, `getppid` over `crate::ptable`.
//! - [`process`]: pids, process groups, rlimits, `getrusage`, `times`,
//!   `sysinfo`.
//! - [`sched`]: `sched_yield`, affinity, `nanosleep`, `clock_nanosleep`.
//! - [`sched_policy`]: the `sched_*scheduler`/`*param`/`*priority*` calls
//!   (every thread is `SCHED_OTHER`).
//! - [`signal`]: `rt_sigaction`, `rt_sigprocmask`, `rt_sigpending`,
//!   `sigaltstack` (bookkeeping; no delivery yet).
//! - [`sigwait`]: the `rt_sigtimedwait` call.
//! - [`mm`]: `brk`, `mmap`, `munmap`, `mprotect`, `mremap`, `msync`,
//!   `mincore`, `madvise` over `crate::mm`.
//!
//! Families implemented by the kernel (threads: `clone`, `exit`, `gettid`,
//! `arch_prctl`, …; `execve`) add their handlers to the same table with
//! [`SyscallTable::register`].

pub mod args;
pub mod arity;
pub mod cred;
pub mod epoll;
pub mod exec;
pub mod fs;
pub mod futex;
pub mod ipc;
pub mod itimer;
pub mod misc;
pub mod missing;
pub mod mm;
pub mod names;
pub mod net;
pub mod poll;
pub mod process;
pub mod ptimer;
pub mod sched;
pub mod sched_policy;
pub mod signal;
pub mod sigwait;
pub mod system;
pub mod table;
pub mod time;
pub mod wait;

pub use args::SyscallArgs;
pub use names::{SYSCALL_COUNT, syscall_name, syscall_number};
pub use table::{Handler, SyscallObserver, SyscallTable};

/// Every family's `(number, name, handler)` list, in registration order.
pub fn families() -> [&'static [(usize, &'static str, Handler)]; 19] {
    [
        fs::HANDLERS,
        ipc::HANDLERS,
        poll::HANDLERS,
        epoll::HANDLERS,
        time::HANDLERS,
        system::HANDLERS,
        cred::HANDLERS,
        mm::HANDLERS,
        futex::HANDLERS,
        process::HANDLERS,
        sched::HANDLERS,
        sched_policy::HANDLERS,
        misc::HANDLERS,
        itimer::HANDLERS,
        ptimer::HANDLERS,
        signal::HANDLERS,
        sigwait::HANDLERS,
        net::HANDLERS,
        wait::HANDLERS,
    ]
}

#[cfg(test)]
mod robustness;
#[cfg(test)]
pub(crate) mod testing;
