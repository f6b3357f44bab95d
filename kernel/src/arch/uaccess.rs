//! Copies between kernel and user memory with exception fix-up.
//!
//! [`copy_from_user`] and [`copy_to_user`] run one `rep movsb` with
//! `stac`/`clac` around it (SMAP allows ring 0 to touch user pages only
//! with `RFLAGS.AC` set). If the copy faults, the trap handler first tries
//! demand paging ([`crate::mm::user::resolve_fault`]); if the page really is
//! inaccessible it calls [`fixup`], which moves the instruction pointer to
//! the instruction after the copy — `rcx` still holds the bytes left — so
//! the copy returns a short count instead of crashing the kernel. This is
//! Linux's exception-table scheme with a table of one entry.

use core::arch::global_asm;

use super::trap::TrapFrame;
use crate::mm::user::USER_END;

global_asm!(
    r#"
    .text
    .global user_copy_raw
user_copy_raw:
    mov rcx, rdx
    stac
    .global user_copy_insn
user_copy_insn:
    rep movsb
    .global user_copy_resume
user_copy_resume:
    clac
    mov rax, rcx
    ret

    // user_cmpxchg_raw(addr = rdi, old = esi, new = edx): rax = the value
    // the word held, or -1 if it faulted (the fix-up sets rcx).
    .global user_cmpxchg_raw
user_cmpxchg_raw:
    mov eax, esi
    xor ecx, ecx
    stac
    .global user_cmpxchg_insn
user_cmpxchg_insn:
    lock cmpxchg dword ptr [rdi], edx
    .global user_cmpxchg_resume
user_cmpxchg_resume:
    clac
    test rcx, rcx
    jz 2f
    mov rax, -1
2:
    ret
    "#
);

unsafe extern "C" {
    /// Copies `len` bytes from `src` to `dst`; returns the bytes not copied.
    fn user_copy_raw(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static user_copy_insn: u8;
    static user_copy_resume: u8;
    /// Compares the user word at `addr` with `old` and stores `new` if
    /// equal, atomically (`lock cmpxchg`); returns the value it held, or
    /// `u64::MAX` if the access faulted.
    fn user_cmpxchg_raw(addr: *mut u32, old: u32, new: u32) -> u64;
    static user_cmpxchg_insn: u8;
    static user_cmpxchg_resume: u8;
}

/// Why a user copy failed: the first address that could not be accessed
/// (the start, for a range that leaves user space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUserAddress(pub u64);

fn check(addr: u64, len: usize) -> Result<(), BadUserAddress> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(BadUserAddress(addr)),
    }
}

fn result(addr: u64, len: usize, left: usize) -> Result<(), BadUserAddress> {
    if left == 0 {
        Ok(())
    } else {
        Err(BadUserAddress(addr + (len - left) as u64))
    }
}

/// Copies `buf.len()` bytes from user address `addr`.
pub fn copy_from_user(addr: u64, buf: &mut [u8]) -> Result<(), BadUserAddress> {
    // SAFETY: `buf` is a kernel buffer borrowed exclusively for the call,
    // so it stays writable and nothing else touches it during the copy.
    unsafe { copy_from_user_to(buf.as_mut_ptr(), addr, buf.len()) }
}

/// Copies `data` to user address `addr`.
pub fn copy_to_user(addr: u64, data: &[u8]) -> Result<(), BadUserAddress> {
    // SAFETY: `data` is a kernel slice borrowed for the call, readable
    // throughout the copy.
    unsafe { copy_to_user_from(addr, data.as_ptr(), data.len()) }
}

/// Copies `len` bytes of kernel memory at `src` to user address `addr`
/// (a file's page reached through the direct map, straight to the
/// program: one copy).
///
/// # Safety
/// `src .. src + len` must be kernel memory that stays readable for the
/// whole copy. It may be the same memory a user page at `addr` maps
/// (then the bytes land as a forward byte copy leaves them).
pub unsafe fn copy_to_user_from(
    addr: u64,
    src: *const u8,
    len: usize,
) -> Result<(), BadUserAddress> {
    check(addr, len)?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: the destination lies entirely in the user half (checked), so
    // no kernel memory is written; with CR0.WP set a read-only user page
    // faults and, like an unmapped one, is fixed up into a short copy; the
    // source is readable kernel memory (the caller's promise).
    let left = unsafe { user_copy_raw(addr as *mut u8, src, len) };
    result(addr, len, left)
}

/// Copies `len` bytes from user address `addr` into kernel memory at
/// `dst`.
///
/// # Safety
/// `dst .. dst + len` must be kernel memory that stays writable for the
/// whole copy and that nothing else reads or writes meanwhile. It may be
/// the same memory a user page at `addr` maps.
pub unsafe fn copy_from_user_to(dst: *mut u8, addr: u64, len: usize) -> Result<(), BadUserAddress> {
    check(addr, len)?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: the source lies entirely in the user half (checked), so no
    // kernel memory is read; a fault on it is fixed up into a short copy;
    // the destination is writable kernel memory no reference covers (the
    // caller's promise).
    let left = unsafe { user_copy_raw(dst, addr as *const u8, len) };
    result(addr, len, left)
}

/// Replaces the aligned 32-bit user word at `addr` with `new` if it holds
/// `old`, atomically against user code on every CPU (`lock cmpxchg`);
/// returns the value it held.
pub fn cmpxchg_user_u32(addr: u64, old: u32, new: u32) -> Result<u32, BadUserAddress> {
    check(addr, 4)?;
    if !addr.is_multiple_of(4) {
        return Err(BadUserAddress(addr));
    }
    // SAFETY: the aligned word lies entirely in the user half (checked),
    // so no kernel memory is touched; a fault (unmapped, read-only) is
    // fixed up by the trap handler into the `u64::MAX` answer.
    let held = unsafe { user_cmpxchg_raw(addr as *mut u32, old, new) };
    u32::try_from(held).map_err(|_| BadUserAddress(addr))
}

/// Called for a kernel-mode exception: if it happened inside a user copy,
/// resumes after the copy (with `rcx` = bytes left), or inside a user
/// compare-exchange, resumes after it with `rcx` = 1 (the fault); returns
/// `true` then.
pub(super) fn fixup(frame: &mut TrapFrame) -> bool {
    let copy = core::ptr::addr_of!(user_copy_insn) as u64;
    let cmpxchg = core::ptr::addr_of!(user_cmpxchg_insn) as u64;
    if frame.rip == copy {
        frame.rip = core::ptr::addr_of!(user_copy_resume) as u64;
        true
    } else if frame.rip == cmpxchg {
        frame.rip = core::ptr::addr_of!(user_cmpxchg_resume) as u64;
        frame.rcx = 1;
        true
    } else {
        false
    }
}
