//! `futex(2)` over [`FutexTable`]: the wait, wake, requeue and wake-op
//! commands, private or shared (a shared futex on `MAP_SHARED` memory is
//! keyed by the shared object, across processes), with relative (`FUTEX_WAIT`) and absolute
//! (`FUTEX_WAIT_BITSET`, monotonic or `FUTEX_CLOCK_REALTIME`) timeouts.
//! The priority-inheritance commands return `ENOSYS`.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::futex::{BITSET_MATCH_ANY, FutexTable, FutexWord, WakeOp};
use crate::process::Process;
use crate::user::UserPtr;
use crate::{return_errno, return_errno_with_message};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[(202, "futex", sys_futex)];

/// Futex commands and flags (`linux/futex.h`).
#[allow(missing_docs, reason = "the names are Linux's; see futex(2)")]
pub mod cmd {
    pub const FUTEX_WAIT: u32 = 0;
    pub const FUTEX_WAKE: u32 = 1;
    pub const FUTEX_REQUEUE: u32 = 3;
    pub const FUTEX_CMP_REQUEUE: u32 = 4;
    pub const FUTEX_WAKE_OP: u32 = 5;
    pub const FUTEX_WAIT_BITSET: u32 = 9;
    pub const FUTEX_WAKE_BITSET: u32 = 10;
    pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
    pub const FUTEX_LOCK_PI2: u32 = 13;
    pub const FUTEX_PRIVATE_FLAG: u32 = 128;
    pub const FUTEX_CLOCK_REALTIME: u32 = 256;
}
use cmd::*;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Reads a `struct timespec` as nanoseconds (`EINVAL` if out of range).
pub fn read_timespec_ns(p: &Process, addr: u64) -> Result<u64> {
    let sec = UserPtr::<i64>::new(addr).read(&*p.platform)?;
    let nsec = UserPtr::<i64>::new(addr + 8).read(&*p.platform)?;
    if sec < 0 || !(0..NS_PER_SEC as i64).contains(&nsec) {
        return_errno!(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(nsec as u64))
}

/// The monotonic deadline for a wait command's timeout argument.
fn deadline(p: &Process, a: &SyscallArgs, command: u32, realtime: bool) -> Result<Option<u64>> {
    if a.u64(3) == 0 {
        return Ok(None);
    }
    let t = read_timespec_ns(p, a.u64(3))?;
    let now = p.platform.monotonic_ns();
    Ok(Some(if command == FUTEX_WAIT {
        now.saturating_add(t)
    } else if realtime {
        now.saturating_add(t.saturating_sub(p.platform.realtime_ns()))
    } else {
        t
    }))
}

/// How many a wake command wakes for `int` argument `v`: Linux checks
/// the count after waking one, so 0 and negative values wake one.
fn wake_count(v: i32) -> usize {
    v.max(1) as usize
}

/// A requeue count argument (`int`): negative is `EINVAL`.
fn count(v: i32) -> Result<usize> {
    usize::try_from(v).map_err(|_| Errno::EINVAL.into())
}

/// Bits of a shared futex key left for the offset in its object.
const OFFSET_BITS: u32 = 40;

/// The table and word for `addr`: a shared futex (no
/// `FUTEX_PRIVATE_FLAG`) on a `MAP_SHARED` area is queued in the
/// guest's shared table under its object (the anonymous object, or the
/// file) and offset, so that a process that maps the same object
/// (through `fork`, or by mapping the same file), at whatever address,
/// reaches the same waiters; any other futex in the process's
/// own table under its address (what Linux does for private memory).
fn locate(p: &Process, addr: u64, private: bool) -> Result<(&FutexTable, FutexWord)> {
    let object = if private {
        None
    } else {
        p.vm.lock()
            .find(addr)
            .and_then(|v| v.shared_object_at(addr))
    };
    let Some(o) = object else {
        return Ok((&p.futexes, FutexWord::at(addr)));
    };
    if o.offset >> OFFSET_BITS != 0 || o.id >> (64 - OFFSET_BITS) != 0 {
        return_errno_with_message!(Errno::EINVAL, "shared futex beyond what a key holds");
    }
    let key = (o.id << OFFSET_BITS) | o.offset;
    Ok((&p.shared_futexes, FutexWord { addr, key }))
}

/// The second word of a requeue or wake-op, which must be in the same
/// `table` as the first (`EINVAL` for a shared and a private word
/// together: not supported).
fn second_word(p: &Process, table: &FutexTable, addr: u64, private: bool) -> Result<FutexWord> {
    let (other, word) = locate(p, addr, private)?;
    if !core::ptr::eq(table, other) {
        return_errno_with_message!(
            Errno::EINVAL,
            "futex words in shared and private memory together"
        );
    }
    Ok(word)
}

/// `futex(uaddr, op, val, timeout/val2, uaddr2, val3)`.
pub fn sys_futex(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (uaddr, op, val) = (a.u64(0), a.u32(1), a.u32(2));
    let command = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if realtime
        && !matches!(
            command,
            FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return_errno!(Errno::ENOSYS);
    }
    if !uaddr.is_multiple_of(4) {
        return_errno!(Errno::EINVAL);
    }
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let (table, word) = locate(p, uaddr, private)?;
    let val3 = a.u32(5);
    match command {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if command == FUTEX_WAIT {
                BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return_errno!(Errno::EINVAL);
            }
            let deadline = deadline(p, a, command, realtime)?;
            table.wait_word(&*p.platform, &*p.platform, word, val, bitset, deadline)?;
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if command == FUTEX_WAKE {
                BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return_errno!(Errno::EINVAL);
            }
            Ok(table.wake(word.key, wake_count(val as i32), bitset))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (wake, requeue) = (count(val as i32)?, count(a.i32(3))?);
            let cmp = (command == FUTEX_CMP_REQUEUE).then_some(val3);
            if !a.u64(4).is_multiple_of(4) {
                return_errno!(Errno::EINVAL);
            }
            let target = second_word(p, table, a.u64(4), private)?;
            table.requeue_word(&*p.platform, word, wake, target.key, requeue, cmp)
        }
        FUTEX_WAKE_OP => {
            let op = WakeOp::decode(val3)?;
            if !a.u64(4).is_multiple_of(4) {
                return_errno!(Errno::EINVAL);
            }
            let (n1, n2) = (wake_count(val as i32), wake_count(a.i32(3)));
            let second = second_word(p, table, a.u64(4), private)?;
            table.wake_op_words(&*p.platform, (word, n1), (second, n2), op)
        }
        _ => return_errno!(Errno::ENOSYS),
    }
}

#[cfg(test)]
mod tests;
