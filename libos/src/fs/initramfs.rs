//! Unpacking a cpio newc initramfs into the [`Vfs`].
//!
//! Names are taken relative to `/` (a leading `./` or `/` is dropped; `.`
//! is the root itself). Missing parent directories are created (mode
//! 0755). An entry replaces a non-directory of the same name; a directory
//! entry over an existing directory updates its mode and owner. Device
//! nodes are bound to registered devices by number; block devices, FIFOs,
//! sockets and unknown device numbers are skipped and counted. Regular
//! files with `nlink > 1` sharing `(dev, ino)` become hard links to one
//! inode. A directory's owner and modification time are set again once
//! the whole archive is in, as Linux's initramfs does (`dir_utime`):
//! creating its entries afterwards would otherwise leave the time of
//! unpacking, not the archive's.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::data::FileData;
use super::inode::{Content, InodeRef};
use super::vfs::Vfs;
use crate::cpio::{CpioReader, Entry, FileType};
use crate::error::{Errno, Result};

/// What unpacking did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Entries created or updated.
    pub entries: usize,
    /// Entries skipped (unsupported type or unknown device).
    pub skipped: usize,
    /// Bytes of file data copied.
    pub data_bytes: usize,
}

impl Vfs {
    /// Unpacks `archive` into the tree. Stops at the first malformed entry
    /// with an `EINVAL` error naming the problem.
    pub fn unpack_cpio(&self, archive: &[u8]) -> Result<UnpackReport> {
        let mut report = UnpackReport::default();
        let mut hard_links = BTreeMap::new();
        let mut dirs = Vec::new();
        for entry in CpioReader::new(archive) {
            let entry = entry?;
            match self.unpack_entry(&entry, &mut hard_links)? {
                Some(inode) => {
                    report.entries += 1;
                    report.data_bytes += entry.data.len();
                    if inode.is_dir() {
                        dirs.push((inode, entry.uid, entry.gid, entry.mtime));
                    }
                }
                None => report.skipped += 1,
            }
        }
        for (dir, uid, gid, mtime) in dirs {
            dir.set_owner_and_mtime(uid, gid, u64::from(mtime) * 1_000_000_000);
        }
        Ok(report)
    }

    /// Unpacks one entry. Regular files with `nlink > 1` are hard links:
    /// entries with the same `(dev, ino)` share one inode, whose data comes
    /// with whichever entry carries it (newc puts it on the last). Returns
    /// the inode made or updated (the root for `.`), `None` if skipped.
    fn unpack_entry(
        &self,
        entry: &Entry<'_>,
        hard_links: &mut HardLinks,
    ) -> Result<Option<InodeRef>> {
        let mut name = entry.name;
        while let Some(rest) = name.strip_prefix(b"./").or_else(|| name.strip_prefix(b"/")) {
            name = rest;
        }
        let root = self.root().clone();
        if name.is_empty() || name == b"." {
            if entry.file_type() == FileType::Directory {
                root.set_permissions(entry.permissions(), self.now());
                return Ok(Some(root));
            }
            return Ok(None);
        }
        let (dir, last) = self.make_parents(name)?;
        let existing = dir.lookup(last).ok();
        let perm = entry.permissions();
        let inode = match entry.file_type() {
            FileType::Directory => match existing {
                Some(d) if d.is_dir() => {
                    d.set_permissions(perm, self.now());
                    d
                }
                _ => {
                    self.remove_if_present(&dir, last)?;
                    self.insert(&dir, last, new_dir(), perm)?
                }
            },
            FileType::Regular if entry.nlink > 1 => {
                let key = (entry.dev, entry.ino);
                self.remove_if_present(&dir, last)?;
                let inode = match hard_links.get(&key) {
                    Some(inode) => {
                        self.insert_link(&dir, last, inode)?;
                        inode.clone()
                    }
                    None => {
                        let inode = self.insert(&dir, last, self.new_file_data(), perm)?;
                        hard_links.insert(key, inode.clone());
                        inode
                    }
                };
                if !entry.data.is_empty() {
                    let now = self.now();
                    inode.truncate(0, now)?;
                    inode.write_at(0, entry.data, now)?;
                }
                inode
            }
            FileType::Regular | FileType::Symlink => {
                self.remove_if_present(&dir, last)?;
                let content = if entry.file_type() == FileType::Regular {
                    Content::File(FileData::from_bytes(entry.data, self.space().clone())?)
                } else {
                    Content::Symlink(entry.data.to_vec())
                };
                self.insert(&dir, last, content, perm)?
            }
            FileType::CharDevice => {
                let Some(device) = self.devices().find(entry.rdev) else {
                    return Ok(None);
                };
                self.remove_if_present(&dir, last)?;
                self.insert(&dir, last, Content::Device(device), perm)?
            }
            _ => return Ok(None),
        };
        inode.set_owner_and_mtime(entry.uid, entry.gid, u64::from(entry.mtime) * 1_000_000_000);
        Ok(Some(inode))
    }

    /// Creates the directories above `path` and returns the last one with
    /// the final name.
    fn make_parents<'p>(&self, path: &'p [u8]) -> Result<(InodeRef, &'p [u8])> {
        let mut dir = self.root().clone();
        let mut comps = super::components(path).peekable();
        while let Some(comp) = comps.next() {
            if comps.peek().is_none() {
                if comp == b".." || comp == b"." {
                    return Err(Errno::EINVAL.into());
                }
                return Ok((dir, comp));
            }
            dir = match comp {
                b"." => dir,
                b".." => dir.parent()?,
                _ => match dir.lookup(comp) {
                    Ok(d) if d.is_dir() => d,
                    Ok(_) => return Err(Errno::ENOTDIR.into()),
                    Err(_) => self.insert(&dir, comp, new_dir(), 0o755)?,
                },
            };
        }
        Err(Errno::ENOENT.into())
    }

    fn remove_if_present(&self, dir: &InodeRef, name: &[u8]) -> Result<()> {
        match dir.lookup(name) {
            Ok(old) if old.is_dir() && !old.is_empty_dir() => Err(Errno::ENOTEMPTY.into()),
            Ok(_) => {
                let root = self.root().clone();
                let mut path = self.path_of(dir)?;
                path.push(b'/');
                path.extend_from_slice(name);
                match dir.lookup(name)?.is_dir() {
                    true => self.rmdir(&root, &path),
                    false => self.unlink(&root, &path),
                }
            }
            Err(_) => Ok(()),
        }
    }
}

/// Inodes of hard-linked entries seen so far, by `((major, minor), ino)`.
type HardLinks = BTreeMap<((u32, u32), u32), InodeRef>;

fn new_dir() -> Content {
    Content::Dir {
        entries: alloc::collections::BTreeMap::new(),
        parent: alloc::sync::Weak::new(),
    }
}
