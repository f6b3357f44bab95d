//! A process's user and group ids: real, effective and saved, and the
//! supplementary groups, changed with Linux's rules (`setuid(2)`,
//! `setresuid(2)`, `setgroups(2)`): a process whose effective uid is 0
//! may set any id; any other only to one of its own real, effective or
//! saved ids, and may not set groups.
//!
//! The ids are what `getuid` and friends report, inherited by a fork and
//! kept across `execve` (there are no set-user-ID programs). Cloister's
//! file system does not check permissions against them (every program of
//! a guest is one trust domain; see docs/LINUX_ABI.md): nginx's workers,
//! which drop to `nobody`, still read what the master could.

use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::return_errno;

/// The most supplementary groups (Linux's `NGROUPS_MAX`).
pub const NGROUPS_MAX: usize = 65536;

/// "Leave this id as it is" in the `setres*`/`setre*` calls.
pub const UNCHANGED: u32 = u32::MAX;

/// Real, effective and saved ids of one kind (user or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// Real.
    pub real: u32,
    /// Effective.
    pub effective: u32,
    /// Saved set-id.
    pub saved: u32,
}

impl Ids {
    fn holds(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// `setuid`/`setgid`: all three if `privileged`, else the effective
    /// one to the real or saved id.
    fn set(&mut self, id: u32, privileged: bool) -> Result<()> {
        if id == UNCHANGED {
            return_errno!(Errno::EINVAL);
        }
        if privileged {
            *self = Self {
                real: id,
                effective: id,
                saved: id,
            };
        } else if id == self.real || id == self.saved {
            self.effective = id;
        } else {
            return_errno!(Errno::EPERM);
        }
        Ok(())
    }

    /// `setresuid`/`setresgid`: each given id ([`UNCHANGED`] skips it)
    /// must be one of the current three unless `privileged`.
    fn set_res(&mut self, real: u32, effective: u32, saved: u32, privileged: bool) -> Result<()> {
        let new = [real, effective, saved];
        if !privileged && new.iter().any(|&id| id != UNCHANGED && !self.holds(id)) {
            return_errno!(Errno::EPERM);
        }
        let pick = |id: u32, old: u32| if id == UNCHANGED { old } else { id };
        *self = Self {
            real: pick(real, self.real),
            effective: pick(effective, self.effective),
            saved: pick(saved, self.saved),
        };
        Ok(())
    }

    /// `setreuid`/`setregid`: the real id to the real or effective one,
    /// the effective to any of the three (any if `privileged`); the saved
    /// id follows the effective one when the real id is set or the
    /// effective one differs from the old real id.
    fn set_re(&mut self, real: u32, effective: u32, privileged: bool) -> Result<()> {
        let real_ok = real == UNCHANGED || real == self.real || real == self.effective;
        if !privileged && (!real_ok || (effective != UNCHANGED && !self.holds(effective))) {
            return_errno!(Errno::EPERM);
        }
        let old_real = self.real;
        if real != UNCHANGED {
            self.real = real;
        }
        if effective != UNCHANGED {
            self.effective = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old_real) {
            self.saved = self.effective;
        }
        Ok(())
    }
}

/// A process's credentials (root's until it changes them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// User ids.
    pub uid: Ids,
    /// Group ids.
    pub gid: Ids,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// Whether the process may set ids at will (effective uid 0).
    pub fn privileged(&self) -> bool {
        self.uid.effective == 0
    }

    /// `setuid(uid)`.
    pub fn setuid(&mut self, uid: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set(uid, privileged)
    }

    /// `setgid(gid)`.
    pub fn setgid(&mut self, gid: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set(gid, privileged)
    }

    /// `setresuid(r, e, s)`.
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set_res(r, e, s, privileged)
    }

    /// `setresgid(r, e, s)`.
    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set_res(r, e, s, privileged)
    }

    /// `setreuid(r, e)`.
    pub fn setreuid(&mut self, r: u32, e: u32) -> Result<()> {
        let privileged = self.privileged();
        self.uid.set_re(r, e, privileged)
    }

    /// `setregid(r, e)`.
    pub fn setregid(&mut self, r: u32, e: u32) -> Result<()> {
        let privileged = self.privileged();
        self.gid.set_re(r, e, privileged)
    }

    /// `setgroups(list)`: root only; at most [`NGROUPS_MAX`].
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<()> {
        if groups.len() > NGROUPS_MAX {
            return_errno!(Errno::EINVAL);
        }
        if !self.privileged() {
            return_errno!(Errno::EPERM);
        }
        self.groups = groups;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn root_drops_to_nobody_as_nginx_workers_do_and_cannot_come_back() {
        let mut c = Credentials::default();
        assert!(c.privileged());
        c.setgid(65534).unwrap();
        c.setgroups(vec![65534]).unwrap();
        c.setuid(65534).unwrap();
        assert_eq!(
            (c.uid.real, c.uid.effective, c.uid.saved),
            (65534, 65534, 65534)
        );
        assert_eq!(c.gid.effective, 65534);
        assert_eq!(c.groups, [65534]);
        assert!(!c.privileged());
        assert_eq!(c.setuid(0).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(c.setgroups(vec![]).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(c.setgid(0).unwrap_err().errno(), Errno::EPERM);
        // Its own id is allowed.
        c.setuid(65534).unwrap();
        assert_eq!(c.setuid(UNCHANGED).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn a_saved_root_uid_lets_the_effective_one_go_back() {
        let mut c = Credentials::default();
        // Drop only the effective uid, keeping 0 as real and saved.
        c.setresuid(UNCHANGED, 1000, UNCHANGED).unwrap();
        assert!(!c.privileged());
        assert_eq!(
            c.setresuid(UNCHANGED, 7, UNCHANGED).unwrap_err().errno(),
            Errno::EPERM
        );
        c.setresuid(UNCHANGED, 0, UNCHANGED).unwrap();
        assert!(c.privileged());
        // setreuid with a real id also moves the saved one.
        c.setreuid(1000, 1000).unwrap();
        assert_eq!(
            c.uid,
            Ids {
                real: 1000,
                effective: 1000,
                saved: 1000
            }
        );
        assert_eq!(c.setreuid(0, UNCHANGED).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(c.setregid(5, 5).unwrap_err().errno(), Errno::EPERM);
    }
}
