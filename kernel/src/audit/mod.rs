//! The kernel side of the audit log (`docs/AUDIT.md`): finds the region,
//! formats it with the `audit` crate, and records boot, CPU exceptions and
//! panics; the LibOS records syscalls through [`record_syscall`].
//!
//! - [`region`]: where the ring lives (the `ivshmem-plain` device, or RAM
//!   reserved with `audit=SIZE`), chosen before the frame allocator exists;
//! - [`key`]: `audit_key=` or a random per-boot key, RDRAND;
//! - [`mod@attest`]: attestation reports bound to the log (at boot and before
//!   the final seal) and the guest side of the attested key release
//!   (`audit.key_release`);
//! - `log`: the locked [`audit::AuditLog`] and the `record_*` functions;
//! - `crash` (`ktest` builds only): `audit.crash_test=` actions that die in
//!   chosen ways for the host's crash tests.
//!
//! Boot order: [`reserve`] before the frame allocator is built, [`init`]
//! once the page tables and the heap are up. Command-line keys:
//! `audit=SIZE`, `audit_key=HEX`, `audit.key_release`,
//! `audit.policy=overwrite-oldest|drop-newest` and (test kernels)
//! `audit.crash_test=`.

pub mod attest;
mod bench;
#[cfg(feature = "ktest")]
mod crash;
pub mod key;
#[cfg(feature = "ktest")]
mod ktests;
mod log;
pub mod region;

use alloc::string::String;

use ::audit::{AuditLog, Config, Event, OverflowPolicy};
use libos::boot::cmdline::KernelArgs;

pub use self::log::{
    failed_appends, is_enabled, missed_events, record_event, record_exception, record_host_stop,
    record_panic, record_syscall, record_syscall_at, record_text, seal,
};
pub use attest::attest;
pub use region::{Region, Source, reserve};

use key::{Entropy, KeySource};

/// Command-line keys this module reads besides `audit` (which the LibOS's
/// parser knows), for the kernel's unknown-key warning.
pub const CMDLINE_KEYS: &[&str] = &[
    "audit_key",
    "audit.key_release",
    "audit.policy",
    "audit.crash_test",
    "audit.bench",
];

/// The region in use, once [`init`] succeeded (for tests and diagnostics).
static REGION: spin::Once<Region> = spin::Once::new();

/// The kernel's block size. A block's seal costs a fixed part (its key's
/// derivation, the ratchet's step, the POLYVAL key's powers) and a part per
/// byte, so larger blocks spread the fixed part thinner; a crash loses no
/// more for it: the records of the open block are read back, unsealed.
pub(crate) const BLOCK_BYTES: usize = 8192;

/// The region the log lives in, if auditing is on.
pub fn active_region() -> Option<&'static Region> {
    REGION.get()
}

/// The audit crate's BLAKE3 and POLYVAL run inside
/// [`crate::arch::fpu::with_sse`].
struct KernelSse;

impl ::audit::simd::SimdScope for KernelSse {
    fn run(&self, f: &mut dyn FnMut()) {
        crate::arch::fpu::with_sse(f);
    }
}

/// Lets the audit log's BLAKE3 use SIMD (AVX2 or SSE4.1) and its block
/// MACs the carry-less multiply, saving the user's registers around every
/// use. Call after [`crate::arch::fpu::init`], before
/// [`init`].
pub fn use_sse() {
    ::audit::simd::set_scope(&KernelSse);
    ::log::info!(
        "audit: BLAKE3 {}, block MACs' POLYVAL {}",
        ::audit::simd::implementation(),
        ::audit::simd::mac_implementation()
    );
}

/// Formats `region` (from [`reserve`]) and records the boot: a `boot`
/// record (memory, CPUs, the command line with the key redacted) and a text
/// record naming the kernel version, the region and the key's origin, then
/// an attestation record bound to the first checkpoint.
/// Without a region, logs that auditing is off.
pub fn init(region: Option<Region>, args: &KernelArgs<'_>, cmdline: &str, memory_bytes: u64) {
    let Some(region) = region else {
        ::log::info!("audit: off (no ivshmem device and no audit=SIZE)");
        return;
    };
    let bytes = match region::map(&region) {
        Ok(b) => b,
        Err(e) => {
            ::log::error!("audit: cannot map the region: {e:?}: auditing is off");
            return;
        }
    };
    let mut config = Config::new([0; 32], [0; 16]);
    config.block_bytes = BLOCK_BYTES;
    let mut entropy = key::random_bytes(&mut config.boot_id);
    let key_source = if args.has("audit.key_release") {
        if args.has("audit_key") {
            ::log::warn!("audit: audit.key_release given: ignoring audit_key=");
        }
        match attest::release_key(&config.boot_id) {
            Ok(k) => {
                config.key = *k;
                KeySource::Released
            }
            Err(why) => {
                ::log::warn!("audit: key release failed: {why}: using a random per-boot key");
                KeySource::RandomPerBoot
            }
        }
    } else {
        match args.get("audit_key").map(key::parse_hex_key) {
            Some(Ok(k)) => {
                config.key = k;
                KeySource::CommandLine
            }
            Some(Err(_)) => {
                ::log::warn!("audit: audit_key is not 64 hex digits: ignoring it");
                KeySource::RandomPerBoot
            }
            None => KeySource::RandomPerBoot,
        }
    };
    if key_source == KeySource::RandomPerBoot
        && key::random_bytes(&mut config.key) == Entropy::TscOnly
    {
        entropy = Entropy::TscOnly;
    }
    match args.get("audit.policy") {
        None | Some("overwrite-oldest") => {}
        Some("drop-newest") => config.policy = OverflowPolicy::DropNewest,
        Some(other) => ::log::warn!(
            "audit: ignoring audit.policy={other}: expected overwrite-oldest or drop-newest"
        ),
    }
    let formatted = AuditLog::format(bytes, &config);
    key::wipe(&mut config.key);
    let log = match formatted {
        Ok(log) => log,
        Err(e) => {
            ::log::error!("audit: cannot format the region: {e}: auditing is off");
            return;
        }
    };
    let blocks = log.block_count();
    let policy = log.policy();
    self::log::install(log);
    REGION.call_once(|| region);

    let where_ = match region.source {
        Source::Ivshmem(f) => alloc::format!("ivshmem {f} (host file)"),
        Source::Ram => String::from("RAM reserved by audit="),
    };
    crate::kprintln!(
        "audit: {} KiB at {:#x} in {where_}, {blocks} blocks, {}",
        region.region_bytes >> 10,
        region.paddr,
        policy.name()
    );
    let key_note = match key_source {
        KeySource::CommandLine => {
            "key from audit_key= (the command line is host-visible: for testing only)"
        }
        KeySource::Released => "key released by the owner's broker after attestation",
        KeySource::RandomPerBoot => {
            "no audit_key=: random per-boot key, kept nowhere: records can be read but nobody can verify them"
        }
    };
    crate::kprintln!("audit: {key_note}");
    if entropy == Entropy::TscOnly {
        ::log::warn!(
            "audit: no RDRAND: the boot id (and a random key) come from the TSC and are guessable"
        );
    }
    let redacted = redact_key(cmdline);
    record_event(&Event::Boot {
        memory_bytes,
        // The CPUs the firmware lists (the kernel starts them after this
        // record; at most `arch::smp::MAX_CPUS` are used).
        cpu_count: crate::arch::smp::found_cpus()
            .len()
            .min(crate::arch::smp::MAX_CPUS) as u32,
        cmdline: &redacted,
    });
    record_text(format_args!(
        "Cloister {} kernel; audit region {} bytes at {:#x} ({where_}); {key_note}",
        env!("CARGO_PKG_VERSION"),
        region.region_bytes,
        region.paddr,
    ));
    attest("boot");
}

/// The command line with the value of `audit_key=` replaced, so the key
/// never lands in the log.
fn redact_key(cmdline: &str) -> String {
    let mut out = String::with_capacity(cmdline.len());
    for (i, word) in cmdline.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.starts_with("audit_key=") {
            out.push_str("audit_key=<redacted>");
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Measures appends in a scratch ring if the command line says
/// `audit.bench=N` (see `bench`).
pub fn run_bench(args: &KernelArgs<'_>) {
    bench::run(args);
}

/// Runs an `audit.crash_test=` action if the command line asks for one
/// (test kernels only; see `crash`). Returns if there is none.
pub fn run_crash_test(args: &KernelArgs<'_>) {
    #[cfg(feature = "ktest")]
    crash::run(args);
    #[cfg(not(feature = "ktest"))]
    if args.has("audit.crash_test") {
        ::log::warn!("audit.crash_test ignored: this kernel was built without `ktest`");
    }
}
