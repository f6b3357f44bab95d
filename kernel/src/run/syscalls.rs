//! The syscalls that need the kernel's thread state: `exit`, `exit_group`,
//! `gettid`, `set_tid_address`, `set_robust_list`/`get_robust_list`,
//! `arch_prctl`, `clone`/`clone3` (threads here, processes in
//! [`super::procs`]), `fork`, `vfork`, `execve`, `execveat`, and the signal calls of
//! [`super::signal`] (`rt_sigreturn`, `kill`, `tkill`, `tgkill`). They are added to the
//! LibOS's one dispatch table with `SyscallTable::register`.

use libos::error::{Errno, Result};
use libos::process::Process;
use libos::return_errno;
use libos::return_errno_with_message;
use libos::syscall::{Handler, SyscallArgs, SyscallTable};
use libos::user::UserPtr;

use super::procs::{self, ForkRequest};
use super::signal;
use crate::arch::fpu::FpuState;
use crate::task;

/// `(number, name, handler)` of the kernel's family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (15, "rt_sigreturn", signal::sys_rt_sigreturn),
    (56, "clone", sys_clone),
    (57, "fork", sys_fork),
    (58, "vfork", sys_vfork),
    (59, "execve", procs::execve),
    (60, "exit", sys_exit),
    (62, "kill", signal::sys_kill),
    (158, "arch_prctl", sys_arch_prctl),
    (186, "gettid", sys_gettid),
    (200, "tkill", signal::sys_tkill),
    (218, "set_tid_address", sys_set_tid_address),
    (231, "exit_group", sys_exit_group),
    (234, "tgkill", signal::sys_tgkill),
    (273, "set_robust_list", sys_set_robust_list),
    (274, "get_robust_list", sys_get_robust_list),
    (322, "execveat", procs::execveat),
    (435, "clone3", sys_clone3),
];

/// Adds the family to `table`.
pub fn register(table: &mut SyscallTable) {
    for &(nr, _, handler) in HANDLERS {
        table.register(nr, handler);
    }
}

fn sys_gettid(_: &Process, _: &SyscallArgs) -> Result<usize> {
    Ok(task::current_thread().tid as usize)
}

/// `exit_group(status)`: the process ends when the caller returns to its
/// run loop (the value returned is never seen).
fn sys_exit_group(p: &Process, a: &SyscallArgs) -> Result<usize> {
    procs::exit_process(p, libos::ptable::ExitStatus::Exited(a.u64(0) as u8));
    Ok(0)
}

/// `exit(status)`: ends the calling thread; the last thread's exit ends the
/// process with `status`. `clear_child_tid` is zeroed and woken first (what
/// `pthread_join` waits on).
fn sys_exit(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if procs::thread_count(p.pid) <= 1 {
        procs::exit_process(p, libos::ptable::ExitStatus::Exited(a.u64(0) as u8));
        return Ok(0);
    }
    let t = task::current_thread();
    let ctid = t
        .clear_child_tid
        .load(core::sync::atomic::Ordering::Relaxed);
    if ctid != 0 {
        // A bad address is ignored, as Linux does.
        if UserPtr::<u32>::new(ctid).write(&*p.platform, 0).is_ok() {
            super::futex_wake(p, ctid, 1);
        }
    }
    drop(t);
    procs::exit_thread();
    Ok(0)
}

fn sys_set_tid_address(_: &Process, a: &SyscallArgs) -> Result<usize> {
    let t = task::current_thread();
    t.clear_child_tid
        .store(a.u64(0), core::sync::atomic::Ordering::Relaxed);
    Ok(t.tid as usize)
}

/// `sizeof(struct robust_list_head)`.
const ROBUST_LIST_HEAD_BYTES: usize = 24;

fn sys_set_robust_list(_: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.usize(1) != ROBUST_LIST_HEAD_BYTES {
        return_errno!(Errno::EINVAL);
    }
    task::current_thread()
        .robust_list
        .store(a.u64(0), core::sync::atomic::Ordering::Relaxed);
    Ok(0)
}

fn sys_get_robust_list(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let pid = a.i32(0);
    let t = task::current_thread();
    if pid != 0 && pid as u32 != t.tid {
        return_errno!(Errno::ESRCH);
    }
    a.ptr::<u64>(1).write(
        &*p.platform,
        t.robust_list.load(core::sync::atomic::Ordering::Relaxed),
    )?;
    a.ptr::<u64>(2)
        .write(&*p.platform, ROBUST_LIST_HEAD_BYTES as u64)?;
    Ok(0)
}

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;

/// `arch_prctl`: FS base (TLS) set and get. GS is not supported (`EINVAL`):
/// glibc and the programs here never set it.
fn sys_arch_prctl(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let t = task::current_thread();
    match a.i32(0) {
        ARCH_SET_FS => {
            let base = a.u64(1);
            if base >= crate::mm::user::USER_END {
                return_errno!(Errno::EPERM);
            }
            t.set_fs_base(base);
            Ok(0)
        }
        ARCH_GET_FS => {
            a.ptr::<u64>(1).write(&*p.platform, t.fs_base())?;
            Ok(0)
        }
        ARCH_SET_GS | ARCH_GET_GS => {
            return_errno_with_message!(Errno::EINVAL, "GS base is not supported")
        }
        _ => return_errno!(Errno::EINVAL),
    }
}

/// Clone flags.
mod flags {
    pub const CLONE_VM: u64 = 0x100;
    pub const CLONE_FS: u64 = 0x200;
    pub const CLONE_FILES: u64 = 0x400;
    pub const CLONE_SIGHAND: u64 = 0x800;
    pub const CLONE_VFORK: u64 = 0x4000;
    pub const CLONE_THREAD: u64 = 0x10000;
    pub const CLONE_SYSVSEM: u64 = 0x40000;
    pub const CLONE_SETTLS: u64 = 0x80000;
    pub const CLONE_PARENT_SETTID: u64 = 0x100000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
    pub const CLONE_DETACHED: u64 = 0x400000;
    pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
    /// What a thread needs: one address space, files, handlers, thread group.
    pub const THREAD: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
    /// Flags we honour on top of [`THREAD`].
    pub const SUPPORTED: u64 = THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED
        | CLONE_CHILD_SETTID;
    /// The exit-signal byte of `clone`'s flags.
    pub const CSIGNAL: u64 = 0xff;
    /// Flags honoured for a new process (`CLONE_VM` only with
    /// `CLONE_VFORK`, where the copy stands in for the sharing).
    pub const FORK_SUPPORTED: u64 = CLONE_VM
        | CLONE_VFORK
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_CHILD_SETTID
        | CLONE_DETACHED;
}

/// What a new thread gets.
struct CloneRequest {
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

fn do_clone(p: &Process, r: &CloneRequest) -> Result<usize> {
    use flags::*;
    let f = r.flags & !CSIGNAL;
    if f & (CLONE_VM | CLONE_THREAD) == 0 || f & (CLONE_VFORK | CLONE_THREAD) == CLONE_VFORK {
        return clone_process(p, r);
    }
    if f & THREAD != THREAD {
        return_errno_with_message!(Errno::EINVAL, "unsupported mix of clone flags");
    }
    if f & !SUPPORTED != 0 {
        return_errno_with_message!(Errno::EINVAL, "unsupported clone flags");
    }
    let parent = task::current_thread();
    let mut ctx = parent.with_context(|c| *c);
    ctx.rax = 0;
    if r.stack != 0 {
        ctx.rsp = r.stack;
    }
    let mut fpu = FpuState::initial().ok_or(Errno::ENOMEM)?;
    fpu.save();
    let fs = if f & CLONE_SETTLS != 0 {
        r.tls
    } else {
        parent.fs_base()
    };
    // Linux: EAGAIN at the thread limit, ENOMEM without memory (glibc's
    // pthread_create reports both as EAGAIN).
    let tid = task::spawn(ctx, fpu, fs).map_err(|e| match e {
        task::SpawnError::Limit => Errno::EAGAIN,
        task::SpawnError::NoMemory => Errno::ENOMEM,
    })?;
    p.signals.lock().thread_created(parent.tid, tid);
    procs::thread_created(p.pid, tid);
    let child = task::find(tid).ok_or(Errno::ESRCH)?;
    if f & CLONE_CHILD_CLEARTID != 0 {
        child
            .clear_child_tid
            .store(r.child_tid, core::sync::atomic::Ordering::Relaxed);
    }
    if f & CLONE_PARENT_SETTID != 0 {
        UserPtr::<u32>::new(r.parent_tid).write(&*p.platform, tid)?;
    }
    if f & CLONE_CHILD_SETTID != 0 {
        UserPtr::<u32>::new(r.child_tid).write(&*p.platform, tid)?;
    }
    Ok(tid as usize)
}

/// A clone that makes a process: `fork` (`SIGCHLD` only), `vfork`
/// (`CLONE_VM | CLONE_VFORK`: the child gets a copy, the parent waits for
/// its exec or exit), glibc's fork (`CLONE_CHILD_SETTID |
/// CLONE_CHILD_CLEARTID`).
fn clone_process(p: &Process, r: &CloneRequest) -> Result<usize> {
    use flags::*;
    let f = r.flags & !CSIGNAL;
    if f & !FORK_SUPPORTED != 0 {
        return_errno_with_message!(Errno::EINVAL, "unsupported flags for a new process");
    }
    let pid = procs::fork(
        p,
        &ForkRequest {
            stack: r.stack,
            child_tid: (f & CLONE_CHILD_SETTID != 0).then_some(r.child_tid),
            clear_child_tid: (f & CLONE_CHILD_CLEARTID != 0).then_some(r.child_tid),
            vfork: f & CLONE_VFORK != 0,
        },
    )?;
    if f & CLONE_PARENT_SETTID != 0 {
        UserPtr::<u32>::new(r.parent_tid).write(&*p.platform, pid as u32)?;
    }
    Ok(pid)
}

/// `fork()`
fn sys_fork(p: &Process, _: &SyscallArgs) -> Result<usize> {
    procs::fork(
        p,
        &ForkRequest {
            stack: 0,
            child_tid: None,
            clear_child_tid: None,
            vfork: false,
        },
    )
}

/// `vfork()`: a fork whose parent waits until the child execs or exits.
fn sys_vfork(p: &Process, _: &SyscallArgs) -> Result<usize> {
    procs::fork(
        p,
        &ForkRequest {
            stack: 0,
            child_tid: None,
            clear_child_tid: None,
            vfork: true,
        },
    )
}

/// `clone(flags, stack, parent_tid, child_tid, tls)` (x86-64 order).
fn sys_clone(p: &Process, a: &SyscallArgs) -> Result<usize> {
    do_clone(
        p,
        &CloneRequest {
            flags: a.u64(0),
            stack: a.u64(1),
            parent_tid: a.u64(2),
            child_tid: a.u64(3),
            tls: a.u64(4),
        },
    )
}

/// `clone3(args, size)`: `struct clone_args` of at least 64 bytes
/// (`CLONE_ARGS_SIZE_VER0`); `set_tid` and `cgroup` must be unused.
fn sys_clone3(p: &Process, a: &SyscallArgs) -> Result<usize> {
    const VER0: usize = 64;
    let size = a.usize(1);
    if !(VER0..=4096).contains(&size) {
        return_errno!(Errno::EINVAL);
    }
    let mut raw = [0u8; 88];
    let n = size.min(raw.len());
    p.platform.read_user(a.u64(0), &mut raw[..n])?;
    let field = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    // flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
    // tls, set_tid, set_tid_size, cgroup
    // `pidfd` only matters with CLONE_PIDFD, which is refused as an
    // unsupported flag; `set_tid` and `cgroup` need namespaces and cgroups.
    if field(9) != 0 || field(10) != 0 {
        return_errno_with_message!(Errno::EINVAL, "clone3: set_tid and cgroup are unsupported");
    }
    let (stack, stack_size) = (field(5), field(6));
    let top = if stack == 0 {
        0
    } else {
        stack.checked_add(stack_size).ok_or(Errno::EINVAL)?
    };
    do_clone(
        p,
        &CloneRequest {
            flags: field(0),
            stack: top,
            parent_tid: field(3),
            child_tid: field(2),
            tls: field(7),
        },
    )
}
