//! `capget`/`capset`: a process has the capabilities Linux gives its user
//! ids ([`crate::cred`]): every capability effective while its effective
//! uid is 0 and permitted while any of its uids is 0 (so root has them
//! all, and nginx's workers, which drop to nobody, have none), as Linux's
//! rules for `setuid` clear them. Cloister checks no capability (there is
//! nothing to check them against: one trust domain), so it cannot honour
//! dropping one by `capset`: it accepts only the sets the process already
//! has and refuses any change with `EPERM` rather than pretend.

use super::super::SyscallArgs;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};
use crate::{return_errno, return_errno_with_message};

/// `_LINUX_CAPABILITY_VERSION_1`: one 32-bit set.
const VERSION_1: u32 = 0x1998_0330;
/// `_LINUX_CAPABILITY_VERSION_2` (deprecated) and `_3`: two 32-bit words.
const VERSION_2: u32 = 0x2007_1026;
const VERSION_3: u32 = 0x2008_0522;
/// Linux 6.1's `CAP_LAST_CAP` (`CAP_CHECKPOINT_RESTORE`).
const CAP_LAST_CAP: u32 = 40;
/// Bytes of one `__user_cap_data_struct` (effective, permitted, inheritable).
const DATA_BYTES: usize = 12;

/// The full set, split into the 32-bit words of the data structs.
fn full_set() -> [u32; 2] {
    let all = (1u64 << (CAP_LAST_CAP + 1)) - 1;
    [all as u32, (all >> 32) as u32]
}

/// The `(effective, permitted)` sets of process `pid` (0: the caller), by
/// its user ids.
fn sets_of(p: &Process, pid: i32) -> ([u32; 2], [u32; 2]) {
    let uid = if pid == 0 || pid as u32 == p.pid {
        p.creds.lock().uid
    } else {
        p.processes
            .process(pid as u32)
            .map(|t| t.creds.lock().uid)
            .unwrap_or_default()
    };
    let set = |on: bool| if on { full_set() } else { [0, 0] };
    (
        set(uid.effective == 0),
        set(uid.real == 0 || uid.effective == 0 || uid.saved == 0),
    )
}

/// Reads the header: its version's word count, after checking the pid.
/// An unknown version is answered as Linux does: the preferred version is
/// written back and the call fails with `EINVAL`.
fn header(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let version_ptr = UserPtr::<u32>::new(a.u64(0));
    let version = version_ptr.read(&*p.platform)?;
    let words = match version {
        VERSION_1 => 1,
        VERSION_2 | VERSION_3 => 2,
        _ => {
            version_ptr.write(&*p.platform, VERSION_3)?;
            return_errno!(Errno::EINVAL);
        }
    };
    let pid = UserPtr::<i32>::new(a.u64(0) + 4).read(&*p.platform)?;
    if pid < 0 {
        return_errno!(Errno::EINVAL);
    }
    if pid != 0 && pid as u32 != p.pid && p.processes.pgid_of(pid as u32).is_none() {
        return_errno!(Errno::ESRCH);
    }
    Ok(words)
}

/// `capget(header, data)`: the process's effective and permitted sets
/// (see the module docs), none inheritable. A null `data` only checks the
/// version.
pub fn sys_capget(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let words = header(p, a)?;
    if a.u64(1) == 0 {
        return Ok(0);
    }
    let pid = UserPtr::<i32>::new(a.u64(0) + 4).read(&*p.platform)?;
    let (effective, permitted) = sets_of(p, pid);
    let mut out = [0u8; 2 * DATA_BYTES];
    for (w, chunk) in out.chunks_exact_mut(DATA_BYTES).take(words).enumerate() {
        chunk[0..4].copy_from_slice(&effective[w].to_le_bytes());
        chunk[4..8].copy_from_slice(&permitted[w].to_le_bytes());
    }
    UserSliceWrite::new(a.u64(1), words * DATA_BYTES)?
        .write(&*p.platform, &out[..words * DATA_BYTES])?;
    Ok(0)
}

/// `capset(header, data)`: only the caller (`EPERM` for another pid, as
/// Linux since 2.6.24); the sets it already has succeed, any other is
/// `EPERM` (capabilities are not enforced, so none can be dropped).
pub fn sys_capset(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let words = header(p, a)?;
    let pid = UserPtr::<i32>::new(a.u64(0) + 4).read(&*p.platform)?;
    if pid != 0 && pid as u32 != p.pid {
        return_errno!(Errno::EPERM);
    }
    let data = UserSliceRead::new(a.u64(1), words * DATA_BYTES)?.read_to_vec(&*p.platform)?;
    let (has_effective, has_permitted) = sets_of(p, 0);
    let word = |chunk: &[u8], at: usize| {
        u32::from_le_bytes([chunk[at], chunk[at + 1], chunk[at + 2], chunk[at + 3]])
    };
    for (w, chunk) in data.chunks_exact(DATA_BYTES).enumerate() {
        let (effective, permitted, inheritable) = (word(chunk, 0), word(chunk, 4), word(chunk, 8));
        if effective != has_effective[w] || permitted != has_permitted[w] || inheritable != 0 {
            return_errno_with_message!(
                Errno::EPERM,
                "dropping capabilities is not supported (none are enforced)"
            );
        }
    }
    Ok(0)
}
