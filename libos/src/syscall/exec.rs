//! `execve`'s LibOS half: reading the path, `argv` and `envp` from user
//! memory and building the new image ([`crate::exec::prepare_exec`]) —
//! everything that can still fail with an errno while the old image is
//! intact. The kernel then swaps the image (`crate::mm::load_image`, the
//! registers, [`Process::reset_for_exec`]); it registers the handler, as
//! the registers are its.

use alloc::vec::Vec;

use super::SyscallArgs;
use super::fs::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, lookup_at};
use crate::error::{Errno, Result};
use crate::exec::{AddressLayout, ProcessImage, prepare_exec, prepare_exec_inode};
use crate::fs::InodeType;
use crate::platform::UserMemory;
use crate::process::Process;
use crate::user::{UserPtr, read_cstring};
use crate::{return_errno, return_errno_with_message};

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
    let layout = AddressLayout::for_process(p);
    let mut budget = layout.max_args_bytes;
    let argv = read_string_array(mem, a.u64(1), &mut budget)?;
    let envp = read_string_array(mem, a.u64(2), &mut budget)?;
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    prepare_exec(&p.vfs, &p.cwd(), &path, &argv, &envp, mem, &layout)
}

/// Reads `execveat(dirfd, path, argv, envp, flags)`'s arguments and
/// builds the image to run: `path` resolved from `dirfd` (`AT_FDCWD` as
/// `execve`), with `AT_EMPTY_PATH` an empty path runs the file `dirfd`
/// names (`fexecve`), with `AT_SYMLINK_NOFOLLOW` a final symbolic link is
/// `ELOOP`; other flags are `EINVAL`. As Linux, the program then runs
/// under the name `/dev/fd/<dirfd>` (empty path) or
/// `/dev/fd/<dirfd>/<path>` (a relative path from a directory fd).
pub fn prepare_execveat(p: &Process, a: &SyscallArgs) -> Result<ProcessImage> {
    let mem = &*p.platform;
    let dirfd = a.i32(0);
    let flags = a.u32(4);
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return_errno_with_message!(Errno::EINVAL, "unknown execveat flags");
    }
    let path = read_cstring(mem, a.u64(1), PATH_MAX)?;
    let inode = lookup_at(p, dirfd, &path, flags)?;
    if inode.file_type() == InodeType::Symlink {
        return_errno_with_message!(Errno::ELOOP, "AT_SYMLINK_NOFOLLOW on a symbolic link");
    }
    let name = if path.is_empty() {
        alloc::format!("/dev/fd/{dirfd}").into_bytes()
    } else if path.starts_with(b"/") || dirfd == AT_FDCWD {
        path
    } else {
        let mut name = alloc::format!("/dev/fd/{dirfd}/").into_bytes();
        name.extend_from_slice(&path);
        name
    };
    let layout = AddressLayout::for_process(p);
    let mut budget = layout.max_args_bytes;
    let argv = read_string_array(mem, a.u64(2), &mut budget)?;
    let envp = read_string_array(mem, a.u64(3), &mut budget)?;
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    prepare_exec_inode(&p.vfs, &p.cwd(), inode, &name, &argv, &envp, mem, &layout)
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

    /// A process whose file system has `/bin/busybox` (the host's static
    /// busybox) and `/bin/sh` linking to it.
    fn with_busybox() -> Sys {
        let s = Sys::new(MEM, 4096);
        let root = s.p.vfs.root().clone();
        s.p.vfs.mkdir(&root, b"/bin", 0o755).unwrap();
        let f = s.p.vfs.create_file(&root, b"/bin/busybox", 0o755).unwrap();
        f.write_at(0, &std::fs::read("/bin/busybox").unwrap(), 0)
            .unwrap();
        s.p.vfs.symlink(&root, b"busybox", b"/bin/sh").unwrap();
        s
    }

    /// `execveat(dirfd, path at MEM, NULL, NULL, flags)`'s image or errno.
    fn execveat(s: &Sys, dirfd: i64, path: &[u8], flags: u64) -> Result<ProcessImage> {
        s.m.write_user(MEM, &[path, b"\0"].concat()).unwrap();
        let a = SyscallArgs::new(322, [dirfd as u64, MEM, 0, 0, flags, 0]);
        prepare_execveat(&s.p, &a)
    }

    fn open(s: &Sys, path: &[u8]) -> i64 {
        s.m.write_user(MEM + 2048, &[path, b"\0"].concat()).unwrap();
        let fd = s.call("openat", &[AT_FDCWD as u64, MEM + 2048, 0, 0]);
        assert!(fd >= 0, "open {fd}");
        fd
    }

    #[test]
    fn execveat_runs_a_path_from_a_directory_fd_or_the_file_an_fd_names() {
        let s = with_busybox();
        let dir = open(&s, b"/bin");
        let file = open(&s, b"/bin/busybox");
        let img = execveat(&s, dir, b"busybox", 0).unwrap();
        assert_eq!(
            img.exe_path,
            alloc::format!("/dev/fd/{dir}/busybox").as_bytes()
        );
        let img = execveat(&s, file, b"", u64::from(AT_EMPTY_PATH)).unwrap();
        assert_eq!(img.exe_path, alloc::format!("/dev/fd/{file}").as_bytes());
        // An absolute path ignores dirfd; AT_FDCWD is execve.
        let img = execveat(&s, file, b"/bin/sh", 0).unwrap();
        assert_eq!(img.exe_path, b"/bin/sh");
        let img = execveat(&s, i64::from(AT_FDCWD), b"bin/busybox", 0).unwrap();
        assert_eq!(img.exe_path, b"bin/busybox");
    }

    #[test]
    fn execveat_errors_are_linuxs() {
        let s = with_busybox();
        let dir = open(&s, b"/bin");
        let file = open(&s, b"/bin/busybox");
        let errno = |r: Result<ProcessImage>| r.unwrap_err().errno();
        let nofollow = u64::from(AT_SYMLINK_NOFOLLOW);
        assert_eq!(errno(execveat(&s, dir, b"sh", nofollow)), Errno::ELOOP);
        assert!(execveat(&s, dir, b"sh", 0).is_ok());
        assert_eq!(errno(execveat(&s, file, b"", 0)), Errno::ENOENT);
        assert_eq!(errno(execveat(&s, file, b"x", 0)), Errno::ENOTDIR);
        assert_eq!(errno(execveat(&s, dir, b"", 0x1000)), Errno::EACCES);
        assert_eq!(errno(execveat(&s, 99, b"x", 0)), Errno::EBADF);
        assert_eq!(errno(execveat(&s, dir, b"busybox", 0x4)), Errno::EINVAL);
        let a = SyscallArgs::new(322, [dir as u64, 0x9999_0000, 0, 0, 0, 0]);
        assert_eq!(errno(prepare_execveat(&s.p, &a)), Errno::EFAULT);
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
