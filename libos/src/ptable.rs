//! [`ProcessTable`]: the processes of the guest — pids, parents, process
//! groups, exit statuses and zombies — and the `wait` rules over them.
//!
//! The kernel creates and ends processes (address spaces and threads are
//! its part); this table is the Linux personality of that: who is whose
//! child, what a zombie reports to `wait4`/`waitid`, `SIGCHLD` to the
//! parent at exit, orphans re-parented to init (pid 1), and the process
//! limit that makes a fork bomb get `EAGAIN`. Every [`crate::process::Process`]
//! shares one table (`Process::processes`).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use spin::Mutex;

use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno_with_message;
use crate::signal::SIG_IGN;

/// Linux's `SIGCHLD`.
pub const SIGCHLD: u32 = 17;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit`/`exit_group` with this code.
    Exited(u8),
    /// Killed by this signal.
    Signaled(u32),
}

impl ExitStatus {
    /// The `wstatus` word `wait4` stores (`WEXITSTATUS`/`WTERMSIG` layout).
    pub fn wait_status(self) -> u32 {
        match self {
            Self::Exited(code) => u32::from(code) << 8,
            Self::Signaled(sig) => sig & 0x7f,
        }
    }

    /// `siginfo.si_code` and `si_status` for `waitid` (`CLD_EXITED` = 1,
    /// `CLD_KILLED` = 2).
    pub fn code_and_status(self) -> (i32, i32) {
        match self {
            Self::Exited(code) => (1, i32::from(code)),
            Self::Signaled(sig) => (2, sig as i32),
        }
    }
}

/// Which children a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// Any child (`pid == -1`, `P_ALL`).
    Any,
    /// The child with this pid.
    Pid(u32),
    /// Any child in this process group.
    Group(u32),
}

impl WaitFor {
    /// `wait4`'s `pid` argument for a caller in group `caller_pgid`.
    pub fn from_wait4(pid: i32, caller_pgid: u32) -> Self {
        match pid {
            -1 => Self::Any,
            0 => Self::Group(caller_pgid),
            p if p < 0 => Self::Group(p.unsigned_abs()),
            p => Self::Pid(p as u32),
        }
    }
}

#[derive(Debug)]
enum State {
    Live(Arc<Process>),
    Zombie(ExitStatus),
}

#[derive(Debug)]
struct Entry {
    parent: u32,
    pgid: u32,
    sid: u32,
    state: State,
}

#[derive(Debug)]
struct Inner {
    entries: BTreeMap<u32, Entry>,
    /// The most processes (live and zombie) at once.
    limit: usize,
}

/// The guest's processes (see the module docs).
#[derive(Debug)]
pub struct ProcessTable {
    inner: Mutex<Inner>,
}

/// The default process limit when the kernel sets none.
pub const DEFAULT_PROCESS_LIMIT: usize = 512;

impl Default for ProcessTable {
    fn default() -> Self {
        Self::new(DEFAULT_PROCESS_LIMIT)
    }
}

impl ProcessTable {
    /// An empty table admitting at most `limit` processes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: BTreeMap::new(),
                limit,
            }),
        }
    }

    /// Changes the process limit (the kernel sizes it to guest memory).
    pub fn set_limit(&self, limit: usize) {
        self.inner.lock().limit = limit;
    }

    /// The process limit.
    pub fn limit(&self) -> usize {
        self.inner.lock().limit
    }

    /// Processes in the table, zombies included.
    pub fn count(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Enters the first process (init: no parent, its own group).
    pub fn insert_init(&self, process: Arc<Process>) {
        let pid = process.pid;
        self.inner.lock().entries.insert(
            pid,
            Entry {
                parent: 0,
                pgid: pid,
                sid: pid,
                state: State::Live(process),
            },
        );
    }

    /// Whether one more process fits (`EAGAIN` if not): checked before
    /// the kernel spends memory on a child.
    pub fn check_room(&self) -> Result<()> {
        let inner = self.inner.lock();
        if inner.entries.len() >= inner.limit {
            return_errno_with_message!(Errno::EAGAIN, "process limit reached");
        }
        Ok(())
    }

    /// Enters `child`, forked by `parent` (same process group).
    pub fn add_child(&self, parent: u32, child: Arc<Process>) -> Result<()> {
        let mut inner = self.inner.lock();
        if inner.entries.len() >= inner.limit {
            return_errno_with_message!(Errno::EAGAIN, "process limit reached");
        }
        let (pgid, sid) = inner
            .entries
            .get(&parent)
            .map_or((parent, parent), |e| (e.pgid, e.sid));
        inner.entries.insert(
            child.pid,
            Entry {
                parent,
                pgid,
                sid,
                state: State::Live(child),
            },
        );
        Ok(())
    }

    /// A live process by pid.
    pub fn process(&self, pid: u32) -> Option<Arc<Process>> {
        match &self.inner.lock().entries.get(&pid)?.state {
            State::Live(p) => Some(p.clone()),
            State::Zombie(_) => None,
        }
    }

    /// The parent of `pid` (0 for init or an unknown pid).
    pub fn parent_of(&self, pid: u32) -> u32 {
        self.inner.lock().entries.get(&pid).map_or(0, |e| e.parent)
    }

    /// The process group of `pid`, if it exists.
    pub fn pgid_of(&self, pid: u32) -> Option<u32> {
        self.inner.lock().entries.get(&pid).map(|e| e.pgid)
    }

    /// The session of `pid`, if it exists.
    pub fn sid_of(&self, pid: u32) -> Option<u32> {
        self.inner.lock().entries.get(&pid).map(|e| e.sid)
    }

    /// `setpgid(pid, pgid)` by `caller` (0s already replaced: `pid` is
    /// the caller or its child, `pgid` the new group): `ESRCH` for another
    /// process, `EPERM` for a session leader, a child in another session,
    /// or a group that does not exist in the session.
    pub fn set_pgid(&self, caller: u32, pid: u32, pgid: u32) -> Result<()> {
        let mut inner = self.inner.lock();
        let caller_sid = inner.entries.get(&caller).map(|e| e.sid);
        let Some(e) = inner.entries.get(&pid) else {
            return_errno_with_message!(Errno::ESRCH, "no such process");
        };
        if pid != caller && e.parent != caller {
            return_errno_with_message!(Errno::ESRCH, "not the caller or its child");
        }
        if matches!(e.state, State::Zombie(_)) {
            return_errno_with_message!(Errno::ESRCH, "a zombie");
        }
        if e.sid == pid || Some(e.sid) != caller_sid {
            return_errno_with_message!(Errno::EPERM, "a session leader or another session");
        }
        let sid = e.sid;
        if pgid != pid
            && !inner
                .entries
                .values()
                .any(|o| o.pgid == pgid && o.sid == sid)
        {
            return_errno_with_message!(Errno::EPERM, "no such group in the session");
        }
        if let Some(e) = inner.entries.get_mut(&pid) {
            e.pgid = pgid;
        }
        Ok(())
    }

    /// `setsid()` by `pid`: a new session and group led by it; `EPERM`
    /// if it leads a group already. Returns the new session id.
    pub fn set_sid(&self, pid: u32) -> Result<u32> {
        let mut inner = self.inner.lock();
        let leads = inner.entries.values().any(|e| e.pgid == pid);
        let Some(e) = inner.entries.get_mut(&pid) else {
            return_errno_with_message!(Errno::ESRCH, "no such process");
        };
        if leads {
            return_errno_with_message!(Errno::EPERM, "already a group leader");
        }
        e.pgid = pid;
        e.sid = pid;
        Ok(pid)
    }

    /// The pids of the live processes (not zombies), in order.
    pub fn live_pids(&self) -> alloc::vec::Vec<u32> {
        let inner = self.inner.lock();
        inner
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Live(_)))
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// The live processes a `kill(pid, …)` from `caller` reaches: `pid` >
    /// 0 that process, 0 the caller's group, -1 every process but init
    /// and the caller, < -1 the group `-pid` (zombies match but get
    /// nothing). None matched: `ESRCH`.
    pub fn kill_targets(&self, caller: u32, pid: i32) -> Result<alloc::vec::Vec<Arc<Process>>> {
        let inner = self.inner.lock();
        let caller_pgid = inner.entries.get(&caller).map_or(caller, |e| e.pgid);
        let hit = |p: u32, e: &Entry| match pid {
            -1 => p != 1 && p != caller,
            0 => e.pgid == caller_pgid,
            n if n < 0 => e.pgid == n.unsigned_abs(),
            n => p == n as u32,
        };
        let mut matched = false;
        let mut out = alloc::vec::Vec::new();
        for (&p, e) in &inner.entries {
            if !hit(p, e) {
                continue;
            }
            // A zombie counts as found (the signal has no effect).
            matched = true;
            if let State::Live(process) = &e.state {
                out.push(process.clone());
            }
        }
        if !matched {
            return_errno_with_message!(Errno::ESRCH, "no process to signal");
        }
        Ok(out)
    }

    /// `pid` ended with `status`: it becomes a zombie for its parent to
    /// reap (or goes at once if the parent ignores `SIGCHLD`), the parent
    /// gets `SIGCHLD`, and its children go to init (with their
    /// `PR_SET_PDEATHSIG` signal). Returns the parent's
    /// pid (0 if none).
    pub fn exit(&self, pid: u32, status: ExitStatus) -> u32 {
        let (parent, parent_process) = {
            let mut inner = self.inner.lock();
            let Some(entry) = inner.entries.get(&pid) else {
                return 0;
            };
            let parent = entry.parent;
            // Orphans go to init (init reaps zombies it inherits when it
            // waits, as any parent) and get their parent-death signal.
            for e in inner.entries.values_mut() {
                if e.parent == pid {
                    e.parent = 1;
                    if let State::Live(child) = &e.state {
                        let sig = child
                            .death_signal
                            .load(core::sync::atomic::Ordering::Relaxed);
                        if sig != 0 {
                            // A number `prctl` checked: cannot fail.
                            let _ = child.signals.lock().send_to_process(sig);
                        }
                    }
                }
            }
            let parent_process = match inner.entries.get(&parent).map(|e| &e.state) {
                Some(State::Live(p)) => Some(p.clone()),
                _ => None,
            };
            let auto_reap = parent_process.as_ref().is_none_or(|p| {
                p.signals
                    .lock()
                    .action(SIGCHLD)
                    .is_ok_and(|a| a.handler == SIG_IGN)
            });
            if auto_reap {
                inner.entries.remove(&pid);
            } else if let Some(e) = inner.entries.get_mut(&pid) {
                e.state = State::Zombie(status);
            }
            (parent, parent_process)
        };
        if let Some(p) = parent_process {
            // A valid signal number: cannot fail.
            let _ = p.signals.lock().send_to_process_from(SIGCHLD, pid);
        }
        parent
    }

    /// A wait by `parent` for `target`: `Ok(Some((pid, status)))` for an
    /// exited child (removed from the table when `reap`), `Ok(None)` when
    /// matching children exist but none has exited, `ECHILD` when none
    /// matches.
    pub fn try_wait(
        &self,
        parent: u32,
        target: WaitFor,
        reap: bool,
    ) -> Result<Option<(u32, ExitStatus)>> {
        let mut inner = self.inner.lock();
        let mut any = false;
        let mut found = None;
        for (&pid, e) in &inner.entries {
            let matches = e.parent == parent
                && match target {
                    WaitFor::Any => true,
                    WaitFor::Pid(p) => p == pid,
                    WaitFor::Group(g) => e.pgid == g,
                };
            if !matches {
                continue;
            }
            any = true;
            if let State::Zombie(status) = e.state {
                found = Some((pid, status));
                break;
            }
        }
        if !any {
            return_errno_with_message!(Errno::ECHILD, "no child to wait for");
        }
        if reap && let Some((pid, _)) = found {
            inner.entries.remove(&pid);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
