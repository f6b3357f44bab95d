//! Futexes: [`FutexTable`], the wait queues behind `futex(2)`.
//!
//! A waiter checks the futex word and enqueues itself under the table
//! lock, and a waker dequeues under the same lock, so a wake that follows
//! a change of the word is never lost: either the waiter saw the new
//! value (`EAGAIN`) or it was already queued. Each waiter has its own
//! `woken` flag; it sleeps in the platform's
//! [`Blocker::block_until`] until
//! the flag is set or its deadline passes.
//!
//! A process's table keys by user address; the guest's table of shared
//! futexes (on `MAP_SHARED` memory, see `syscall::futex`) by shared
//! object and offset, through [`FutexWord`]. Queues are FIFO, as Linux's (for equal priorities).
//! `syscall::futex` decodes the syscall; the kernel calls
//! [`FutexTable::wake`] itself for `CLONE_CHILD_CLEARTID` at thread exit.

use alloc::collections::BTreeMap;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

use crate::error::{Errno, Result};
use crate::platform::Blocker;
use crate::return_errno;
use crate::user::{UserMemory, UserPtr};

/// Matches every waiter (`FUTEX_BITSET_MATCH_ANY`).
pub const BITSET_MATCH_ANY: u32 = u32::MAX;

#[derive(Debug)]
struct Waiter {
    /// Set by a wake; shared with the scheduler, which leaves the waiting
    /// thread alone until it is set (`Blocker::block_until_flag`).
    woken: Arc<AtomicBool>,
    bitset: u32,
    /// The address whose queue holds it (changes on requeue).
    key: AtomicU64,
}

/// A futex word: where it is in the caller's address space, and the key
/// its waiters queue under (the address itself for a private futex; for
/// a shared one, what identifies the shared memory, the same in every
/// process that maps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutexWord {
    /// The user address.
    pub addr: u64,
    /// The queue's key.
    pub key: u64,
}

impl FutexWord {
    /// A word keyed by its address.
    pub const fn at(addr: u64) -> Self {
        Self { addr, key: addr }
    }
}

/// The futex wait queues of a process (or, for shared futexes, of the
/// guest).
#[derive(Debug, Default)]
pub struct FutexTable {
    queues: Mutex<BTreeMap<u64, VecDeque<Arc<Waiter>>>>,
}

/// The arithmetic of `FUTEX_WAKE_OP` (`val3` decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeOp {
    /// `FUTEX_OP_SET` 0, `ADD` 1, `OR` 2, `ANDN` 3, `XOR` 4.
    pub op: u32,
    /// The operand (already shifted for `FUTEX_OP_OPARG_SHIFT`).
    pub oparg: i32,
    /// `FUTEX_OP_CMP_EQ` 0, `NE` 1, `LT` 2, `LE` 3, `GT` 4, `GE` 5.
    pub cmp: u32,
    /// The comparison operand.
    pub cmparg: i32,
}

impl WakeOp {
    /// Decodes `val3`: `ENOSYS` for an unknown operation or comparison,
    /// as Linux.
    pub fn decode(val3: u32) -> Result<Self> {
        let sign12 = |v: u32| ((v << 20) as i32) >> 20;
        let mut op = (val3 >> 28) & 0xf;
        let cmp = (val3 >> 24) & 0xf;
        let mut oparg = sign12((val3 >> 12) & 0xfff);
        if op & 8 != 0 {
            op &= 7;
            oparg = 1i32.wrapping_shl((oparg & 31) as u32);
        }
        if op > 4 || cmp > 5 {
            return_errno!(Errno::ENOSYS);
        }
        Ok(Self {
            op,
            oparg,
            cmp,
            cmparg: sign12(val3 & 0xfff),
        })
    }

    fn apply(&self, old: u32) -> u32 {
        let arg = self.oparg as u32;
        match self.op {
            0 => arg,
            1 => old.wrapping_add(arg),
            2 => old | arg,
            3 => old & !arg,
            _ => old ^ arg,
        }
    }

    fn compare(&self, old: u32) -> bool {
        let (a, b) = (old as i32, self.cmparg);
        match self.cmp {
            0 => a == b,
            1 => a != b,
            2 => a < b,
            3 => a <= b,
            4 => a > b,
            _ => a >= b,
        }
    }
}

fn read_word(mem: &dyn UserMemory, addr: u64) -> Result<u32> {
    UserPtr::<u32>::new(addr).read(mem)
}

impl FutexTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of threads waiting on `addr`.
    pub fn waiters(&self, addr: u64) -> usize {
        self.queues.lock().get(&addr).map_or(0, VecDeque::len)
    }

    /// `FUTEX_WAIT(_BITSET)`: if the word at `addr` still holds
    /// `expected`, sleeps until woken by a matching `bitset` (`Ok`), the
    /// monotonic `deadline_ns` passes (`ETIMEDOUT`) or a signal
    /// (`EINTR`). `EAGAIN` if the word differs, `EFAULT` if unreadable.
    pub fn wait(
        &self,
        mem: &dyn UserMemory,
        blocker: &dyn Blocker,
        addr: u64,
        expected: u32,
        bitset: u32,
        deadline_ns: Option<u64>,
    ) -> Result<()> {
        self.wait_word(
            mem,
            blocker,
            FutexWord::at(addr),
            expected,
            bitset,
            deadline_ns,
        )
    }

    /// [`FutexTable::wait`] on `word`: its address is read, its key
    /// queued on.
    pub fn wait_word(
        &self,
        mem: &dyn UserMemory,
        blocker: &dyn Blocker,
        word: FutexWord,
        expected: u32,
        bitset: u32,
        deadline_ns: Option<u64>,
    ) -> Result<()> {
        let waiter = Arc::new(Waiter {
            woken: Arc::new(AtomicBool::new(false)),
            bitset,
            key: AtomicU64::new(word.key),
        });
        {
            let mut queues = self.queues.lock();
            if read_word(mem, word.addr)? != expected {
                return_errno!(Errno::EAGAIN);
            }
            queues
                .entry(word.key)
                .or_default()
                .push_back(waiter.clone());
        }
        let outcome = blocker.block_until_flag(&waiter.woken, deadline_ns);
        if let Ok(true) = outcome {
            return Ok(());
        }
        // Timed out or interrupted: leave the queue, unless a wake got
        // here first (then the wake counts, as in Linux).
        let mut queues = self.queues.lock();
        if waiter.woken.load(Ordering::Acquire) {
            return Ok(());
        }
        let key = waiter.key.load(Ordering::Relaxed);
        if let Some(q) = queues.get_mut(&key) {
            q.retain(|w| !Arc::ptr_eq(w, &waiter));
            if q.is_empty() {
                queues.remove(&key);
            }
        }
        match outcome {
            Err(e) => Err(e),
            _ => Err(Errno::ETIMEDOUT.into()),
        }
    }

    /// Wakes up to `count` waiters on `addr` matching `bitset`; returns
    /// how many.
    pub fn wake(&self, addr: u64, count: usize, bitset: u32) -> usize {
        let mut queues = self.queues.lock();
        Self::wake_locked(&mut queues, addr, count, bitset)
    }

    fn wake_locked(
        queues: &mut BTreeMap<u64, VecDeque<Arc<Waiter>>>,
        addr: u64,
        count: usize,
        bitset: u32,
    ) -> usize {
        let Some(q) = queues.get_mut(&addr) else {
            return 0;
        };
        let mut woken = 0;
        q.retain(|w| {
            if woken < count && w.bitset & bitset != 0 {
                w.woken.store(true, Ordering::Release);
                woken += 1;
                false
            } else {
                true
            }
        });
        if q.is_empty() {
            queues.remove(&addr);
        }
        woken
    }

    /// `FUTEX_(CMP_)REQUEUE`: if `cmp` is given the word at `addr` must
    /// still hold it (`EAGAIN` otherwise); wakes up to `wake_count`
    /// waiters on `addr` and moves up to `requeue_count` of the rest to
    /// `target`. Returns woken plus moved, as Linux.
    pub fn requeue(
        &self,
        mem: &dyn UserMemory,
        addr: u64,
        wake_count: usize,
        target: u64,
        requeue_count: usize,
        cmp: Option<u32>,
    ) -> Result<usize> {
        let word = FutexWord::at(addr);
        self.requeue_word(mem, word, wake_count, target, requeue_count, cmp)
    }

    /// [`FutexTable::requeue`] from `word` (its address is compared) to
    /// the queue keyed `target`.
    pub fn requeue_word(
        &self,
        mem: &dyn UserMemory,
        word: FutexWord,
        wake_count: usize,
        target: u64,
        requeue_count: usize,
        cmp: Option<u32>,
    ) -> Result<usize> {
        let mut queues = self.queues.lock();
        if let Some(expected) = cmp
            && read_word(mem, word.addr)? != expected
        {
            return_errno!(Errno::EAGAIN);
        }
        let addr = word.key;
        let woken = Self::wake_locked(&mut queues, addr, wake_count, BITSET_MATCH_ANY);
        if addr == target {
            return Ok(woken + requeue_count.min(Self::len(&queues, addr)));
        }
        let mut moved = alloc::vec::Vec::new();
        if let Some(q) = queues.get_mut(&addr) {
            let n = requeue_count.min(q.len());
            moved.extend(q.drain(..n));
            if q.is_empty() {
                queues.remove(&addr);
            }
        }
        let count = moved.len();
        if count > 0 {
            let dest = queues.entry(target).or_default();
            for w in moved {
                w.key.store(target, Ordering::Relaxed);
                dest.push_back(w);
            }
        }
        Ok(woken + count)
    }

    fn len(queues: &BTreeMap<u64, VecDeque<Arc<Waiter>>>, addr: u64) -> usize {
        queues.get(&addr).map_or(0, VecDeque::len)
    }

    /// `FUTEX_WAKE_OP`: applies `op` to the word at `addr2` (`EFAULT` if
    /// not writable), wakes up to `count1` waiters on `addr1` and, if the
    /// old value of `addr2` passes the comparison, up to `count2` on
    /// `addr2`. Returns the total woken.
    ///
    /// The read-modify-write is atomic with respect to other futex calls
    /// (the table lock) and, through [`UserMemory::cmpxchg_u32`] (retried
    /// until the word did not change between the read and the exchange),
    /// with respect to user code on other CPUs.
    pub fn wake_op(
        &self,
        mem: &dyn UserMemory,
        addr1: u64,
        count1: usize,
        addr2: u64,
        count2: usize,
        op: WakeOp,
    ) -> Result<usize> {
        let (w1, w2) = (FutexWord::at(addr1), FutexWord::at(addr2));
        self.wake_op_words(mem, (w1, count1), (w2, count2), op)
    }

    /// [`FutexTable::wake_op`] on two words, each with its count: the
    /// second word's address is changed, the keys are woken.
    pub fn wake_op_words(
        &self,
        mem: &dyn UserMemory,
        (w1, count1): (FutexWord, usize),
        (w2, count2): (FutexWord, usize),
        op: WakeOp,
    ) -> Result<usize> {
        let mut queues = self.queues.lock();
        let old = loop {
            let old = read_word(mem, w2.addr)?;
            if mem.cmpxchg_u32(w2.addr, old, op.apply(old))? == old {
                break old;
            }
        };
        let mut woken = Self::wake_locked(&mut queues, w1.key, count1, BITSET_MATCH_ANY);
        if op.compare(old) {
            woken += Self::wake_locked(&mut queues, w2.key, count2, BITSET_MATCH_ANY);
        }
        Ok(woken)
    }
}

#[cfg(test)]
mod tests;
