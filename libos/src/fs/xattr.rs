//! [`Xattrs`]: an inode's extended attributes, kept in memory as tmpfs
//! keeps them.
//!
//! Names in the `user.`, `trusted.` and `security.` namespaces are stored;
//! `system.` (POSIX ACLs) and unknown prefixes give `EOPNOTSUPP`. As on
//! Linux, `user.` attributes exist only on regular files and directories
//! (`EPERM` elsewhere), a name is 1–255 bytes (`ERANGE`) and a value at
//! most 64 KiB (`E2BIG`). `XATTR_CREATE` fails with `EEXIST` on an
//! existing name, `XATTR_REPLACE` with `ENODATA` on a missing one.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::return_errno;

/// `XATTR_CREATE`
pub const XATTR_CREATE: u32 = 1;
/// `XATTR_REPLACE`
pub const XATTR_REPLACE: u32 = 2;
/// Longest name (`XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest value (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;

/// Checks `name` for a get, set or remove: `ERANGE` for an empty or long
/// name, `EOPNOTSUPP` outside the stored namespaces, `EPERM` for `user.`
/// on a file that is neither regular nor a directory.
pub fn check_name(name: &[u8], regular_or_dir: bool) -> Result<()> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return_errno!(Errno::ERANGE);
    }
    let user = name.starts_with(b"user.");
    if !(user || name.starts_with(b"trusted.") || name.starts_with(b"security.")) {
        return_errno!(Errno::EOPNOTSUPP);
    }
    if user && !regular_or_dir {
        return_errno!(Errno::EPERM);
    }
    Ok(())
}

/// One inode's attributes.
#[derive(Debug, Default, Clone)]
pub struct Xattrs {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Xattrs {
    /// The value of `name` (`ENODATA` if there is none).
    pub fn get(&self, name: &[u8]) -> Result<&[u8]> {
        self.map
            .get(name)
            .map(Vec::as_slice)
            .ok_or(Errno::ENODATA.into())
    }

    /// The names, each followed by a NUL, as `listxattr` returns them.
    pub fn list(&self) -> Result<Vec<u8>> {
        let len = self.map.keys().map(|k| k.len() + 1).sum();
        let mut out = crate::fallible::with_capacity(len)?;
        for k in self.map.keys() {
            out.extend_from_slice(k);
            out.push(0);
        }
        Ok(out)
    }

    /// Sets `name` to `value` under `flags` (a name already checked).
    pub fn set(&mut self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return_errno!(Errno::EINVAL);
        }
        if value.len() > XATTR_SIZE_MAX {
            return_errno!(Errno::E2BIG);
        }
        let exists = self.map.contains_key(name);
        if exists && flags & XATTR_CREATE != 0 {
            return_errno!(Errno::EEXIST);
        }
        if !exists && flags & XATTR_REPLACE != 0 {
            return_errno!(Errno::ENODATA);
        }
        let mut v = crate::fallible::with_capacity(value.len())?;
        v.extend_from_slice(value);
        let mut k = crate::fallible::with_capacity(name.len())?;
        k.extend_from_slice(name);
        self.map.insert(k, v);
        Ok(())
    }

    /// Removes `name` (`ENODATA` if there is none).
    pub fn remove(&mut self, name: &[u8]) -> Result<()> {
        self.map.remove(name).map(drop).ok_or(Errno::ENODATA.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_list_remove_with_linuxs_errors() {
        let mut x = Xattrs::default();
        assert_eq!(x.get(b"user.a").unwrap_err().errno(), Errno::ENODATA);
        x.set(b"user.a", b"1", 0).unwrap();
        x.set(b"trusted.b", b"", XATTR_CREATE).unwrap();
        assert_eq!(x.get(b"user.a").unwrap(), b"1");
        assert_eq!(x.list().unwrap(), b"trusted.b\0user.a\0");
        let e = x.set(b"user.a", b"2", XATTR_CREATE).unwrap_err();
        assert_eq!(e.errno(), Errno::EEXIST);
        let e = x.set(b"user.c", b"2", XATTR_REPLACE).unwrap_err();
        assert_eq!(e.errno(), Errno::ENODATA);
        x.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        assert_eq!(x.get(b"user.a").unwrap(), b"22");
        let big = alloc::vec![0u8; XATTR_SIZE_MAX + 1];
        assert_eq!(x.set(b"user.z", &big, 0).unwrap_err().errno(), Errno::E2BIG);
        assert_eq!(x.set(b"user.z", b"", 4).unwrap_err().errno(), Errno::EINVAL);
        x.remove(b"user.a").unwrap();
        assert_eq!(x.remove(b"user.a").unwrap_err().errno(), Errno::ENODATA);
        assert_eq!(x.list().unwrap(), b"trusted.b\0");
    }

    #[test]
    fn names_by_namespace() {
        check_name(b"user.x", true).unwrap();
        check_name(b"security.selinux", false).unwrap();
        assert_eq!(
            check_name(b"user.x", false).unwrap_err().errno(),
            Errno::EPERM
        );
        assert_eq!(
            check_name(b"system.posix_acl_access", true)
                .unwrap_err()
                .errno(),
            Errno::EOPNOTSUPP
        );
        assert_eq!(
            check_name(b"bogus", true).unwrap_err().errno(),
            Errno::EOPNOTSUPP
        );
        assert_eq!(check_name(b"", true).unwrap_err().errno(), Errno::ERANGE);
        let long = [b'u'; 256];
        assert_eq!(check_name(&long, true).unwrap_err().errno(), Errno::ERANGE);
    }
}
