//! The kernel's half of processes: which process each thread belongs to,
//! each process's address space (`mm::space`) and live threads, and the
//! glue of `fork`/`vfork`/`clone` without `CLONE_VM`, `execve` and process
//! exit around the LibOS's half (`libos::fork`, `libos::ptable`,
//! `libos::syscall::exec`).
//!
//! The first process (pid 1, the program `cloister run` started) runs in
//! the kernel's own PML4; its end ends the guest, as a container's init.
//! Every other process has its own space, copy-on-write from its parent's
//! at fork, freed when its last thread exits; it then becomes a zombie in the
//! LibOS's process table until its parent reaps it. Each fork, exec and
//! exit is an audit record.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use libos::error::{Errno, Result};
use libos::fork::ProcessHost;
use libos::process::Process;
use libos::ptable::ExitStatus;
use libos::user::UserPtr;
use spin::Mutex;

use crate::arch::fpu::FpuState;
use crate::arch::user::UserContext;
use crate::mm::space;
use crate::task;

/// A process as the kernel keeps it.
struct Entry {
    process: Arc<Process>,
    /// Its address space (0: the kernel's, for pid 1).
    space: u64,
    /// Live threads.
    threads: usize,
    /// Set by `exit_group` (or a fatal signal): the threads leave at their
    /// next return to the run loop, the last one ends the process.
    exit: Option<ExitStatus>,
    /// Set when the process execs or exits (what a `vfork` parent waits
    /// for).
    released: Arc<AtomicBool>,
    /// While a thread `execve`s: that thread; the others leave.
    execing: Option<u32>,
}

#[derive(Default)]
struct Procs {
    by_pid: BTreeMap<u32, Entry>,
    pid_of: BTreeMap<u32, u32>,
}

/// Processes whose exit (or a thread's `execve`) has begun but whose
/// other threads have not all left: while 0, [`must_leave`] answers
/// without the lock (it runs on every return to user mode).
static EXITING: AtomicUsize = AtomicUsize::new(0);

static PROCS: Mutex<Procs> = Mutex::new(Procs {
    by_pid: BTreeMap::new(),
    pid_of: BTreeMap::new(),
});

fn with<R>(f: impl FnOnce(&mut Procs) -> R) -> R {
    crate::arch::interrupts::without_interrupts(|| f(&mut PROCS.lock()))
}

/// Enters the first process, whose first thread is `tid`.
pub fn register_init(process: Arc<Process>, tid: u32) {
    space::init();
    process.processes.insert_init(process.clone());
    insert(process, tid, 0);
}

fn insert(process: Arc<Process>, tid: u32, root: u64) {
    let pid = process.pid;
    with(|p| {
        p.by_pid.insert(
            pid,
            Entry {
                process,
                space: root,
                threads: 1,
                exit: None,
                released: Arc::new(AtomicBool::new(false)),
                execing: None,
            },
        );
        p.pid_of.insert(tid, pid);
    });
}

/// The process thread `tid` belongs to.
pub fn process_of(tid: u32) -> Option<Arc<Process>> {
    with(|p| {
        let pid = p.pid_of.get(&tid)?;
        p.by_pid.get(pid).map(|e| e.process.clone())
    })
}

/// The running thread's process.
pub fn current_process() -> Option<Arc<Process>> {
    process_of(task::current()?.tid)
}

/// A thread `tid` was created in process `pid` (a thread clone).
pub fn thread_created(pid: u32, tid: u32) {
    with(|p| {
        if let Some(e) = p.by_pid.get_mut(&pid) {
            e.threads += 1;
            p.pid_of.insert(tid, pid);
        }
    });
}

/// Live threads of process `pid`.
pub fn thread_count(pid: u32) -> usize {
    with(|p| p.by_pid.get(&pid).map_or(0, |e| e.threads))
}

/// Whether thread `tid` of process `pid` must leave: the process is
/// ending, or another of its threads is `execve`ing.
pub fn must_leave(pid: u32, tid: u32) -> bool {
    if EXITING.load(Ordering::Acquire) == 0 {
        return false;
    }
    with(|p| {
        p.by_pid
            .get(&pid)
            .is_some_and(|e| e.exit.is_some() || e.execing.is_some_and(|t| t != tid))
    })
}

/// `execve`'s end of the other threads (Linux's `de_thread`): they leave
/// at their next return to the run loop (a blocking wait of theirs ends
/// with `EINTR`) while the caller waits for them.
fn end_other_threads(pid: u32, me: u32) {
    if thread_count(pid) <= 1 {
        return;
    }
    with(|p| {
        if let Some(e) = p.by_pid.get_mut(&pid) {
            e.execing = Some(me);
        }
    });
    EXITING.fetch_add(1, Ordering::AcqRel);
    task::bump_epoch();
    task::block_until(&mut || thread_count(pid) <= 1, None);
    with(|p| {
        if let Some(e) = p.by_pid.get_mut(&pid) {
            e.execing = None;
        }
    });
    EXITING.fetch_sub(1, Ordering::AcqRel);
}

/// The exit status an ended init reports to the host.
fn host_status(status: ExitStatus) -> u8 {
    match status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(sig) => (128 + sig) as u8,
    }
}

/// Ends the calling thread's process with `status` (`exit_group`, a fatal
/// signal): init's end is the guest's. Returns; every thread of the
/// process, the caller too, leaves at its next return to its run loop
/// ([`must_leave`]), where it drops what it holds first.
pub fn exit_process(p: &Process, status: ExitStatus) {
    if p.pid == 1 {
        super::exit_program(host_status(status))
    }
    with(|procs| {
        if let Some(e) = procs.by_pid.get_mut(&p.pid)
            && e.exit.is_none()
        {
            e.exit = Some(status);
            EXITING.fetch_add(1, Ordering::AcqRel);
        }
    });
    task::bump_epoch();
}

/// Ends the process of the running thread for signal `sig` (default
/// action, fatal fault, out of memory); returns as [`exit_process`] does.
pub fn die(sig: u32) {
    match current_process() {
        Some(p) if p.pid != 1 => exit_process(&p, ExitStatus::Signaled(sig)),
        _ => super::exit_program((128 + sig) as u8),
    }
}

/// `exit` of one thread: the calling thread leaves at its next return to
/// its run loop.
pub fn exit_thread() {
    task::current_thread()
        .leaving
        .store(true, Ordering::Release);
}

/// Whether thread `me` of process `p` leaves now (its own `exit`, or
/// [`must_leave`]). Two loads inline; the table is looked at out of line.
#[inline(always)]
pub fn leaves(p: &Process, me: &task::Thread) -> bool {
    me.leaving.load(Ordering::Acquire)
        || (EXITING.load(Ordering::Acquire) != 0 && leaves_locked(p, me))
}

/// [`leaves`] once some process is ending (its arguments are read here,
/// not on the way to the check).
#[inline(never)]
fn leaves_locked(p: &Process, me: &task::Thread) -> bool {
    must_leave(p.pid, me.tid)
}

/// The run loop of thread `me` of process `p` ended: the thread leaves
/// its process; the last thread ends the process with the status
/// [`exit_process`] set (exit 0 for a last thread's `exit`). The caller
/// then drops its references and calls `task::exit_current`: a thread
/// that ended inside a call deeper down would never drop what the frames
/// above held (the process and the thread themselves).
pub fn leave(p: &Process, me: &task::Thread) {
    let last = with(|procs| {
        procs.pid_of.remove(&me.tid);
        let e = procs.by_pid.get_mut(&p.pid)?;
        e.threads = e.threads.saturating_sub(1);
        if e.threads > 0 {
            return None;
        }
        procs.by_pid.remove(&p.pid)
    });
    p.signals.lock().thread_exited(me.tid);
    if let Some(e) = last {
        end_process(e);
    }
    task::bump_epoch();
}

/// The last thread of a process left: free its memory and files, wake a
/// `vfork` parent, and leave a zombie for the parent.
fn end_process(e: Entry) {
    let status = match e.exit {
        Some(status) => {
            EXITING.fetch_sub(1, Ordering::AcqRel);
            status
        }
        None => ExitStatus::Exited(0),
    };
    let pid = e.process.pid;
    crate::audit::record_text(format_args!("process {pid} exited: {status:?}"));
    e.process.release_at_exit();
    space::activate(0);
    if e.space != 0 {
        space::destroy(e.space);
    }
    e.released.store(true, Ordering::Release);
    e.process.processes.exit(pid, status);
}

/// The kernel's half of `fork` for one clone request.
struct KernelHost<'a> {
    platform: &'a Process,
    stack: u64,
    child_tid: Option<u64>,
    clear_child_tid: Option<u64>,
    /// The new thread's address space, between the two calls.
    space: Mutex<u64>,
}

impl ProcessHost for KernelHost<'_> {
    fn fork_thread(&self) -> Result<u32> {
        let parent = task::current_thread();
        // `MAP_SHARED` anonymous pages stay shared: each gets its frame
        // now (a read touches it; `PROT_NONE` pages cannot be and stay
        // private), so both processes map the same one.
        let mut byte = [0u8; 1];
        for r in &self.platform.shared_anonymous_ranges() {
            for page in (r.start..r.end).step_by(crate::mm::PAGE_BYTES as usize) {
                let _ = self.platform.platform.read_user(page, &mut byte);
            }
        }
        // Shared file pages map the file's frames: those mapped now are
        // shared, the others the child maps from the file when touched.
        let shared = self.platform.shared_ranges();
        let root = space::fork_current(&shared).map_err(|_| Errno::ENOMEM)?;
        let mut ctx: UserContext = parent.with_context(|c| *c);
        ctx.rax = 0;
        if self.stack != 0 {
            ctx.rsp = self.stack;
        }
        let Some(mut fpu) = FpuState::initial() else {
            space::destroy(root);
            return Err(Errno::ENOMEM.into());
        };
        fpu.save();
        let tid = match task::spawn(ctx, fpu, parent.fs_base()) {
            Ok(tid) => tid,
            Err(e) => {
                space::destroy(root);
                return Err(match e {
                    task::SpawnError::Limit => Errno::EAGAIN,
                    task::SpawnError::NoMemory => Errno::ENOMEM,
                }
                .into());
            }
        };
        if let Some(child) = task::find(tid) {
            child.set_address_space(root);
            if let Some(addr) = self.clear_child_tid {
                child.clear_child_tid.store(addr, Ordering::Relaxed);
            }
        }
        if let Some(addr) = self.child_tid {
            // In the child's memory: load its space for the write. A bad
            // address is ignored, as Linux does.
            let own = space::current();
            space::activate(root);
            let _ = UserPtr::<u32>::new(addr).write(&*self.platform.platform, tid);
            space::activate(own);
        }
        *self.space.lock() = root;
        Ok(tid)
    }

    fn attach(&self, tid: u32, process: Arc<Process>) {
        insert(process, tid, *self.space.lock());
    }
}

/// What `clone` asked of a new process.
pub struct ForkRequest {
    /// The child's stack pointer (0: the parent's).
    pub stack: u64,
    /// `CLONE_CHILD_SETTID`'s address.
    pub child_tid: Option<u64>,
    /// `CLONE_CHILD_CLEARTID`'s address.
    pub clear_child_tid: Option<u64>,
    /// `CLONE_VFORK`: the parent waits until the child execs or exits.
    pub vfork: bool,
}

/// `fork`, `vfork` and `clone` without `CLONE_VM`: the child's pid.
pub fn fork(p: &Process, r: &ForkRequest) -> Result<usize> {
    let me = task::current_thread();
    let host = KernelHost {
        platform: p,
        stack: r.stack,
        child_tid: r.child_tid,
        clear_child_tid: r.clear_child_tid,
        space: Mutex::new(0),
    };
    let pid = libos::fork::fork(p, me.tid, &host)?;
    crate::audit::record_text(format_args!("process {} forked {pid}", p.pid));
    if r.vfork {
        let flag = with(|procs| procs.by_pid.get(&pid).map(|e| e.released.clone()));
        if let Some(flag) = flag {
            let check = flag.clone();
            task::block_on_flag(flag, &mut || check.load(Ordering::Acquire), None);
        }
    }
    Ok(pid as usize)
}

/// `execve(path, argv, envp)`: replaces the calling process's image. The
/// new image is built first (errors return to the caller); once the old
/// one is gone, a failure kills the process with `SIGSEGV`, as Linux.
pub fn execve(p: &Process, a: &libos::syscall::SyscallArgs) -> Result<usize> {
    let image = libos::syscall::exec::prepare_execve(p, a)?;
    replace_image(p, image)
}

/// `execveat(dirfd, path, argv, envp, flags)`: [`execve`] of a path from a
/// directory fd, or of the file an fd names (`fexecve`).
pub fn execveat(p: &Process, a: &libos::syscall::SyscallArgs) -> Result<usize> {
    let image = libos::syscall::exec::prepare_execveat(p, a)?;
    replace_image(p, image)
}

/// The part of `execve` after the new image is built.
fn replace_image(p: &Process, image: libos::exec::ProcessImage) -> Result<usize> {
    let me = task::current_thread();
    end_other_threads(p.pid, me.tid);
    p.reset_for_exec();
    let rsp = match libos::mm::load_image(p, &image) {
        Ok(rsp) => rsp,
        Err(e) => {
            log::info!("execve: loading the new image failed: {e}");
            // The old image is gone: the process ends with SIGSEGV when
            // the thread returns to its run loop.
            die(11);
            return Ok(0);
        }
    };
    me.set_fs_base(0);
    me.with_context(|c| {
        *c = UserContext {
            rip: image.entry,
            rsp,
            ..UserContext::default()
        }
    });
    if let Some(fpu) = FpuState::initial() {
        fpu.restore();
    }
    crate::audit::record_text(format_args!(
        "process {} executed {}",
        p.pid,
        alloc::string::String::from_utf8_lossy(&image.exe_path)
    ));
    if let Some(flag) = with(|procs| procs.by_pid.get(&p.pid).map(|e| e.released.clone())) {
        flag.store(true, Ordering::Release);
    }
    Ok(0)
}
