//! What the kernel does around every syscall: the `--trace` line, the
//! count of unsupported syscalls (logged once per name at `info`, summed
//! up at exit by [`unsupported_summary`]), and `/proc/1` answers.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use libos::fs::procfs::ProcessInfo;
use libos::syscall::{SyscallArgs, SyscallObserver, syscall_name};

use super::platform::KernelPlatform;

/// Logs unsupported syscalls and, with `trace`, every syscall; with
/// `learn`, reports the absolute paths lookups did not find.
#[derive(Debug)]
pub struct Observer {
    trace: bool,
    /// User memory, for the path of a failed lookup (with `learn`).
    learn: Option<Arc<KernelPlatform>>,
}

impl Observer {
    /// `trace`: print a line per syscall on COM1. `learn`: print
    /// `CLOISTER_MISSING=<path>` for each lookup that failed with `ENOENT`
    /// (`cloister run`'s learning pass, `tools/src/run/learn.rs`).
    pub fn new(trace: bool, learn: Option<Arc<KernelPlatform>>) -> Self {
        Self { trace, learn }
    }
}

/// Unsupported syscalls the program made: (number, calls), in first-call
/// order. Few distinct numbers ever appear, so a list is enough.
static UNSUPPORTED: spin::Mutex<Vec<(usize, u64)>> = spin::Mutex::new(Vec::new());

/// The control line `cloister run` turns into its exit summary:
/// `CLOISTER_UNSUPPORTED=rseq:1,nr_999:2` (`None` when there were none).
pub fn unsupported_summary() -> Option<String> {
    let calls = UNSUPPORTED.lock();
    if calls.is_empty() {
        return None;
    }
    let mut line = String::from("CLOISTER_UNSUPPORTED=");
    for (i, (nr, count)) in calls.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = match syscall_name(*nr) {
            Some(name) => write!(line, "{sep}{name}:{count}"),
            None => write!(line, "{sep}nr_{nr}:{count}"),
        };
    }
    Some(line)
}

impl SyscallObserver for Observer {
    fn unsupported(&self, nr: usize, name: Option<&'static str>, first_time: bool) {
        if first_time {
            log::info!(
                "unsupported syscall {} ({nr}): returning -ENOSYS",
                name.unwrap_or("<unknown>")
            );
        }
        let mut calls = UNSUPPORTED.lock();
        if let Some((_, count)) = calls.iter_mut().find(|(n, _)| *n == nr) {
            *count = count.saturating_add(1);
        } else if calls.len() < 64 && calls.try_reserve(1).is_ok() {
            // Bounded by the numbers a program can make up: past 64
            // distinct ones, new ones are not counted rather than grow.
            calls.push((nr, 1));
        }
    }

    fn wants_completions(&self) -> bool {
        self.learn.is_some() || self.trace
    }

    fn completed(&self, args: &SyscallArgs, ret: isize) {
        if let Some(mem) = &self.learn
            && let Some(path) = libos::syscall::missing::missing_path(args, ret, &**mem)
            && !path.contains(&b'\n')
        {
            crate::kprintln!("CLOISTER_MISSING={}", String::from_utf8_lossy(&path));
        }
        if !self.trace {
            return;
        }
        let tid = crate::task::current().map_or(0, |t| t.tid);
        let name = syscall_name(args.nr).unwrap_or("syscall");
        let a = args.raw;
        if ret < 0 && ret > -4096 {
            crate::kprintln!(
                "[trace] {tid} {name}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = -1 (errno {})",
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                -ret
            );
        } else {
            crate::kprintln!(
                "[trace] {tid} {name}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {ret:#x}",
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5]
            );
        }
    }
}

/// `/proc/1/environ` and `/proc/meminfo` answers.
#[derive(Debug)]
pub struct ProcInfo {
    envp: Vec<Vec<u8>>,
}

impl ProcInfo {
    /// For a program started with `envp`.
    pub fn new(envp: Vec<Vec<u8>>) -> Self {
        Self { envp }
    }
}

fn nul_joined(list: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in list {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}

impl ProcessInfo for ProcInfo {
    fn environ(&self) -> Vec<u8> {
        nul_joined(&self.envp)
    }

    fn memory_bytes(&self) -> (u64, u64) {
        crate::mm::frames::memory_bytes()
    }
}
