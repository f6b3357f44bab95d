//! `cloister run`: run an unmodified Linux program in Cloister.
//!
//! - [`resolve`]: find the program, its interpreter and its libraries as
//!   `ldd` would, without running anything ([`dynamic`] reads `DT_NEEDED`
//!   and friends).
//! - [`protocol`]: what the kernel reads from the image (`/.cloister/argv`,
//!   `/.cloister/envp`) and the lines it writes back on COM1.
//! - [`image`]: the initramfs tree, written with libos's cpio writer;
//!   [`pack`] fills it for one run.
//! - [`options`]: [`RunOptions`] and the command line, [`RunArgs`].
//! - [`runner`]: [`run`] boots the kernel with the image through
//!   [`crate::qemu`] (COM2 for the program's output) and returns a
//!   [`RunResult`] with the program's exit status.

pub mod audit;
pub mod bundle;
pub mod dynamic;
pub mod image;
pub mod learn;
pub mod manifest;
pub mod options;
pub mod pack;
pub mod protocol;
pub mod resolve;
pub mod runner;

#[cfg(test)]
pub(crate) mod fixture;

pub use options::{Machine, NetMode, RunArgs, RunOptions};
pub use runner::{NO_STATUS_EXIT, RunResult, run};
