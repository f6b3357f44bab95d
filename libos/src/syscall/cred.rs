//! User and group ids: `get*id`, `getres*id`, `set*id`, `setre*id`,
//! `setres*id`, `getgroups`/`setgroups`, over the process's
//! [`Credentials`](crate::cred::Credentials) (see [`crate::cred`] for the
//! rules and what the ids do not govern).

use alloc::vec::Vec;

use super::SyscallArgs;
use super::table::Handler;
use crate::cred::{Ids, NGROUPS_MAX};
use crate::error::{Errno, Result};
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
];

/// `getuid()`
pub fn sys_getuid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.creds.lock().uid.real as usize)
}

/// `getgid()`
pub fn sys_getgid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.creds.lock().gid.real as usize)
}

/// `geteuid()`
pub fn sys_geteuid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.creds.lock().uid.effective as usize)
}

/// `getegid()`
pub fn sys_getegid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.creds.lock().gid.effective as usize)
}

/// Writes `ids` to the three pointers of a `getres*id` call.
fn write_res(p: &Process, a: &SyscallArgs, ids: Ids) -> Result<usize> {
    for (i, id) in [ids.real, ids.effective, ids.saved].into_iter().enumerate() {
        UserPtr::<u32>::new(a.u64(i)).write(&*p.platform, id)?;
    }
    Ok(0)
}

/// `getresuid(ruid, euid, suid)`
pub fn sys_getresuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let ids = p.creds.lock().uid;
    write_res(p, a, ids)
}

/// `getresgid(rgid, egid, sgid)`
pub fn sys_getresgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let ids = p.creds.lock().gid;
    write_res(p, a, ids)
}

/// `setuid(uid)`
pub fn sys_setuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    p.creds.lock().setuid(a.u32(0)).map(|()| 0)
}

/// `setgid(gid)`
pub fn sys_setgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    p.creds.lock().setgid(a.u32(0)).map(|()| 0)
}

/// `setreuid(ruid, euid)`
pub fn sys_setreuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    p.creds.lock().setreuid(a.u32(0), a.u32(1)).map(|()| 0)
}

/// `setregid(rgid, egid)`
pub fn sys_setregid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    p.creds.lock().setregid(a.u32(0), a.u32(1)).map(|()| 0)
}

/// `setresuid(ruid, euid, suid)`
pub fn sys_setresuid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let mut c = p.creds.lock();
    c.setresuid(a.u32(0), a.u32(1), a.u32(2)).map(|()| 0)
}

/// `setresgid(rgid, egid, sgid)`
pub fn sys_setresgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let mut c = p.creds.lock();
    c.setresgid(a.u32(0), a.u32(1), a.u32(2)).map(|()| 0)
}

/// `getgroups(size, list)`: the count when `size` is 0, `EINVAL` when
/// the list does not fit.
pub fn sys_getgroups(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let groups = p.creds.lock().groups.clone();
    let size = usize::try_from(a.i32(0)).map_err(|_| Errno::EINVAL)?;
    if size == 0 {
        return Ok(groups.len());
    }
    if size < groups.len() {
        return_errno!(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    UserSliceWrite::new(a.u64(1), bytes.len())?.write(&*p.platform, &bytes)?;
    Ok(groups.len())
}

/// `setgroups(size, list)`: root only (`EPERM`), at most `NGROUPS_MAX`.
pub fn sys_setgroups(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let size = a.usize(0);
    if size > NGROUPS_MAX {
        return_errno!(Errno::EINVAL);
    }
    let len = size.checked_mul(4).ok_or(Errno::EINVAL)?;
    let bytes = UserSliceRead::new(a.u64(1), len)?.read_to_vec(&*p.platform)?;
    let groups = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    p.creds.lock().setgroups(groups).map(|()| 0)
}
