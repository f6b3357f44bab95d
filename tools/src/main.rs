//! The `cloister` command: run a Linux program in Cloister, boot it, run its
//! in-guest tests, measure it, and read audit regions.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tools::build::{KernelBuild, build_kernel};
use tools::qemu::{self, Accel, QemuConfig};

/// Cloister: a Rust library OS for confidential VMs.
#[derive(Debug, Parser)]
#[command(name = "cloister", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an unmodified Linux x86-64 program in Cloister under QEMU; exits
    /// with the program's status (125 if Cloister could not report one).
    ///
    /// Example: cargo cloister run -- /bin/busybox echo hello
    Run(Box<tools::run::RunArgs>),
    /// Boot Cloister under QEMU and show it running.
    Boot {
        /// Accelerator: tcg (default, or CLOISTER_ACCEL) or kvm.
        #[arg(long)]
        accel: Option<String>,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 256)]
        mem: u32,
        /// Extra kernel command-line words (e.g. `log=debug hz=250`).
        #[arg(long, default_value = "")]
        append: String,
    },
    /// Run the in-guest kernel tests (as `cargo test` does).
    Ktest {
        /// Run only tests whose name contains this.
        #[arg(default_value = "")]
        pattern: String,
        /// Accelerator: tcg (default, or CLOISTER_ACCEL) or kvm.
        #[arg(long)]
        accel: Option<String>,
    },
    /// Measure Cloister (see docs/PERFORMANCE.md).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Decode or verify an audit-log region image.
    Audit(tools::audit_cli::AuditArgs),
    /// Check attestation reports against an audit image (docs/CVM.md).
    Attest(tools::attest::AttestArgs),
    /// Random system calls against the kernel, one boot per seed; exits 1
    /// if any seed brought the kernel down (docs/TESTING.md).
    Fuzz {
        /// How many seeds.
        #[arg(long, default_value_t = 10)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        start: u64,
        /// Calls per seed.
        #[arg(long = "calls-per-seed", alias = "calls", default_value_t = 100_000)]
        calls_per_seed: u64,
        /// Stop a seed's guest after this many seconds, or after a fifth of
        /// it without output (a hang is a kernel failure).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 256)]
        mem: u32,
    },
    /// Write an image that plain QEMU boots (kernel.elf, initramfs.cpio and
    /// run.sh) for the program a cloister.toml manifest describes; with
    /// --igvm, also an IGVM file for an SEV-SNP launch (docs/CVM.md).
    #[command(alias = "image")]
    Build {
        /// The manifest (see `cloister run --manifest`).
        manifest: std::path::PathBuf,
        /// The folder to write.
        #[arg(short, long, value_name = "DIR")]
        output: std::path::PathBuf,
        /// Boot this kernel ELF instead of building the release kernel.
        #[arg(long, value_name = "ELF")]
        kernel: Option<std::path::PathBuf>,
        /// Also write an IGVM image for an AMD SEV-SNP launch (QEMU 10.1+;
        /// never booted here, see docs/CVM.md).
        #[arg(long, value_name = "FILE")]
        igvm: Option<std::path::PathBuf>,
        /// The C-bit position for the IGVM image's page tables (QEMU's
        /// `sev-snp-guest,cbitpos=`).
        #[arg(long = "cbit", value_name = "N", default_value_t = 51)]
        cbit: u8,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Time from starting QEMU to the kernel's "ready" line.
    Boot {
        /// Runs per accelerator.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Accelerators, comma-separated.
        #[arg(long, default_value = "tcg,kvm")]
        accel: String,
    },
    /// Cloister against a Linux guest (Debian's kernel) on the same QEMU:
    /// boot, system calls, openssl speed, file work, Redis and Nginx
    /// (docs/PERFORMANCE.md).
    Linux {
        /// Accelerator for both guests: tcg (default) or kvm.
        #[arg(long, default_value = "tcg")]
        accel: String,
        /// Runs of each job per guest, alternating Cloister and Linux.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Figures, comma-separated: boot, syscall, process, openssl, files,
        /// redis, nginx, or all; by name only: smp, redis-io-threads (2 I/O
        /// threads), nginx-workers (a master and 2 workers), meant for
        /// `--cpus 2`.
        #[arg(long, default_value = "all")]
        figures: String,
        /// Guest memory in MiB, for both guests.
        #[arg(long, default_value_t = 512)]
        mem: u32,
        /// vCPUs for both guests (`-smp N`, multi-threaded TCG above 1;
        /// default: `CLOISTER_CPUS`, else 1).
        #[arg(long, value_name = "N")]
        cpus: Option<u32>,
        /// The host TSC frequency in kHz for Linux's `tsc_early_khz`
        /// (default: from /proc/cpuinfo).
        #[arg(long)]
        tsc_khz: Option<u64>,
        /// Measure only the Linux guest.
        #[arg(long)]
        linux_only: bool,
        /// Further words for the Linux guest's kernel command line,
        /// space-separated (e.g. `norandmaps`: no address-space
        /// randomisation, as in Cloister, which under TCG also spares
        /// Linux retranslating code mapped at new addresses).
        #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
        linux_args: Option<String>,
        /// Boot this Cloister kernel ELF instead of building the release
        /// kernel (to compare two builds, each against the Linux guest).
        #[arg(long, value_name = "ELF")]
        kernel: Option<std::path::PathBuf>,
        /// Also run Cloister with the audit log on, as `cloister run
        /// --audit` does, and report what it costs on every figure (each
        /// run's log is verified with its key afterwards).
        #[arg(long)]
        audit: bool,
        /// Also run this other Cloister kernel ELF ("Cloister-B") in the
        /// same rounds, alternating with the others, and report
        /// Cloister/Cloister-B: a before/after comparison of two builds in
        /// one session, so that the machine's drift hits both alike.
        #[arg(long, value_name = "ELF")]
        against: Option<std::path::PathBuf>,
        /// The server figures' network: `user` (QEMU user-mode networking,
        /// clients on the host through forwards) or `tap` (a TAP device in
        /// a network namespace per run, clients in the namespace; needs
        /// root).
        #[arg(long, default_value = "user", value_name = "MODE")]
        net: String,
        /// Connections of the server figures' clients (`redis-benchmark
        /// -c`, `wrk -c`).
        #[arg(long, default_value_t = tools::bench::figures::DEFAULT_CLIENTS)]
        clients: u32,
        /// The QEMU machine of both guests: `microvm` (virtio-mmio) or
        /// `q35` (SeaBIOS and PCI: both cards are `virtio-net-pci`, as on
        /// the machines SEV-SNP and TDX guests run on).
        #[arg(long, default_value = "microvm", value_name = "MACHINE")]
        machine: String,
    },
    /// CPython's regression suite natively and in Cloister: per-module
    /// counts and the share of natively passing tests that pass in
    /// Cloister (docs/TESTING.md). Installs libpython3.11-testsuite
    /// when run as root.
    Compat {
        /// Modules, comma-separated (default: the selection in
        /// tools/src/bench/compat_modules.txt).
        #[arg(long)]
        modules: Option<String>,
        /// Boot this kernel ELF instead of building the release kernel
        /// (a copy: a rebuild during a long run then changes nothing).
        #[arg(long, value_name = "ELF")]
        kernel: Option<std::path::PathBuf>,
        /// Seconds before a module's Cloister run is stopped.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Seconds before a module's native run is stopped.
        #[arg(long, default_value_t = 300)]
        native_timeout: u64,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 1024)]
        mem: u32,
        /// Instead: run every module natively and print the ones the
        /// selection rule keeps.
        #[arg(long)]
        survey: bool,
    },
}

fn accel_or_env(flag: Option<&str>) -> Result<Accel> {
    flag.map_or_else(Accel::from_env, Accel::parse)
}

fn boot(accel: Option<&str>, mem: u32, append: &str) -> Result<i32> {
    tools::deps::ensure_qemu()?;
    let kernel = build_kernel(KernelBuild {
        release: true,
        ktest: false,
    })?;
    let mut config = QemuConfig::new(kernel)?;
    config.accel = accel_or_env(accel)?;
    config.memory_mib = mem;
    config.cmdline = append.to_string();
    config.nic = Some(qemu::Nic::default());
    eprintln!(
        "cloister: booting {} under QEMU ({}, {} MiB)",
        config.kernel.display(),
        config.accel.name(),
        mem
    );
    let report = qemu::run(&config, |line, _| println!("{line}"))?;
    eprintln!(
        "cloister: {} after {:.2} s",
        report.outcome,
        report.duration.as_secs_f64()
    );
    Ok(if report.outcome.is_success() { 0 } else { 1 })
}

fn ktest(pattern: &str, accel: Option<&str>) -> Result<i32> {
    tools::deps::ensure_qemu()?;
    let kernel = build_kernel(KernelBuild {
        release: false,
        ktest: true,
    })?;
    let mut config = tools::ktest::test_config(kernel)?;
    config.accel = accel_or_env(accel)?;
    let summary = tools::ktest::run(&config, pattern, |e| match e {
        tools::ktest::Event::Passed(name) => println!("test {name} ... ok"),
        tools::ktest::Event::Failed(f) => println!("test {} ... FAILED ({})", f.name, f.reason),
        tools::ktest::Event::Line(_) => {}
    })?;
    println!(
        "ktest: {} passed, {} failed",
        summary.passed.len(),
        summary.failed.len()
    );
    Ok(i32::from(!summary.failed.is_empty()))
}

fn bench(what: &BenchCommand) -> Result<i32> {
    tools::deps::ensure_qemu()?;
    match what {
        BenchCommand::Boot { runs, accel } => {
            let accels = accel
                .split(',')
                .map(Accel::parse)
                .collect::<Result<Vec<_>>>()?;
            let kernel = build_kernel(KernelBuild {
                release: true,
                ktest: false,
            })?;
            tools::bench::boot::run(&kernel, &accels, *runs)?;
        }
        BenchCommand::Linux {
            accel,
            rounds,
            figures,
            mem,
            cpus,
            tsc_khz,
            linux_only,
            linux_args,
            kernel,
            audit,
            against,
            net,
            clients,
            machine,
        } => {
            use tools::bench::{figures::Figure, guest, linux_compare};
            let tap = tools::run::NetMode::parse(net)? != tools::run::NetMode::User;
            if *clients == 0 {
                anyhow::bail!("--clients 0: the clients need at least one connection");
            }
            let tsc_khz = match tsc_khz {
                Some(k) => *k,
                None => guest::host_tsc_khz()?,
            };
            let opts = linux_compare::Options {
                figures: Figure::parse_list(figures)?,
                rounds: *rounds,
                settings: guest::QemuSettings {
                    accel: Accel::parse(accel)?,
                    cpus: match cpus {
                        Some(n) => qemu::check_cpus(*n)?,
                        None => qemu::cpus_from_env()?,
                    },
                    memory_mib: *mem,
                    machine: tools::run::Machine::parse(machine)?.qemu_name().into(),
                    timeout: std::time::Duration::from_secs(300),
                    tap,
                },
                tsc_khz,
                linux_args: linux_args
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                linux_only: *linux_only,
                kernel: kernel.clone(),
                audit: *audit,
                against: against.clone(),
                clients: *clients,
                command: std::iter::once("cargo cloister".to_string())
                    .chain(std::env::args().skip(1))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            linux_compare::run(&opts)?;
        }
        BenchCommand::Compat {
            modules,
            kernel,
            timeout,
            native_timeout,
            mem,
            survey,
        } => {
            use tools::bench::compat;
            compat::ensure_testsuite()?;
            // Absolute: the native run starts in `/`.
            let out_dir = std::env::current_dir()?.join("target/cloister-bench/compat");
            let native_timeout = std::time::Duration::from_secs(*native_timeout);
            if *survey {
                compat::survey(&out_dir, native_timeout)?;
                return Ok(0);
            }
            let modules: Vec<String> = match modules {
                Some(list) => list.split(',').map(|m| m.trim().to_string()).collect(),
                None => compat::selection().selected,
            };
            let kernel = tools::build::kernel_or_release(kernel.as_deref())?;
            compat::run_bench(&compat::Options {
                modules,
                native_timeout,
                cloister_timeout: std::time::Duration::from_secs(*timeout),
                memory_mib: *mem,
                out_dir,
                kernel,
            })?;
        }
    }
    Ok(0)
}

/// `cloister build`: the image for `manifest` in `output`.
fn build_image(
    manifest: &std::path::Path,
    output: &std::path::Path,
    kernel: Option<&std::path::Path>,
    igvm: Option<&std::path::Path>,
    c_bit: u8,
) -> Result<i32> {
    if !(32..=63).contains(&c_bit) {
        anyhow::bail!("--cbit {c_bit} is out of range: SEV-SNP CPUs report 32..=63 (51 on EPYC)");
    }
    let opts = tools::run::manifest::load(manifest)?;
    let kernel = tools::build::kernel_or_release(kernel)?;
    let bundle = tools::run::bundle::build(&opts, &kernel, output)?;
    if let Some(path) = igvm {
        write_igvm(&bundle, path, c_bit)?;
    }
    println!(
        "cloister: image written; boot it with {}",
        bundle.run_script.display()
    );
    if let Some(key) = bundle.audit_key {
        println!(
            "cloister: audit key in {}; after a run: cloister audit verify {} --scan --key-file {}",
            key.display(),
            output.join("audit.ram").display(),
            key.display()
        );
    }
    Ok(0)
}

/// `cloister build --igvm`: the SEV-SNP image of `bundle` in `path`.
fn write_igvm(
    bundle: &tools::run::bundle::Bundle,
    path: &std::path::Path,
    c_bit: u8,
) -> Result<()> {
    use anyhow::Context;
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let (kernel, initrd) = (read(&bundle.kernel)?, read(&bundle.initrd)?);
    let image = tools::igvm::build(&tools::igvm::IgvmInput {
        kernel_elf: &kernel,
        initrd: &initrd,
        cmdline: &bundle.cmdline,
        memory_mib: u64::from(bundle.memory_mib),
        c_bit,
    })?;
    std::fs::write(path, &image.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "cloister: IGVM image for SEV-SNP written to {} ({} MiB of guest memory, C-bit {c_bit}); never booted here: launch it with QEMU 10.1+ as docs/CVM.md shows, with -m {}M",
        path.display(),
        bundle.memory_mib,
        bundle.memory_mib
    );
    Ok(())
}

/// `cloister run`: the program's exit status, or 125 when Cloister fails.
fn run(args: tools::run::RunArgs) -> ExitCode {
    let result = args.into_options().and_then(|opts| tools::run::run(&opts));
    match result {
        Ok(result) => ExitCode::from(result.exit_code()),
        Err(err) => {
            eprintln!("cloister: error: {err:#}");
            ExitCode::from(tools::run::NO_STATUS_EXIT)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => return run(args.as_ref().clone()),
        Command::Boot { accel, mem, append } => boot(accel.as_deref(), *mem, append),
        Command::Ktest { pattern, accel } => ktest(pattern, accel.as_deref()),
        Command::Bench { what } => bench(what),
        Command::Audit(args) => tools::audit_cli::run(args),
        Command::Attest(args) => tools::attest::run(args),
        Command::Fuzz {
            seeds,
            start,
            calls_per_seed,
            timeout,
            mem,
        } => tools::fuzz::fuzz(
            *start,
            *seeds,
            *calls_per_seed,
            std::time::Duration::from_secs(*timeout),
            *mem,
        )
        .map(|s| i32::from(!s.kernel_failures.is_empty())),
        Command::Build {
            manifest,
            output,
            kernel,
            igvm,
            cbit,
        } => build_image(manifest, output, kernel.as_deref(), igvm.as_deref(), *cbit),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("cloister: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
