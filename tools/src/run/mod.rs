//! `cloister run`: run an unmodified Linux program in Cloister.
//!
//! - [`resolve`]: find the program, its interpreter and its libraries as
//!   `ldd` would, without running anything ([`dynamic`] reads `DT_NEEDED`
//!   and friends).
//! - [`protocol`]: what the kernel reads from the image (`/.cloister/argv`,
//!   `/.cloister/envp`) and the lines it writes back on COM1.

pub mod dynamic;
pub mod image;
pub mod options;
pub mod pack;
pub mod protocol;
pub mod resolve;

#[cfg(test)]
pub(crate) mod fixture;
