//! `cloister bench linux`: Cloister against a Linux guest on the same QEMU.
//!
//! For every figure ([`super::figures`]) both guests get the same jobs and
//! the same [`QemuSettings`]; each round runs every job on Cloister, then
//! on Linux (A B A B …), so slow drifts of a shared machine hit both sides
//! alike. The report is a Markdown table ([`super::compare`]) headed by
//! the date, the machine, the QEMU settings and the command.

use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Result, bail};

use super::cloister_guest::{self, Variant};
use super::compare::{Samples, Side};
use super::figures::{self, Figure, FigureJob};
use super::guest::{Guest, QemuSettings};
use super::host_cpu;
use super::linux_guest::LinuxGuest;
use super::linux_kernel;
use super::server;

/// What to measure and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The figures, in table order.
    pub figures: Vec<Figure>,
    /// Runs of every job on each guest.
    pub rounds: usize,
    /// The QEMU settings both guests get.
    pub settings: QemuSettings,
    /// The TSC frequency the Linux kernel is told (`tsc_early_khz`).
    pub tsc_khz: u64,
    /// Further words for the Linux guest's kernel command line
    /// (`--linux-args`, e.g. `norandmaps`).
    pub linux_args: Vec<String>,
    /// Skip Cloister even if it can run.
    pub linux_only: bool,
    /// Boot this Cloister kernel instead of building the release kernel
    /// (to compare two builds, each against the Linux guest).
    pub kernel: Option<PathBuf>,
    /// Also run Cloister with the audit log on (a third column).
    pub audit: bool,
    /// Also run this other Cloister kernel ELF ("Cloister-B"), in the same
    /// rounds: a before/after comparison of two builds in one session.
    pub against: Option<PathBuf>,
    /// Connections of the server figures' clients (`redis-benchmark -c`,
    /// `wrk -c`).
    pub clients: u32,
    /// The command line to print with the table.
    pub command: String,
}

/// `<target>/cloister-bench`: the kernel package, extracted kernel, inputs
/// and images. The target directory is `CARGO_TARGET_DIR`, else the one
/// this program was built into (`<target>/{debug,release}/cloister`), else
/// the workspace's `target/`.
pub fn cache_dir() -> PathBuf {
    let from_exe = || {
        let exe = std::env::current_exe().ok()?;
        let profile_dir = exe.parent()?;
        let name = profile_dir.file_name()?.to_str()?;
        if matches!(name, "debug" | "release") {
            profile_dir.parent().map(PathBuf::from)
        } else {
            None
        }
    };
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(from_exe)
        .unwrap_or_else(|| crate::build::workspace_root().join("target"))
        .join("cloister-bench")
}

/// Runs the comparison and prints the report; returns the samples.
pub fn run(opts: &Options) -> Result<Samples> {
    if opts.rounds < 2 {
        bail!("use at least 2 rounds: no ratio comes from a single run");
    }
    super::host_deps::ensure()?;
    if opts.settings.tap {
        crate::qemu::tap::available()?;
        // Ctrl-C skips destructors: stop QEMU and delete the namespaces.
        let _ = ctrlc::set_handler(|| {
            crate::qemu::kill_running();
            crate::qemu::tap::remove_all();
            std::process::exit(130);
        });
    }
    let cache = cache_dir();
    let kernel = linux_kernel::fetch(&cache.join("linux"))?;
    eprintln!(
        "bench: Linux guest {} {} ({})",
        kernel.package,
        kernel.version,
        kernel.vmlinux.display()
    );
    let mut samples = Samples::default();
    let mut guests: Vec<(Side, Box<dyn Guest>)> = Vec::new();
    if opts.linux_only {
        for f in &opts.figures {
            samples.pend(f.name(), "Cloister", "not run (--linux-only)".into());
        }
    } else {
        match cloister_guest::new(
            &opts.settings,
            cache.join("images"),
            opts.kernel.as_deref(),
            Variant::Plain,
        ) {
            Ok(g) => guests.push((Side::Cloister, g)),
            Err(e) => {
                eprintln!("bench: no Cloister guest ({e:#}); measuring the Linux side only");
                for f in &opts.figures {
                    samples.pend(f.name(), "Cloister", format!("{e:#}"));
                }
            }
        }
        if opts.audit && !guests.is_empty() {
            let audited = cloister_guest::new(
                &opts.settings,
                cache.join("images"),
                opts.kernel.as_deref(),
                Variant::Audited,
            )?;
            guests.push((Side::Audited, audited));
        }
        if let (Some(other), false) = (&opts.against, guests.is_empty()) {
            let b = cloister_guest::new(
                &opts.settings,
                cache.join("images"),
                Some(other),
                Variant::Against,
            )?;
            guests.push((Side::Against, b));
        }
    }
    guests.push((
        Side::Linux,
        Box::new(
            LinuxGuest::new(
                kernel.clone(),
                opts.settings.clone(),
                opts.tsc_khz,
                cache.join("images"),
            )
            .with_extra_args(opts.linux_args.clone()),
        ),
    ));

    let mut jobs: Vec<FigureJob> = Vec::new();
    for &f in &opts.figures {
        jobs.extend(figures::jobs(f, &cache.join("inputs"), opts.clients)?);
    }
    // Prepare every image first; a guest that cannot build one for a
    // figure sits that figure out.
    let mut skip: Vec<(usize, Figure)> = Vec::new();
    for (gi, (side, guest)) in guests.iter_mut().enumerate() {
        for fj in &jobs {
            if let Err(e) = guest.prepare(&fj.job) {
                if *side == Side::Linux {
                    return Err(e);
                }
                samples.fail(fj.figure.name(), guest.name(), format!("{e:#}"));
                skip.push((gi, fj.figure));
            }
        }
    }
    // Cloister's network stall counters per server run.
    let mut counters: Vec<String> = Vec::new();
    for round in 1..=opts.rounds {
        for fj in &jobs {
            for (gi, (side, guest)) in guests.iter().enumerate() {
                if skip.contains(&(gi, fj.figure)) {
                    continue;
                }
                let host_before = host_cpu::HostStat::now();
                let overflows_before = host_cpu::listen_overflows_now();
                let result = match &fj.client {
                    Some(client) => server::run_served(
                        guest.as_ref(),
                        &fj.job,
                        client,
                        opts.settings.timeout,
                        opts.settings.tap,
                    ),
                    None => guest.run(&fj.job),
                };
                let result =
                    result.and_then(|r| figures::measure(fj, guest.name(), &r).map(|m| (r, m)));
                match result {
                    Ok((r, metrics)) => {
                        eprintln!(
                            "bench: round {round}/{} {:<9} {:<8} {:.2} s",
                            opts.rounds,
                            fj.job.name,
                            guest.name(),
                            r.total.as_secs_f64()
                        );
                        for (m, v) in metrics {
                            samples.add(*side, m, v);
                        }
                        let steal = host_before
                            .zip(host_cpu::HostStat::now())
                            .and_then(|(a, b)| b.steal_percent_since(&a));
                        if fj.job.serve.is_some() {
                            let net = r.net_counters.as_deref().unwrap_or("(none: not Cloister)");
                            let steal = steal.map_or("?".to_string(), |p| format!("{p:.1} %"));
                            let overflows = overflows_before
                                .zip(host_cpu::listen_overflows_now())
                                .map_or("?".to_string(), |(a, b)| b.saturating_sub(a).to_string());
                            eprintln!(
                                "bench:   host steal: {steal}; listen overflows: {overflows}; net counters: {net}"
                            );
                            counters.push(format!(
                                "- {}, round {round}, {}: host steal {steal}; listen overflows {overflows}; {net}",
                                fj.job.name,
                                guest.name()
                            ));
                        }
                    }
                    Err(e) => {
                        eprintln!(
                            "bench: round {round} {} {}: {e:#}",
                            fj.job.name,
                            guest.name()
                        );
                        if *side == Side::Linux {
                            return Err(e);
                        }
                        samples.fail(fj.figure.name(), guest.name(), format!("{e:#}"));
                    }
                }
            }
        }
    }
    let both = guests.iter().any(|(s, _)| *s == Side::Cloister);
    println!("{}", report_header(opts, &kernel, both));
    println!("{}", samples.table());
    println!(
        "Each run's value ÷ its median, in round order (a round that is slow for every guest points at the host; bold: below {} of the median, or above its inverse for times):\n\n{}",
        super::compare::SLOW_ROUND,
        samples.rounds_table()
    );
    for (figure, guest, reason) in samples.failures.iter().chain(&samples.pending) {
        println!("- {guest}, {figure}: {reason}");
    }
    if !counters.is_empty() {
        println!(
            "\nPer server run: the host's CPU time stolen by the hypervisor under it (`/proc/stat`), and Cloister's network stall counters (the kernel's `net counters:` line; docs/PERFORMANCE.md explains both):\n"
        );
        for line in &counters {
            println!("{line}");
        }
    }
    Ok(samples)
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The machine: CPU model, CPU count, OS, QEMU version.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown OS".into());
    let qemu = first_line(Command::new(crate::qemu::qemu_binary()).arg("--version"));
    format!("{cpus}-vCPU {model} ({os}), {qemu}")
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(i64::try_from(secs / 86_400).unwrap_or(0))
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn report_header(opts: &Options, kernel: &linux_kernel::LinuxKernel, both: bool) -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let b = opts.against.as_ref().map_or(String::new(), |k| {
        format!(
            "; Cloister-B is the kernel `{}` in the same rounds, with the same image and settings",
            k.display()
        )
    });
    let order = if both && opts.audit {
        "Cloister, Cloister with the audit log on (`audit=16777216`, a fresh key per run, guest RAM in a shared host file; each log verified after its run) and Linux alternating"
    } else if both {
        "Cloister and Linux alternating"
    } else {
        "Linux only"
    };
    format!(
        "- Date: {}. Machine: {} (load average at the end: {load}).\n\
         - QEMU for both guests: {} (accelerator {}), COM1 and COM2, `isa-debug-exit`.\n\
         - Linux guest: Debian {} {}, `{}`, busybox-static init. Cloister: release kernel, `log=info{}`.\n\
         - Command: `{}` ({} rounds, {order}{b}).\n{}",
        today(),
        machine_description(),
        opts.settings.describe(),
        opts.settings.accel.name().to_uppercase(),
        kernel.package,
        kernel.version,
        super::linux_guest::cmdline(opts.tsc_khz, &opts.linux_args),
        // CLOISTER_KERNEL_ARGS (e.g. platform.mmio=emulate) reaches
        // Cloister's command line only.
        crate::qemu::kernel_args_from_env()
            .iter()
            .map(|w| format!(" {w}"))
            .collect::<String>(),
        // A vCPU count from the environment (not `--cpus`): say so.
        match crate::qemu::cpus_from_env() {
            Ok(n) if n > 1 && !opts.command.contains("--cpus") => {
                format!("CLOISTER_CPUS={n} {}", opts.command)
            }
            _ => opts.command.clone(),
        },
        opts.rounds,
        if opts.figures.iter().any(|f| f.is_server()) {
            server_line(opts.settings.tap, &opts.settings.machine)
        } else {
            String::new()
        }
    )
}

/// The report's line on the server figures' network and machines.
fn server_line(tap: bool, machine: &str) -> String {
    let microvm = crate::qemu::net::is_microvm(machine);
    let device = if microvm {
        "virtio-net-device"
    } else {
        "virtio-net-pci"
    };
    let machines = if microvm {
        String::from(
            "Linux runs on `microvm,acpi=on` (its kernel finds the virtio-mmio card only through ACPI), Cloister on `microvm,acpi=off`",
        )
    } else {
        format!(
            "both run on `{machine}` (Linux on `{}`), the card on PCI bus 0",
            super::linux_guest::server_machine(machine)
        )
    };
    if tap {
        format!(
            "- Server figures: each run gets a network namespace of its own with a TAP device (10.77.0.1/24); both guests get `-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device {device},netdev=n0` (no vhost) with QEMU started in the namespace, the guest at 10.77.0.2/24, and a QMP socket; {machines}; the clients run in the namespace (`ip netns exec`).\n"
        )
    } else {
        format!(
            "- Server figures: both guests get `-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:PORT-:GUEST -device {device},netdev=n0` and a QMP socket; {machines}; the clients run on the host.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_line_names_the_machine_and_the_card() {
        let micro = server_line(false, "microvm");
        assert!(
            micro.contains("virtio-net-device") && micro.contains("microvm,acpi=off"),
            "{micro}"
        );
        let q35 = server_line(true, "q35");
        assert!(
            q35.contains("virtio-net-pci") && q35.contains("`q35,acpi=on`") && q35.contains("tap0"),
            "{q35}"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_780), "2026-11-23");
    }
}
