//! ELF64 executables for x86-64: parsing, load planning and the initial
//! process stack.
//!
//! - [`header`]: the ELF and program headers in smoltcp's wire style
//!   (`field` byte ranges, `new_checked`), and the ELF constants.
//! - [`parse`]: [`ElfFile::parse`] validates an `ET_EXEC`/`ET_DYN` image
//!   (class, machine, program header table, segment layout, `PT_INTERP`)
//!   and collects what a loader needs.
//! - [`load`]: [`LoadPlan`], the pure list of mappings to create for a
//!   given load bias, plus entry point, `AT_PHDR` and interpreter path.
//! - [`stack`]: [`build_initial_stack`], the SysV initial stack (argc, argv,
//!   envp, auxv, strings, `AT_RANDOM` bytes) as bytes plus the initial `rsp`.
//! - [`error`]: [`ElfError`], which names the problem ("ELF for aarch64,
//!   expected x86-64") and converts to `ENOEXEC`.
//!
//! The kernel reads the executable (and its interpreter) from the VFS,
//! parses both, plans each at its bias, copies the segments, builds the
//! stack and enters user mode at the interpreter's entry (or the
//! executable's, when there is no interpreter).

pub mod error;
pub mod header;
pub mod load;
pub mod parse;
pub mod stack;

pub use error::ElfError;
pub use load::{LoadPlan, Mapping, Perms};
pub use parse::{ElfFile, ElfKind, Segment, TlsTemplate};
pub use stack::{AuxvInfo, InitialStack, build_initial_stack};

/// The page size the loader plans with (x86-64 base pages).
pub const PAGE_SIZE: u64 = 4096;

/// The first address above the lower (user) half of the x86-64 canonical
/// address space.
pub const USER_SPACE_END: u64 = 0x0000_8000_0000_0000;

#[cfg(test)]
pub(crate) mod test_util;
#[cfg(test)]
mod tests;
