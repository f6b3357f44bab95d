//! What `cloister run` is asked to do: [`RunOptions`] for the library,
//! [`RunArgs`] for the command line, and the parsers for `--mem`,
//! `--file` and `--env`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::qemu::tap::TapNet;
use crate::qemu::{Accel, Nic, PortForward};

/// The environment a program gets unless `--env` says otherwise.
pub const DEFAULT_ENV: [(&str, &str); 2] =
    [("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/")];

/// Guest memory unless `--mem` says otherwise.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// `--mem`'s default as written.
const DEFAULT_MEM_ARG: &str = "512M";

/// A host file or directory to put in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// On the host (relative paths are relative to the working directory).
    pub host: PathBuf,
    /// In the guest; `None` means the host path made absolute.
    pub guest: Option<PathBuf>,
}

impl FileMapping {
    /// Parses `HOST[:GUEST]` (split at the first `:`).
    pub fn parse(s: &str) -> Result<Self> {
        let (host, guest) = match s.split_once(':') {
            Some((host, guest)) => (host, Some(guest)),
            None => (s, None),
        };
        if host.is_empty() {
            bail!("--file {s:?}: the host path is empty (use HOST or HOST:GUEST)");
        }
        let guest = match guest {
            Some(g) if !g.starts_with('/') => {
                bail!("--file {s:?}: the guest path {g:?} must be absolute")
            }
            Some(g) => Some(PathBuf::from(g)),
            None => None,
        };
        Ok(Self {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// Parses a memory size: a number of MiB, or with a suffix `M`/`MiB`/`G`/`GiB`
/// (case-insensitive). At least 32 MiB.
pub fn parse_memory_mib(s: &str) -> Result<u32> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, factor) = if let Some(d) = lower
        .strip_suffix("gib")
        .or_else(|| lower.strip_suffix('g'))
    {
        (d, 1024)
    } else if let Some(d) = lower
        .strip_suffix("mib")
        .or_else(|| lower.strip_suffix('m'))
    {
        (d, 1)
    } else {
        (lower.as_str(), 1)
    };
    let mib = digits
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| anyhow::anyhow!("--mem {t:?}: expected a size such as 512M or 2G"))?;
    if mib < 32 {
        bail!("--mem {t:?}: Cloister needs at least 32M");
    }
    Ok(mib)
}

/// Parses `--env K=V`, or `--env K` to pass the host's value of `K`.
pub fn parse_env(s: &OsString) -> Result<(OsString, OsString)> {
    let bytes = s.as_bytes();
    let (key, value) = match bytes.iter().position(|&b| b == b'=') {
        Some(i) => (
            OsString::from_vec(bytes[..i].to_vec()),
            OsString::from_vec(bytes[i + 1..].to_vec()),
        ),
        None => {
            let key = s.clone();
            let Some(value) = std::env::var_os(&key) else {
                bail!(
                    "--env {}: not set on the host (use --env K=V)",
                    key.to_string_lossy()
                );
            };
            (key, value)
        }
    };
    if key.is_empty() {
        bail!("--env {:?}: the name is empty (use --env K=V)", s);
    }
    Ok((key, value))
}

/// The environment: [`DEFAULT_ENV`], then `overrides` in order (a name
/// given again replaces the earlier value in place).
pub fn environment(overrides: &[(OsString, OsString)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = DEFAULT_ENV
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    for (key, value) in overrides {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    env
}

/// Joins `K` and `V` as `K=V`.
pub fn env_entry(key: &OsString, value: &OsString) -> OsString {
    let mut entry = key.clone();
    entry.push("=");
    entry.push(value);
    entry
}

/// Everything [`run`](super::run) needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The program: a path, or a name to look up in `PATH`.
    pub program: OsString,
    /// Its arguments after `argv[0]`.
    pub args: Vec<OsString>,
    /// Extra files and directories for the image.
    pub files: Vec<FileMapping>,
    /// Environment overrides, in order (see [`environment`]).
    pub env: Vec<(OsString, OsString)>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// vCPUs (`--cpus`, `vm.cpus`); `None`: `CLOISTER_CPUS` or 1.
    pub cpus: Option<u32>,
    /// Ask the kernel for a `[trace]` line per syscall.
    pub trace: bool,
    /// Extra kernel command-line words (`--kernel-arg`, e.g.
    /// `platform.mmio=emulate`), after those of `CLOISTER_KERNEL_ARGS`.
    pub kernel_args: Vec<String>,
    /// Kernel log at `info` and every kernel line shown.
    pub verbose: bool,
    /// Kill the guest after this long; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// Kill the guest when it has printed nothing (console, stdout or
    /// stderr) for this long; `None` lets it be silent for ever.
    pub idle_timeout: Option<Duration>,
    /// Keep the image at this path instead of a temporary file.
    pub image: Option<PathBuf>,
    /// The accelerator; `None` means `CLOISTER_ACCEL`, else TCG.
    pub accel: Option<Accel>,
    /// A kernel ELF to boot; `None` builds the release kernel.
    pub kernel: Option<PathBuf>,
    /// An application linked with the kernel library (docs/RUNTIME.md) to
    /// boot instead of the kernel: no Linux program is packed, the image
    /// holds only [`RunOptions::files`], and `program`/`args` only name the
    /// run.
    pub app: Option<PathBuf>,
    /// Collect the program's output and the kernel's lines in the
    /// [`RunResult`](super::RunResult) instead of printing them.
    pub capture: bool,
    /// TCP ports forwarded from the host's 127.0.0.1 into the guest. The
    /// guest always has a network card (QEMU user-mode networking,
    /// restricted: no way out but these forwards).
    pub publish: Vec<PortForward>,
    /// The network the card is on: user-mode (the default) or a TAP device.
    pub net: NetMode,
    /// The QEMU machine type (`--machine`).
    pub machine: Machine,
    /// Run with the audit log on and keep it (`--audit FILE`).
    pub audit: Option<super::audit::AuditSpec>,
    /// When capturing: the program's stdin (then end of input). Without
    /// capture the program reads the host's stdin.
    pub stdin: Vec<u8>,
    /// Run the learning pass first (`super::learn`): pack the host files
    /// the program looks for and does not find. The command line turns it
    /// on unless `--no-learn`; the library default is off.
    pub learn: bool,
}

impl RunOptions {
    /// Options to run `program` with `args` and every default.
    pub fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            files: Vec::new(),
            env: Vec::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: None,
            trace: false,
            kernel_args: Vec::new(),
            verbose: false,
            timeout: None,
            idle_timeout: None,
            image: None,
            accel: None,
            kernel: None,
            app: None,
            capture: false,
            publish: Vec::new(),
            net: NetMode::User,
            machine: Machine::Microvm,
            audit: None,
            stdin: Vec::new(),
            learn: false,
        }
    }
}

/// The network a run's card is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetMode {
    /// QEMU user-mode networking (slirp): needs no privileges; the host
    /// reaches the guest through [`RunOptions::publish`].
    #[default]
    User,
    /// A TAP device in a network namespace made for the run and deleted
    /// after it (`--net tap`, needs root); the guest is
    /// [`crate::qemu::tap::GUEST_ADDR`] inside it.
    Tap,
    /// A TAP device in this namespace, made by the caller (who runs its
    /// clients in it); it outlives the run.
    TapIn(Arc<TapNet>),
}

impl NetMode {
    /// Parses `--net`: `user` or `tap`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "user" => Ok(Self::User),
            "tap" => Ok(Self::Tap),
            _ => bail!(
                "--net {s:?}: use `user` (QEMU user-mode networking, the default) or `tap` (a TAP device in a network namespace of the run's own; needs root)"
            ),
        }
    }
}

/// The QEMU machine a run boots on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Machine {
    /// `microvm`: no firmware, virtio-mmio devices; the fastest to start.
    #[default]
    Microvm,
    /// `q35`: SeaBIOS, PCI (the card is `virtio-net-pci`): the machine
    /// type SEV-SNP and TDX guests run on.
    Q35,
}

impl Machine {
    /// Parses `--machine`: `microvm` or `q35`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "microvm" => Ok(Self::Microvm),
            "q35" => Ok(Self::Q35),
            _ => bail!(
                "--machine {s:?}: use `microvm` (the default: virtio-mmio, fastest to start) or `q35` (PCI, as SEV-SNP and TDX guests have)"
            ),
        }
    }

    /// QEMU's name for it (`-M`).
    pub fn qemu_name(self) -> &'static str {
        match self {
            Self::Microvm => "microvm",
            Self::Q35 => "q35",
        }
    }
}

/// `cloister run`'s command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Guest memory, e.g. 512M or 2G.
    #[arg(long, default_value = DEFAULT_MEM_ARG, value_name = "SIZE")]
    mem: String,
    /// vCPUs (1 to 16; default 1, or `CLOISTER_CPUS`). The kernel starts
    /// them all and the program's threads run on every one.
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// A host file or directory (recursively) to put in the image, at GUEST
    /// or at the same path.
    #[arg(long = "file", value_name = "HOST[:GUEST]")]
    files: Vec<String>,
    /// Set a variable in the program's environment (K alone copies the
    /// host's value). Defaults: PATH=/usr/local/bin:/usr/bin:/bin HOME=/.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<OsString>,
    /// Print one strace-like line per system call on stderr.
    #[arg(long)]
    trace: bool,
    /// A word for the kernel command line (repeatable), e.g.
    /// `platform.mmio=emulate` (device registers trapped and emulated).
    #[arg(long = "kernel-arg", value_name = "WORD")]
    kernel_args: Vec<String>,
    /// Stop the guest after this many seconds (default: no limit).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Write the initramfs here and keep it.
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// Accelerator: tcg (default, or CLOISTER_ACCEL) or kvm.
    #[arg(long)]
    accel: Option<String>,
    /// Boot this kernel ELF instead of building the release kernel.
    #[arg(long, value_name = "ELF")]
    kernel: Option<PathBuf>,
    /// Boot this application linked with the kernel (docs/RUNTIME.md)
    /// instead of a Linux program; --file puts files in its image. No
    /// PROG then.
    #[arg(long, value_name = "ELF", conflicts_with_all = ["kernel", "manifest", "command", "trace"])]
    app: Option<PathBuf>,
    /// Forward TCP port HOST on the host's 127.0.0.1 (only) to port GUEST
    /// in the guest (repeatable; PORT alone means PORT:PORT).
    #[arg(short = 'p', long = "publish", value_name = "HOST:GUEST")]
    publish: Vec<String>,
    /// The network: `user` (QEMU user-mode networking, the default) or
    /// `tap` (a TAP device in a network namespace made for the run, needs
    /// root; the guest is 10.77.0.2 there: reach it with `ip netns exec
    /// NAMESPACE …`, the name is printed at the start).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "user",
        conflicts_with = "publish"
    )]
    net: String,
    /// The QEMU machine: `microvm` (the default: no firmware, virtio-mmio)
    /// or `q35` (SeaBIOS and PCI, the card a `virtio-net-pci` function, as
    /// on the machines SEV-SNP and TDX guests run on). Overrides a
    /// manifest's `vm.machine`.
    #[arg(long, value_name = "MACHINE")]
    machine: Option<String>,
    /// Record every system call of the program (and its exit, signals,
    /// kernel faults) in a sealed audit log written to FILE when the run
    /// ends; check it with `cloister audit verify FILE --key-file KEY`.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// The audit region's size, e.g. 16M (default) or 256M.
    #[arg(long, value_name = "SIZE", requires = "audit")]
    audit_size: Option<String>,
    /// The audit key (32 raw bytes or 64 hex digits); default: a new
    /// random key written to FILE.key (mode 0600).
    #[arg(long, value_name = "PATH", requires = "audit")]
    audit_key_file: Option<PathBuf>,
    /// Do not run the learning pass that finds the files the program looks
    /// for (language libraries, zoneinfo, certificates) and packs them.
    #[arg(long)]
    no_learn: bool,
    /// Show the kernel's info-level log and what goes in the image.
    #[arg(short, long)]
    verbose: bool,
    /// Take the program, its files, environment, ports, memory and audit
    /// settings from this `cloister.toml` (see `tools/src/run/manifest.rs`);
    /// --trace, -v, --timeout, --image and --kernel still apply.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["files", "env", "publish", "audit", "audit_size", "audit_key_file", "command"]
    )]
    manifest: Option<PathBuf>,
    /// The program (a path, or a name looked up in PATH) and its arguments.
    #[arg(
        required_unless_present_any = ["manifest", "app"],
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROG ARGS"
    )]
    command: Vec<OsString>,
}

impl RunArgs {
    /// Checks the arguments and makes them [`RunOptions`].
    pub fn into_options(self) -> Result<RunOptions> {
        if let Some(path) = &self.manifest {
            let mut opts = super::manifest::load(path)?;
            opts.trace = self.trace;
            opts.kernel_args = self.kernel_args;
            opts.verbose = self.verbose;
            opts.learn = !self.no_learn;
            opts.net = NetMode::parse(&self.net)?;
            if let Some(machine) = &self.machine {
                opts.machine = Machine::parse(machine)?;
            }
            if opts.net != NetMode::User && !opts.publish.is_empty() {
                bail!(
                    "--net tap: the manifest publishes ports, which only user-mode networking has"
                );
            }
            if let Some(secs) = self.timeout {
                opts.timeout = (secs > 0).then(|| Duration::from_secs(secs));
            }
            opts.image = self.image;
            opts.kernel = self.kernel;
            if let Some(accel) = self.accel.as_deref() {
                opts.accel = Some(Accel::parse(accel)?);
            }
            if self.mem != DEFAULT_MEM_ARG {
                opts.memory_mib = parse_memory_mib(&self.mem)?;
            }
            if let Some(cpus) = self.cpus {
                opts.cpus = Some(crate::qemu::check_cpus(cpus)?);
            }
            return Ok(opts);
        }
        let mut command = self.command.into_iter();
        let program = match (&self.app, command.next()) {
            (Some(app), _) => app.clone().into_os_string(),
            (None, program) => program.unwrap_or_default(),
        };
        let mut opts = RunOptions::new(program, command);
        opts.app = self.app;
        if opts.app.is_some() {
            // The application is not a Linux program: nothing to learn.
            opts.learn = false;
        }
        opts.memory_mib = parse_memory_mib(&self.mem)?;
        opts.cpus = self.cpus.map(crate::qemu::check_cpus).transpose()?;
        opts.files = self
            .files
            .iter()
            .map(|f| FileMapping::parse(f))
            .collect::<Result<_>>()?;
        opts.env = self.env.iter().map(parse_env).collect::<Result<_>>()?;
        opts.trace = self.trace;
        opts.kernel_args = self.kernel_args;
        opts.verbose = self.verbose;
        opts.learn = opts.app.is_none() && !self.no_learn;
        opts.timeout = match self.timeout {
            Some(0) | None => None,
            Some(secs) => Some(Duration::from_secs(secs)),
        };
        opts.image = self.image;
        opts.kernel = self.kernel;
        opts.accel = self.accel.as_deref().map(Accel::parse).transpose()?;
        opts.publish = self
            .publish
            .iter()
            .map(|p| PortForward::parse(p))
            .collect::<Result<_>>()?;
        // Refuses a host port given twice, before anything is built.
        Nic::with_forwards(opts.publish.clone())?;
        opts.net = NetMode::parse(&self.net)?;
        if let Some(machine) = &self.machine {
            opts.machine = Machine::parse(machine)?;
        }
        if let Some(file) = self.audit {
            let region_bytes = match self.audit_size.as_deref() {
                None => super::audit::DEFAULT_REGION_BYTES,
                Some(s) => libos::boot::cmdline::parse_size(s).ok_or_else(|| {
                    anyhow::anyhow!("--audit-size {s:?}: expected a size such as 16M or 1G")
                })?,
            };
            opts.audit = Some(super::audit::AuditSpec {
                file,
                region_bytes,
                key_file: self.audit_key_file,
            });
        }
        Ok(opts)
    }
}

/// The guest path of a `--file` mapping: its GUEST, or the host path made
/// absolute against `cwd`.
pub fn guest_path_of(mapping: &FileMapping, cwd: &Path) -> PathBuf {
    mapping
        .guest
        .clone()
        .unwrap_or_else(|| super::resolve::normalize(&cwd.join(&mapping.host)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunOptions> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        cli.run.into_options()
    }

    #[test]
    fn net_is_user_by_default_tap_on_request_and_tap_takes_no_forwards() {
        assert_eq!(parse(&["--", "x"]).unwrap().net, NetMode::User);
        assert_eq!(
            parse(&["--net", "tap", "--", "x"]).unwrap().net,
            NetMode::Tap
        );
        let err = parse(&["--net", "bridge", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`user`") && err.contains("`tap`"), "{err}");
        let err = parse(&["--net", "tap", "-p", "8080:80", "--", "x"]).unwrap_err();
        assert!(err.to_string().contains("--publish"), "{err}");
    }

    #[test]
    fn machine_is_microvm_by_default_q35_on_request() {
        assert_eq!(parse(&["--", "x"]).unwrap().machine, Machine::Microvm);
        let q35 = parse(&["--machine", "q35", "--", "x"]).unwrap().machine;
        assert_eq!((q35, q35.qemu_name()), (Machine::Q35, "q35"));
        let err = parse(&["--machine", "pc", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("microvm") && err.contains("q35"), "{err}");
    }

    #[test]
    fn defaults_and_the_command_after_the_double_dash() {
        let o = parse(&["--", "/bin/busybox", "ls", "-l", "/"]).unwrap();
        assert_eq!(o.program, "/bin/busybox");
        assert_eq!(o.args, ["ls", "-l", "/"]);
        assert_eq!(o.memory_mib, 512);
        assert_eq!(o.timeout, None);
        assert!(!o.trace && !o.verbose && !o.capture);
        assert!(o.files.is_empty() && o.env.is_empty());
        assert!(o.publish.is_empty());
    }

    #[test]
    fn publish_is_repeatable_and_checked() {
        let o = parse(&["--publish", "8080:80", "-p", "6379", "--", "nginx"]).unwrap();
        assert_eq!(
            o.publish,
            [
                PortForward {
                    host_port: 8080,
                    guest_port: 80
                },
                PortForward {
                    host_port: 6379,
                    guest_port: 6379
                }
            ]
        );
        let err = parse(&["--publish", "0.0.0.0:80:80", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
        let err = parse(&["-p", "80:1", "-p", "80:2", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn every_option() {
        let o = parse(&[
            "--mem",
            "1G",
            "--file",
            "/usr/lib/python3.11",
            "--file",
            "data.txt:/srv/d.txt",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--trace",
            "--timeout",
            "30",
            "-v",
            "--image",
            "/tmp/i.cpio",
            "--accel",
            "kvm",
            "--",
            "python3",
            "-c",
            "print(1)",
        ])
        .unwrap();
        assert_eq!(o.memory_mib, 1024);
        assert_eq!(
            o.files,
            [
                FileMapping {
                    host: "/usr/lib/python3.11".into(),
                    guest: None
                },
                FileMapping {
                    host: "data.txt".into(),
                    guest: Some("/srv/d.txt".into())
                },
            ]
        );
        assert_eq!(
            o.env,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert!(o.trace && o.verbose);
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
        assert_eq!(o.image.as_deref(), Some(Path::new("/tmp/i.cpio")));
        assert_eq!(o.accel, Some(Accel::Kvm));
        assert_eq!(o.program, "python3");
        assert_eq!(o.args, ["-c", "print(1)"]);
    }

    #[test]
    fn program_arguments_that_look_like_options_belong_to_the_program() {
        let o = parse(&["--", "ls", "--trace", "-v"]).unwrap();
        assert_eq!(o.args, ["--trace", "-v"]);
        assert!(!o.trace && !o.verbose);
        let o = parse(&["--timeout", "0", "/bin/ls", "-la"]).unwrap();
        assert_eq!(o.timeout, None);
        assert_eq!(o.args, ["-la"]);
    }

    #[test]
    fn bad_input_is_refused_with_a_hint() {
        assert!(parse(&[]).is_err(), "a program is required");
        let err = parse(&["--mem", "lots", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("512M"), "{err}");
        let err = parse(&["--file", "a:rel", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be absolute"), "{err}");
        let err = parse(&["--env", "=v", "--", "x"]).unwrap_err().to_string();
        assert!(err.contains("name is empty"), "{err}");
        let err = parse(&["--accel", "hvf", "--", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("hvf"), "{err}");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_mib("512").unwrap(), 512);
        assert_eq!(parse_memory_mib("256m").unwrap(), 256);
        assert_eq!(parse_memory_mib("256MiB").unwrap(), 256);
        assert_eq!(parse_memory_mib("2G").unwrap(), 2048);
        assert_eq!(parse_memory_mib("1gib").unwrap(), 1024);
        assert!(parse_memory_mib("16M").is_err());
        assert!(parse_memory_mib("4194304G").is_err());
        assert!(parse_memory_mib("-1").is_err());
    }

    #[test]
    fn environment_defaults_are_overridden_in_place() {
        let env = environment(&[
            ("HOME".into(), "/root".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]);
        let entries: Vec<_> = env.iter().map(|(k, v)| env_entry(k, v)).collect();
        assert_eq!(
            entries,
            [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=/root",
                "LANG=C.UTF-8"
            ]
        );
    }

    #[test]
    fn env_without_a_value_copies_the_hosts() {
        // PATH is set in any test environment.
        let (k, v) = parse_env(&"PATH".into()).unwrap();
        assert_eq!((k, v), ("PATH".into(), std::env::var_os("PATH").unwrap()));
        assert!(parse_env(&"CLOISTER_SURELY_UNSET_VAR".into()).is_err());
    }

    #[test]
    fn file_guest_paths_default_to_the_absolute_host_path() {
        let m = FileMapping::parse("data/../x.txt").unwrap();
        assert_eq!(
            guest_path_of(&m, Path::new("/home/u")),
            Path::new("/home/u/x.txt")
        );
        let m = FileMapping::parse("x.txt:/y").unwrap();
        assert_eq!(guest_path_of(&m, Path::new("/home/u")), Path::new("/y"));
        assert!(FileMapping::parse(":/y").is_err());
    }
}
