//! User and group ids over [`crate::cred::Credentials`]: the getters
//! (`getuid`, `geteuid`, `getresuid`, `getgroups`, the gid forms) and the
//! setters (`setuid`, `setreuid`, `setresuid`, `setfsuid`, the gid forms,
//! `setgroups`), with Linux's rules and errors.

use alloc::vec::Vec;

use super::SyscallArgs;
use super::table::Handler;
use crate::cred::{Credentials, NGROUPS_MAX};
use crate::error::{Errno, Result};
use crate::fallible::with_capacity;
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (102, "getuid", sys_getuid),
    (104, "getgid", sys_getgid),
    (105, "setuid", sys_setuid),
    (106, "setgid", sys_setgid),
    (107, "geteuid", sys_geteuid),
    (108, "getegid", sys_getegid),
    (113, "setreuid", sys_setreuid),
    (114, "setregid", sys_setregid),
    (115, "getgroups", sys_getgroups),
    (116, "setgroups", sys_setgroups),
    (117, "setresuid", sys_setresuid),
    (118, "getresuid", sys_getresuid),
    (119, "setresgid", sys_setresgid),
    (120, "getresgid", sys_getresgid),
    (122, "setfsuid", sys_setfsuid),
    (123, "setfsgid", sys_setfsgid),
];

fn with<T>(p: &Process, f: impl FnOnce(&mut Credentials) -> T) -> T {
    f(&mut p.creds.lock())
}

/// `getuid()`
pub fn sys_getuid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.uid.real) as usize)
}

/// `geteuid()`
pub fn sys_geteuid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.uid.effective) as usize)
}

/// `getgid()`
pub fn sys_getgid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.gid.real) as usize)
}

/// `getegid()`
pub fn sys_getegid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.gid.effective) as usize)
}

fn write_three(p: &Process, a: &SyscallArgs, ids: [u32; 3]) -> Result<usize> {
    for (i, id) in ids.into_iter().enumerate() {
        UserPtr::<u32>::new(a.u64(i)).write(&*p.platform, id)?;
    }
    Ok(0)
}

/// `getresuid(ruid, euid, suid)`
pub fn sys_getresuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let u = with(p, |c| c.uid);
    write_three(p, a, [u.real, u.effective, u.saved])
}

/// `getresgid(rgid, egid, sgid)`
pub fn sys_getresgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let g = with(p, |c| c.gid);
    write_three(p, a, [g.real, g.effective, g.saved])
}

/// `setuid(uid)`
pub fn sys_setuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setuid(a.u32(0)))?;
    Ok(0)
}

/// `setgid(gid)`
pub fn sys_setgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setgid(a.u32(0)))?;
    Ok(0)
}

/// `setreuid(ruid, euid)`
pub fn sys_setreuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setreuid(a.u32(0), a.u32(1)))?;
    Ok(0)
}

/// `setregid(rgid, egid)`
pub fn sys_setregid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setregid(a.u32(0), a.u32(1)))?;
    Ok(0)
}

/// `setresuid(ruid, euid, suid)`
pub fn sys_setresuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setresuid(a.u32(0), a.u32(1), a.u32(2)))?;
    Ok(0)
}

/// `setresgid(rgid, egid, sgid)`
pub fn sys_setresgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    with(p, |c| c.setresgid(a.u32(0), a.u32(1), a.u32(2)))?;
    Ok(0)
}

/// `setfsuid(fsuid)`: the previous fs uid.
pub fn sys_setfsuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.setfsuid(a.u32(0))) as usize)
}

/// `setfsgid(fsgid)`: the previous fs gid.
pub fn sys_setfsgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(with(p, |c| c.setfsgid(a.u32(0))) as usize)
}

/// `getgroups(size, list)`: the count for size 0, `EINVAL` if `size` is
/// too small (or negative).
pub fn sys_getgroups(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let size = a.i32(0);
    if size < 0 {
        return_errno!(Errno::EINVAL);
    }
    let groups = with(p, |c| {
        let mut v = with_capacity(c.groups.len())?;
        v.extend_from_slice(&c.groups);
        Ok::<Vec<u32>, crate::error::Error>(v)
    })?;
    if size == 0 {
        return Ok(groups.len());
    }
    if (size as usize) < groups.len() {
        return_errno!(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    UserSliceWrite::new(a.u64(1), bytes.len())?.write(&*p.platform, &bytes)?;
    Ok(groups.len())
}

/// `setgroups(size, list)`: privileged only; `EINVAL` past `NGROUPS_MAX`.
pub fn sys_setgroups(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let size = a.i32(0);
    if size < 0 || size as usize > NGROUPS_MAX {
        return_errno!(Errno::EINVAL);
    }
    if !with(p, |c| c.privileged()) {
        return_errno!(Errno::EPERM);
    }
    let len = size as usize * 4;
    let mut bytes = with_capacity(len)?;
    bytes.resize(len, 0u8);
    if len > 0 {
        UserSliceRead::new(a.u64(1), len)?;
        p.platform.read_user(a.u64(1), &mut bytes)?;
    }
    let groups = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    with(p, |c| c.setgroups(groups))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::syscall::testing::{Sys, err};
    use crate::user::UserMemory;

    const BUF: u64 = 0x50_0000;
    const N: u64 = u32::MAX as u64;

    fn three(s: &Sys, name: &str) -> [u32; 3] {
        s.m.write_user(BUF, &[0xff; 12]).unwrap();
        assert_eq!(s.call(name, &[BUF, BUF + 4, BUF + 8]), 0);
        let mut b = [0u8; 12];
        s.m.read_user(BUF, &mut b).unwrap();
        core::array::from_fn(|i| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()))
    }

    #[test]
    fn ids_change_and_read_back_with_linuxs_errors() {
        let s = Sys::new(BUF, 0x1000);
        assert_eq!((s.call("getuid", &[]), s.call("getegid", &[])), (0, 0));
        assert_eq!(s.call("setreuid", &[N, N]), 0);
        assert_eq!(s.call("setresuid", &[N, N, N]), 0);
        assert_eq!(s.call("setresgid", &[5, 6, 7]), 0);
        assert_eq!(three(&s, "getresgid"), [5, 6, 7]);
        assert_eq!((s.call("getgid", &[]), s.call("getegid", &[])), (5, 6));
        assert_eq!(s.call("setresuid", &[N, 1000, N]), 0);
        assert_eq!(three(&s, "getresuid"), [0, 1000, 0]);
        assert_eq!(s.call("geteuid", &[]), 1000);
        assert_eq!(s.call("setuid", &[42]), err(Errno::EPERM));
        assert_eq!(s.call("setgid", &[5]), 0, "to the real gid");
        assert_eq!(s.call("setgroups", &[0, 0]), err(Errno::EPERM));
        assert_eq!(s.call("setuid", &[0]), 0, "back through the saved uid");
        assert_eq!(s.call("setuid", &[N]), err(Errno::EINVAL));
        assert_eq!(s.call("setfsuid", &[N]), 0);
    }

    #[test]
    fn groups_set_and_get() {
        let s = Sys::new(BUF, 0x1000);
        assert_eq!(s.call("getgroups", &[0, 0]), 0, "none at the start");
        let list: alloc::vec::Vec<u8> = (0u32..16).flat_map(|g| g.to_le_bytes()).collect();
        s.m.write_user(BUF, &list).unwrap();
        assert_eq!(s.call("setgroups", &[16, BUF]), 0);
        assert_eq!(s.call("getgroups", &[0, 0]), 16);
        assert_eq!(s.call("getgroups", &[15, BUF + 0x100]), err(Errno::EINVAL));
        assert_eq!(
            s.call("getgroups", &[-1i64 as u64, BUF + 0x100]),
            err(Errno::EINVAL)
        );
        assert_eq!(s.call("getgroups", &[32, BUF + 0x100]), 16);
        let mut back = [0u8; 64];
        s.m.read_user(BUF + 0x100, &mut back).unwrap();
        assert_eq!(&back[..], &list[..]);
        assert_eq!(s.call("setgroups", &[65537, BUF]), err(Errno::EINVAL));
        assert_eq!(s.call("setgroups", &[2, 0xdead_0000]), err(Errno::EFAULT));
        assert_eq!(
            s.call("getgroups", &[0, 0]),
            16,
            "a failed call changes nothing"
        );
        assert_eq!(s.call("setgroups", &[0, 0]), 0);
        assert_eq!(s.call("getgroups", &[0, 0]), 0);
    }
}
