//! The Cloister side of the comparison.
//!
//! It runs a job through `cloister run`'s library API (`tools::run`: pack
//! the program, its libraries and files into an initramfs, boot the
//! release kernel with the same [`QemuSettings`] as the Linux guest, and
//! collect the program's COM2 output and the kernel's `starting …` and
//! `CLOISTER_EXIT=` lines). That API is being written on the `run-tool`
//! branch; until it is on main, [`new`] says so and the driver measures the
//! Linux side alone, marking every Cloister cell "pending".

use anyhow::{Result, bail};

use super::guest::{Guest, QemuSettings};

/// The Cloister guest, or why there is none yet.
pub fn new(settings: &QemuSettings) -> Result<Box<dyn Guest>> {
    let _ = settings;
    bail!(
        "the Cloister side needs `cloister run`'s library API (tools::run, branch run-tool), which is not on main yet"
    )
}
