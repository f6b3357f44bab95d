//! [`Image`]: the initramfs's tree, built in memory and written as a cpio
//! newc archive with libos's [`CpioWriter`] (the same format code the guest
//! reads with).
//!
//! Paths are absolute guest paths. Every parent directory gets an entry
//! (mode 0755 unless added explicitly), written before its children;
//! everything is owned by root. Host files keep their permission bits and
//! modification time (Python compares `.pyc` stamps with its sources').

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use libos::cpio::{CpioWriter, EntryMeta};

use super::resolve::normalize;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir {
        /// Permission bits.
        perm: u32,
        /// Seconds since the epoch.
        mtime: u32,
    },
    /// A regular file.
    File {
        /// Contents.
        data: Vec<u8>,
        /// Permission bits.
        perm: u32,
        /// Seconds since the epoch.
        mtime: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points (unchanged from the host).
        target: Vec<u8>,
        /// Seconds since the epoch.
        mtime: u32,
    },
}

/// The tree of an initramfs under construction.
#[derive(Debug, Clone)]
pub struct Image {
    /// Ordered so that a directory precedes everything below it.
    nodes: BTreeMap<PathBuf, Node>,
    /// The time given to directories and files made up here.
    now: u32,
    /// Host files under `--file` directories that were left out (FIFOs,
    /// sockets, devices).
    pub skipped: Vec<PathBuf>,
}

impl Default for Image {
    fn default() -> Self {
        Self::new()
    }
}

impl Image {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            nodes: BTreeMap::new(),
            now: epoch_seconds(SystemTime::now()),
            skipped: Vec::new(),
        }
    }

    /// The node at `guest`, if any.
    pub fn get(&self, guest: impl AsRef<Path>) -> Option<&Node> {
        self.nodes.get(guest.as_ref())
    }

    /// Every path and node, parents first.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_path(), n))
    }

    /// Regular files and their total size in bytes.
    pub fn file_stats(&self) -> (usize, usize) {
        self.nodes.values().fold((0, 0), |(n, b), node| match node {
            Node::File { data, .. } => (n + 1, b + data.len()),
            _ => (n, b),
        })
    }

    /// Adds (or updates) a directory.
    pub fn add_dir(&mut self, guest: &Path, perm: u32) -> Result<()> {
        let now = self.now;
        self.insert(guest, Node::Dir { perm, mtime: now })
    }

    /// Adds a regular file made here (mtime: now), replacing a file there.
    pub fn add_file(&mut self, guest: &Path, data: Vec<u8>, perm: u32) -> Result<()> {
        let mtime = self.now;
        self.insert(guest, Node::File { data, perm, mtime })
    }

    /// Adds the host file `host` (symlinks followed) at `guest`, with its
    /// own permission bits or `perm`.
    pub fn add_host_file(&mut self, guest: &Path, host: &Path, perm: Option<u32>) -> Result<()> {
        let meta = std::fs::metadata(host)
            .with_context(|| format!("cannot add {}: it does not exist", host.display()))?;
        if !meta.is_file() {
            bail!("cannot add {}: it is not a regular file", host.display());
        }
        let data =
            std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
        self.insert(
            guest,
            Node::File {
                data,
                perm: perm.unwrap_or(meta.permissions().mode() & 0o7777),
                mtime: mtime_of(&meta),
            },
        )
    }

    /// Adds `host` at `guest`: a file (symlinks followed), or a directory
    /// with everything below it, where symlinks stay symlinks. Returns the
    /// host paths of the regular files added.
    pub fn add_host_path(&mut self, host: &Path, guest: &Path) -> Result<Vec<PathBuf>> {
        let meta = std::fs::metadata(host)
            .with_context(|| format!("--file {}: it does not exist", host.display()))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            self.add_host_dir(host, guest, &meta, &mut files)?;
        } else {
            self.add_host_file(guest, host, None)?;
            files.push(host.to_path_buf());
        }
        Ok(files)
    }

    fn add_host_dir(
        &mut self,
        host: &Path,
        guest: &Path,
        meta: &std::fs::Metadata,
        files: &mut Vec<PathBuf>,
    ) -> Result<()> {
        self.insert(
            guest,
            Node::Dir {
                perm: meta.permissions().mode() & 0o7777,
                mtime: mtime_of(meta),
            },
        )?;
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .with_context(|| format!("cannot list {}", host.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list {}", host.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let host_child = entry.path();
            let guest_child = guest.join(entry.file_name());
            let meta = std::fs::symlink_metadata(&host_child)
                .with_context(|| format!("cannot stat {}", host_child.display()))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&host_child)
                    .with_context(|| format!("cannot read link {}", host_child.display()))?;
                self.insert(
                    &guest_child,
                    Node::Symlink {
                        target: target.as_os_str().as_bytes().to_vec(),
                        mtime: mtime_of(&meta),
                    },
                )?;
            } else if kind.is_dir() {
                self.add_host_dir(&host_child, &guest_child, &meta, files)?;
            } else if kind.is_file() {
                self.add_host_file(&guest_child, &host_child, None)?;
                files.push(host_child);
            } else {
                self.skipped.push(host_child);
            }
        }
        Ok(())
    }

    /// Inserts `node` at `guest` after creating its parents, which are
    /// dated like `node` (a directory made to hold it: for a host tree
    /// given at its own path, the host parent's time is that of the entry
    /// made in it, so `ls -la` in the guest shows `..` as on the host). A
    /// file or symlink replaces a file or symlink; a directory over a
    /// directory updates it; any other clash is an error.
    fn insert(&mut self, guest: &Path, node: Node) -> Result<()> {
        let path = guest_path(guest)?;
        if path == Path::new("/") {
            if matches!(node, Node::Dir { .. }) {
                return Ok(());
            }
            bail!("cannot put a file at / in the image");
        }
        let mut parent = path.parent();
        let mut missing = Vec::new();
        while let Some(dir) = parent.filter(|d| *d != Path::new("/")) {
            match self.nodes.get(dir) {
                Some(Node::Dir { .. }) => break,
                Some(_) => bail!(
                    "cannot put {} in the image: {} is already a file there",
                    path.display(),
                    dir.display()
                ),
                None => missing.push(dir.to_path_buf()),
            }
            parent = dir.parent();
        }
        let is_dir = matches!(node, Node::Dir { .. });
        match self.nodes.get(&path) {
            Some(Node::Dir { .. }) if !is_dir => bail!(
                "cannot put a file at {} in the image: it is already a directory there",
                path.display()
            ),
            Some(Node::File { .. } | Node::Symlink { .. }) if is_dir => bail!(
                "cannot put a directory at {} in the image: it is already a file there",
                path.display()
            ),
            _ => {}
        }
        let mtime = match &node {
            Node::Dir { mtime, .. } | Node::File { mtime, .. } | Node::Symlink { mtime, .. } => {
                *mtime
            }
        };
        for dir in missing {
            self.nodes.insert(dir, Node::Dir { perm: 0o755, mtime });
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// The tree as a cpio newc archive.
    pub fn to_cpio(&self) -> Result<Vec<u8>> {
        let mut writer = CpioWriter::new();
        for (path, node) in &self.nodes {
            let name = &path.as_os_str().as_bytes()[1..];
            let (meta, data): (EntryMeta, &[u8]) = match node {
                Node::Dir { perm, mtime } => (with_mtime(EntryMeta::directory(*perm), *mtime), &[]),
                Node::File { data, perm, mtime } => {
                    (with_mtime(EntryMeta::regular(*perm), *mtime), data)
                }
                Node::Symlink { target, mtime } => {
                    (with_mtime(EntryMeta::symlink(), *mtime), target)
                }
            };
            writer
                .push(name, &meta, data)
                .map_err(|e| anyhow::anyhow!("cannot pack {}: {e}", path.display()))?;
        }
        Ok(writer.finish())
    }
}

/// Checks that `guest` is absolute and returns it normalised.
fn guest_path(guest: &Path) -> Result<PathBuf> {
    if !guest.is_absolute() {
        bail!(
            "guest path {} must be absolute (start with /)",
            guest.display()
        );
    }
    Ok(normalize(guest))
}

fn with_mtime(mut meta: EntryMeta, mtime: u32) -> EntryMeta {
    meta.mtime = mtime;
    meta
}

fn mtime_of(meta: &std::fs::Metadata) -> u32 {
    meta.modified().map_or(0, epoch_seconds)
}

/// Seconds since the epoch, clamped to what newc's 32-bit field holds.
fn epoch_seconds(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixture::Scratch;
    use libos::cpio::{CpioReader, FileType};

    /// `(name, type, permissions, data)` of every entry, read back with
    /// libos's reader.
    fn read_back(archive: &[u8]) -> Vec<(String, FileType, u32, Vec<u8>)> {
        CpioReader::new(archive)
            .map(|e| {
                let e = e.expect("valid archive");
                (
                    String::from_utf8(e.name.to_vec()).unwrap(),
                    e.file_type(),
                    e.permissions(),
                    e.data.to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn parents_come_first_and_everything_reads_back() {
        let mut image = Image::new();
        image
            .add_file(Path::new("/usr/bin/x"), b"xx".to_vec(), 0o755)
            .unwrap();
        image.add_dir(Path::new("/tmp"), 0o1777).unwrap();
        image
            .add_file(Path::new("/usr/./lib/../lib/y"), b"y".to_vec(), 0o644)
            .unwrap();
        let entries = read_back(&image.to_cpio().unwrap());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["tmp", "usr", "usr/bin", "usr/bin/x", "usr/lib", "usr/lib/y"]
        );
        assert_eq!(entries[0].1, FileType::Directory);
        assert_eq!(entries[0].2, 0o1777);
        assert_eq!(entries[1].2, 0o755);
        assert_eq!(
            entries[3],
            ("usr/bin/x".into(), FileType::Regular, 0o755, b"xx".to_vec())
        );
    }

    #[test]
    fn parents_made_for_a_node_are_dated_like_it() {
        let mut image = Image::new();
        image
            .insert(
                Path::new("/host/tree/data"),
                Node::Dir {
                    perm: 0o700,
                    mtime: 1_600_000_000,
                },
            )
            .unwrap();
        for parent in ["/host", "/host/tree"] {
            assert_eq!(
                image.get(parent),
                Some(&Node::Dir {
                    perm: 0o755,
                    mtime: 1_600_000_000
                }),
                "{parent}"
            );
        }
    }

    #[test]
    fn clashes_are_errors_and_files_replace_files() {
        let mut image = Image::new();
        image
            .add_file(Path::new("/a/b"), b"1".to_vec(), 0o644)
            .unwrap();
        image
            .add_file(Path::new("/a/b"), b"2".to_vec(), 0o600)
            .unwrap();
        assert_eq!(
            image.get("/a/b"),
            Some(&Node::File {
                data: b"2".to_vec(),
                perm: 0o600,
                mtime: image.now
            })
        );
        let err = image
            .add_file(Path::new("/a/b/c"), vec![], 0o644)
            .unwrap_err();
        assert!(err.to_string().contains("/a/b is already a file"), "{err}");
        let err = image.add_file(Path::new("/a"), vec![], 0o644).unwrap_err();
        assert!(err.to_string().contains("already a directory"), "{err}");
        let err = image.add_file(Path::new("rel"), vec![], 0o644).unwrap_err();
        assert!(err.to_string().contains("must be absolute"), "{err}");
    }

    #[test]
    fn host_directories_keep_modes_symlinks_and_times() {
        let s = Scratch::new("tree");
        s.write("lib/pkg/__init__.py", b"# init\n", 0o644);
        s.write("lib/pkg/tool", b"#!/bin/sh\n", 0o750);
        std::os::unix::fs::symlink("pkg/tool", s.0.join("lib/link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", s.0.join("lib/dangling")).unwrap();
        let mut image = Image::new();
        let files = image
            .add_host_path(&s.0.join("lib"), Path::new("/opt/lib"))
            .unwrap();
        assert_eq!(
            files,
            [s.0.join("lib/pkg/__init__.py"), s.0.join("lib/pkg/tool")]
        );
        let entries = read_back(&image.to_cpio().unwrap());
        let find = |n: &str| {
            entries
                .iter()
                .find(|e| e.0 == n)
                .unwrap_or_else(|| panic!("{n}: {entries:?}"))
        };
        assert_eq!(find("opt/lib/pkg/tool").2, 0o750);
        assert_eq!(find("opt/lib/pkg/__init__.py").3, b"# init\n");
        assert_eq!(find("opt/lib/link").1, FileType::Symlink);
        assert_eq!(find("opt/lib/link").3, b"pkg/tool");
        assert_eq!(find("opt/lib/dangling").3, b"/nonexistent");
        let host_mtime = mtime_of(&std::fs::metadata(s.0.join("lib/pkg/__init__.py")).unwrap());
        let archive = image.to_cpio().unwrap();
        let entry = CpioReader::new(&archive)
            .map(|e| e.unwrap())
            .find(|e| e.name == b"opt/lib/pkg/__init__.py")
            .unwrap();
        assert_eq!(entry.mtime, host_mtime);
        assert_eq!((entry.uid, entry.gid), (0, 0));
    }

    #[test]
    fn a_top_level_symlink_is_followed() {
        let s = Scratch::new("toplink");
        s.write("real", b"data", 0o640);
        std::os::unix::fs::symlink("real", s.0.join("link")).unwrap();
        let mut image = Image::new();
        image
            .add_host_path(&s.0.join("link"), Path::new("/x"))
            .unwrap();
        assert!(
            matches!(image.get("/x"), Some(Node::File { data, perm: 0o640, .. }) if data == b"data")
        );
    }
}
