//! Cloister's kernel: the bare-metal x86-64 layer of the library OS.
//!
//! Booted by any PVH loader (`qemu-system-x86_64 -kernel`), it brings the
//! machine up — long mode, its own GDT/TSS/IDT, page tables with exact
//! permissions, a frame allocator and heap, the TSC clock and the local APIC
//! timer — and then hands over to the application the image was linked with
//! (or, with `ktest` on the command line, runs the in-guest tests).
//!
//! The crate is a library: every image is an application that names its
//! entry with [`entry!`]. The `kernel` binary (`src/main.rs`) is the Linux-ABI
//! run mode, one such application ([`linux_abi_main`]); programs written
//! against the [`runtime`] API (docs/RUNTIME.md, `kernel/examples/`) are
//! others.
//!
//! Only what needs the hardware lives here; the logic it drives (command
//! line, memory map arithmetic, allocators, the audit log, the Linux ABI) is
//! in host-tested crates. Module map:
//!
//! - [`arch`]: boot assembly, descriptor tables, traps, APIC, PIT, CPU bits;
//! - [`audit`](mod@audit): the audit region, boot/exception/panic records and
//!   the syscall-recording API;
//! - [`mm`]: virtual layout, frames, page tables, stacks, heap;
//! - [`net`]: the network card (virtio-net over virtio-mmio);
//! - [`console`], [`time`], [`exit`](mod@exit): serial log, clocks, leaving QEMU;
//! - [`boot_info`]: what the PVH loader passed;
//! - [`ktest`](mod@ktest): the in-guest test framework;
//! - [`runtime`]: the API for an application linked with the kernel;
//! - [`run`]: the Linux-ABI run mode (a client of [`runtime`]'s boot).
#![no_std]
// Unsafe code lives in the hardware layer (`arch`, `platform`); the few
// exceptions elsewhere are named where they are and in docs/ARCHITECTURE.md
// (tests/tests/layers.rs keeps the list honest).
#![deny(unsafe_code)]
// The module docs are for the kernel's developers and link private items
// (as the binary's docs, which rustdoc builds with private items, did).
#![allow(
    rustdoc::private_intra_doc_links,
    reason = "kernel docs link private items; build them with --document-private-items"
)]

extern crate alloc;

pub mod app_console;
#[allow(
    unsafe_code,
    reason = "the hardware layer: CPU, page tables, frames, traps"
)]
pub mod arch;
pub use arch::mm;
pub mod audit;
pub mod boot_info;
pub mod console;
pub mod exit;
pub mod ktest;
#[allow(
    unsafe_code,
    reason = "the virtio-drivers Hal and the packet slots in the shared DMA pool"
)]
pub mod net;
#[allow(
    unsafe_code,
    reason = "the hardware seam: port I/O, device registers, MSRs"
)]
pub mod platform;
pub mod run;
pub mod runtime;
pub mod task;
pub mod time;

#[cfg(feature = "ktest")]
mod selftest;

use libos::boot::cmdline::{KernelArgs, LogLevel};
use spin::RwLock;

use crate::boot_info::BootInfo;
use crate::exit::{ExitCode, exit, exit_because};
use crate::platform::FailureReason;

/// Pages of the main kernel stack and of each IST stack.
const KERNEL_STACK_PAGES: u64 = 16;
const IST_STACK_PAGES: u64 = 4;

/// Filled in place (it is too large to pass around on the boot stack), then
/// only read.
/// (The boot abandons its stack with a read guard still on it, so readers
/// must never be blocked by a writer after the gathering.)
static BOOT_INFO: RwLock<BootInfo> = RwLock::new(BootInfo::empty());

fn level_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Off => log::LevelFilter::Off,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

/// Stops the boot with a message: exits QEMU with the failure code.
fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency_write(format_args!("\nFATAL: {args}\n"));
    exit_because(ExitCode::Failure, FailureReason::Boot)
}

/// The Rust entry, called by the boot code ([`arch::boot`]) on the boot
/// stack with the physical address of `hvm_start_info`.
pub fn kernel_main(start_info_paddr: u64) -> ! {
    // Exceptions reported from the first instruction: on SEV-SNP the
    // platform detection's CPUID below is a #VC (`platform::snp::on_vc`).
    arch::idt::init_early();
    install_trap_hooks();
    // The hardware seam next: the console's port I/O goes through it.
    let platform = platform::init();
    let caching_enabled = arch::cpu::enable_write_back_memory();
    time::mark_boot();
    console::init(log::LevelFilter::Info);
    arch::pit::mask_legacy_pic();
    let Some(measured_tsc_hz) = arch::pit::measure_tsc_hz() else {
        fatal(format_args!(
            "the PIT does not count: cannot calibrate the TSC"
        ))
    };
    time::set_tsc_hz(measured_tsc_hz, libos::boot::tsc::TscSource::Measured);

    if let Err(e) = boot_info::gather(start_info_paddr, &mut BOOT_INFO.write()) {
        fatal(format_args!("bad PVH boot information: {e}"));
    }
    let info = BOOT_INFO.read();
    let info = &*info;
    let args = KernelArgs::parse(info.cmdline());
    match args.log_level() {
        Ok(level) => console::set_level(level_filter(level)),
        Err(e) => log::warn!("ignoring {}={}: expected {}", e.key, e.value, e.expected),
    }
    // The host's TSC frequency, if it gave one and it agrees with the
    // PIT's: before anything keeps time (a few milliseconds of boot were
    // counted at the measured rate; they shift by at most 2 %).
    let hint = args.tsc_khz().unwrap_or_else(|e| {
        log::warn!("ignoring {}={}: expected {}", e.key, e.value, e.expected);
        None
    });
    let (tsc_hz, source) = libos::boot::tsc::choose_tsc_hz(measured_tsc_hz, hint);
    time::set_tsc_hz(tsc_hz, source);
    kprintln!("Cloister {} booting (PVH)", env!("CARGO_PKG_VERSION"));
    kprintln!("command line: {:?}", info.cmdline());
    kprintln!("platform: {}", platform.kind().name());
    match source {
        libos::boot::tsc::TscSource::Measured => {
            log::info!("TSC: {measured_tsc_hz} Hz, measured against the PIT")
        }
        libos::boot::tsc::TscSource::Host => log::info!(
            "TSC: {tsc_hz} Hz, the host's (measured against the PIT: {measured_tsc_hz} Hz)"
        ),
        libos::boot::tsc::TscSource::HintRejected => log::warn!(
            "TSC: {measured_tsc_hz} Hz, measured against the PIT; the host's tsc_khz is more than 2 % away and is not used"
        ),
    }
    if caching_enabled {
        log::info!("MTRRs were off (all memory uncached): enabled with write-back default");
    }
    for key in args.unknown_keys(audit::CMDLINE_KEYS).filter(|k| {
        !net::CMDLINE_KEYS.contains(k)
            && !run::CMDLINE_KEYS.contains(k)
            && !platform::CMDLINE_KEYS.contains(k)
            && !arch::smp::CMDLINE_KEYS.contains(k)
            && !k.starts_with(runtime::APP_KEY_PREFIX)
    }) {
        log::warn!("unknown kernel command-line key {key:?}");
    }
    print_memory_map(info);
    // The firmware's CPU tables, while the boot page tables still map the
    // BIOS areas they live in. A confidential VM without an RSDP (the IGVM
    // launch) has no firmware there: the BIOS areas are memory nobody
    // validated, whose first read would be fatal, so they are not scanned
    // and the CPUs are counted by CPUID.
    if platform.kind() == platform::PlatformKind::Native || info.rsdp_paddr != 0 {
        arch::smp::discover(info.rsdp_paddr);
    } else {
        log::info!("cpus: no RSDP on a confidential VM: firmware areas not scanned");
    }
    // Before any device register is mapped.
    platform::configure(&args);

    let mut usable = info.usable.clone();
    // Before the frame allocator is built from `usable`, so it never hands
    // out a frame of the audit region.
    let audit_region = audit::reserve(&args, &mut usable);
    // Confidential VMs: RAM the launch did not validate is accepted before
    // the first byte of it is used (the frame bitmap below is the first).
    match platform::accept_ram(&usable) {
        Ok(bytes) => log::info!(
            "platform: {} MiB of RAM accepted ({})",
            bytes >> 20,
            platform.kind().name()
        ),
        Err(e) => fatal(format_args!("the platform refused to accept RAM: {e:?}")),
    }
    let Some((bitmap_paddr, bitmap_bytes)) = mm::frames::init(&mut usable) else {
        fatal(format_args!("no room below 4 GiB for the frame bitmap"));
    };
    log::debug!("frame bitmap: {bitmap_bytes} bytes at {bitmap_paddr:#x}");
    kprintln!(
        "memory: {} MiB usable, {} frames free",
        usable.usable_bytes() >> 20,
        mm::frames::free_frames()
    );

    let features = arch::cpu::features();
    arch::cpu::enable_nx(&features);
    // The C-bit (SEV-SNP) or shared bit (TDX) every entry of the kernel's
    // tables carries; both 0 natively.
    let masks = platform.pte_masks();
    mm::pte::init(masks.private, masks.shared);
    if let Err(e) = mm::paging::init(info.ram_ranges()) {
        fatal(format_args!(
            "building the kernel page tables failed: {e:?}"
        ));
    }
    if let Err(e) = platform::snp::tables_ready() {
        fatal(format_args!("the platform's shared pages: {e:?}"));
    }
    let on = arch::cpu::enable_protections(&features);
    kprintln!(
        "protection: NX {} WP on SMEP {} SMAP {} UMIP {}",
        on_off(on.nx),
        on_off(on.smep),
        on_off(on.smap),
        on_off(on.umip)
    );

    let ist = |what| {
        mm::stack::alloc(IST_STACK_PAGES)
            .unwrap_or_else(|| fatal(format_args!("no memory for the {what} stack")))
    };
    let (df, nmi, mc) = (ist("double-fault"), ist("NMI"), ist("machine-check"));
    let user_trap = mm::stack::alloc(KERNEL_STACK_PAGES)
        .unwrap_or_else(|| fatal(format_args!("no memory for the user trap stack")));
    arch::gdt::init(user_trap.top, df.top, nmi.top, mc.top);
    arch::idt::init();
    arch::user::init();

    mm::heap::init();
    // SSE on before the audit log's first BLAKE3 or POLYVAL (its scope saves the user's
    // registers, `audit::use_sse`); the program's threads get them later.
    let fpu_xcr0 = arch::fpu::init();
    log::info!("FPU on (XCR0 {fpu_xcr0:#x})");
    audit::use_sse();
    audit::init(audit_region, &args, info.cmdline(), info.ram.usable_bytes());
    let stack = mm::stack::alloc(KERNEL_STACK_PAGES)
        .unwrap_or_else(|| fatal(format_args!("no memory for the kernel stack")));
    mm::stack::run_on(&stack, kernel_main_on_stack)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn print_memory_map(info: &BootInfo) {
    kprintln!("memory map:");
    for e in info.e820.iter().flatten() {
        if e.size_bytes == 0 {
            continue;
        }
        kprintln!(
            "  [{:#014x}-{:#014x}] {:>8} KiB {:?}",
            e.paddr,
            e.paddr.saturating_add(e.size_bytes) - 1,
            e.size_bytes >> 10,
            e.kind
        );
    }
    for m in info.modules.iter().flatten() {
        kprintln!("  module at {:#x}, {} bytes", m.paddr, m.size_bytes);
    }
    if info.dropped_entries > 0 {
        log::warn!(
            "{} memory-map entries or reservations did not fit",
            info.dropped_entries
        );
    }
}

/// What the trap path asks of the kernel ([`arch::irq`]): lazy user
/// pages, the audit record of a fatal exception, the in-guest tests'
/// failure report, the host's stop request and the end of the guest.
fn install_trap_hooks() {
    arch::irq::set_hooks(arch::irq::Hooks {
        kernel_page_fault: mm::user::resolve_fault,
        fatal_exception: |vector, error_code, rip, cr2| {
            audit::record_exception(vector, error_code, rip, cr2);
        },
        before_fatal_exit: ktest::report_failure,
        host_stop: exit::host_stop,
        fatal_exit: || exit::exit(exit::ExitCode::Failure),
    });
}

/// The timer interrupt: the clock's count, and the network card's
/// held-back transmit doorbell (a frame waits at most one tick).
fn timer_tick() {
    time::tick();
    net::ring();
}

/// The rest of the boot, on a guarded kernel stack.
extern "C" fn kernel_main_on_stack() -> ! {
    let info = BOOT_INFO.read();
    let args = KernelArgs::parse(info.cmdline());

    if let Err(e) = arch::apic::init() {
        fatal(format_args!(
            "cannot map the local APIC at {:#x}: {e:?}",
            arch::apic::physical_base()
        ));
    }
    let hz = args.timer_hz().unwrap_or_else(|e| {
        log::warn!("ignoring {}={}: expected {}", e.key, e.value, e.expected);
        100
    });
    arch::irq::register(arch::trap::TIMER_VECTOR, timer_tick);
    arch::apic::start_periodic(hz);
    arch::interrupts::enable();
    kprintln!(
        "clock: TSC {} MHz, APIC timer {} kHz, tick {} Hz",
        time::tsc_hz() / 1_000_000,
        arch::apic::timer_hz() / 1000,
        hz
    );
    // The application processors (none with one vCPU): they idle in `hlt`
    // until given work; user threads stay on this CPU (docs/ARCHITECTURE.md).
    arch::smp::start_aps(&args);
    net::init(&args);
    // The frames a CPU's work produced go out before it halts.
    arch::smp::set_before_halt(net::ring);
    if let Some(line) = platform::mmio_emulation::summary() {
        kprintln!("{line} during boot");
    }
    kprintln!("Cloister ready");

    audit::run_bench(&args);
    audit::run_crash_test(&args);

    if let Some(pattern) = args.get("ktest") {
        run_tests(pattern, args.get("ktest.after"));
    }
    // The application the image was linked with (`entry!`).
    arch::boot::app_entry()
}

/// The initramfs the boot loader passed (QEMU `-initrd`), claimed once.
///
/// The module is RAM the boot loader filled and the memory map reserves
/// (never handed to the frame allocator): it is read in place.
pub(crate) fn initramfs() -> Option<&'static [u8]> {
    static ARCHIVE: spin::Once<Option<&'static [u8]>> = spin::Once::new();
    *ARCHIVE.call_once(|| {
        let info = BOOT_INFO.read();
        let m = info.modules.iter().flatten().next()?;
        match mm::reserved::claim(m.paddr, m.size_bytes) {
            Ok(archive) => Some(archive),
            Err(e) => fatal(format_args!(
                "the initramfs at {:#x} ({} bytes) cannot be read: {e:?}",
                m.paddr, m.size_bytes
            )),
        }
    })
}

/// The Linux-ABI run mode, the `kernel` binary's entry: runs the Linux
/// program in the initramfs ([`run::start`]) or, without one, shows the
/// timer ticking and powers off.
pub fn linux_abi_main() -> ! {
    let info = BOOT_INFO.read();
    let args = KernelArgs::parse(info.cmdline());
    if let Some(archive) = initramfs() {
        run::start(&info, &args, archive);
    }
    let hz = args.timer_hz().unwrap_or(100);
    demo(&args, hz)
}

#[cfg(feature = "ktest")]
fn run_tests(pattern: &str, after: Option<&str>) -> ! {
    ktest::run(pattern, after)
}

#[cfg(not(feature = "ktest"))]
fn run_tests(_: &str, _: Option<&str>) -> ! {
    fatal(format_args!(
        "`ktest` given, but this kernel was built without the `ktest` feature"
    ))
}

/// With no application yet: show the timer ticking, then power off.
fn demo(args: &KernelArgs<'_>, hz: u32) -> ! {
    let ticks = args
        .get("demo.ticks")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::from(hz) / 2);
    let step = (ticks / 5).max(1);
    let start = time::ticks();
    let mut next = start + step;
    while time::ticks() < start + ticks {
        platform::platform().halt();
        let now = time::ticks();
        if now >= next {
            kprintln!(
                "timer: {} ticks, uptime {} ms",
                now,
                time::now_ns() / 1_000_000
            );
            next += step;
        }
    }
    kprint!("{}", mm::heap::stats());
    kprintln!("frames: {} free", mm::frames::free_frames());
    kprintln!("no application given: powering off");
    // A report bound to a final checkpoint, then authenticate the records
    // of the open block before the guest goes.
    audit::attest("power-off");
    audit::seal();
    exit(ExitCode::Success)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::interrupts::disable();
    ktest::report_failure();
    if audit::is_enabled() && audit::record_panic(info).is_none() {
        console::emergency_write(format_args!(
            "\naudit: the panic could not be recorded ({} events missed)",
            audit::missed_events()
        ));
    }
    match info.location() {
        Some(loc) => console::emergency_write(format_args!(
            "\nkernel panic at {}:{}:{}: {}\n",
            loc.file(),
            loc.line(),
            loc.column(),
            info.message()
        )),
        None => console::emergency_write(format_args!("\nkernel panic: {}\n", info.message())),
    }
    exit_because(ExitCode::Failure, FailureReason::Panic)
}
