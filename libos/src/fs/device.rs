//! Character devices: `/dev/null`, `/dev/zero`, `/dev/urandom` (and
//! `/dev/random`), `/dev/console`, `/dev/tty` (which, as for a process
//! without a controlling terminal, does not open: `ENXIO`) and `/dev/ptmx`
//! (pseudo-terminals, [`super::pty`]). A node `mknod`
//! makes for a number no device here has is a [`NoDevice`]: it exists, and
//! opening it gives `ENXIO`, as Linux for a number no driver claims.
//!
//! A device inode holds an `Arc<dyn CharDevice>`; the VFS binds device
//! nodes from the initramfs to these by `(major, minor)` through
//! [`DeviceRegistry`]. Console output goes to a [`ConsoleSink`] the kernel
//! provides (the serial port).

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::random::Csprng;
use crate::return_errno;

/// The program's console as the kernel provides it: `/dev/console` and
/// fds 0–2 ([`super::stdio`]) write and read here.
pub trait ConsoleSink: Send + Sync {
    /// Writes all of `bytes` to the output stream.
    fn write_console(&self, bytes: &[u8]);
    /// Writes all of `bytes` to the error stream (by default the output
    /// stream, for a console with one line).
    fn write_console_err(&self, bytes: &[u8]) {
        self.write_console(bytes);
    }
    /// Moves raw bytes waiting on the input line into `buf` without
    /// blocking; 0 when there are none now (or there is no input line).
    fn read_console_input(&self, _buf: &mut [u8]) -> usize {
        0
    }
}

/// A character device's operations.
pub trait CharDevice: Send + Sync {
    /// `(major, minor)` as Linux numbers it.
    fn rdev(&self) -> (u32, u32);
    /// Reads into `buf`; returns the byte count (0 = end of file).
    fn read(&self, buf: &mut [u8]) -> Result<usize>;
    /// Writes `buf`; returns the byte count.
    fn write(&self, buf: &[u8]) -> Result<usize>;
    /// Whether it is a terminal (answers `TCGETS`).
    fn is_tty(&self) -> bool {
        false
    }
    /// Whether it may be opened now (`ENXIO`: no such device or address).
    fn open(&self) -> Result<()> {
        Ok(())
    }
    /// An open file of its own for each `open` (a pseudo-terminal's
    /// master or slave), instead of the node's reads and writes; `None`
    /// for a device opened as a plain node.
    fn open_file(
        &self,
        _vfs: &Arc<super::vfs::Vfs>,
        _flags: u32,
    ) -> Option<Result<Arc<dyn crate::fd::FileLike>>> {
        None
    }
}

/// A device number with no device behind it: the node exists, `open`
/// gives `ENXIO`.
#[derive(Debug, Clone, Copy)]
pub struct NoDevice {
    rdev: (u32, u32),
}

impl NoDevice {
    /// The device numbered `rdev`, which nothing here drives.
    pub const fn new(rdev: (u32, u32)) -> Self {
        Self { rdev }
    }
}

impl CharDevice for NoDevice {
    fn rdev(&self) -> (u32, u32) {
        self.rdev
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::ENXIO)
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::ENXIO)
    }
    fn open(&self) -> Result<()> {
        return_errno!(Errno::ENXIO)
    }
}

/// `/dev/tty` (5, 0): the calling process's controlling terminal. The
/// program has none (it is not a session leader that opened a terminal),
/// so opening it gives `ENXIO`, as on Linux.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControllingTty;

impl CharDevice for ControllingTty {
    fn rdev(&self) -> (u32, u32) {
        (5, 0)
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        return_errno!(Errno::ENXIO)
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        return_errno!(Errno::ENXIO)
    }
    fn open(&self) -> Result<()> {
        return_errno!(Errno::ENXIO)
    }
}

/// `/dev/null` (1, 3): reads hit end of file, writes vanish.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullDevice;

impl CharDevice for NullDevice {
    fn rdev(&self) -> (u32, u32) {
        (1, 3)
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
}

/// `/dev/zero` (1, 5): reads return zeros, writes vanish.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroDevice;

impl CharDevice for ZeroDevice {
    fn rdev(&self) -> (u32, u32) {
        (1, 5)
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
}

/// `/dev/urandom` (1, 9) or `/dev/random` (1, 8): reads from the CSPRNG;
/// writes are accepted and ignored (Linux mixes them in; we do not).
pub struct RandomDevice {
    rng: Arc<dyn Csprng>,
    minor: u32,
}

impl RandomDevice {
    /// `/dev/urandom` over `rng`.
    pub fn urandom(rng: Arc<dyn Csprng>) -> Self {
        Self { rng, minor: 9 }
    }
    /// `/dev/random` over `rng` (never blocks, as on Linux ≥ 5.6 once seeded).
    pub fn random(rng: Arc<dyn Csprng>) -> Self {
        Self { rng, minor: 8 }
    }
}

impl core::fmt::Debug for RandomDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RandomDevice(1, {})", self.minor)
    }
}

impl CharDevice for RandomDevice {
    fn rdev(&self) -> (u32, u32) {
        (1, self.minor)
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.rng.fill_bytes(buf);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
}

/// `/dev/console` (5, 1): writes go to the [`ConsoleSink`]; reads return
/// end of file (there is no console input yet). It is a terminal.
pub struct ConsoleDevice {
    sink: Arc<dyn ConsoleSink>,
}

impl ConsoleDevice {
    /// A console writing to `sink`.
    pub fn new(sink: Arc<dyn ConsoleSink>) -> Self {
        Self { sink }
    }
}

impl core::fmt::Debug for ConsoleDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ConsoleDevice")
    }
}

impl CharDevice for ConsoleDevice {
    fn rdev(&self) -> (u32, u32) {
        (5, 1)
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.sink.write_console(buf);
        Ok(buf.len())
    }
    fn is_tty(&self) -> bool {
        true
    }
}

/// The devices the VFS knows, found by `(major, minor)`, with the name
/// each gets under `/dev`.
#[derive(Clone, Default)]
pub struct DeviceRegistry {
    devices: Vec<(&'static str, Arc<dyn CharDevice>)>,
}

impl core::fmt::Debug for DeviceRegistry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.devices.iter().map(|(n, d)| (n, d.rdev())))
            .finish()
    }
}

impl DeviceRegistry {
    /// null, zero, random, urandom, console, tty and ptmx.
    pub fn standard(rng: Arc<dyn Csprng>, console: Arc<dyn ConsoleSink>) -> Self {
        let mut r = Self::default();
        r.register("null", Arc::new(NullDevice));
        r.register("zero", Arc::new(ZeroDevice));
        r.register("random", Arc::new(RandomDevice::random(rng.clone())));
        r.register("urandom", Arc::new(RandomDevice::urandom(rng)));
        r.register("console", Arc::new(ConsoleDevice::new(console)));
        r.register("tty", Arc::new(ControllingTty));
        r.register("ptmx", Arc::new(super::pty::PtmxDevice));
        r
    }

    /// Adds `device` as `/dev/<name>`.
    pub fn register(&mut self, name: &'static str, device: Arc<dyn CharDevice>) {
        self.devices.push((name, device));
    }

    /// The device numbered `rdev`, if registered.
    pub fn find(&self, rdev: (u32, u32)) -> Option<Arc<dyn CharDevice>> {
        self.devices
            .iter()
            .find(|(_, d)| d.rdev() == rdev)
            .map(|(_, d)| d.clone())
    }

    /// Every `(name, device)`.
    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, Arc<dyn CharDevice>)> {
        self.devices.iter()
    }
}
