//! Commit accounting: which areas are charged for the memory they may
//! come to need, and when a new charge is refused with `ENOMEM` — so that
//! `malloc` returns `NULL` near the limit instead of the program being
//! killed later when it touches memory no one can back.
//!
//! Pages get frames on first touch ([`super::ops`]), so without a rule a
//! program could map far more than exists. Linux's answer is commit
//! accounting (`mm/util.c` `__vm_enough_memory`, the `VM_ACCOUNT` flag);
//! Cloister's rule, documented in `docs/LINUX_ABI.md`:
//!
//! - **Charged** ([`accountable`]): private writable mappings (anonymous
//!   or file), shared anonymous memory, `brk` growth, the executable's
//!   segments, and — unlike Linux — every accessible private file
//!   mapping, because Cloister copies file bytes into the program's own
//!   frames instead of sharing a page cache. **Not charged**: shared
//!   file mappings (they map the file's own pages, charged to the file
//!   system's size limit, as Linux does not charge them), `MAP_NORESERVE`,
//!   `MAP_STACK` (thread stacks: Linux's default mode never sums them
//!   either, so thousands of threads fit), `PROT_NONE` reservations
//!   until made accessible, and the main stack.
//! - A charge sticks until the pages are unmapped (`mprotect` removing
//!   write keeps it, as Linux's `VM_ACCOUNT`); `munmap`, shrinking `brk`
//!   and `mremap` uncharge, because [`Vm`] keeps the sum in step with the
//!   areas.
//! - [`ensure`] refuses a charge when the process's commit would exceed
//!   the memory programs can hold (Linux's strict mode with a ratio of
//!   100 % and no swap), or when the charge alone exceeds what is free
//!   for programs now (Linux's default heuristic, against free memory
//!   instead of all RAM).

use super::vm::Vm;
use super::vma::Backing;
use crate::elf::{PAGE_SIZE, Perms};
use crate::error::{Errno, Result};
use crate::platform::Platform;
use crate::return_errno_with_message;

/// Whether an area with these attributes is charged to the commit.
pub fn accountable(perms: Perms, shared: bool, backing: &Backing, noreserve: bool) -> bool {
    if noreserve {
        return false;
    }
    match backing {
        // Private writable (Linux's `accountable_mapping`) or shared
        // anonymous (Linux charges shmem at its size).
        Backing::Anonymous => perms.write || shared,
        // A private mapping copies the file's bytes into frames of the
        // program's own; a shared one maps the file's pages, which the
        // file system's limit charges already.
        Backing::File { .. } => !shared && (perms.read || perms.write || perms.execute),
    }
}

/// Page tables a charge of `bytes` may need besides its pages: one table
/// per 2 MiB started, and one more level.
fn with_tables(bytes: u64) -> u64 {
    bytes
        .saturating_add(bytes.div_ceil(2 << 20).saturating_mul(PAGE_SIZE))
        .saturating_add(PAGE_SIZE)
}

/// The commit limit: the memory programs can hold, in bytes.
pub fn limit_bytes(platform: &dyn Platform) -> u64 {
    platform.program_memory_bytes()
}

/// Checks that `vm` may take `add` more bytes of charge while `release`
/// bytes of its current charge go away in the same operation (a
/// `MAP_FIXED` mapping replacing accounted pages). `ENOMEM` when the
/// commit would pass [`limit_bytes`] or the net charge (with its page
/// tables) is more than what is free for programs now.
pub fn ensure(platform: &dyn Platform, vm: &Vm, add: u64, release: u64) -> Result<()> {
    let net = add.saturating_sub(release);
    if net == 0 {
        return Ok(());
    }
    let committed = vm.committed_bytes().saturating_sub(release);
    if committed.saturating_add(add) > limit_bytes(platform) {
        return_errno_with_message!(
            Errno::ENOMEM,
            "over the commit limit (the memory programs can hold)"
        );
    }
    if with_tables(net) > platform.memory_bytes().1 {
        return_errno_with_message!(
            Errno::ENOMEM,
            "more than the memory free for programs now (heuristic overcommit)"
        );
    }
    Ok(())
}
