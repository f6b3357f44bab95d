//! The Linux guest's initramfs: a small in-memory tree written out as a
//! newc cpio archive with `libos::cpio::writer`. It starts as a copy of the
//! tree `cloister run` packs for Cloister ([`Tree::from_image`]) and adds
//! what only Linux needs, among them a `/dev/console` device node, which
//! `tools::run::image::Image` has no type for. Parent directories are added
//! as needed; host files are read following symbolic links.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use libos::cpio::writer::CpioWriter;

use crate::run::image::{Image, Node as ImageNode};

/// `cloister run`'s control files (`/.cloister/argv`, `…/envp`): not for
/// Linux.
const CONTROL_DIR: &str = "/.cloister";

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File { data: Vec<u8>, perm: u32 },
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

/// The tree, keyed by relative path (no leading `/`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
}

/// `/a/b` → `a/b`; rejects `..` and empty paths.
fn relative(guest: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in guest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => bail!("guest path {} must not use `..`", guest.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("empty guest path {:?}", guest.display());
    }
    Ok(out)
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, guest: &Path, node: Node) -> Result<()> {
        let rel = relative(guest)?;
        for parent in rel.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            match self.nodes.get(parent) {
                None => {
                    self.nodes.insert(parent.to_path_buf(), Node::Dir(0o755));
                }
                Some(Node::Dir(_)) => {}
                Some(_) => bail!("{} is not a directory", parent.display()),
            }
        }
        self.nodes.insert(rel, node);
        Ok(())
    }

    /// A copy of `image` without `cloister run`'s control directory.
    pub fn from_image(image: &Image) -> Result<Self> {
        let mut t = Self::new();
        for (path, node) in image.iter() {
            if path.starts_with(CONTROL_DIR) {
                continue;
            }
            let node = match node {
                ImageNode::Dir { perm, .. } => Node::Dir(*perm),
                ImageNode::File { data, perm, .. } => Node::File {
                    data: data.clone(),
                    perm: *perm,
                },
                ImageNode::Symlink { target, .. } => Node::Symlink(
                    String::from_utf8(target.clone())
                        .with_context(|| format!("non-UTF-8 link {}", path.display()))?,
                ),
            };
            t.insert(path, node)?;
        }
        Ok(t)
    }

    /// Adds a directory.
    pub fn dir(&mut self, guest: &str, perm: u32) -> Result<()> {
        self.insert(Path::new(guest), Node::Dir(perm))
    }

    /// Adds a file with contents `data`.
    pub fn file(&mut self, guest: &Path, data: Vec<u8>, perm: u32) -> Result<()> {
        self.insert(guest, Node::File { data, perm })
    }

    /// Adds a copy of the host file `host` (links followed), keeping its
    /// permission bits unless `perm` is given.
    pub fn host_file(&mut self, guest: &Path, host: &Path, perm: Option<u32>) -> Result<()> {
        let data =
            std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
        let perm = match perm {
            Some(p) => p,
            None => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(host)?.permissions().mode() & 0o7777
            }
        };
        self.file(guest, data, perm)
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, guest: &str, target: &str) -> Result<()> {
        self.insert(Path::new(guest), Node::Symlink(target.into()))
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, guest: &str, major: u32, minor: u32) -> Result<()> {
        self.insert(Path::new(guest), Node::CharDevice { major, minor })
    }

    /// Whether `guest` is in the tree.
    pub fn contains(&self, guest: &Path) -> bool {
        relative(guest).is_ok_and(|r| self.nodes.contains_key(&r))
    }

    /// The archive: directories before their contents (sorted order does
    /// that), then the trailer.
    pub fn to_cpio(&self) -> Result<Vec<u8>> {
        let mut w = CpioWriter::new();
        for (path, node) in &self.nodes {
            let name = path.to_str().context("non-UTF-8 guest path")?.as_bytes();
            let r = match node {
                Node::Dir(perm) => w.add_dir(name, *perm),
                Node::File { data, perm } => w.add_file(name, *perm, data),
                Node::Symlink(target) => w.add_symlink(name, target.as_bytes()),
                Node::CharDevice { major, minor } => w.add_char_device(name, 0o600, *major, *minor),
            };
            r.map_err(|e| anyhow::anyhow!("cpio entry {}: {e:?}", path.display()))?;
        }
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libos::cpio::reader::CpioReader;

    #[test]
    fn parents_come_first_and_paths_stay_inside() {
        let mut t = Tree::new();
        t.file(Path::new("/usr/bin/x"), b"hi".to_vec(), 0o755)
            .unwrap();
        t.symlink("/bin/sh", "busybox").unwrap();
        t.char_device("/dev/console", 5, 1).unwrap();
        assert!(t.file(Path::new("/../etc"), vec![], 0o644).is_err());
        assert!(t.file(Path::new("/usr/bin/x/y"), vec![], 0o644).is_err());
        assert!(t.contains(Path::new("/usr/bin")));
        t.dir("/tmp", 0o1777).unwrap();
        let archive = t.to_cpio().unwrap();
        let names: Vec<String> = CpioReader::new(&archive)
            .map(|e| String::from_utf8_lossy(e.unwrap().name).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "tmp",
                "usr",
                "usr/bin",
                "usr/bin/x"
            ]
        );
    }

    #[test]
    fn a_run_image_is_copied_without_its_control_files() {
        let mut image = Image::new();
        image
            .add_file(Path::new("/usr/bin/x"), b"elf".to_vec(), 0o755)
            .unwrap();
        image
            .add_file(Path::new("/.cloister/argv"), b"x\0".to_vec(), 0o444)
            .unwrap();
        image.add_dir(Path::new("/tmp"), 0o1777).unwrap();
        let t = Tree::from_image(&image).unwrap();
        assert!(t.contains(Path::new("/usr/bin/x")));
        assert!(!t.contains(Path::new("/.cloister/argv")));
        assert_eq!(t.nodes[Path::new("tmp")], Node::Dir(0o1777));
    }
}
