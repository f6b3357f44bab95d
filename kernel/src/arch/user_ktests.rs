//! In-guest tests of ring 3: the syscall round trip, exceptions and
//! interrupts taken in user mode, and SMEP/SMAP keeping the kernel off user
//! pages.

use x86_64::structures::paging::PageTableFlags as F;

use super::catch::catch_fault;
use super::user::{ReturnReason, UserContext, execute};
use crate::ktest;
use crate::mm::{PAGE_BYTES, frames, paging, phys_to_virt};

/// A user page at `vaddr` holding `bytes`, unmapped (and freed) on drop.
struct UserPage(u64);

impl UserPage {
    fn new(vaddr: u64, bytes: &[u8], flags: F) -> Self {
        let frame = frames::alloc_zeroed().expect("frame");
        // SAFETY: the frame is ours and mapped RW in the direct map.
        let page = unsafe {
            core::slice::from_raw_parts_mut(phys_to_virt(frame) as *mut u8, PAGE_BYTES as usize)
        };
        page[..bytes.len()].copy_from_slice(bytes);
        paging::map_user_page(vaddr, frame, flags).expect("map user page");
        Self(vaddr)
    }
}

impl Drop for UserPage {
    fn drop(&mut self) {
        let frame = paging::unmap_user_page(self.0).expect("mapped");
        frames::free(frame, 1).expect("free");
    }
}

const CODE: u64 = 0x40_0000;
const STACK: u64 = 0x7fff_0000;

fn code_page(bytes: &[u8]) -> UserPage {
    UserPage::new(CODE, bytes, F::PRESENT)
}

fn stack_page() -> UserPage {
    UserPage::new(STACK, &[], F::PRESENT | F::WRITABLE | F::NO_EXECUTE)
}

/// Runs until user code needs the kernel for something other than a
/// timer tick (which may be pending at any entry).
fn run(ctx: &mut UserContext) -> ReturnReason {
    loop {
        match execute(ctx) {
            ReturnReason::Interrupt(_) => continue,
            other => return other,
        }
    }
}

fn context() -> UserContext {
    UserContext {
        rip: CODE,
        rsp: STACK + PAGE_BYTES,
        ..UserContext::default()
    }
}

ktest!(
    fn syscall_round_trip_preserves_registers() {
        // mov eax, 39; syscall; mov rdi, rax; ud2
        let _code = code_page(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc7, 0x0f, 0x0b]);
        let _stack = stack_page();
        let mut ctx = UserContext {
            rbx: 0x1111,
            r12: 0x2222,
            r15: 0x3333,
            ..context()
        };
        assert_eq!(run(&mut ctx), ReturnReason::Syscall);
        assert_eq!(
            (ctx.rax, ctx.rip, ctx.rcx),
            (39, CODE + 7, CODE + 7),
            "SYSCALL saves RIP in RCX"
        );
        assert_eq!((ctx.rbx, ctx.r12, ctx.r15), (0x1111, 0x2222, 0x3333));
        ctx.rax = 1234;
        let r = run(&mut ctx);
        assert!(
            matches!(r, ReturnReason::Exception { vector: 6, .. }),
            "{r:?}"
        );
        assert_eq!((ctx.rip, ctx.rdi), (CODE + 10, 1234));
    }
);

ktest!(
    fn user_access_to_kernel_memory_is_a_user_page_fault() {
        // mov rax, [0xffffffff80400000]; ud2
        let mut code = [
            0x48, 0xa1, 0, 0, 0x40, 0x80, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b,
        ];
        code[2..10].copy_from_slice(&0xffff_ffff_8040_0000u64.to_le_bytes());
        let _code = code_page(&code);
        let _stack = stack_page();
        let mut ctx = context();
        let r = run(&mut ctx);
        // Present (1) | user mode (4): the page exists but is supervisor-only.
        assert_eq!(
            r,
            ReturnReason::Exception {
                vector: 14,
                error_code: 5,
                cr2: 0xffff_ffff_8040_0000
            }
        );
        assert_eq!(ctx.rip, CODE);
    }
);

ktest!(
    fn user_write_to_its_code_page_faults() {
        // mov byte ptr [rip - 7], 0  (writes into this page); ud2
        let _code = code_page(&[0xc6, 0x05, 0xf9, 0xff, 0xff, 0xff, 0x00, 0x0f, 0x0b]);
        let _stack = stack_page();
        let mut ctx = context();
        let r = run(&mut ctx);
        assert_eq!(
            r,
            ReturnReason::Exception {
                vector: 14,
                error_code: 7,
                cr2: CODE
            }
        );
    }
);

ktest!(
    fn timer_interrupts_a_spinning_user_loop() {
        let _code = code_page(&[0xeb, 0xfe]); // jmp .
        let _stack = stack_page();
        let mut ctx = context();
        let before = crate::time::ticks();
        assert_eq!(execute(&mut ctx), ReturnReason::Interrupt(32));
        assert_eq!(ctx.rip, CODE);
        assert!(crate::time::ticks() > before);
        // And it resumes where it was.
        assert_eq!(execute(&mut ctx), ReturnReason::Interrupt(32));
        assert_eq!(ctx.rip, CODE);
    }
);

extern "C" fn kernel_reads(addr: usize) {
    // SAFETY: deliberately reads a user page from ring 0 without `stac`:
    // SMAP must turn this into a page fault, which the test catches.
    core::hint::black_box(unsafe { (addr as *const u64).read_volatile() });
}

extern "C" fn kernel_calls(addr: usize) {
    // SAFETY: deliberately jumps to a user page from ring 0: SMEP must
    // fault on the fetch.
    let f: extern "C" fn() = unsafe { core::mem::transmute(addr) };
    f();
}

ktest!(
    fn smap_and_smep_keep_the_kernel_off_user_pages() {
        let f = super::cpu::features();
        let _code = code_page(&[0xc3]); // ret
        if f.smap {
            let fault = catch_fault(kernel_reads, CODE as usize)
                .expect("SMAP must stop a kernel read of a user page");
            assert_eq!(
                (fault.vector, fault.cr2, fault.error_code & 5),
                (14, CODE, 1)
            );
        }
        if f.smep {
            let fault = catch_fault(kernel_calls, CODE as usize)
                .expect("SMEP must stop the kernel running user code");
            assert_eq!((fault.vector, fault.rip), (14, CODE));
            assert_eq!(fault.error_code & 0x10, 0x10, "instruction fetch");
        }
    }
);
