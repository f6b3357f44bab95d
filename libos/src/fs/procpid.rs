//! `/proc/<pid>/{stat,status,cmdline,exe,fd,maps}` for the guest's live
//! processes, and `/proc/self` as the caller's own.
//!
//! The VFS holds plain directories, so the entries are kept in step with
//! the [`ProcessTable`](crate::ptable::ProcessTable) when a path under `/proc` is looked up
//! ([`on_lookup`], called by the syscall layer for every path argument):
//! `/proc` itself (what `ps` lists) gets a directory per live process and
//! loses those of processes that are gone; `/proc/<pid>` is made or
//! dropped likewise, its `exe` link follows the program the process runs
//! now, and `/proc/<pid>/fd` is refilled with one link per open fd. The
//! files generate their contents on each read from the process, which
//! they hold weakly. `/proc/self/…` (a path that starts so) is rewritten
//! to the caller's `/proc/<pid>/…`; a relative path reaching `self` from
//! `/proc` still finds the link to process 1.
//!
//! Not tracked, so reported as 0: per-process CPU times, start time and
//! resident size in `stat` (`VmRSS` is left out of `status`); the state,
//! which is not tracked either, reads `S`. Zombies have no entry.

use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::inode::{InodeType, SyntheticFile};
use super::vfs::Vfs;
use crate::error::Result;
use crate::process::Process;

/// What renders one `/proc/<pid>` file from its process.
type Render = fn(&Process) -> Vec<u8>;

/// A `/proc/<pid>` file generated from its process.
struct PidFile {
    process: Weak<Process>,
    render: Render,
}

impl SyntheticFile for PidFile {
    fn contents(&self) -> Vec<u8> {
        self.process
            .upgrade()
            .map(|p| (self.render)(&p))
            .unwrap_or_default()
    }
}

/// The files of a `/proc/<pid>` directory and what renders them.
const FILES: [(&str, Render); 4] = [
    ("cmdline", |p| p.image.lock().1.clone()),
    ("maps", |p| p.vm.lock().maps_text()),
    ("status", status),
    ("stat", stat),
];

/// Rewrites `/proc/self…` to the caller's pid and brings the entries the
/// path reaches up to date (see the module docs). Failing to make an
/// entry (no room in the file system) leaves the lookup to fail on its own.
pub fn on_lookup(p: &Process, mut path: Vec<u8>) -> Vec<u8> {
    let Some(rest) = path.strip_prefix(b"/proc") else {
        return path;
    };
    let rest = rest.to_vec();
    if rest.is_empty() || rest == b"/" {
        let _ = sync_all(p);
        return path;
    }
    if let Some(after) = rest.strip_prefix(b"/self")
        && (after.is_empty() || after.starts_with(b"/"))
    {
        path = [&b"/proc/"[..], format!("{}", p.pid).as_bytes(), after].concat();
    }
    let tail = &path[b"/proc/".len()..];
    let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || tail.get(digits).is_some_and(|&b| b != b'/') {
        return path;
    }
    let Some(pid) = core::str::from_utf8(&tail[..digits])
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
    else {
        return path;
    };
    let _ = sync_one(p, pid, tail[digits..].starts_with(b"/fd"));
    path
}

/// Makes `/proc/<pid>` for every live process and removes the others.
fn sync_all(p: &Process) -> Result<()> {
    let live = p.processes.live_pids();
    let root = p.vfs.root().clone();
    let proc_dir = p.vfs.resolve(&root, b"/proc", true)?;
    let mut stale = Vec::new();
    proc_dir.visit_dir(0, |name, _, ty| {
        let pid = core::str::from_utf8(name)
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(pid) = pid
            && ty == InodeType::Directory
            && !live.contains(&pid)
        {
            stale.push(pid);
        }
        true
    })?;
    for pid in stale {
        remove(&p.vfs, pid);
    }
    for pid in live {
        sync_one(p, pid, false)?;
    }
    Ok(())
}

/// Makes (or refreshes) `/proc/<pid>` if `pid` is live, removes it if
/// not; refills its `fd` directory when `fds`.
fn sync_one(p: &Process, pid: u32, fds: bool) -> Result<()> {
    let Some(target) = p.processes.process(pid) else {
        remove(&p.vfs, pid);
        return Ok(());
    };
    let vfs = &p.vfs;
    let root = vfs.root().clone();
    let dir = format!("/proc/{pid}");
    if vfs
        .resolve(&root, format!("{dir}/stat").as_bytes(), false)
        .is_err()
    {
        vfs.mkdir_all(format!("{dir}/fd").as_bytes(), 0o555)?;
        for (name, render) in FILES {
            let file = Arc::new(PidFile {
                process: Arc::downgrade(&target),
                render,
            });
            vfs.add_synthetic(&root, format!("{dir}/{name}").as_bytes(), 0o444, file)?;
        }
    }
    let exe = format!("{dir}/exe");
    let program = target.image.lock().0.clone();
    let current = vfs.resolve(&root, exe.as_bytes(), false).ok();
    if current.and_then(|l| l.read_link().ok()).as_deref() != Some(program.as_slice()) {
        let _ = vfs.unlink(&root, exe.as_bytes());
        vfs.symlink(&root, &program, exe.as_bytes())?;
    }
    if fds {
        refill_fds(vfs, &dir, &target)?;
    }
    Ok(())
}

/// Replaces the links in `DIR/fd` with one per open fd of `target`.
fn refill_fds(vfs: &Vfs, dir: &str, target: &Process) -> Result<()> {
    let root = vfs.root().clone();
    let fd_dir = format!("{dir}/fd");
    let old = vfs.resolve(&root, fd_dir.as_bytes(), true)?;
    let mut names = Vec::new();
    old.visit_dir(2, |name, _, _| {
        names.push(name.to_vec());
        true
    })?;
    for name in names {
        let _ = vfs.unlink(&old, &name);
    }
    let open: Vec<(i32, Arc<dyn crate::fd::FileLike>)> = {
        let table = target.fds.lock();
        table
            .open_fds()
            .filter_map(|fd| Some((fd, table.get(fd).ok()?)))
            .collect()
    };
    for (fd, file) in open {
        let link = match file.inode() {
            Some(inode) if inode.is_dir() => vfs.path_of(inode).unwrap_or_default(),
            _ => {
                let m = file.metadata()?;
                let kind = match m.file_type {
                    InodeType::Fifo => "pipe",
                    InodeType::Socket => "socket",
                    _ => "anon_inode",
                };
                format!("{kind}:[{}]", m.ino).into_bytes()
            }
        };
        vfs.symlink(&old, &link, format!("{fd}").as_bytes())?;
    }
    Ok(())
}

/// Removes `/proc/<pid>` and what is in it.
/// Removes `/proc/<pid>` (the process ended: its entry goes at once, not
/// at the next listing of `/proc`, or every process that looked itself up
/// would leave its entry behind).
pub fn remove(vfs: &Vfs, pid: u32) {
    let root = vfs.root().clone();
    let dir = format!("/proc/{pid}");
    let Ok(fd_dir) = vfs.resolve(&root, format!("{dir}/fd").as_bytes(), true) else {
        return;
    };
    let mut names = Vec::new();
    let _ = fd_dir.visit_dir(2, |name, _, _| {
        names.push(name.to_vec());
        true
    });
    for name in names {
        let _ = vfs.unlink(&fd_dir, &name);
    }
    let _ = vfs.rmdir(&root, format!("{dir}/fd").as_bytes());
    for name in ["cmdline", "maps", "status", "stat", "exe"] {
        let _ = vfs.unlink(&root, format!("{dir}/{name}").as_bytes());
    }
    let _ = vfs.rmdir(&root, dir.as_bytes());
}

/// The command name: the main thread's `PR_SET_NAME`, else the program's
/// file name (at most 15 bytes, as Linux's `comm`).
fn comm(p: &Process) -> String {
    if let Some(name) = p.thread_names.lock().get(&p.pid) {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        return String::from_utf8_lossy(&name[..len]).into_owned();
    }
    let exe = p.image.lock().0.clone();
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(&exe);
    String::from_utf8_lossy(&base[..base.len().min(15)]).into_owned()
}

/// The state `status` and `stat` show: not tracked, `S`.
const STATE: (char, &str) = ('S', "sleeping");

/// Bytes of address space the process maps.
fn vsize(p: &Process) -> u64 {
    p.vm.lock().areas().map(|v| v.len()).sum()
}

/// `/proc/<pid>/status`.
fn status(p: &Process) -> Vec<u8> {
    let c = p.creds.lock().clone();
    let (s, word) = STATE;
    let groups: Vec<String> = c.groups.iter().map(|g| format!("{g}")).collect();
    // The thread whose id is the process's (its first), as Linux shows.
    let sig = p.signals.lock().status_masks(p.pid);
    format!(
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{s} ({word})\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{}\n\
         Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nGroups:\t{}\nVmSize:\t{:8} kB\nThreads:\t{}\n\
         SigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\nSigCgt:\t{:016x}\n",
        comm(p),
        p.umask(),
        p.processes.parent_of(p.pid),
        c.uid.real,
        c.uid.effective,
        c.uid.saved,
        c.uid.effective,
        c.gid.real,
        c.gid.effective,
        c.gid.saved,
        c.gid.effective,
        groups.join(" "),
        vsize(p) / 1024,
        p.signals.lock().thread_count(p.pid),
        sig[0],
        sig[1],
        sig[2],
        sig[3],
        sig[4],
        pid = p.pid,
    )
    .into_bytes()
}

/// `/proc/<pid>/stat`: Linux's 52 fields.
fn stat(p: &Process) -> Vec<u8> {
    let (s, _) = STATE;
    let pid = p.pid;
    let t = &p.processes;
    let nice = p.nice.load(core::sync::atomic::Ordering::Relaxed);
    format!(
        "{pid} ({}) {s} {} {} {} 0 -1 4194560 0 0 0 0 0 0 0 0 {} {nice} {} 0 0 {} 0 \
         18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        comm(p),
        t.parent_of(pid),
        t.pgid_of(pid).unwrap_or(pid),
        t.sid_of(pid).unwrap_or(pid),
        20 + nice,
        p.signals.lock().thread_count(pid),
        vsize(p),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests;
