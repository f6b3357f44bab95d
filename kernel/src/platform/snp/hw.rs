//! The SEV-SNP instructions and the pages shared with the hypervisor: the
//! only unsafe code of the SNP backend. Everything else it does is logic
//! in `cvm::snp`, which this module serves through the crate's traits:
//!
//! - [`MsrHost`] ([`MsrProtocol`]): write the GHCB MSR, `VMGEXIT`, read it;
//! - [`GhcbHost`] ([`GhcbProtocol`]): copy the guest's GHCB into the shared
//!   page, point the GHCB MSR at it, `VMGEXIT`, copy it back;
//! - [`Cpu`] ([`Pvalidate`]): `PVALIDATE` on a page of the direct map;
//! - [`SharedPage`]: a page-aligned page of the kernel image that the
//!   backend makes shared at boot (the GHCB, the guest-request pages),
//!   accessed only by whole-page volatile copies, so nothing the host
//!   writes is read twice.
//!
//! None of this has run on SEV-SNP hardware (see docs/CVM.md).

use core::arch::asm;
use core::cell::UnsafeCell;

use cvm::snp::ghcb::{GHCB_BYTES, Ghcb};
use cvm::snp::msr_protocol::MSR_GHCB;
use cvm::snp::psc::{PageSize, Pvalidate, PvalidateOutcome};
use cvm::snp::{GhcbProtocol, MsrProtocol};
use x86_64::registers::model_specific::Msr;

use crate::mm::{KERNEL_VIRT, phys_to_virt};

/// `VMGEXIT` (`rep vmmcall`, `F3 0F 01 D9`): hands control to the
/// hypervisor, which answers through the GHCB MSR or the GHCB page.
fn vmgexit() {
    // SAFETY: under SEV-ES/SNP the hypervisor cannot read or change the
    // guest's registers (they live in the encrypted VMSA) or its private
    // memory; it can change shared memory and the GHCB MSR, which the asm
    // block declares by not being `nomem` (the compiler assumes memory
    // may change). No stack is used.
    unsafe { asm!("rep vmmcall", options(nostack, preserves_flags)) };
}

/// Writes the GHCB MSR.
fn write_ghcb_msr(value: u64) {
    // SAFETY: the GHCB MSR only tells the hypervisor where the GHCB is or
    // carries an MSR-protocol request; it changes nothing the kernel's
    // memory safety rests on.
    unsafe { Msr::new(MSR_GHCB).write(value) };
}

/// Reads the GHCB MSR.
fn read_ghcb_msr() -> u64 {
    crate::arch::cpu::read_msr(MSR_GHCB)
}

/// The MSR protocol over the GHCB MSR.
#[derive(Debug)]
pub struct MsrHost;

impl MsrProtocol for MsrHost {
    fn msr_exchange(&mut self, request: u64) -> u64 {
        write_ghcb_msr(request);
        vmgexit();
        read_ghcb_msr()
    }
}

/// A 4 KiB page of the kernel image shared with the hypervisor.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct SharedPage(UnsafeCell<[u8; GHCB_BYTES]>);

// SAFETY: the page is only touched through `copy_in`/`copy_out`, whose
// callers hold the backend's GHCB lock; the hypervisor writing it at any
// time is the reason every access is a volatile copy.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// A zeroed page (in `.bss`).
    pub const fn zeroed() -> Self {
        Self(UnsafeCell::new([0; GHCB_BYTES]))
    }

    /// Its virtual address (in the kernel image).
    pub fn vaddr(&self) -> u64 {
        self.0.get() as u64
    }

    /// Its physical address: the image is linked at `KERNEL_VIRT` plus its
    /// physical address.
    pub fn paddr(&self) -> u64 {
        self.vaddr() - KERNEL_VIRT
    }

    /// Copies `src` into the page.
    pub fn copy_in(&self, src: &[u8; GHCB_BYTES]) {
        let dst = self.0.get().cast::<u64>();
        for (i, chunk) in src.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // SAFETY: `i < 512`, so the word lies inside the page, which is
            // 4096-aligned; no Rust reference to the page exists (it is
            // only reached through this raw pointer).
            unsafe { dst.add(i).write_volatile(u64::from_le_bytes(word)) };
        }
    }

    /// Copies the page into `dst`.
    pub fn copy_out(&self, dst: &mut [u8; GHCB_BYTES]) {
        let src = self.0.get().cast::<u64>();
        for (i, chunk) in dst.chunks_exact_mut(8).enumerate() {
            // SAFETY: as in `copy_in`.
            let word = unsafe { src.add(i).read_volatile() };
            chunk.copy_from_slice(&word.to_le_bytes());
        }
    }
}

/// The GHCB page (one: Cloister runs on the boot CPU only; SMP brings one
/// per CPU).
pub static GHCB_PAGE: SharedPage = SharedPage::zeroed();
/// The guest-request page (encrypted request to the PSP).
pub static REQUEST_PAGE: SharedPage = SharedPage::zeroed();
/// The guest-response page (encrypted response from the PSP).
pub static RESPONSE_PAGE: SharedPage = SharedPage::zeroed();

/// GHCB exchanges through [`GHCB_PAGE`].
#[derive(Debug)]
pub struct GhcbHost;

impl GhcbProtocol for GhcbHost {
    fn ghcb_exchange(&mut self, ghcb: &mut Ghcb) {
        GHCB_PAGE.copy_in(ghcb.as_bytes());
        write_ghcb_msr(GHCB_PAGE.paddr());
        vmgexit();
        GHCB_PAGE.copy_out(ghcb.as_bytes_mut());
    }

    fn ghcb_gpa(&self) -> u64 {
        GHCB_PAGE.paddr()
    }
}

/// `PVALIDATE` (`F2 0F 01 FF`): `RAX` the virtual address, `ECX` the page
/// size (0 = 4 KiB, 1 = 2 MiB), `EDX` 1 to validate, 0 to rescind;
/// returns `EAX` and whether `CF` (no RMP change) was set.
///
/// # Safety
///
/// `vaddr` must map the page with the C-bit, and when rescinding, nothing
/// may use the page's contents afterwards (the caller gives the page up:
/// it is about to become shared or to be returned to the host).
pub unsafe fn pvalidate(vaddr: u64, size: PageSize, validate: bool) -> PvalidateOutcome {
    let code: u64;
    let unchanged: u8;
    // SAFETY: the caller's contract; PVALIDATE changes only the RMP's
    // validated bit of the page, and raises #GP on a bad address (a kernel
    // bug, reported by the trap handler).
    unsafe {
        asm!(
            ".byte 0xf2, 0x0f, 0x01, 0xff",
            "setc {cf}",
            inout("rax") vaddr => code,
            in("ecx") u32::from(size == PageSize::Size2M),
            in("edx") u32::from(validate),
            cf = out(reg_byte) unchanged,
            options(nostack),
        );
    }
    PvalidateOutcome {
        code: code as u32,
        unchanged: unchanged != 0,
    }
}

/// `PVALIDATE` on pages reached through the direct map.
#[derive(Debug)]
pub struct Cpu;

impl Pvalidate for Cpu {
    fn pvalidate(&mut self, paddr: u64, size: PageSize, validate: bool) -> PvalidateOutcome {
        // SAFETY: the direct map maps all RAM (with the C-bit once the page
        // tables apply it, see the module docs of `super`); the range was
        // handed over by a caller of `make_shared`/`make_private`/
        // `accept_memory`, whose contract is that its contents are lost.
        unsafe { pvalidate(phys_to_virt(paddr), size, validate) }
    }
}
