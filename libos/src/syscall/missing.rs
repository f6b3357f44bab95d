//! Which path a failed system call looked for: for `cloister run`'s
//! learning pass, which packs the files a program tried to open, stat or
//! execute and did not find in the image (`tools/src/run/learn.rs`).
//!
//! Only calls that failed with `ENOENT` and whose path is absolute count:
//! a relative path depends on a working directory or a directory fd the
//! host cannot see.

use alloc::vec::Vec;

use super::SyscallArgs;
use crate::error::Errno;
use crate::fs::PATH_MAX;
use crate::user::{UserMemory, read_cstring};

/// The argument holding the path for the path-taking calls a program
/// uses to look for files (x86-64 numbers).
fn path_arg_index(nr: usize) -> Option<usize> {
    match nr {
        // open, stat, lstat, access, execve, chdir, readlink
        2 | 4 | 6 | 21 | 59 | 80 | 89 => Some(0),
        // openat, readlinkat, newfstatat, faccessat, execveat, statx,
        // openat2, faccessat2
        257 | 267 | 262 | 269 | 322 | 332 | 437 | 439 => Some(1),
        _ => None,
    }
}

/// The absolute path `args` looked for, if the call was a path lookup that
/// returned `ret = -ENOENT`.
pub fn missing_path(args: &SyscallArgs, ret: isize, mem: &dyn UserMemory) -> Option<Vec<u8>> {
    if ret != -(Errno::ENOENT as isize) {
        return None;
    }
    let index = path_arg_index(args.nr)?;
    let path = read_cstring(mem, args.u64(index), PATH_MAX - 1).ok()?;
    path.starts_with(b"/").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use core::cell::RefCell;

    /// User memory holding one string at 0x1000.
    struct Mem(RefCell<Vec<u8>>);

    impl UserMemory for Mem {
        fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            let m = self.0.borrow();
            let start = usize::try_from(addr - 0x1000).map_err(|_| Errno::EFAULT)?;
            let src = m.get(start..start + buf.len()).ok_or(Errno::EFAULT)?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn write_user(&self, _addr: u64, _data: &[u8]) -> Result<()> {
            Ok(())
        }
        fn read_user_nofault(&self, addr: u64, buf: &mut [u8]) -> usize {
            crate::uio::read_user_partial(self, addr, buf)
        }
        fn write_user_nofault(&self, _addr: u64, data: &[u8]) -> usize {
            data.len()
        }
    }

    fn mem(s: &[u8]) -> Mem {
        let mut v = s.to_vec();
        v.push(0);
        v.resize(4096, 0);
        Mem(RefCell::new(v))
    }

    const ENOENT: isize = -(Errno::ENOENT as isize);

    #[test]
    fn failed_lookups_name_their_absolute_path() {
        let m = mem(b"/usr/lib/python3.11/encodings");
        let openat = SyscallArgs::new(257, [u64::MAX - 99, 0x1000, 0, 0, 0, 0]);
        assert_eq!(
            missing_path(&openat, ENOENT, &m).as_deref(),
            Some(&b"/usr/lib/python3.11/encodings"[..])
        );
        let stat = SyscallArgs::new(4, [0x1000, 0, 0, 0, 0, 0]);
        assert!(missing_path(&stat, ENOENT, &m).is_some());
        let execve = SyscallArgs::new(59, [0x1000, 0, 0, 0, 0, 0]);
        assert!(missing_path(&execve, ENOENT, &m).is_some());
    }

    #[test]
    fn other_results_calls_and_relative_paths_do_not() {
        let m = mem(b"/etc/x");
        let open = SyscallArgs::new(2, [0x1000, 0, 0, 0, 0, 0]);
        assert_eq!(missing_path(&open, 3, &m), None, "it succeeded");
        assert_eq!(missing_path(&open, -(Errno::EACCES as isize), &m), None);
        let write = SyscallArgs::new(1, [0x1000, 0, 0, 0, 0, 0]);
        assert_eq!(missing_path(&write, ENOENT, &m), None, "not a lookup");
        let rel = mem(b"lib/x.so");
        assert_eq!(missing_path(&open, ENOENT, &rel), None);
        let bad = SyscallArgs::new(2, [0xdead_0000, 0, 0, 0, 0, 0]);
        assert_eq!(missing_path(&bad, ENOENT, &m), None, "unreadable pointer");
    }
}
