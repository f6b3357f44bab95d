//! The application processors' start-up code: a real-mode trampoline copied
//! to a fixed page below 1 MiB ([`TRAMPOLINE_PADDR`], SIPI vector 8), which
//! enters protected mode, then long mode with a small page table of its own
//! (the first 2 MiB identity-mapped, the kernel's upper half copied), and
//! jumps to `ap_long_mode_entry` in the kernel's text, which loads the
//! kernel's own page tables and calls the Rust entry on the AP's stack.
//!
//! Layout of the four pages at [`TRAMPOLINE_PADDR`]:
//!
//! ```text
//! +0x0000  code (16-, 32-, 64-bit), its GDT at +0xe00 (pointer at +0xe20),
//!          and at +0xf00 the parameters:
//!          +0xf00 trampoline PML4 (physical), +0xf08 kernel CR3,
//!          +0xf10 stack top, +0xf18 entry, +0xf20 argument (CPU index)
//! +0x1000  PML4: [0] -> the PDPT below, [256..512] = the kernel's
//! +0x2000  PDPT: [0] -> the PD below
//! +0x3000  PD:   [0] = 2 MiB page at 0 (identity)
//! ```
//!
//! APs start one at a time, so one parameter block serves all of them.

use core::arch::global_asm;

use x86_64::registers::control::Cr3;

/// Where the trampoline is copied (page 8: free RAM on every PC; Cloister
/// allocates nothing below 2 MiB).
pub const TRAMPOLINE_PADDR: u64 = 0x8000;
/// The SIPI vector that starts a CPU at [`TRAMPOLINE_PADDR`].
pub const SIPI_VECTOR: u8 = (TRAMPOLINE_PADDR >> 12) as u8;
/// Bytes claimed at [`TRAMPOLINE_PADDR`]: code page and three table pages.
pub const TRAMPOLINE_BYTES: u64 = 4 * 4096;

/// Where the code ends: after the GDT pointer at +0xe20 (6 bytes).
const GDT_PTR_END: usize = 0xe26;
const PARAM_PML4: usize = 0xf00;
const PARAM_CR3: usize = 0xf08;
const PARAM_STACK: usize = 0xf10;
const PARAM_ENTRY: usize = 0xf18;
const PARAM_ARG: usize = 0xf20;

global_asm!(
    r#"
    .pushsection .rodata.cloister_ap_trampoline, "a"
    .set AP_BASE, 0x8000
    .global cloister_ap_trampoline_start
cloister_ap_trampoline_start:
    .code16
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [AP_BASE + 0xe20]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    // ljmp 0x08:ap_pm32 (16-bit offset: the trampoline is below 64 KiB)
    .byte 0xea
    .word AP_BASE + (ap_pm32 - cloister_ap_trampoline_start)
    .word 0x08

    .code32
ap_pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    // PAE, the trampoline's PML4, EFER.LME and NXE (the kernel's tables
    // carry NX bits), then paging with write protection.
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, dword ptr [AP_BASE + 0xf00]
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, 0x80010001
    mov cr0, eax
    // ljmp 0x18:ap_lm64
    .byte 0xea
    .long AP_BASE + (ap_lm64 - cloister_ap_trampoline_start)
    .word 0x18

    .code64
ap_lm64:
    mov rsp, qword ptr [AP_BASE + 0xf10]
    mov rsi, qword ptr [AP_BASE + 0xf08]
    mov rax, qword ptr [AP_BASE + 0xf18]
    mov rdi, qword ptr [AP_BASE + 0xf20]
    jmp rax

    .org 0xe00
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
    .org 0xe20
ap_gdt_ptr:
    .word 31
    .long AP_BASE + (ap_gdt - cloister_ap_trampoline_start)
    .global cloister_ap_trampoline_end
cloister_ap_trampoline_end:
    .popsection

    .text
    .global cloister_ap_long_mode_entry
cloister_ap_long_mode_entry:
    // On the AP's stack, in the kernel's upper half: the kernel's tables
    // map it too, so switching is safe here (the identity page is gone
    // after this).
    mov cr3, rsi
    xor ebp, ebp
    call {entry}
    ud2
    "#,
    entry = sym super::ap::ap_rust_entry,
);

unsafe extern "C" {
    static cloister_ap_trampoline_start: u8;
    static cloister_ap_trampoline_end: u8;
    fn cloister_ap_long_mode_entry();
}

/// The trampoline's pages, claimed once.
static PAGES: spin::Mutex<Option<&'static mut [u8]>> = spin::Mutex::new(None);

/// Why the trampoline could not be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrampolineError {
    /// The low pages are not RAM the kernel may claim.
    Claim(crate::mm::reserved::ClaimError),
    /// The code does not fit before the parameter block.
    TooLarge,
}

/// Copies the code to [`TRAMPOLINE_PADDR`] and builds its page table from
/// the kernel's PML4 (whose upper half must already hold every kernel
/// mapping an AP touches before it loads the kernel's CR3: text, stacks).
pub fn install() -> Result<(), TrampolineError> {
    let start = &raw const cloister_ap_trampoline_start as usize;
    let end = &raw const cloister_ap_trampoline_end as usize;
    let code_bytes = end - start;
    // It ends right after the GDT pointer (`.org 0xe20` + 6 bytes), before
    // the parameters.
    if !(GDT_PTR_END..=PARAM_PML4).contains(&code_bytes) {
        return Err(TrampolineError::TooLarge);
    }
    let mut guard = PAGES.lock();
    if guard.is_none() {
        let pages = crate::mm::reserved::claim_mut(TRAMPOLINE_PADDR, TRAMPOLINE_BYTES)
            .map_err(TrampolineError::Claim)?;
        *guard = Some(pages);
    }
    let pages = guard.as_mut().expect("claimed above");
    pages.fill(0);
    // SAFETY: `start..end` is the trampoline's code in the kernel's
    // read-only data (the linker symbols delimit it); it is only read.
    let code = unsafe { core::slice::from_raw_parts(start as *const u8, code_bytes) };
    pages[..code_bytes].copy_from_slice(code);

    let (pml4, pdpt, pd) = (
        TRAMPOLINE_PADDR + 0x1000,
        TRAMPOLINE_PADDR + 0x2000,
        TRAMPOLINE_PADDR + 0x3000,
    );
    const PRESENT_WRITABLE: u64 = 0b11;
    const HUGE: u64 = 1 << 7;
    put(pages, 0x1000, pdpt | PRESENT_WRITABLE);
    put(pages, 0x2000, pd | PRESENT_WRITABLE);
    put(pages, 0x3000, HUGE | PRESENT_WRITABLE);
    let kernel_pml4 = crate::mm::phys_to_virt(kernel_cr3() & !0xfff);
    for i in 256..512u64 {
        // SAFETY: the kernel's PML4 is a live, 4 KiB-aligned page in the
        // direct map; reading an entry (a u64) has no side effects.
        let entry = unsafe { ((kernel_pml4 + i * 8) as *const u64).read_volatile() };
        put(pages, 0x1000 + (i as usize) * 8, entry);
    }
    put(pages, PARAM_PML4, pml4);
    put(pages, PARAM_CR3, kernel_cr3());
    put(
        pages,
        PARAM_ENTRY,
        cloister_ap_long_mode_entry as *const () as u64,
    );
    Ok(())
}

/// Sets the stack and argument of the next AP to start.
pub fn set_next(stack_top: u64, arg: u64) {
    if let Some(pages) = PAGES.lock().as_mut() {
        put(pages, PARAM_STACK, stack_top);
        put(pages, PARAM_ARG, arg);
    }
}

/// The kernel's CR3 value (the PML4's physical address and flags).
fn kernel_cr3() -> u64 {
    let (frame, flags) = Cr3::read_raw();
    frame.start_address().as_u64() | u64::from(flags)
}

fn put(pages: &mut [u8], offset: usize, value: u64) {
    pages[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}
