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
//! vCPUs"); the `redis-io-threads` and `nginx-workers` figures per second
//! of the clients' measured runs (read by [`super::server`]).
//!
//! [`HostStat`] is the whole host's side: the `cpu` line of `/proc/stat`,
//! whose `steal` column counts time the hypervisor *under* this machine
//! gave its CPUs to someone else. `cloister bench linux` prints it for
//! every server run, next to Cloister's network counters: on these
//! machines (themselves VMs) a round that lost CPU time that way is slow
//! for a reason neither guest can see.

use std::collections::BTreeMap;
use std::time::Duration;

/// Scheduler times (of one thread, or summed over threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCpu {
    /// Time it ran on a host CPU.
    pub ran: Duration,
    /// Time it was runnable but waited for a host CPU.
    pub waited: Duration,
}

impl HostCpu {
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

    /// What was spent from `earlier` to `self` (never negative).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            ran: self.ran.saturating_sub(earlier.ran),
            waited: self.waited.saturating_sub(earlier.waited),
        }
    }
}

/// A thread that had run this long by the start reading is a vCPU (QEMU's
/// helper threads run far less): if it is gone at the end, the end reading
/// came while QEMU exited and is thrown away.
pub const BUSY_THREAD: Duration = Duration::from_millis(10);

/// One reading of every thread of a process, by thread id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadTimes(BTreeMap<u32, HostCpu>);

impl FromIterator<(u32, HostCpu)> for ThreadTimes {
    fn from_iter<I: IntoIterator<Item = (u32, HostCpu)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl ThreadTimes {
    /// Reads every thread of process `pid`; `None` if the process or
    /// `/proc` is not there (not Linux, the process is gone).
    pub fn of_process(pid: u32) -> Option<Self> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut times = BTreeMap::new();
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the read.
            if let Some(one) = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| HostCpu::parse_schedstat(&text))
            {
                times.insert(tid, one);
            }
        }
        Some(Self(times))
    }

    /// Reads the QEMU the bench started last (see [`crate::qemu::running_pid`]).
    pub fn of_running_qemu() -> Option<Self> {
        crate::qemu::running_pid().and_then(Self::of_process)
    }

    /// What the threads alive now spent since `earlier` (a thread started
    /// since counts from zero; one that ended since is not counted, so a
    /// short-lived helper thread cannot make the sum go negative). `None`
    /// if a thread that had run [`BUSY_THREAD`] by `earlier` is gone: a
    /// vCPU thread, so QEMU was exiting and the reading is incomplete.
    pub fn since(&self, earlier: &Self) -> Option<HostCpu> {
        let lost_busy = earlier
            .0
            .iter()
            .any(|(tid, t)| t.ran >= BUSY_THREAD && !self.0.contains_key(tid));
        if lost_busy {
            return None;
        }
        let mut total = HostCpu::default();
        for (tid, now) in &self.0 {
            let spent = now.since(earlier.0.get(tid).copied().unwrap_or_default());
            total.ran += spent.ran;
            total.waited += spent.waited;
        }
        Some(total)
    }
}

/// The two readings of one run, taken by a guest's console observer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCpuWindow {
    /// At the program's start report.
    pub start: Option<ThreadTimes>,
    /// At its end report.
    pub end: Option<ThreadTimes>,
}

impl HostCpuWindow {
    /// The program's share: end minus start, if both were read.
    pub fn spent(&self) -> Option<HostCpu> {
        self.end.as_ref()?.since(self.start.as_ref()?)
    }
}

/// The host's CPU time (all CPUs) from the `cpu` line of `/proc/stat`, in
/// clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStat {
    /// user + nice + system + idle + iowait + irq + softirq + steal.
    pub total: u64,
    /// Time the hypervisor under this machine ran something else.
    pub steal: u64,
}

impl HostStat {
    /// Parses the `cpu` line (the first of `/proc/stat`).
    pub fn parse(text: &str) -> Option<Self> {
        let line = text.lines().next()?;
        let mut words = line.split_whitespace();
        if words.next()? != "cpu" {
            return None;
        }
        let v: Vec<u64> = words
            .take(8)
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        if v.len() < 8 {
            return None;
        }
        Some(Self {
            total: v.iter().sum(),
            steal: v[7],
        })
    }

    /// Reads `/proc/stat`; `None` where there is none.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of the host's CPU time stolen from `earlier` to `self`,
    /// in percent; `None` if no time passed.
    pub fn steal_percent_since(&self, earlier: &Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        let steal = self.steal.saturating_sub(earlier.steal);
        Some(100.0 * steal as f64 / total as f64)
    }
}

/// `TcpExt: ListenOverflows` from `/proc/net/netstat`'s text: connections
/// the host's kernel dropped because a listening socket's queue was full
/// (QEMU's forwards, before the runner widened them: `qemu::listen_queue`).
pub fn listen_overflows(netstat: &str) -> Option<u64> {
    let mut lines = netstat.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some(n), Some(v)) = (
            names.strip_prefix("TcpExt:"),
            values.strip_prefix("TcpExt:"),
        ) else {
            continue;
        };
        return n
            .split_whitespace()
            .zip(v.split_whitespace())
            .find(|(name, _)| *name == "ListenOverflows")
            .and_then(|(_, value)| value.parse().ok());
    }
    None
}

/// The host's [`listen_overflows`] now; `None` where it cannot be read.
pub fn listen_overflows_now() -> Option<u64> {
    listen_overflows(&std::fs::read_to_string("/proc/net/netstat").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_overflows_from_proc_net_netstat() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 27469 27470\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(listen_overflows(text), Some(27469));
        assert_eq!(listen_overflows("IpExt: InNoRoutes\nIpExt: 0\n"), None);
        assert_eq!(listen_overflows("TcpExt: ListenDrops\nTcpExt: 3\n"), None);
        assert_eq!(listen_overflows(""), None);
    }

    #[test]
    fn host_steal_from_proc_stat() {
        let a = HostStat::parse("cpu  100 5 20 800 7 0 3 10 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(
            a,
            HostStat {
                total: 945,
                steal: 10
            }
        );
        let b = HostStat::parse("cpu  150 5 30 840 7 0 3 25 0 0").unwrap();
        // 115 ticks passed, 15 of them stolen.
        let pct = b.steal_percent_since(&a).unwrap();
        assert!((pct - 100.0 * 15.0 / 115.0).abs() < 1e-9, "{pct}");
        assert_eq!(a.steal_percent_since(&a), None);
        assert_eq!(HostStat::parse("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(HostStat::parse("cpu  1 2 3"), None);
        assert_eq!(HostStat::parse(""), None);
    }

    fn ms(ran: u64, waited: u64) -> HostCpu {
        HostCpu {
            ran: Duration::from_millis(ran),
            waited: Duration::from_millis(waited),
        }
    }

    #[test]
    fn parses_schedstat_and_subtracts() {
        let a = HostCpu::parse_schedstat("1500000000 250000000 42\n").unwrap();
        assert_eq!(a, ms(1500, 250));
        let b = HostCpu::parse_schedstat("3500000000 1250000000 99").unwrap();
        assert_eq!(b.since(a), ms(2000, 1000));
        assert_eq!(a.since(b), HostCpu::default());
        assert_eq!(HostCpu::parse_schedstat("garbage"), None);
        assert_eq!(HostCpu::parse_schedstat("12"), None);
    }

    #[test]
    fn threads_are_matched_by_id() {
        let start = ThreadTimes([(1, ms(100, 10)), (2, ms(500, 0)), (3, ms(2, 90))].into());
        // Thread 3 (a helper: 2 ms) ended, and its time must not make the
        // sum smaller; thread 4 started.
        let end = ThreadTimes([(1, ms(300, 20)), (2, ms(600, 50)), (4, ms(40, 4))].into());
        assert_eq!(end.since(&start), Some(ms(200 + 100 + 40, 10 + 50 + 4)));
        // A busy thread (a vCPU) gone: QEMU was exiting, no figure.
        let exiting = ThreadTimes([(1, ms(300, 20)), (4, ms(40, 4))].into());
        assert_eq!(exiting.since(&start), None);
        let mut w = HostCpuWindow {
            start: Some(start),
            end: None,
        };
        assert_eq!(w.spent(), None);
        w.end = Some(end);
        assert_eq!(w.spent(), Some(ms(340, 64)));
    }

    #[test]
    fn reads_this_process() {
        // Linux hosts only (the bench needs /proc anyway).
        if std::path::Path::new("/proc/self/task").exists() {
            let me = ThreadTimes::of_process(std::process::id()).unwrap();
            let total = me.since(&ThreadTimes::default()).unwrap();
            assert!(total.ran > Duration::ZERO);
        }
    }
}
