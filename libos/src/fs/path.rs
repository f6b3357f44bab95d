//! Path resolution: absolute or relative to a working directory, `.` and
//! `..`, symbolic links (at most [`MAX_SYMLINK_FOLLOWS`] per lookup, then
//! `ELOOP`), `NAME_MAX`/`PATH_MAX` (`ENAMETOOLONG`), and a trailing slash
//! requiring a directory.

use alloc::vec::Vec;

use super::inode::{InodeRef, InodeType};
use super::vfs::Vfs;
use crate::error::{Errno, Result};
use crate::fallible::TryVec;
use crate::{return_errno, return_errno_with_message};

/// Longest name of one path component, in bytes.
pub const NAME_MAX: usize = 255;
/// Longest path, in bytes, including the NUL.
pub const PATH_MAX: usize = 4096;
/// Symbolic links followed in one lookup before `ELOOP` (Linux's 40).
pub const MAX_SYMLINK_FOLLOWS: u32 = 40;

/// Splits `path` into its non-empty components.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn check_path(path: &[u8]) -> Result<()> {
    if path.is_empty() {
        return_errno_with_message!(Errno::ENOENT, "empty path");
    }
    if path.len() >= PATH_MAX {
        return_errno!(Errno::ENAMETOOLONG);
    }
    if components(path).any(|c| c.len() > NAME_MAX) {
        return_errno!(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl Vfs {
    /// Resolves `path` from `cwd`. The last component is followed if it is
    /// a symlink when `follow_last` is set or the path ends in `/`.
    pub fn resolve(&self, cwd: &InodeRef, path: &[u8], follow_last: bool) -> Result<InodeRef> {
        let mut follows = 0;
        self.walk(cwd, path, follow_last, &mut follows)
    }

    fn walk(
        &self,
        cwd: &InodeRef,
        path: &[u8],
        follow_last: bool,
        follows: &mut u32,
    ) -> Result<InodeRef> {
        check_path(path)?;
        let trailing_slash = path.ends_with(b"/");
        let mut cur = if path.starts_with(b"/") {
            self.root().clone()
        } else {
            cwd.clone()
        };
        let mut comps = components(path).peekable();
        while let Some(comp) = comps.next() {
            let last = comps.peek().is_none();
            if !cur.is_dir() {
                return_errno!(Errno::ENOTDIR);
            }
            let child = match comp {
                b"." => continue,
                b".." => cur.parent()?,
                name => cur.lookup(name)?,
            };
            cur = if child.file_type() == InodeType::Symlink
                && (!last || follow_last || trailing_slash)
            {
                *follows += 1;
                if *follows > MAX_SYMLINK_FOLLOWS {
                    return_errno_with_message!(Errno::ELOOP, "too many levels of symbolic links");
                }
                let target = child.read_link()?;
                self.walk(&cur, &target, true, follows)?
            } else {
                child
            };
        }
        if trailing_slash && !cur.is_dir() {
            return_errno!(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves all but the last component of `path`, returning the
    /// directory and the last name. The name is empty for `/`; it may be
    /// `.` or `..`, which callers creating or removing entries reject.
    pub fn resolve_parent(&self, cwd: &InodeRef, path: &[u8]) -> Result<(InodeRef, Vec<u8>)> {
        check_path(path)?;
        let trimmed = trim_trailing_slashes(path);
        let (dir_path, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let dir = if dir_path.is_empty() {
            cwd.clone()
        } else {
            self.resolve(cwd, dir_path, true)?
        };
        if !dir.is_dir() {
            return_errno!(Errno::ENOTDIR);
        }
        Ok((dir, crate::fallible::copy_of(name)?))
    }

    /// The absolute path of directory `dir` (for `getcwd`); `ENOMEM` if
    /// a deep tree's path cannot be held.
    pub fn path_of(&self, dir: &InodeRef) -> Result<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut cur = dir.clone();
        loop {
            let parent = cur.parent()?;
            if alloc::sync::Arc::ptr_eq(&parent, &cur) {
                break;
            }
            names.try_push(parent.name_of(cur.ino())?)?;
            cur = parent;
        }
        if !alloc::sync::Arc::ptr_eq(&cur, self.root()) {
            // Detached from the tree (removed while in use).
            return_errno!(Errno::ENOENT);
        }
        let mut out = Vec::new();
        for n in names.iter().rev() {
            out.try_push(b'/')?;
            out.try_extend_from_slice(n)?;
        }
        if out.is_empty() {
            out.try_push(b'/')?;
        }
        Ok(out)
    }
}

/// `path` without trailing slashes (but `/` stays `/`).
fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}
