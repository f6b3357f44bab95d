//! Benchmarks run from the `cloister bench` command. Each prints a Markdown
//! table with medians and spread, ready for `docs/PERFORMANCE.md`.
//!
//! - [`boot`]: Cloister's own boot time.
//! - [`compat`]: CPython's regression suite natively and in Cloister
//!   (`cloister bench compat`), its results in [`compat_results`], its
//!   default module list in [`compat_selection`].
//! - [`linux_compare`]: Cloister against a Linux guest on the same QEMU
//!   (`cloister bench linux`): the [`guest::Guest`] boundary, the Linux
//!   guest ([`linux_kernel`], [`linux_modules`], [`linux_guest`],
//!   [`initramfs`]),
//!   the Cloister side ([`cloister_guest`]), the host packages it needs
//!   ([`host_deps`]), the figures ([`figures`],
//!   [`parse`], [`data`]), the server figures' jobs ([`server_jobs`]) and
//!   their host-side clients ([`server`]), the statistics ([`compare`]) and the host CPU time the
//!   guests got ([`host_cpu`]).

pub mod audited;
pub mod boot;
pub mod cloister_guest;
pub mod compare;
pub mod compat;
pub mod compat_results;
pub mod compat_selection;
pub mod data;
pub mod figures;
pub mod guest;
pub mod host_cpu;
pub mod host_deps;
pub mod initramfs;
pub mod linux_compare;
pub mod linux_guest;
pub mod linux_kernel;
pub mod linux_modules;
pub mod parse;
pub mod server;
pub mod server_jobs;
pub mod stats;
