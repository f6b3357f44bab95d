//! In-guest tests: registration with [`ktest!`](macro@crate::ktest), selection from
//! the command line and the run loop.
//!
//! Each test is a `static KTest` placed in the `.ktests` linker section, so
//! tests are declared next to the code they test and collected without a
//! central list (as Asterinas' `ostd-test` does). The kernel command line
//! selects:
//!
//! - `ktest` — run every test not marked `#[ignore]`;
//! - `ktest=PATTERN` — tests whose name contains `PATTERN`; an ignored test
//!   runs only when `PATTERN` is its exact name (the runner's self-tests);
//! - `ktest.after=NAME` — skip tests up to and including `NAME` (the host
//!   runner resumes after a test that brought the guest down).
//!
//! Output protocol (parsed by `tools::ktest`): `ktest: begin NAME` before a
//! test, `test NAME ... ok` after it; a panic or fatal exception inside a
//! test prints `test NAME ... FAILED` and exits QEMU with the failure code.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::exit::{ExitCode, exit};

/// One registered test.
#[derive(Debug)]
#[repr(C)]
pub struct KTest {
    /// Full name: module path and function name.
    pub name: &'static str,
    /// The test body; failing means panicking.
    pub func: fn(),
    /// Run only when named exactly.
    pub ignore: bool,
}

/// Registers an in-guest test: `ktest!(fn name() { ... })`, or with
/// `#[ignore]` before `fn` for tests that run only when named.
#[macro_export]
macro_rules! ktest {
    (#[ignore] fn $name:ident() $body:block) => {
        $crate::ktest!(@register $name, true, $body);
    };
    (fn $name:ident() $body:block) => {
        $crate::ktest!(@register $name, false, $body);
    };
    (@register $name:ident, $ignore:expr, $body:block) => {
        fn $name() $body
        const _: () = {
            #[used]
            #[allow(unsafe_code, reason = "the test registry: a static in the .ktests link section")]
            #[unsafe(link_section = ".ktests")]
            static TEST: $crate::ktest::KTest = $crate::ktest::KTest {
                name: concat!(module_path!(), "::", stringify!($name)),
                func: $name,
                ignore: $ignore,
            };
        };
    };
}

#[allow(
    unsafe_code,
    reason = "the test registry: the .ktests section's bounds from the linker"
)]
unsafe extern "C" {
    static __ktests_start: u8;
    static __ktests_end: u8;
}

/// Every registered test.
#[allow(
    unsafe_code,
    reason = "the test registry: the .ktests section read as a slice"
)]
pub fn all() -> &'static [KTest] {
    let start = core::ptr::addr_of!(__ktests_start).cast::<KTest>();
    let end = core::ptr::addr_of!(__ktests_end).cast::<KTest>();
    let count = (end as usize - start as usize) / core::mem::size_of::<KTest>();
    // SAFETY: the linker script places every `.ktests` input section, each
    // holding exactly one `KTest` (8-aligned, so packed without padding),
    // between these two symbols, in read-only memory that lives forever.
    unsafe { core::slice::from_raw_parts(start, count) }
}

/// No test running.
const NONE: usize = usize::MAX;

/// The index in [`all`] of the test now running ([`NONE`] between tests),
/// for the failure report.
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);

/// Which tests a pattern selects.
fn selected(pattern: &str, t: &KTest) -> bool {
    if t.ignore {
        return t.name == pattern;
    }
    pattern.is_empty() || t.name.contains(pattern)
}

/// Runs the selected tests, then exits QEMU (success if all passed).
pub fn run(pattern: &str, after: Option<&str>) -> ! {
    // Link order is arbitrary: run in name order so runs are reproducible
    // and `ktest.after` means the same thing every time.
    let mut tests: alloc::vec::Vec<(usize, &KTest)> = all().iter().enumerate().collect();
    tests.sort_unstable_by_key(|(_, t)| t.name);
    let skip = after
        .and_then(|a| tests.iter().position(|(_, t)| t.name == a))
        .map_or(0, |i| i + 1);
    let chosen = || {
        tests
            .iter()
            .skip(skip)
            .filter(|(_, t)| selected(pattern, t))
    };
    crate::kprintln!("ktest: running {} tests", chosen().count());
    let mut passed = 0;
    for &(index, t) in chosen() {
        crate::kprintln!("ktest: begin {}", t.name);
        CURRENT.store(index, Ordering::Release);
        (t.func)();
        CURRENT.store(NONE, Ordering::Release);
        crate::kprintln!("test {} ... ok", t.name);
        passed += 1;
    }
    crate::kprintln!("ktest: {passed} passed, 0 failed");
    exit(ExitCode::Success)
}

/// On the panic and fatal-exception paths: reports the running test, if
/// any, as failed.
pub fn report_failure() {
    let index = CURRENT.swap(NONE, Ordering::AcqRel);
    if let Some(t) = all().get(index) {
        crate::console::emergency_write(format_args!("test {} ... FAILED\n", t.name));
    }
}
