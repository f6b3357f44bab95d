//! `flock` locks: whole-file advisory locks held by open file
//! descriptions ([`FlockState`], one per inode).
//!
//! As Linux: any number of shared locks or one exclusive lock; the owner
//! is the open file description, so `dup`ed and inherited fds share a
//! lock, and the lock goes when the last of them is closed (the
//! description's `Drop` releases it). Converting a lock first removes the
//! old one, so a failed conversion leaves none (flock(2) says the same).

use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::return_errno;

/// Who holds a lock: an open file description, by address.
pub type Owner = usize;

/// The locks on one inode.
#[derive(Debug, Default, Clone)]
pub struct FlockState {
    exclusive: Option<Owner>,
    shared: Vec<Owner>,
}

impl FlockState {
    /// Takes a shared or an `exclusive` lock for `owner`, replacing one it
    /// holds; `EWOULDBLOCK` (`EAGAIN`) while another owner's lock conflicts.
    pub fn lock(&mut self, owner: Owner, exclusive: bool) -> Result<()> {
        self.unlock(owner);
        let conflict = self.exclusive.is_some() || (exclusive && !self.shared.is_empty());
        if conflict {
            return_errno!(Errno::EAGAIN);
        }
        if exclusive {
            self.exclusive = Some(owner);
        } else {
            self.shared.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            self.shared.push(owner);
        }
        Ok(())
    }

    /// Drops whatever lock `owner` holds.
    pub fn unlock(&mut self, owner: Owner) {
        if self.exclusive == Some(owner) {
            self.exclusive = None;
        }
        self.shared.retain(|&o| o != owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let mut f = FlockState::default();
        f.lock(1, false).unwrap();
        f.lock(2, false).unwrap();
        assert_eq!(f.lock(3, true).unwrap_err().errno(), Errno::EAGAIN);
        // Converting with another sharer fails and leaves no lock.
        assert_eq!(f.lock(1, true).unwrap_err().errno(), Errno::EAGAIN);
        f.unlock(2);
        f.lock(3, true).unwrap();
        assert_eq!(f.lock(1, false).unwrap_err().errno(), Errno::EAGAIN);
        f.lock(3, true).unwrap();
        f.lock(3, false).unwrap();
        f.lock(4, false).unwrap();
        f.unlock(3);
        f.unlock(4);
        f.lock(5, true).unwrap();
    }
}
