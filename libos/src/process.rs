//! [`Process`]: the per-process state syscall handlers work on — the
//! platform, the file system, the fd table, the working directory, the
//! umask, the address space ([`Vm`]), futexes, resource limits,
//! signal bookkeeping and interval timers, the network stack, and the
//! table of all processes ([`ProcessTable`]). The kernel creates the first
//! (with the console on fds 0–2 via [`Process::open_console_stdio`]), the
//! others with [`Process::fork`] (see [`crate::fork`]), and passes the
//! calling thread's process to `crate::syscall::SyscallTable::dispatch`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use crate::error::Result;
use crate::fd::FdTable;
use crate::fs::file::open_flags::O_RDWR;
use crate::fs::{InodeFile, InodeRef, Vfs};
use crate::futex::FutexTable;
use crate::itimer::IntervalTimers;
use crate::mm::Vm;
use crate::net::{NetConfig, NetStack};
use crate::platform::Platform;
use crate::ptable::ProcessTable;
use crate::rlimit::Rlimits;
use crate::signal::Signals;

/// A process as the fs syscalls see it.
pub struct Process {
    /// The machine.
    pub platform: Arc<dyn Platform>,
    /// The file system.
    pub vfs: Arc<Vfs>,
    /// Open files.
    pub fds: Mutex<FdTable>,
    /// Working directory.
    pub cwd: Mutex<InodeRef>,
    /// The address space's areas and heap; hold it while changing page
    /// tables (see `crate::mm::ops`).
    pub vm: Mutex<Vm>,
    /// Futex wait queues (private futexes, and shared ones on memory no
    /// other process can map).
    pub futexes: FutexTable,
    /// The guest's queues of shared futexes on `MAP_SHARED` memory,
    /// keyed by shared object (one table, shared by every process).
    pub shared_futexes: Arc<FutexTable>,
    /// The guest's record locks (one table, shared by every process).
    pub locks: Arc<crate::fs::locks::LockTable>,
    /// The process id `getpid` reports (1: the first process).
    pub pid: u32,
    /// Every process of the guest (shared by all of them).
    pub processes: Arc<ProcessTable>,
    /// `prctl(PR_SET_PDEATHSIG)`: sent to this process when its parent
    /// exits (0: none; not inherited by a fork).
    pub death_signal: AtomicU32,
    /// Resource limits.
    pub rlimits: Mutex<Rlimits>,
    /// Signal actions, masks and alternate stacks.
    pub signals: Signals,
    /// Counts the times a call returned `EAGAIN` to the program (a
    /// "would block"): for files that keep no event count, edge-triggered
    /// epoll treats each as a falling edge, so the next readiness is
    /// reported (see `ipc::epoll`).
    pub would_block_epoch: core::sync::atomic::AtomicU64,
    /// Thread names set with `prctl(PR_SET_NAME)`, by tid.
    pub thread_names: Mutex<alloc::collections::BTreeMap<u32, [u8; 16]>>,
    /// The network stack its sockets live on.
    pub net: Arc<NetStack>,
    /// The nice value (`setpriority`), -20..=19.
    pub nice: core::sync::atomic::AtomicI32,
    /// `ITIMER_REAL`, `ITIMER_VIRTUAL`, `ITIMER_PROF`.
    pub itimers: IntervalTimers,
    /// `timer_create`'s timers (not inherited by a fork, deleted by
    /// `execve`).
    pub ptimers: crate::ptimer::PosixTimers,
    /// Buffers for copies between user memory and files (reused).
    pub bounce: crate::bounce::BouncePool,
    /// User and group ids (inherited by a fork, kept by `execve`).
    pub creds: Mutex<crate::cred::Credentials>,
    /// The program it runs: `(path, arguments each followed by NUL)`, set
    /// when an image is loaded, inherited by a fork (`/proc/<pid>/exe`
    /// and `cmdline`).
    pub image: Mutex<(Vec<u8>, Vec<u8>)>,
    /// The guest's vDSO, mapped at every exec when set (the kernel sets
    /// it; host tests run without one, as a kernel without a usable TSC).
    pub vdso: Option<crate::vdso::VdsoRef>,
    umask: AtomicU32,
}

impl core::fmt::Debug for Process {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Process")
            .field("fds", &self.fds)
            .field("umask", &self.umask())
            .field("vm", &self.vm)
            .finish_non_exhaustive()
    }
}

impl Process {
    /// A process with no open files, at `/`, umask 022, and a network
    /// stack of its own with only the loopback interface.
    pub fn new(platform: Arc<dyn Platform>, vfs: Arc<Vfs>) -> Self {
        let mut seed = [0u8; 8];
        platform.fill_bytes(&mut seed);
        let config = NetConfig {
            random_seed: u64::from_le_bytes(seed),
            ..NetConfig::default()
        };
        let net = Arc::new(NetStack::new(None, config, platform.clone()));
        Self::with_net(platform, vfs, net)
    }

    /// Like [`Process::new`], with the network stack `net` (the kernel
    /// builds it over its network card and polls it).
    pub fn with_net(platform: Arc<dyn Platform>, vfs: Arc<Vfs>, net: Arc<NetStack>) -> Self {
        let root = vfs.root().clone();
        Self {
            platform,
            vfs,
            fds: Mutex::new(FdTable::new()),
            cwd: Mutex::new(root),
            vm: Mutex::new(Vm::default()),
            futexes: FutexTable::new(),
            shared_futexes: Arc::new(FutexTable::new()),
            locks: Arc::new(crate::fs::locks::LockTable::new()),
            pid: 1,
            processes: Arc::new(ProcessTable::default()),
            death_signal: AtomicU32::new(0),
            rlimits: Mutex::new(Rlimits::default()),
            signals: Signals::new(),
            would_block_epoch: core::sync::atomic::AtomicU64::new(0),
            thread_names: Mutex::new(alloc::collections::BTreeMap::new()),
            net,
            umask: AtomicU32::new(0o022),
            creds: Mutex::new(crate::cred::Credentials::default()),
            image: Mutex::new((Vec::new(), Vec::new())),
            vdso: None,
            nice: core::sync::atomic::AtomicI32::new(0),
            itimers: IntervalTimers::default(),
            ptimers: crate::ptimer::PosixTimers::default(),
            bounce: crate::bounce::BouncePool::new(),
        }
    }

    /// The state of a child `fork` makes, with pid `pid` and its first
    /// thread `pid` a copy of the caller's thread `parent_tid`: the same
    /// open file descriptions (offsets shared), working directory, umask, ids,
    /// limits, nice value, areas ([`Vm`]; the kernel copies the pages)
    /// and signal actions; the child's thread inherits the caller's mask.
    /// Pending signals, interval timers and futex waiters are not
    /// inherited (as Linux).
    pub fn fork(&self, pid: u32, parent_tid: u32) -> Self {
        let signals = Signals::new();
        *signals.lock() = self.signals.lock().forked(parent_tid, pid);
        let mut names = alloc::collections::BTreeMap::new();
        if let Some(name) = self.thread_names.lock().get(&parent_tid) {
            names.insert(pid, *name);
        }
        Self {
            platform: self.platform.clone(),
            vfs: self.vfs.clone(),
            fds: Mutex::new(self.fds.lock().clone()),
            cwd: Mutex::new(self.cwd()),
            vm: Mutex::new(self.vm.lock().clone()),
            futexes: FutexTable::new(),
            shared_futexes: self.shared_futexes.clone(),
            locks: self.locks.clone(),
            pid,
            processes: self.processes.clone(),
            death_signal: AtomicU32::new(0),
            rlimits: Mutex::new(self.rlimits.lock().clone()),
            signals,
            would_block_epoch: core::sync::atomic::AtomicU64::new(0),
            thread_names: Mutex::new(names),
            net: self.net.clone(),
            umask: AtomicU32::new(self.umask()),
            creds: Mutex::new(self.creds.lock().clone()),
            image: Mutex::new(self.image.lock().clone()),
            vdso: self.vdso.clone(),
            nice: core::sync::atomic::AtomicI32::new(self.nice.load(Ordering::Relaxed)),
            itimers: IntervalTimers::default(),
            ptimers: crate::ptimer::PosixTimers::default(),
            bounce: crate::bounce::BouncePool::new(),
        }
    }

    /// The `MAP_SHARED` anonymous areas: a fork shares their pages with
    /// the child instead of making them copy-on-write.
    pub fn shared_anonymous_ranges(&self) -> alloc::vec::Vec<core::ops::Range<u64>> {
        self.vm
            .lock()
            .areas()
            .filter(|v| v.shared && matches!(v.backing, crate::mm::Backing::Anonymous))
            .map(|v| v.start..v.end)
            .collect()
    }

    /// The `MAP_SHARED` areas (anonymous and file): a fork shares their
    /// pages instead of copying them on write.
    pub fn shared_ranges(&self) -> alloc::vec::Vec<core::ops::Range<u64>> {
        self.vm
            .lock()
            .areas()
            .filter(|v| v.shared)
            .map(|v| v.start..v.end)
            .collect()
    }

    /// What `execve` changes besides the image (which
    /// `crate::mm::load_image` replaces): close-on-exec fds are closed,
    /// handled signals go back to their default action, thread names and
    /// POSIX timers go.
    pub fn reset_for_exec(&self) {
        self.fds.lock().close_on_exec();
        self.ptimers.clear();
        self.signals.lock().reset_for_exec();
        self.thread_names.lock().clear();
    }

    /// At exit: closes every fd (pipe ends see their peer go), drops the
    /// areas' bookkeeping and the idle copy buffers (256 KiB each, which a
    /// zombie kept), removes its `/proc/<pid>`; the kernel frees the pages.
    pub fn release_at_exit(&self) {
        let fds = core::mem::take(&mut *self.fds.lock());
        drop(fds);
        self.locks.release_process(self.pid, None);
        self.vm.lock().clear();
        crate::fs::procpid::remove(&self.vfs, self.pid);
        self.bounce.clear();
    }

    /// Makes the signals of the interval timers that have expired pending
    /// for the process (`SIGALRM`, `SIGVTALRM`, `SIGPROF`), and those of
    /// the POSIX timers (`SI_TIMER`, to the process or a thread); the
    /// kernel calls it before returning to user mode and while threads
    /// wait.
    #[inline]
    pub fn raise_expired_timers(&self) {
        // The common case, on every return to user mode: nothing armed —
        // two loads inline, without the call and frame of the rest.
        if self.timers_armed() {
            self.raise_armed_timers();
        }
    }

    /// Whether an interval or POSIX timer is armed (two loads): `false`
    /// means [`Self::raise_expired_timers`] has nothing to do.
    #[inline]
    pub fn timers_armed(&self) -> bool {
        self.ptimers.is_armed() || self.itimers.is_armed()
    }

    /// [`Self::raise_expired_timers`] once a timer is armed.
    #[inline(never)]
    fn raise_armed_timers(&self) {
        for f in self.ptimers.due(&*self.platform) {
            let info = crate::signal::TimerSignal {
                timer_id: f.timer_id,
                value: f.value,
                overrun: f.missed,
                tid: f.tid,
            };
            // The signal was checked at timer_create: this cannot fail.
            if let Ok(overrun) = self.signals.lock().send_timer_signal(f.signo, info) {
                self.ptimers.note_overrun(f.timer_id, overrun);
            }
        }
        let due = self.itimers.due(&*self.platform);
        if due == 0 {
            return;
        }
        let mut signals = self.signals.lock();
        for sig in 1..64 {
            if due & (1 << sig) != 0 {
                // The numbers are valid signals: this cannot fail.
                let _ = signals.send_to_process(sig);
            }
        }
    }

    /// Opens fds 0, 1 and 2 as the host's standard streams ([`StdStream`]:
    /// terminals or pipes as `config` says, output and error apart).
    ///
    /// [`StdStream`]: crate::fs::stdio::StdStream
    pub fn open_stdio(
        &self,
        config: &crate::fs::stdio::StdioConfig,
        input: Arc<crate::fs::stdio::ConsoleInput>,
    ) -> Result<()> {
        let mut fds = self.fds.lock();
        for stream in crate::fs::stdio::StdStream::standard(config, input) {
            fds.insert(stream, false)?;
        }
        Ok(())
    }

    /// Opens `/dev/console` read-write on fds 0, 1 and 2.
    pub fn open_console_stdio(&self) -> Result<()> {
        let root = self.vfs.root().clone();
        let console = self.vfs.resolve(&root, b"/dev/console", true)?;
        let file = Arc::new(InodeFile::new(self.vfs.clone(), console, O_RDWR));
        let mut fds = self.fds.lock();
        for _ in 0..3 {
            fds.insert(file.clone(), false)?;
        }
        Ok(())
    }

    /// The file-creation mask.
    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Relaxed)
    }

    /// Sets the mask (`& 0o777`), returning the old one.
    pub fn set_umask(&self, mask: u32) -> u32 {
        self.umask.swap(mask & 0o777, Ordering::Relaxed)
    }

    /// The working directory.
    pub fn cwd(&self) -> InodeRef {
        self.cwd.lock().clone()
    }
}

/// A process over a fresh mock platform and the standard devices, for
/// tests.
#[cfg(test)]
pub(crate) fn mock_process() -> (Arc<crate::platform::mock::MockPlatform>, Process) {
    let m = Arc::new(crate::platform::mock::MockPlatform::new());
    let vfs = Arc::new(Vfs::new(
        m.clone(),
        crate::fs::DeviceRegistry::standard(m.clone(), m.clone()),
    ));
    (m.clone(), Process::new(m, vfs))
}
