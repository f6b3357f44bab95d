//! A process's user and group ids ([`Credentials`]) with Linux's rules for
//! changing them (`setuid`, `setreuid`, `setresuid`, `setfsuid`, the gid
//! forms, `setgroups`).
//!
//! Programs start as root (every id 0, no supplementary groups, like
//! Linux's first process). "Privileged" is modelled as an effective uid
//! of 0, which is what `CAP_SETUID`/`CAP_SETGID` follow for a root
//! process on Linux without file capabilities: after `seteuid(1000)` the
//! process can only switch among its real, effective and saved ids, and
//! `seteuid(0)` works again while 0 is one of them.
//!
//! The ids are recorded and reported (`getuid`, `getresuid`, `getgroups`,
//! …) and inherited by `fork`; the file system does not check
//! permissions against them (see `crate::syscall::fs`): Cloister runs one
//! program tree in one trust domain.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::return_errno;

/// `-1` as an id argument: leave that id alone.
pub const UNCHANGED: u32 = u32::MAX;
/// `NGROUPS_MAX`
pub const NGROUPS_MAX: usize = 65536;

/// Real, effective, saved and file-system ids of one kind (user or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// Real.
    pub real: u32,
    /// Effective.
    pub effective: u32,
    /// Saved set-id.
    pub saved: u32,
    /// File-system (follows the effective id).
    pub fs: u32,
}

impl Ids {
    fn is_one_of(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// `setuid`/`setgid`: all four when privileged, else only the
    /// effective (and fs) id, to the real or saved id.
    fn set(&mut self, id: u32, privileged: bool) -> Result<()> {
        if id == UNCHANGED {
            return_errno!(Errno::EINVAL);
        }
        if privileged {
            *self = Self {
                real: id,
                effective: id,
                saved: id,
                fs: id,
            };
        } else if id == self.real || id == self.saved {
            self.effective = id;
            self.fs = id;
        } else {
            return_errno!(Errno::EPERM);
        }
        Ok(())
    }

    /// `setreuid`/`setregid`: unprivileged, the real id may become the
    /// real or effective id, the effective id any of the three; the saved
    /// id follows the effective id when the real id is set or the
    /// effective id changes away from the real id.
    fn set_re(&mut self, real: u32, effective: u32, privileged: bool) -> Result<()> {
        let old = *self;
        let mut new = old;
        if real != UNCHANGED {
            if !privileged && real != old.real && real != old.effective {
                return_errno!(Errno::EPERM);
            }
            new.real = real;
        }
        if effective != UNCHANGED {
            if !privileged && !old.is_one_of(effective) {
                return_errno!(Errno::EPERM);
            }
            new.effective = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old.real) {
            new.saved = new.effective;
        }
        new.fs = new.effective;
        *self = new;
        Ok(())
    }

    /// `setresuid`/`setresgid`: unprivileged, each to one of the three
    /// current ids.
    fn set_res(&mut self, real: u32, effective: u32, saved: u32, privileged: bool) -> Result<()> {
        let allowed = |id: u32| id == UNCHANGED || privileged || self.is_one_of(id);
        if !(allowed(real) && allowed(effective) && allowed(saved)) {
            return_errno!(Errno::EPERM);
        }
        let keep = |id: u32, old: u32| if id == UNCHANGED { old } else { id };
        self.real = keep(real, self.real);
        self.effective = keep(effective, self.effective);
        self.saved = keep(saved, self.saved);
        self.fs = self.effective;
        Ok(())
    }

    /// `setfsuid`/`setfsgid`: returns the old fs id; sets it when
    /// privileged or to one of the ids (never an error, as Linux).
    fn set_fs(&mut self, id: u32, privileged: bool) -> u32 {
        let old = self.fs;
        if id != UNCHANGED && (privileged || self.is_one_of(id) || id == self.fs) {
            self.fs = id;
        }
        old
    }
}

/// A process's ids and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// User ids.
    pub uid: Ids,
    /// Group ids.
    pub gid: Ids,
    /// Supplementary groups (shared: a `fork` copies no list).
    pub groups: Arc<[u32]>,
}

impl Credentials {
    /// Whether the process may set any id (effective uid 0).
    pub fn privileged(&self) -> bool {
        self.uid.effective == 0
    }

    /// `setuid(uid)`
    pub fn setuid(&mut self, uid: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set(uid, privileged)
    }

    /// `setgid(gid)`
    pub fn setgid(&mut self, gid: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set(gid, privileged)
    }

    /// `setreuid(ruid, euid)`
    pub fn setreuid(&mut self, real: u32, effective: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set_re(real, effective, privileged)
    }

    /// `setregid(rgid, egid)`
    pub fn setregid(&mut self, real: u32, effective: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set_re(real, effective, privileged)
    }

    /// `setresuid(ruid, euid, suid)`
    pub fn setresuid(&mut self, real: u32, effective: u32, saved: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set_res(real, effective, saved, privileged)
    }

    /// `setresgid(rgid, egid, sgid)`
    pub fn setresgid(&mut self, real: u32, effective: u32, saved: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set_res(real, effective, saved, privileged)
    }

    /// `setfsuid(fsuid)`: the old fs uid.
    pub fn setfsuid(&mut self, id: u32) -> u32 {
        let privileged = self.privileged();
        self.uid.set_fs(id, privileged)
    }

    /// `setfsgid(fsgid)`: the old fs gid.
    pub fn setfsgid(&mut self, id: u32) -> u32 {
        let privileged = self.privileged();
        self.gid.set_fs(id, privileged)
    }

    /// `setgroups`: privileged only; `EINVAL` past [`NGROUPS_MAX`].
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<()> {
        if groups.len() > NGROUPS_MAX {
            return_errno!(Errno::EINVAL);
        }
        if !self.privileged() {
            return_errno!(Errno::EPERM);
        }
        self.groups = Arc::from(groups);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = UNCHANGED;

    #[test]
    fn root_may_set_anything_and_then_switch_back_through_the_saved_id() {
        let mut c = Credentials::default();
        assert!(c.privileged());
        c.setresuid(N, 1000, N).unwrap();
        assert_eq!(
            c.uid,
            Ids {
                real: 0,
                effective: 1000,
                saved: 0,
                fs: 1000
            }
        );
        assert!(!c.privileged());
        assert_eq!(c.setuid(5).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(
            c.setgroups(alloc::vec![1]).unwrap_err().errno(),
            Errno::EPERM
        );
        assert_eq!(c.setgid(7).unwrap_err().errno(), Errno::EPERM);
        // Back to 0: it is the real and the saved id.
        c.setuid(0).unwrap();
        assert_eq!(c.uid.effective, 0);
        // Privileged setuid sets all four: no way back.
        c.setuid(1000).unwrap();
        assert_eq!(
            c.uid,
            Ids {
                real: 1000,
                effective: 1000,
                saved: 1000,
                fs: 1000
            }
        );
        assert_eq!(c.setuid(0).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(c.setresuid(0, N, N).unwrap_err().errno(), Errno::EPERM);
        c.setresuid(N, N, N).unwrap();
        c.setresuid(1000, 1000, 1000).unwrap();
    }

    #[test]
    fn setreuid_moves_the_saved_id_as_linux() {
        let mut c = Credentials::default();
        c.setreuid(N, N).unwrap();
        assert_eq!(c.uid, Ids::default(), "(-1, -1) changes nothing");
        c.setreuid(N, 1000).unwrap();
        assert_eq!(
            c.uid,
            Ids {
                real: 0,
                effective: 1000,
                saved: 1000,
                fs: 1000
            }
        );
        // Unprivileged: swap real and effective.
        c.setreuid(1000, 0).unwrap();
        assert_eq!(
            c.uid,
            Ids {
                real: 1000,
                effective: 0,
                saved: 0,
                fs: 0
            }
        );
        c.setreuid(0, 1000).unwrap();
        assert_eq!(c.setreuid(5, N).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(c.setreuid(N, 5).unwrap_err().errno(), Errno::EPERM);
    }

    #[test]
    fn gids_groups_and_fs_ids() {
        let mut c = Credentials::default();
        c.setregid(N, N).unwrap();
        c.setresgid(10, 11, 12).unwrap();
        assert_eq!(
            c.gid,
            Ids {
                real: 10,
                effective: 11,
                saved: 12,
                fs: 11
            }
        );
        c.setgroups((0..16).collect()).unwrap();
        assert_eq!(c.groups.len(), 16);
        assert_eq!(
            c.setgroups(alloc::vec![0; NGROUPS_MAX + 1])
                .unwrap_err()
                .errno(),
            Errno::EINVAL
        );
        assert_eq!(c.setfsuid(N), 0, "-1 only reads");
        assert_eq!(c.setfsuid(77), 0);
        assert_eq!(c.setfsuid(N), 77);
        assert_eq!(c.setgid(N).unwrap_err().errno(), Errno::EINVAL);
        c.setuid(1).unwrap();
        assert_eq!(c.setfsgid(99), 11);
        assert_eq!(c.setfsgid(N), 11, "unprivileged: not to a foreign id");
        assert_eq!(c.setfsgid(12), 11);
        assert_eq!(c.gid.fs, 12);
    }
}
