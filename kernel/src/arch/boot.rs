//! The two boot entries and the 64-bit path they share into
//! [`crate::kernel_main`] (through `kernel_entry`, the one Rust symbol the
//! assembly names).
//!
//! - **PVH** (`pvh_start32`, named by the Xen ELF note): plain QEMU's
//!   `-kernel`. The CPU is in 32-bit protected mode, paging off, `%ebx` the
//!   physical address of `hvm_start_info`. The code builds the early page
//!   table, enables long mode and jumps to `cloister_start64`.
//! - **64-bit** (`cloister_start64`, the entry an IGVM image's VMSA names;
//!   `cloister build --igvm`, docs/CVM.md "Launching on an SNP or TDX
//!   host"): the CPU is already in long mode on page tables the launch
//!   provides — on SEV-SNP with the C-bit in every private entry, which the
//!   32-bit path cannot know — with `%rsi` the physical address of the same
//!   `hvm_start_info`. Those tables must map this code identity, the first
//!   GiBs of RAM at [`crate::mm::PHYS_OFFSET`] and the kernel at its link
//!   address, as the PVH path's do.
//!
//! `cloister_start64` is what every boot runs: it loads the kernel's own
//! GDT and segments, switches to the boot stack and calls `kernel_entry`
//! with the start-info address. Under plain QEMU every boot (and so every
//! test) goes PVH → `cloister_start64`.
//!
//! The PVH path's early page table maps the first 4 GiB of physical memory
//! three times with 2 MiB pages: identity (for this code), at
//! [`crate::mm::PHYS_OFFSET`] (the direct map), and the first 2 GiB at the
//! kernel's link address `0xffff_ffff_8000_0000`. [`crate::mm::paging`]
//! replaces either boot's tables with permission-exact ones (carrying the
//! platform's C-bit, read from the platform) as soon as Rust runs.

use core::arch::global_asm;

// XEN_ELFNOTE_PHYS32_ENTRY (18): the physical address of the 32-bit entry.
// The note must be 4-byte aligned (QEMU rounds the name size up to the
// segment's alignment).
global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32
    .p2align 2
    "#
);

global_asm!(
    r#"
    .section .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov esi, ebx

    mov eax, offset boot_pdpt_low
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov dword ptr [boot_pml4 + 256 * 8], eax
    mov eax, offset boot_pdpt_high
    or eax, 3
    mov dword ptr [boot_pml4 + 511 * 8], eax

    mov eax, offset boot_pd
    or eax, 3
    mov dword ptr [boot_pdpt_low], eax
    mov dword ptr [boot_pdpt_high + 510 * 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 8], eax
    mov dword ptr [boot_pdpt_high + 511 * 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 16], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 24], eax

    xor ecx, ecx
1:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov dword ptr [boot_pd + ecx * 8], eax
    mov dword ptr [boot_pd + ecx * 8 + 4], 0
    inc ecx
    cmp ecx, 2048
    jne 1b

    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 1 << 8
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    mov eax, offset pvh_start64
    mov ecx, 0x08
    push ecx
    push eax
    retf

    .code64
pvh_start64:
    // The upper halves of the registers are undefined after the switch
    // from 32-bit code: the start-info address is the low 32 bits.
    mov esi, esi
    jmp cloister_start64

    // The 64-bit entry (IGVM's VMSA, and the PVH path above): long mode,
    // identity-mapped, %rsi = physical address of hvm_start_info. Nothing
    // here depends on the GDT, segments or stack the launch left.
    .global cloister_start64
cloister_start64:
    cli
    cld
    lgdt [rip + boot_gdt_ptr]
    lea rax, [rip + 3f]
    push 0x08
    push rax
    retfq
3:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rsp, offset __boot_stack_top
    xor ebp, ebp
    mov rdi, rsi
    movabs rax, offset kernel_entry
    call rax
2:
    hlt
    jmp 2b

    .section .boot.data, "aw"
    .p2align 12
boot_pml4:
    .zero 4096
boot_pdpt_low:
    .zero 4096
boot_pdpt_high:
    .zero 4096
boot_pd:
    .zero 4096 * 4
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
    // Read as 6 bytes by the 32-bit `lgdt`, as 10 by the 64-bit one.
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .quad boot_gdt
    .text
    "#
);

/// The symbol the assembly calls, on the boot stack with the physical
/// address of `hvm_start_info` (the System V first argument).
#[unsafe(no_mangle)]
extern "C" fn kernel_entry(start_info_paddr: u64) -> ! {
    crate::kernel_main(start_info_paddr)
}

// The application's entry, defined by the `kernel::entry!` macro in the
// crate that links the kernel (the `kernel` binary, an example, a user's
// application): exactly one per image, or the link fails.
unsafe extern "Rust" {
    safe fn __cloister_app_entry() -> !;
}

/// Enters the application the image was linked with, at the end of the
/// boot (see [`crate::runtime`]).
pub(crate) fn app_entry() -> ! {
    __cloister_app_entry()
}
