//! `execve`'s LibOS half: reading the path, `argv` and `envp` from user
//! memory and building the new image ([`crate::exec::prepare_exec`]) —
//! everything that can still fail with an errno while the old image is
//! intact. The kernel then swaps the image (`crate::mm::load_image`, the
//! registers, [`Process::reset_for_exec`]); it registers the handler, as
//! the registers are its.

use alloc::vec::Vec;

use super::SyscallArgs;
use crate::error::{Errno, Result};
use crate::exec::{AddressLayout, ProcessImage, prepare_exec};
use crate::platform::UserMemory;
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, read_cstring};

/// Linux's `PATH_MAX`.
const PATH_MAX: usize = 4096;
/// Linux's `MAX_ARG_STRLEN` (32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Most strings in `argv` plus `envp` (Linux's `MAX_ARG_STRINGS` is far
/// larger, but the initial stack bounds the total anyway).
const MAX_ARG_STRINGS: usize = 65_536;

/// The NUL-terminated array of string pointers at `addr` (`NULL`: empty),
/// at most `budget` bytes of strings in all (`E2BIG` past it).
pub fn read_string_array(
    mem: &dyn UserMemory,
    addr: u64,
    budget: &mut usize,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    for i in 0..MAX_ARG_STRINGS as u64 {
        let slot = addr.checked_add(i * 8).ok_or(Errno::EFAULT)?;
        let ptr = UserPtr::<u64>::new(slot).read(mem)?;
        if ptr == 0 {
            return Ok(out);
        }
        let s = read_cstring(mem, ptr, MAX_ARG_STRLEN)?;
        *budget = budget.checked_sub(s.len() + 1).ok_or(Errno::E2BIG)?;
        out.push(s);
    }
    return_errno!(Errno::E2BIG)
}

/// Reads `execve(path, argv, envp)`'s arguments and builds the image to
/// run. Errors leave the caller as it was.
pub fn prepare_execve(p: &Process, a: &SyscallArgs) -> Result<ProcessImage> {
    let mem = &*p.platform;
    let path = read_cstring(mem, a.u64(0), PATH_MAX)?;
    if path.is_empty() {
        return_errno!(Errno::ENOENT);
    }
    let layout = AddressLayout::default();
    let mut budget = layout.max_args_bytes;
    let argv = read_string_array(mem, a.u64(1), &mut budget)?;
    let envp = read_string_array(mem, a.u64(2), &mut budget)?;
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    prepare_exec(&p.vfs, &p.cwd(), &path, &argv, &envp, mem, &layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::testing::Sys;

    const MEM: u64 = 0x40000;

    #[test]
    fn string_arrays_are_read_up_to_null_within_the_budget() {
        let s = Sys::new(MEM, 4096);
        let m = &*s.m;
        m.write_user(MEM + 0x100, b"ab\0").unwrap();
        m.write_user(MEM + 0x200, b"cde\0").unwrap();
        let mut ptrs = Vec::new();
        for p in [MEM + 0x100, MEM + 0x200, 0] {
            ptrs.extend_from_slice(&u64::to_le_bytes(p));
        }
        m.write_user(MEM, &ptrs).unwrap();
        let mut budget = 100;
        let got = read_string_array(m, MEM, &mut budget).unwrap();
        assert_eq!(got, [b"ab".to_vec(), b"cde".to_vec()]);
        assert_eq!(budget, 100 - 7);
        assert!(read_string_array(m, 0, &mut budget).unwrap().is_empty());
        let mut small = 5;
        assert_eq!(
            read_string_array(m, MEM, &mut small).unwrap_err().errno(),
            Errno::E2BIG
        );
        assert_eq!(
            read_string_array(m, 0x9999_0000, &mut budget)
                .unwrap_err()
                .errno(),
            Errno::EFAULT
        );
    }

    #[test]
    fn execve_of_a_missing_file_is_enoent() {
        let s = Sys::new(MEM, 4096);
        s.m.write_user(MEM, b"/nope\0").unwrap();
        let a = SyscallArgs::new(59, [MEM, 0, 0, 0, 0, 0]);
        assert_eq!(prepare_execve(&s.p, &a).unwrap_err().errno(), Errno::ENOENT);
        let a = SyscallArgs::new(59, [0, 0, 0, 0, 0, 0]);
        assert_eq!(prepare_execve(&s.p, &a).unwrap_err().errno(), Errno::EFAULT);
    }
}
