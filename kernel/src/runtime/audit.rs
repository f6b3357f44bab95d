//! The audit log for a linked application: [`record`] appends an
//! application event to the same tamper-evident log the kernel writes
//! (`--audit FILE` on `cloister run`), sealed with the other records of its
//! block and checked by `cloister audit verify`. The start of the
//! application and its exit status are recorded by the runtime itself.
//!
//! Honest limit: the application runs in ring 0, so it could also write
//! the log's in-memory state directly; the log proves what a well-behaved
//! application recorded, not what a malicious one did (docs/RUNTIME.md).

/// Records `event` (UTF-8 text, cut at the record's size limit) as an
/// application event. Returns the record's sequence number, or `None` when
/// auditing is off or the record was dropped (counted, and named later by
/// a gap record).
pub fn record(event: &str) -> Option<u64> {
    crate::audit::record_text(format_args!("app: {event}"))
}

/// Whether the run keeps an audit log.
pub fn is_enabled() -> bool {
    crate::audit::is_enabled()
}

/// Authenticates every record so far now (the runtime seals at exit too).
pub fn seal() -> Option<u64> {
    crate::audit::seal()
}
