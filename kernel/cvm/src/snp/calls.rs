//! Requests through the GHCB (GHCB spec #56421, "Non-automatic
//! exits" and their table): the guest sets the registers the exit needs, the
//! exit code and `SW_EXITINFO1/2`, exits, checks the verdict
//! ([`Ghcb::check_result`]) and takes only the registers the hypervisor
//! marked valid.
//!
//! [`GhcbCaller`] owns the guest's copy of the GHCB and the hypervisor
//! transport; the kernel's SNP backend holds one per CPU, the `#VC`
//! handler ([`super::vc`]) and the platform methods (`cpuid`, `io_read`,
//! `read_msr`, page-state changes, guest requests) use it.

use super::ghcb::{Field, Ghcb, IoDirection, IoioInfo, SHARED_BUFFER_OFFSET, exit_code};
use super::msr_protocol::PageState;
use super::{Error, GhcbProtocol, Result, psc};

/// A GHCB transport and the guest's copy of the page (see the module
/// docs).
#[derive(Debug)]
pub struct GhcbCaller<H> {
    host: H,
    ghcb: Ghcb,
    version: u16,
}

/// The four registers of a CPUID answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct Cpuid {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

impl<H: GhcbProtocol> GhcbCaller<H> {
    /// A caller speaking protocol `version` (from
    /// [`super::msr_protocol::negotiate`]) over `host`.
    pub const fn new(host: H, version: u16) -> Self {
        Self {
            host,
            ghcb: Ghcb::new(),
            version,
        }
    }

    /// Sets the protocol version (once negotiated).
    pub fn set_version(&mut self, version: u16) {
        self.version = version;
    }

    /// The protocol version in use.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The transport.
    pub fn host(&mut self) -> &mut H {
        &mut self.host
    }

    /// Exits with `code`, `info1`, `info2` after `setup` set the registers;
    /// returns the page the hypervisor answered with, verdict checked.
    fn exit(
        &mut self,
        code: u64,
        info1: u64,
        info2: u64,
        setup: impl FnOnce(&mut Ghcb),
    ) -> Result<&Ghcb> {
        self.ghcb.start(self.version);
        setup(&mut self.ghcb);
        self.ghcb.set_exit(code, info1, info2);
        self.host.ghcb_exchange(&mut self.ghcb);
        self.ghcb.check_result()?;
        Ok(&self.ghcb)
    }

    /// CPUID `leaf`/`subleaf`. `xcr0` is sent for leaf `0xD` (whose answer
    /// depends on it).
    pub fn cpuid(&mut self, leaf: u32, subleaf: u32, xcr0: u64) -> Result<Cpuid> {
        let ghcb = self.exit(exit_code::CPUID, 0, 0, |g| {
            g.set(Field::Rax, leaf.into());
            g.set(Field::Rcx, subleaf.into());
            if leaf == 0xd {
                g.set(Field::Xcr0, xcr0);
            }
        })?;
        Ok(Cpuid {
            eax: ghcb.returned(Field::Rax)? as u32,
            ebx: ghcb.returned(Field::Rbx)? as u32,
            ecx: ghcb.returned(Field::Rcx)? as u32,
            edx: ghcb.returned(Field::Rdx)? as u32,
        })
    }

    /// Reads `size_bytes` (1, 2 or 4) from port `port`.
    pub fn io_in(&mut self, port: u16, size_bytes: u8) -> Result<u32> {
        let info = IoioInfo::simple(port, size_bytes, IoDirection::In)
            .encode()
            .ok_or(Error::InvalidArgument)?;
        let ghcb = self.exit(exit_code::IOIO, info, 0, |g| g.set(Field::Rax, 0))?;
        let mask = (1u64 << (8 * u32::from(size_bytes))) - 1;
        Ok((ghcb.returned(Field::Rax)? & mask) as u32)
    }

    /// Writes the low `size_bytes` (1, 2 or 4) of `value` to port `port`.
    pub fn io_out(&mut self, port: u16, size_bytes: u8, value: u32) -> Result<()> {
        let info = IoioInfo::simple(port, size_bytes, IoDirection::Out)
            .encode()
            .ok_or(Error::InvalidArgument)?;
        let mask = (1u64 << (8 * u32::from(size_bytes))) - 1;
        self.exit(exit_code::IOIO, info, 0, |g| {
            g.set(Field::Rax, u64::from(value) & mask)
        })?;
        Ok(())
    }

    /// `RDMSR` of `msr` (`SW_EXITINFO1` = 0).
    pub fn rdmsr(&mut self, msr: u32) -> Result<u64> {
        let ghcb = self.exit(exit_code::MSR, 0, 0, |g| g.set(Field::Rcx, msr.into()))?;
        let low = ghcb.returned(Field::Rax)? & 0xffff_ffff;
        let high = ghcb.returned(Field::Rdx)? & 0xffff_ffff;
        Ok((high << 32) | low)
    }

    /// `WRMSR` of `value` to `msr` (`SW_EXITINFO1` = 1).
    pub fn wrmsr(&mut self, msr: u32, value: u64) -> Result<()> {
        self.exit(exit_code::MSR, 1, 0, |g| {
            g.set(Field::Rcx, msr.into());
            g.set(Field::Rax, value & 0xffff_ffff);
            g.set(Field::Rdx, value >> 32);
        })?;
        Ok(())
    }

    /// `RDTSC`: the time-stamp counter.
    pub fn rdtsc(&mut self) -> Result<u64> {
        let ghcb = self.exit(exit_code::RDTSC, 0, 0, |_| {})?;
        let low = ghcb.returned(Field::Rax)? & 0xffff_ffff;
        let high = ghcb.returned(Field::Rdx)? & 0xffff_ffff;
        Ok((high << 32) | low)
    }

    /// `RDTSCP`: the time-stamp counter and `TSC_AUX`.
    pub fn rdtscp(&mut self) -> Result<(u64, u32)> {
        let ghcb = self.exit(exit_code::RDTSCP, 0, 0, |_| {})?;
        let low = ghcb.returned(Field::Rax)? & 0xffff_ffff;
        let high = ghcb.returned(Field::Rdx)? & 0xffff_ffff;
        let aux = ghcb.returned(Field::Rcx)? as u32;
        Ok(((high << 32) | low, aux))
    }

    /// The guest-physical address of the GHCB's shared buffer.
    fn shared_buffer_gpa(&self) -> Result<u64> {
        self.host
            .ghcb_gpa()
            .checked_add(SHARED_BUFFER_OFFSET as u64)
            .ok_or(Error::InvalidArgument)
    }

    /// Reads `bytes` (1, 2, 4 or 8) of device memory at `gpa` (GHCB spec,
    /// "MMIO" events: `SW_EXITINFO1` the address, `SW_EXITINFO2`
    /// the length, `SW_SCRATCH` the shared buffer the value lands in).
    pub fn mmio_read(&mut self, gpa: u64, bytes: u8) -> Result<u64> {
        if !matches!(bytes, 1 | 2 | 4 | 8) {
            return Err(Error::InvalidArgument);
        }
        let scratch = self.shared_buffer_gpa()?;
        let ghcb = self.exit(exit_code::MMIO_READ, gpa, bytes.into(), |g| {
            g.set(Field::SwScratch, scratch);
        })?;
        let mut value = [0u8; 8];
        let n = usize::from(bytes);
        value[..n].copy_from_slice(&ghcb.shared_buffer()[..n]);
        Ok(u64::from_le_bytes(value))
    }

    /// Writes the low `bytes` (1, 2, 4 or 8) of `value` to device memory
    /// at `gpa` (the value goes in the shared buffer).
    pub fn mmio_write(&mut self, gpa: u64, bytes: u8, value: u64) -> Result<()> {
        if !matches!(bytes, 1 | 2 | 4 | 8) {
            return Err(Error::InvalidArgument);
        }
        let scratch = self.shared_buffer_gpa()?;
        let n = usize::from(bytes);
        self.exit(exit_code::MMIO_WRITE, gpa, bytes.into(), |g| {
            g.set(Field::SwScratch, scratch);
            g.shared_buffer_mut()[..n].copy_from_slice(&value.to_le_bytes()[..n]);
        })?;
        Ok(())
    }

    /// Makes `[paddr, paddr + bytes)` `state` with page-state-change
    /// descriptors in the shared buffer ([`psc::change_state`]).
    pub fn page_state_change(&mut self, paddr: u64, bytes: u64, state: PageState) -> Result<()> {
        psc::change_state(
            &mut self.host,
            &mut self.ghcb,
            self.version,
            paddr,
            bytes,
            state,
        )
    }

    /// An SNP guest request (GHCB spec, "SNP Guest Request"): the encrypted
    /// request page at `request_gpa`, the response page at
    /// `response_gpa` (both shared). `SW_EXITINFO2` is 0 on success, else
    /// the hypervisor's error in bits 63:32 and the firmware's in 31:0.
    pub fn guest_request(&mut self, request_gpa: u64, response_gpa: u64) -> Result<()> {
        let ghcb = self.exit(exit_code::GUEST_REQUEST, request_gpa, response_gpa, |_| {})?;
        match ghcb.raw(Field::SwExitInfo2) {
            0 => Ok(()),
            code => Err(Error::HostError(code)),
        }
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
pub(crate) mod tests;
