//! A fatal fault in the application: the signal Linux would send, a clear
//! report, and exit status 128 + signal; and the out-of-memory kill.

/// Linux signal numbers for the faults we map.
const SIGILL: u8 = 4;
const SIGTRAP: u8 = 5;
pub(super) const SIGBUS: u8 = 7;
const SIGFPE: u8 = 8;
const SIGSEGV: u8 = 11;

/// The signal for CPU exception `vector`, and its name.
pub(super) fn signal_for(vector: u64) -> (u8, &'static str) {
    match vector {
        0 | 16 | 19 => (SIGFPE, "SIGFPE"),
        1 | 3 => (SIGTRAP, "SIGTRAP"),
        6 => (SIGILL, "SIGILL"),
        17 => (SIGBUS, "SIGBUS"),
        _ => (SIGSEGV, "SIGSEGV"),
    }
}

/// Describes a page fault's error code the way a reader wants it.
fn page_fault_detail(error_code: u64) -> &'static str {
    match (
        error_code & 1 != 0,
        error_code & 2 != 0,
        error_code & 16 != 0,
    ) {
        (_, _, true) => "instruction fetch",
        (false, true, _) => "write to an unmapped address",
        (false, false, _) => "read of an unmapped address",
        (true, true, _) => "write to a read-only page",
        (true, false, _) => "read of an inaccessible page",
    }
}

/// Linux's `SIGKILL`, which the out-of-memory killer sends.
const SIGKILL: u8 = 9;

/// Ends the program because thread `tid` touched a valid page at `addr`
/// that no memory is left to back: `SIGKILL` (status 137) with a
/// `cloister:` line and an audit record, as Linux's OOM killer would —
/// never a misleading `SIGSEGV`, and the kernel keeps its reserve.
pub fn out_of_memory(tid: u32, addr: u64) {
    let (total, free) = crate::mm::frames::memory_bytes();
    let text = alloc::format!(
        "cloister: out of memory: program killed (SIGKILL) when thread {tid} touched {addr:#x}; {} of {} MiB in use\n",
        total.saturating_sub(free) >> 20,
        total >> 20
    );
    crate::audit::record_text(format_args!("{}", text.trim_end()));
    crate::app_console::write_err(text.as_bytes());
    log::info!("{}", text.trim_end());
    super::procs::die(u32::from(SIGKILL))
}

/// Terminates the program with `SIGBUS` (no handler): thread `tid`
/// touched a page of a shared file mapping at `addr` that the file cannot
/// back (past its end).
pub fn bus_error(tid: u32, addr: u64, rip: u64) {
    crate::audit::record_exception(14, 0, rip, addr);
    let text = alloc::format!(
        "cloister: program killed by SIGBUS: access past the end of a mapped file at {addr:#x}, RIP {rip:#x}, thread {tid}\n"
    );
    crate::app_console::write_err(text.as_bytes());
    log::info!("{}", text.trim_end());
    super::procs::die(u32::from(SIGBUS))
}

/// Terminates the program for exception `vector` in thread `tid`.
pub fn kill(tid: u32, vector: u64, error_code: u64, cr2: u64, rip: u64) {
    // Audit hook: a fatal user-mode exception (resolved lazy-page faults
    // never get here). Sealed at once, before anything else can fail.
    let audit_cr2 = if vector == 14 { cr2 } else { 0 };
    crate::audit::record_exception(vector as u8, error_code, rip, audit_cr2);
    let (sig, name) = signal_for(vector);
    let what = crate::arch::trap::exception_name(vector);
    let text = if vector == 14 {
        alloc::format!(
            "cloister: program killed by {name}: {what}, {} at {cr2:#x}, RIP {rip:#x}, thread {tid}\n",
            page_fault_detail(error_code)
        )
    } else {
        alloc::format!(
            "cloister: program killed by {name}: {what} (error code {error_code:#x}), RIP {rip:#x}, thread {tid}\n"
        )
    };
    crate::app_console::write_err(text.as_bytes());
    log::info!("{}", text.trim_end());
    super::procs::die(u32::from(sig))
}
