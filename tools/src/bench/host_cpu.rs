//! How much of the host's CPUs a guest got while its program ran: the
//! QEMU process's threads' `/proc/PID/task/TID/schedstat` (time on a host
//! CPU, time runnable but waiting for one), read when the guest reports
//! the program's start and again at its end.
//!
//! On a shared host this tells the guest's limits from the host's: a vCPU
//! thread that waits is one the host did not run (other processes had the
//! cores); one that neither runs nor waits is halted (the guest idles). The
//! `smp` figure reports both as "cores" (seconds per second of program
//! time), next to the program's time (docs/PERFORMANCE.md, "Threads on two
//! vCPUs").

use std::time::Duration;

/// The summed scheduler times of every thread of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCpu {
    /// Time its threads ran on a host CPU.
    pub ran: Duration,
    /// Time its threads were runnable but waited for a host CPU.
    pub waited: Duration,
}

impl HostCpu {
    /// Reads every thread of process `pid`; `None` if the process or
    /// `/proc` is not there (not Linux, the process is gone).
    pub fn of_process(pid: u32) -> Option<Self> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut total = Self::default();
        for task in tasks.flatten() {
            // A thread may end between the listing and the read.
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat"))
                && let Some(one) = Self::parse_schedstat(&text)
            {
                total.ran += one.ran;
                total.waited += one.waited;
            }
        }
        Some(total)
    }

    /// Reads the QEMU the bench started last (see [`crate::qemu::running_pid`]).
    pub fn of_running_qemu() -> Option<Self> {
        crate::qemu::running_pid().and_then(Self::of_process)
    }

    /// Parses one `schedstat` line: nanoseconds on a CPU, nanoseconds
    /// waiting on a run queue, time slices.
    pub fn parse_schedstat(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let ran: u64 = words.next()?.parse().ok()?;
        let waited: u64 = words.next()?.parse().ok()?;
        Some(Self {
            ran: Duration::from_nanos(ran),
            waited: Duration::from_nanos(waited),
        })
    }

    /// What was spent from `earlier` to `self` (zero where a thread that
    /// ended took its time with it).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            ran: self.ran.saturating_sub(earlier.ran),
            waited: self.waited.saturating_sub(earlier.waited),
        }
    }
}

/// The two readings of one run, taken by a guest's console observer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCpuWindow {
    /// At the program's start report.
    pub start: Option<HostCpu>,
    /// At its end report.
    pub end: Option<HostCpu>,
}

impl HostCpuWindow {
    /// The program's share: end minus start, if both were read.
    pub fn spent(&self) -> Option<HostCpu> {
        Some(self.end?.since(self.start?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_subtracts() {
        let a = HostCpu::parse_schedstat("1500000000 250000000 42\n").unwrap();
        assert_eq!(a.ran, Duration::from_millis(1500));
        assert_eq!(a.waited, Duration::from_millis(250));
        let b = HostCpu::parse_schedstat("3500000000 1250000000 99").unwrap();
        assert_eq!(
            b.since(a),
            HostCpu {
                ran: Duration::from_secs(2),
                waited: Duration::from_secs(1)
            }
        );
        // A thread that ended takes its time away: never negative.
        assert_eq!(a.since(b), HostCpu::default());
        assert_eq!(HostCpu::parse_schedstat("garbage"), None);
        assert_eq!(HostCpu::parse_schedstat("12"), None);
    }

    #[test]
    fn a_window_needs_both_readings() {
        let one = HostCpu {
            ran: Duration::from_secs(1),
            waited: Duration::ZERO,
        };
        let mut w = HostCpuWindow {
            start: Some(one),
            end: None,
        };
        assert_eq!(w.spent(), None);
        w.end = Some(HostCpu {
            ran: Duration::from_secs(3),
            waited: Duration::from_secs(1),
        });
        assert_eq!(w.spent().unwrap().ran, Duration::from_secs(2));
    }

    #[test]
    fn reads_this_process() {
        // Linux hosts only (the bench needs /proc anyway).
        if std::path::Path::new("/proc/self/task").exists() {
            let me = HostCpu::of_process(std::process::id()).unwrap();
            assert!(me.ran > Duration::ZERO);
        }
    }
}
