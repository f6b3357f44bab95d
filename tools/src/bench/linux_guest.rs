//! The Linux guest: Debian's kernel ([`super::linux_kernel`]) and, per job,
//! an initramfs holding exactly the tree Cloister boots for the job
//! ([`super::guest::pack_job`]: the program, its interpreter and libraries,
//! the job's files, `/etc/passwd`, `/etc/group`, `/tmp`) plus what only
//! Linux needs: busybox-static (as `/bin/sh` and the applets `/init`
//! uses), `/dev/console`, and a generated `/init`.
//!
//! `/init` mounts `/proc`, `/sys` and `/dev` (devtmpfs, for `/dev/zero`),
//! sets the environment Cloister gives the program, prints
//! [`START_MARKER`], runs the program with its output on the console
//! (COM1), prints [`END_MARKER`] with the exit status, and ends with
//! `reboot -f`: QEMU runs `-no-reboot`, so the reset makes it exit. (`poweroff
//! -f` does not: on `microvm,acpi=off` there is no ACPI to power off with, and
//! Debian's 6.1.0-57 kernel halts with `reboot: System halted` while QEMU
//! keeps running.) The host does not rely on either: once the end marker is
//! on the console QEMU gets [`EXIT_GRACE`] to exit and is then killed. The kernel
//! command line is `console=ttyS0 quiet panic=-1 tsc_early_khz=<host kHz>`
//! ([`cmdline`]), plus the words of `--linux-args` if given:
//! without the TSC frequency a Linux guest on `microvm` under TCG sometimes
//! hangs calibrating against the PIT.
//!
//! For a server job ([`super::guest::Serve`]) the tree also holds the
//! virtio-mmio and virtio-net modules of the kernel package, in load order
//! ([`super::linux_modules`]), under [`MODULE_DIR`], and `/init` loads them
//! with busybox `insmod`, then brings up `lo` and `eth0` as 10.0.2.15/24
//! with the default route via 10.0.2.2 (QEMU user networking, as Cloister
//! configures itself) before the start marker — with `--net tap` as
//! 10.77.0.2/24 via 10.77.0.1, the TAP namespace's subnet
//! ([`crate::qemu::tap`]), which Cloister gets through `net.ip=`. Debian's kernel is built
//! without `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`, so it ignores the
//! `virtio_mmio.device=` word QEMU appends with `acpi=off`, the way
//! Cloister finds the card; the Linux guest of a server job therefore runs
//! on `microvm,acpi=on` ([`server_machine`]), where QEMU describes the same
//! virtio-mmio transport in its ACPI tables (`LNRO0005`). The card, its
//! backend and the forwards are the same. With `--machine q35` both guests
//! run on `q35` and the card is `virtio-net-pci`: the tree then holds the
//! virtio-pci modules instead ([`linux_modules::net_modules`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::guest::{Guest, GuestRun, Job, QemuSettings, pack_job};
use super::host_cpu::{HostCpuWindow, ThreadTimes};
use super::initramfs::Tree;
use super::linux_kernel::LinuxKernel;
use super::linux_modules::{self, Module};
use crate::qemu;
use crate::run::bundle::shell_quote;
use crate::run::image::Image;

/// Printed by `/init` right before it runs the program.
pub const START_MARKER: &str = "@@CLOISTER-BENCH START";
/// Printed by `/init` right after the program, as `… status=N`.
pub const END_MARKER: &str = "@@CLOISTER-BENCH END";

/// How long QEMU may take to exit after the guest printed [`END_MARKER`]
/// before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Where the Linux guest's kernel modules go in its initramfs.
pub const MODULE_DIR: &str = "/bench-modules";

/// busybox-static on a Debian host.
const BUSYBOX: &str = "/bin/busybox";

/// The Linux guest.
#[derive(Debug)]
pub struct LinuxGuest {
    kernel: LinuxKernel,
    settings: QemuSettings,
    tsc_khz: u64,
    image_dir: PathBuf,
    images: HashMap<String, PathBuf>,
    extra_args: Vec<String>,
}

/// The Linux guest's kernel command line for `tsc_khz`, with `extra_args`
/// (`--linux-args`) appended.
pub fn cmdline(tsc_khz: u64, extra_args: &[String]) -> String {
    let mut line = format!("console=ttyS0 quiet panic=-1 tsc_early_khz={tsc_khz}");
    for word in extra_args {
        line.push(' ');
        line.push_str(word);
    }
    line
}

impl LinuxGuest {
    /// A guest booting `kernel` with `settings`; images go to `image_dir`.
    pub fn new(
        kernel: LinuxKernel,
        settings: QemuSettings,
        tsc_khz: u64,
        image_dir: PathBuf,
    ) -> Self {
        Self {
            kernel,
            settings,
            tsc_khz,
            image_dir,
            images: HashMap::new(),
            extra_args: Vec::new(),
        }
    }

    /// The same guest with `words` appended to its kernel command line
    /// (e.g. `norandmaps`).
    pub fn with_extra_args(mut self, words: Vec<String>) -> Self {
        self.extra_args = words;
        self
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> String {
        cmdline(self.tsc_khz, &self.extra_args)
    }

    /// The kernel it boots.
    pub fn kernel(&self) -> &LinuxKernel {
        &self.kernel
    }
}

fn text(word: &OsString) -> Result<&str> {
    word.to_str()
        .with_context(|| format!("{word:?} is not UTF-8: the init script cannot quote it"))
}

/// The machine of a server job: `machine` with ACPI on (see the module
/// docs), unless it already says.
pub fn server_machine(machine: &str) -> String {
    if machine.contains("acpi=") {
        machine.to_string()
    } else {
        format!("{machine},acpi=on")
    }
}

/// The guest's address (CIDR) and gateway: QEMU user networking's, or the
/// TAP namespace's ([`crate::qemu::tap`]) with `tap`, as Cloister gets them.
pub fn guest_addresses(tap: bool) -> (String, String) {
    use crate::qemu::tap::{GUEST_ADDR, HOST_ADDR, PREFIX_LEN};
    if tap {
        (format!("{GUEST_ADDR}/{PREFIX_LEN}"), HOST_ADDR.to_string())
    } else {
        ("10.0.2.15/24".into(), "10.0.2.2".into())
    }
}

/// The `/init` lines that load `modules` (from [`MODULE_DIR`], in order)
/// and configure the network (on the TAP subnet with `tap`); empty without
/// modules.
fn network_setup(modules: &[String], tap: bool) -> String {
    if modules.is_empty() {
        return String::new();
    }
    let mut s =
        String::from("# The network card: modules from the kernel package, in dependency order.\n");
    for m in modules {
        s.push_str(&format!("/bin/busybox insmod {MODULE_DIR}/{m}.ko\n"));
    }
    let (addr, gateway) = guest_addresses(tap);
    s.push_str(&format!(
        "/bin/busybox ip link set lo up
/bin/busybox ip link set eth0 up
/bin/busybox ip addr add {addr} dev eth0
/bin/busybox ip route add default via {gateway}
"
    ));
    s
}

/// The `/init` script that loads `modules` and sets up the network (if
/// any; on the TAP subnet with `tap`), then runs `argv` with the
/// environment `envp`.
pub fn init_script(
    argv: &[OsString],
    envp: &[OsString],
    modules: &[String],
    tap: bool,
) -> Result<String> {
    let command = argv
        .iter()
        .map(|w| text(w).map(shell_quote))
        .collect::<Result<Vec<_>>>()?;
    let mut env = String::new();
    for entry in envp {
        env.push_str(&format!("export {}\n", shell_quote(text(entry)?)));
    }
    Ok(format!(
        "#!/bin/sh
# Generated by `cloister bench linux`: run one program, report, power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
{}cd /
{env}echo '{START_MARKER}'
{}
echo \"{END_MARKER} status=$?\"
/bin/busybox reboot -f
",
        network_setup(modules, tap),
        command.join(" ")
    ))
}

/// The initramfs tree: Cloister's `image` for the job, busybox, the
/// mount points, `/dev/console`, `modules` and `/init`.
pub fn build_tree(
    image: &Image,
    argv: &[OsString],
    envp: &[OsString],
    modules: &[Module],
    tap: bool,
) -> Result<Tree> {
    let mut t = Tree::from_image(image)?;
    if !modules.is_empty() {
        t.dir(MODULE_DIR, 0o755)?;
    }
    for m in modules {
        let guest = format!("{MODULE_DIR}/{}.ko", m.name);
        t.host_file(Path::new(&guest), &m.path, Some(0o644))?;
    }
    let names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
    for dir in ["/dev", "/proc", "/sys", "/root"] {
        if !t.contains(Path::new(dir)) {
            t.dir(dir, 0o755)?;
        }
    }
    t.char_device("/dev/console", 5, 1)?;
    if !t.contains(Path::new(BUSYBOX)) {
        t.host_file(Path::new(BUSYBOX), Path::new(BUSYBOX), Some(0o755))
            .context(
                "the Linux guest needs busybox-static (Debian: `apt-get install busybox-static`)",
            )?;
    }
    if !t.contains(Path::new("/bin/sh")) {
        t.symlink("/bin/sh", "busybox")?;
    }
    t.file(
        Path::new("/init"),
        init_script(argv, envp, &names, tap)?.into_bytes(),
        0o755,
    )?;
    Ok(t)
}

/// Whether a console line is a kernel message (`[    1.234567] …`).
fn is_kernel_message(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix('[') else {
        return false;
    };
    rest.split_once(']').is_some_and(|(stamp, _)| {
        let stamp = stamp.trim();
        !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

/// Collects a Linux guest's console lines and finishes the run once the
/// end marker is printed, whether or not the guest then manages to exit.
/// Also reads QEMU's host CPU time at the first start and end markers.
#[derive(Debug, Default)]
struct Lines(Vec<(String, Duration)>, HostCpuWindow);

impl qemu::GuestObserver for Lines {
    fn line(&mut self, line: &str, at: Duration) -> qemu::Flow {
        self.0.push((line.to_string(), at));
        if line.trim_end() == START_MARKER && self.1.start.is_none() {
            self.1.start = ThreadTimes::of_running_qemu();
        }
        if line.starts_with(END_MARKER) {
            if self.1.start.is_some() && self.1.end.is_none() {
                self.1.end = ThreadTimes::of_running_qemu();
            }
            qemu::Flow::Finish { grace: EXIT_GRACE }
        } else {
            qemu::Flow::Continue
        }
    }
}

/// What the console lines of one boot say about the program.
pub fn parse_console(lines: &[(String, Duration)]) -> GuestRun {
    let mut run = GuestRun::default();
    for (line, at) in lines {
        if line.trim_end() == START_MARKER && run.started_at.is_none() {
            run.started_at = Some(*at);
        } else if let Some(rest) = line.strip_prefix(END_MARKER) {
            if run.started_at.is_some() && run.ended_at.is_none() {
                run.ended_at = Some(*at);
                run.exit_status = rest
                    .trim()
                    .strip_prefix("status=")
                    .and_then(|s| s.parse().ok());
            }
        } else if run.started_at.is_some() && run.ended_at.is_none() && !is_kernel_message(line) {
            run.first_output_at.get_or_insert(*at);
            run.output.push(line.clone());
        }
    }
    run
}

impl Guest for LinuxGuest {
    fn name(&self) -> &'static str {
        "Linux"
    }

    fn prepare(&mut self, job: &Job) -> Result<()> {
        let packed = pack_job(job)?;
        let modules = if job.serve.is_some() {
            linux_modules::load_order(
                &self.kernel.unpacked,
                linux_modules::net_modules(&self.settings.machine),
            )?
        } else {
            Vec::new()
        };
        let tap = self.settings.tap;
        let tree = build_tree(&packed.image, &packed.argv, &packed.envp, &modules, tap)
            .with_context(|| format!("building the Linux image for {}", job.name))?;
        let archive = tree.to_cpio()?;
        std::fs::create_dir_all(&self.image_dir)?;
        let path = self.image_dir.join(format!("linux-{}.cpio", job.name));
        std::fs::write(&path, archive)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.images.insert(job.name.clone(), path);
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<GuestRun> {
        let image = self
            .images
            .get(&job.name)
            .with_context(|| format!("job {} was not prepared", job.name))?;
        let mut config = self.settings.config_for(&self.kernel.vmlinux, job)?;
        if job.serve.is_some() {
            config.machine = server_machine(&config.machine);
        }
        config.initrd = Some(image.clone());
        config.cmdline = self.cmdline();
        // CLOISTER_KERNEL_ARGS is for Cloister's kernel, not Linux's.
        config.kernel_args.clear();
        // The same COM2 device as Cloister's (identical machines); Linux
        // leaves it unused.
        let socket = self
            .image_dir
            .join(format!("linux-com2-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        config.app_serial = Some(socket.clone());
        let mut lines = Lines::default();
        let report = qemu::run_observed(&config, &mut lines);
        let Lines(lines, host_cpu) = lines;
        let _ = std::fs::remove_file(&socket);
        let report = report?;
        let mut run = parse_console(&lines);
        run.host_cpu = host_cpu;
        run.total = report.duration;
        // A server may be stopped from the host (`super::server`).
        if run.ended_at.is_none() && job.serve.is_none() {
            let tail: Vec<&str> = report
                .lines
                .iter()
                .rev()
                .take(15)
                .rev()
                .map(String::as_str)
                .collect();
            bail!(
                "the Linux guest did not finish `{}` ({}); last console lines:\n{}",
                job.argv.join(" "),
                report.outcome,
                tail.join("\n")
            );
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_script_quotes_the_command_and_sets_the_environment() {
        let argv: Vec<OsString> = ["/usr/bin/echo", "it's", "a b"].map(Into::into).to_vec();
        let envp: Vec<OsString> = vec!["PATH=/usr/bin:/bin".into(), "HOME=/".into()];
        let s = init_script(&argv, &envp, &[], false).unwrap();
        assert!(s.contains("\n'/usr/bin/echo' 'it'\\''s' 'a b'\n"), "{s}");
        assert!(
            s.contains("export 'PATH=/usr/bin:/bin'\nexport 'HOME=/'\n"),
            "{s}"
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("status=$?"));
        assert!(s.trim_end().ends_with("reboot -f"));
        assert!(!s.contains("insmod"));
    }

    #[test]
    fn extra_words_are_appended_to_the_kernel_command_line() {
        assert_eq!(
            cmdline(2_600_000, &[]),
            "console=ttyS0 quiet panic=-1 tsc_early_khz=2600000"
        );
        assert_eq!(
            cmdline(1000, &["norandmaps".into(), "x=1".into()]),
            "console=ttyS0 quiet panic=-1 tsc_early_khz=1000 norandmaps x=1"
        );
    }

    #[test]
    fn the_run_finishes_at_the_end_marker_even_if_the_guest_does_not_exit() {
        use qemu::{Flow, GuestObserver};
        let mut lines = Lines::default();
        assert_eq!(lines.line(START_MARKER, Duration::ZERO), Flow::Continue);
        assert_eq!(lines.line("hello", Duration::ZERO), Flow::Continue);
        assert_eq!(
            lines.line(&format!("{END_MARKER} status=0"), Duration::ZERO),
            Flow::Finish { grace: EXIT_GRACE }
        );
        assert_eq!(parse_console(&lines.0).exit_status, Some(0));
    }

    #[test]
    fn a_server_init_loads_the_modules_in_order_then_configures_eth0() {
        let modules: Vec<String> = ["virtio", "virtio_mmio", "virtio_net"]
            .map(Into::into)
            .to_vec();
        let s = init_script(&["/usr/bin/redis-server".into()], &[], &modules, false).unwrap();
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        assert!(at("insmod /bench-modules/virtio.ko\n") < at("virtio_mmio.ko\n"));
        assert!(at("virtio_mmio.ko") < at("virtio_net.ko"));
        assert!(at("virtio_net.ko") < at("ip addr add 10.0.2.15/24 dev eth0"));
        assert!(at("ip route add default via 10.0.2.2") < at(START_MARKER));
        // On the TAP network: the namespace's subnet, as Cloister's words say.
        let s = init_script(&["/usr/bin/redis-server".into()], &[], &modules, true).unwrap();
        assert!(s.contains("ip addr add 10.77.0.2/24 dev eth0\n"), "{s}");
        assert!(s.contains("ip route add default via 10.77.0.1\n"), "{s}");
        assert_eq!(
            crate::qemu::tap::kernel_args(),
            ["net.ip=10.77.0.2/24", "net.gateway=10.77.0.1"]
        );
        assert_eq!(server_machine("microvm"), "microvm,acpi=on");
        assert_eq!(server_machine("microvm,acpi=off"), "microvm,acpi=off");
    }

    #[test]
    fn the_tree_is_cloisters_plus_busybox_console_and_init() {
        let mut image = Image::new();
        image
            .add_file(Path::new("/usr/bin/prog"), b"x".to_vec(), 0o755)
            .unwrap();
        let t = build_tree(&image, &["/usr/bin/prog".into()], &[], &[], false).unwrap();
        for p in [
            "/usr/bin/prog",
            "/bin/sh",
            "/dev/console",
            "/proc",
            "/sys",
            "/init",
        ] {
            assert!(t.contains(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn the_process_figure_packs_bin_true_with_its_loader_and_libc_in_both_guests() {
        use crate::bench::figures::{TRUE_PROGRAM, process_job};
        use crate::run::resolve::{LibrarySearch, Role, resolve_program};
        // busybox-static stands in for the static syscall_bench (no gcc
        // needed): it brings no libraries of its own, so everything
        // dynamic in the image is there for /bin/true.
        let job = process_job(BUSYBOX.into());
        let packed = pack_job(&job).unwrap();
        let needs = resolve_program(Path::new(TRUE_PROGRAM), &LibrarySearch::host()).unwrap();
        let mut names = Vec::new();
        for f in &needs.files {
            if f.role != Role::Program {
                assert!(packed.image.get(&f.path).is_some(), "Cloister lacks {f:?}");
                names.push(f.path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        // Debian's true is linked against glibc: the loader and libc.
        assert!(names.iter().any(|n| n.starts_with("ld-linux")), "{names:?}");
        assert!(names.contains(&"libc.so.6".to_string()), "{names:?}");
        let t = build_tree(&packed.image, &packed.argv, &packed.envp, &[], false).unwrap();
        assert!(t.contains(Path::new(TRUE_PROGRAM)));
        for f in &needs.files[1..] {
            assert!(t.contains(&f.path), "the Linux guest lacks {f:?}");
        }
    }

    #[test]
    fn console_parsing_keeps_the_program_output_between_the_markers() {
        let at = Duration::from_millis;
        let lines: Vec<(String, Duration)> = [
            (
                "[    0.330901] PCI: Fatal: No config space access function found",
                300,
            ),
            ("before", 400),
            (START_MARKER, 2000),
            ("[    1.700000] random: crng init done", 2010),
            ("hello", 2050),
            ("world", 2060),
            ("@@CLOISTER-BENCH END status=3", 2100),
            ("[    2.0] reboot: Power down", 2200),
        ]
        .iter()
        .map(|(l, t)| (l.to_string(), at(*t)))
        .collect();
        let run = parse_console(&lines);
        assert_eq!(run.output, ["hello", "world"]);
        assert_eq!(run.started_at, Some(at(2000)));
        assert_eq!(run.first_output_at, Some(at(2050)));
        assert_eq!(run.ended_at, Some(at(2100)));
        assert_eq!(run.exit_status, Some(3));
        assert_eq!(run.program_time(), Some(at(100)));
    }

    #[test]
    fn a_run_without_markers_has_no_times() {
        let run = parse_console(&[("Kernel panic".into(), Duration::ZERO)]);
        assert_eq!(
            (run.started_at, run.ended_at, run.exit_status),
            (None, None, None)
        );
        assert!(run.output.is_empty());
    }

    #[test]
    fn kernel_messages_are_recognised_by_their_timestamp() {
        assert!(is_kernel_message("[    0.330901] PCI: Fatal"));
        assert!(!is_kernel_message("[x] not a timestamp"));
        assert!(!is_kernel_message("sha256sum output"));
    }
}
