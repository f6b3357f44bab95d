//! Record locks between the guest's processes: POSIX locks (`fcntl`
//! `F_SETLK`, `F_SETLKW`, `F_GETLK`), owned by a process, and open file
//! description locks (`F_OFD_*`), owned by the description.
//!
//! A [`LockTable`] (one per guest, shared through `fork`) keeps, per file
//! (its inode number), byte ranges locked for reading (shared) or writing
//! (exclusive). A lock conflicts with another owner's overlapping lock
//! when either is a write lock. Setting a lock replaces the owner's own
//! locks in its range (a read lock becomes a write lock in place), and
//! unlocking may split one. As on Linux, a process's POSIX locks on a file
//! go when it closes any fd of that file (`close`) and all of them when it
//! exits; a description's go when its last fd is closed (they are held
//! weakly). Not done: deadlock detection (`EDEADLK`), and releasing POSIX
//! locks on the implicit closes of `dup2`, `close_range` and `execve`.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

use crate::error::{Errno, Result};
use crate::fd::FileLike;

/// Who holds a lock.
#[derive(Debug, Clone)]
pub enum Owner {
    /// A process (POSIX lock).
    Process(u32),
    /// An open file description (`F_OFD_*`), gone when it is closed.
    Description(Weak<dyn FileLike>),
}

impl Owner {
    /// The owner of an OFD lock on `file`.
    pub fn description(file: &Arc<dyn FileLike>) -> Self {
        Self::Description(Arc::downgrade(file))
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Process(a), Self::Process(b)) => a == b,
            (Self::Description(a), Self::Description(b)) => Weak::ptr_eq(a, b),
            _ => false,
        }
    }

    fn alive(&self) -> bool {
        match self {
            Self::Process(_) => true,
            Self::Description(d) => d.strong_count() > 0,
        }
    }

    /// The pid `F_GETLK` reports: the process, or -1 for a description.
    pub fn pid(&self) -> i32 {
        match self {
            Self::Process(pid) => *pid as i32,
            Self::Description(_) => -1,
        }
    }
}

/// A locked byte range.
#[derive(Debug, Clone)]
pub struct Lock {
    /// Who holds it.
    pub owner: Owner,
    /// Exclusive (`F_WRLCK`) or shared (`F_RDLCK`).
    pub write: bool,
    /// First byte.
    pub start: u64,
    /// One past the last byte (`u64::MAX`: to the end of the file, however
    /// it grows).
    pub end: u64,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

/// The guest's record locks, by file.
#[derive(Debug, Default)]
pub struct LockTable {
    files: Mutex<BTreeMap<u64, Vec<Lock>>>,
}

impl LockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first lock of another owner on file `ino` that a lock
    /// (`write` or not) by `owner` on `start..end` would conflict with.
    pub fn conflict(
        &self,
        ino: u64,
        owner: &Owner,
        write: bool,
        start: u64,
        end: u64,
    ) -> Option<Lock> {
        let files = self.files.lock();
        files
            .get(&ino)?
            .iter()
            .find(|l| {
                l.owner.alive()
                    && !l.owner.same(owner)
                    && (write || l.write)
                    && l.overlaps(start, end)
            })
            .cloned()
    }

    /// Sets (`Some(write)`) or removes (`None`) `owner`'s lock on
    /// `start..end` of file `ino`; `EAGAIN` if another owner's lock
    /// conflicts (then nothing changes).
    pub fn set(
        &self,
        ino: u64,
        owner: &Owner,
        kind: Option<bool>,
        start: u64,
        end: u64,
    ) -> Result<()> {
        let mut files = self.files.lock();
        let locks = files.entry(ino).or_default();
        locks.retain(|l| l.owner.alive());
        if let Some(write) = kind
            && locks
                .iter()
                .any(|l| !l.owner.same(owner) && (write || l.write) && l.overlaps(start, end))
        {
            return Err(Errno::EAGAIN.into());
        }
        let mut kept = Vec::with_capacity(locks.len() + 2);
        for l in locks.drain(..) {
            if !l.owner.same(owner) || !l.overlaps(start, end) {
                kept.push(l);
                continue;
            }
            // The parts of the owner's lock outside the new range stay.
            if l.start < start {
                kept.push(Lock {
                    end: start,
                    ..l.clone()
                });
            }
            if end < l.end {
                kept.push(Lock { start: end, ..l });
            }
        }
        if let Some(write) = kind {
            kept.push(Lock {
                owner: owner.clone(),
                write,
                start,
                end,
            });
        }
        kept.sort_by_key(|l| l.start);
        if kept.is_empty() {
            files.remove(&ino);
        } else {
            *locks = kept;
        }
        Ok(())
    }

    /// Drops process `pid`'s POSIX locks on file `ino` (it closed an fd
    /// of the file), or on every file (`None`: it exited).
    pub fn release_process(&self, pid: u32, ino: Option<u64>) {
        let owner = Owner::Process(pid);
        let mut files = self.files.lock();
        files.retain(|&i, locks| {
            if ino.is_none_or(|only| only == i) {
                locks.retain(|l| !l.owner.same(&owner) && l.owner.alive());
            }
            !locks.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = u64::MAX;

    #[test]
    fn readers_share_a_writer_excludes_and_owners_replace_their_own() {
        let t = LockTable::new();
        let (a, b) = (Owner::Process(1), Owner::Process(2));
        t.set(9, &a, Some(false), 0, 100).unwrap();
        t.set(9, &b, Some(false), 50, 150).unwrap();
        assert_eq!(
            t.set(9, &b, Some(true), 0, 10).unwrap_err().errno(),
            Errno::EAGAIN
        );
        let c = t.conflict(9, &b, true, 0, 10).unwrap();
        assert_eq!((c.owner.pid(), c.start, c.end, c.write), (1, 0, 100, false));
        // Upgrading its own read lock where nobody else reads works.
        t.set(9, &a, Some(true), 0, 50).unwrap();
        assert!(t.conflict(9, &b, false, 0, 50).is_some());
        assert!(
            t.conflict(9, &b, false, 50, 100).is_none(),
            "still a read lock"
        );
        // Unlocking the middle splits a lock; other files are separate.
        t.set(9, &a, None, 10, 20).unwrap();
        assert!(t.conflict(9, &b, true, 10, 20).is_none());
        assert!(t.conflict(9, &b, false, 20, 30).is_some());
        assert!(t.conflict(8, &b, true, 0, ALL).is_none());
        // Closing the file drops a process's locks there.
        t.release_process(1, Some(9));
        t.set(9, &b, Some(true), 0, 50).unwrap();
        t.release_process(2, None);
        assert!(t.files.lock().is_empty());
    }

    #[test]
    fn a_description_lock_goes_with_the_description() {
        let t = LockTable::new();
        let (r, _w) = crate::ipc::new_pipe(0);
        let file: Arc<dyn FileLike> = r;
        let ofd = Owner::description(&file);
        t.set(3, &ofd, Some(true), 0, ALL).unwrap();
        let other = Owner::Process(5);
        assert_eq!(t.conflict(3, &other, false, 7, 8).unwrap().owner.pid(), -1);
        drop(file);
        assert!(t.conflict(3, &other, true, 0, ALL).is_none());
        t.set(3, &other, Some(true), 0, ALL).unwrap();
    }
}
