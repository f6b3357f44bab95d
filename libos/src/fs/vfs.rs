//! [`Vfs`]: the in-memory file system tree and its namespace operations
//! (create, mkdir, symlink, unlink, rmdir, rename). Path lookup is in
//! `path.rs`, unpacking the initramfs in `initramfs.rs`.
//!
//! Namespace changes are serialised by one lock; file contents are locked
//! per inode.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::data::FileData;
use super::device::{CharDevice, DeviceRegistry, NoDevice};
use super::inode::{Content, Inode, InodeCharge, InodeRef, SyntheticFile, TimeNs};
use super::space::Space;
use crate::error::{Errno, Result};
use crate::platform::Clock;
use crate::{return_errno, return_errno_with_message};

/// The file system.
pub struct Vfs {
    root: InodeRef,
    next_ino: AtomicU64,
    clock: Arc<dyn Clock>,
    devices: DeviceRegistry,
    namespace: Mutex<()>,
    /// The size limit all regular files share (tmpfs `size=`).
    space: Arc<Space>,
}

impl core::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vfs")
            .field("root", &self.root)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

fn check_new_name(name: &[u8]) -> Result<()> {
    match name {
        b"" => return_errno_with_message!(Errno::EEXIST, "the root exists"),
        b"." | b".." => return_errno!(Errno::EEXIST),
        _ => Ok(()),
    }
}

fn check_removable_name(name: &[u8]) -> Result<()> {
    match name {
        b"" => return_errno!(Errno::EBUSY),
        b"." => return_errno!(Errno::EINVAL),
        b".." => return_errno!(Errno::ENOTEMPTY),
        _ => Ok(()),
    }
}

impl Vfs {
    /// An empty file system (just `/`, mode 0755) with `/dev` holding every
    /// device in `devices`.
    pub fn new(clock: Arc<dyn Clock>, devices: DeviceRegistry) -> Self {
        let now = clock.realtime_ns();
        let root = Inode::new(
            1,
            0o755,
            Content::Dir {
                entries: BTreeMap::new(),
                parent: Weak::new(),
            },
            now,
            None,
        );
        let vfs = Self {
            root,
            next_ino: AtomicU64::new(2),
            clock,
            devices,
            namespace: Mutex::new(()),
            space: Arc::new(Space::default()),
        };
        // A fresh tree has no /dev yet, so these cannot fail.
        let root = vfs.root.clone();
        let dev = vfs.mkdir(&root, b"/dev", 0o755).ok();
        // Pseudo-terminals' slaves appear here (`super::pty`).
        let _ = vfs.mkdir(&root, b"/dev/pts", 0o755);
        if let Some(dev) = dev {
            for (name, device) in vfs.devices.iter() {
                let _ = vfs.insert(
                    &dev,
                    name.as_bytes(),
                    Content::Device(device.clone()),
                    0o666,
                );
            }
            // POSIX shared memory (`shm_open`, `sem_open`) lives in
            // /dev/shm: world-writable and sticky, as Linux mounts it.
            let _ = vfs.insert(
                &dev,
                b"shm",
                Content::Dir {
                    entries: BTreeMap::new(),
                    parent: Weak::new(),
                },
                0o1777,
            );
        }
        vfs
    }

    /// The root directory.
    pub fn root(&self) -> &InodeRef {
        &self.root
    }

    /// The current wall-clock time for timestamps.
    pub fn now(&self) -> TimeNs {
        self.clock.realtime_ns()
    }

    /// The file system's page and inode budgets: unlimited until
    /// [`Space::set_limits`]; `statfs` reports them.
    pub fn space(&self) -> &Arc<Space> {
        &self.space
    }

    /// An empty regular file's contents, charged to this file system.
    pub(crate) fn new_file_data(&self) -> Content {
        Content::File(FileData::new(self.space.clone()))
    }

    /// Charges the inode (and a long symlink target's page) `content`
    /// needs: `ENOSPC` when the file system has none left.
    fn charge_for(&self, content: &Content) -> Result<InodeCharge> {
        // tmpfs keeps targets shorter than 128 bytes in the inode and
        // gives longer ones a page.
        let pages = match content {
            Content::Symlink(target) if target.len() >= 128 => 1,
            _ => 0,
        };
        self.space.charge_inode()?;
        if let Err(e) = self.space.charge_pages(pages) {
            self.space.uncharge_inode();
            return Err(e);
        }
        Ok(InodeCharge {
            space: self.space.clone(),
            pages,
        })
    }

    /// A regular file in no directory (`memfd_create`): it lives while
    /// open and counts against the file system's limits like any file
    /// (`ENOSPC` when no inode is left).
    pub fn create_unlinked_file(&self, perm: u32) -> Result<InodeRef> {
        let content = self.new_file_data();
        let charge = self.charge_for(&content)?;
        let inode = Inode::new(
            self.next_ino.fetch_add(1, Ordering::Relaxed),
            perm,
            content,
            self.now(),
            Some(charge),
        );
        inode.data.lock().nlink = 0;
        Ok(inode)
    }

    /// The registered devices.
    pub fn devices(&self) -> &DeviceRegistry {
        &self.devices
    }

    /// Adds `content` as `dir/name`; `EEXIST` if the name is taken.
    pub(crate) fn insert(
        &self,
        dir: &InodeRef,
        name: &[u8],
        content: Content,
        perm: u32,
    ) -> Result<InodeRef> {
        check_new_name(name)?;
        let now = self.now();
        let is_dir = matches!(content, Content::Dir { .. });
        if dir.lookup(name).is_ok() {
            return_errno!(Errno::EEXIST);
        }
        let charge = self.charge_for(&content)?;
        // Dropped (and uncharged) if it cannot be linked in below.
        let inode = Inode::new(
            self.next_ino.fetch_add(1, Ordering::Relaxed),
            perm,
            content,
            now,
            Some(charge),
        );
        if is_dir && let Content::Dir { parent, .. } = &mut inode.data.lock().content {
            *parent = Arc::downgrade(dir);
        }
        let mut d = dir.data.lock();
        let Content::Dir { entries, .. } = &mut d.content else {
            return_errno!(Errno::ENOTDIR);
        };
        if entries.contains_key(name) {
            return_errno!(Errno::EEXIST);
        }
        entries.insert(name.to_vec(), inode.clone());
        if is_dir {
            d.nlink += 1;
        }
        d.mtime_ns = now;
        d.ctime_ns = now;
        Ok(inode)
    }

    /// Adds another name for the existing non-directory `inode`.
    pub(crate) fn insert_link(&self, dir: &InodeRef, name: &[u8], inode: &InodeRef) -> Result<()> {
        check_new_name(name)?;
        if inode.is_dir() {
            return_errno_with_message!(Errno::EPERM, "hard links to directories are not allowed");
        }
        let now = self.now();
        let mut d = dir.data.lock();
        let Content::Dir { entries, .. } = &mut d.content else {
            return_errno!(Errno::ENOTDIR);
        };
        if entries.contains_key(name) {
            return_errno!(Errno::EEXIST);
        }
        // tmpfs counts every extra link as an inode.
        self.space.charge_inode()?;
        entries.insert(name.to_vec(), inode.clone());
        d.mtime_ns = now;
        d.ctime_ns = now;
        drop(d);
        let mut i = inode.data.lock();
        i.nlink += 1;
        i.ctime_ns = now;
        Ok(())
    }

    /// `link`: makes `new` another name for `old` (followed if a symlink
    /// when `follow` is set). `EPERM` for a directory.
    pub fn link(
        &self,
        old_cwd: &InodeRef,
        old: &[u8],
        new_cwd: &InodeRef,
        new: &[u8],
        follow: bool,
    ) -> Result<()> {
        let _ns = self.namespace.lock();
        let target = self.resolve(old_cwd, old, follow)?;
        let (dir, name) = self.resolve_parent(new_cwd, new)?;
        if new.ends_with(b"/") {
            return_errno!(Errno::ENOENT);
        }
        self.insert_link(&dir, &name, &target)
    }

    /// Creates an empty regular file; `EEXIST` if `path` exists.
    pub fn create_file(&self, cwd: &InodeRef, path: &[u8], perm: u32) -> Result<InodeRef> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        if path.ends_with(b"/") {
            return_errno!(Errno::EISDIR);
        }
        self.insert(&dir, &name, self.new_file_data(), perm)
    }

    /// Creates a directory.
    pub fn mkdir(&self, cwd: &InodeRef, path: &[u8], perm: u32) -> Result<InodeRef> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        let content = Content::Dir {
            entries: BTreeMap::new(),
            parent: Weak::new(),
        };
        self.insert(&dir, &name, content, perm)
    }

    /// Creates a symbolic link at `path` pointing to `target`.
    pub fn symlink(&self, cwd: &InodeRef, target: &[u8], path: &[u8]) -> Result<InodeRef> {
        if target.is_empty() {
            return_errno!(Errno::ENOENT);
        }
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        self.insert(&dir, &name, Content::Symlink(target.to_vec()), 0o777)
    }

    /// Creates a device node bound to the registered device `rdev`, or
    /// to a [`NoDevice`] (opening it gives `ENXIO`) if none is registered.
    pub fn mknod_char(
        &self,
        cwd: &InodeRef,
        path: &[u8],
        perm: u32,
        rdev: (u32, u32),
    ) -> Result<InodeRef> {
        let device = self
            .devices
            .find(rdev)
            .unwrap_or_else(|| Arc::new(NoDevice::new(rdev)));
        self.mknod(cwd, path, perm, Content::Device(device))
    }

    /// Creates a node for `device` itself (a device made at run time,
    /// such as a pseudo-terminal's slave), not one found by number.
    pub fn mknod_device(
        &self,
        cwd: &InodeRef,
        path: &[u8],
        perm: u32,
        device: Arc<dyn CharDevice>,
    ) -> Result<InodeRef> {
        self.mknod(cwd, path, perm, Content::Device(device))
    }

    /// Creates a FIFO (a named pipe).
    pub fn mkfifo(&self, cwd: &InodeRef, path: &[u8], perm: u32) -> Result<InodeRef> {
        let pipe = crate::ipc::pipe::Pipe::new(0);
        self.mknod(cwd, path, perm, Content::Fifo(pipe))
    }

    /// Creates a socket node (what `mknod(S_IFSOCK)` makes; opening it
    /// gives `ENXIO`, connecting to it is refused).
    pub fn mksock(&self, cwd: &InodeRef, path: &[u8], perm: u32) -> Result<InodeRef> {
        self.mknod(cwd, path, perm, Content::Socket)
    }

    fn mknod(&self, cwd: &InodeRef, path: &[u8], perm: u32, content: Content) -> Result<InodeRef> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        if path.ends_with(b"/") {
            return_errno!(Errno::ENOENT);
        }
        self.insert(&dir, &name, content, perm)
    }

    /// Creates a read-only generated file (see [`SyntheticFile`]).
    pub fn add_synthetic(
        &self,
        cwd: &InodeRef,
        path: &[u8],
        perm: u32,
        generator: Arc<dyn SyntheticFile>,
    ) -> Result<InodeRef> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        self.insert(&dir, &name, Content::Synthetic(generator), perm)
    }

    /// Creates `path` and any missing parents as directories (mode 0555
    /// for new ones); succeeds if it already is a directory.
    pub fn mkdir_all(&self, path: &[u8], perm: u32) -> Result<InodeRef> {
        let mut dir = self.root.clone();
        for comp in super::components(path) {
            dir = match dir.lookup(comp) {
                Ok(d) if d.is_dir() => d,
                Ok(_) => return_errno!(Errno::ENOTDIR),
                Err(_) => {
                    let content = Content::Dir {
                        entries: BTreeMap::new(),
                        parent: Weak::new(),
                    };
                    let _ns = self.namespace.lock();
                    self.insert(&dir, comp, content, perm)?
                }
            };
        }
        Ok(dir)
    }

    /// Takes `name` out of `dir`. With `drops_name` (unlink, or a rename
    /// replacing the name) a non-directory keeping other links gives back
    /// the inode its extra link was charged; the last name's inode is
    /// given back when the inode itself goes.
    fn remove_entry(&self, dir: &InodeRef, name: &[u8], drops_name: bool) -> Result<InodeRef> {
        let now = self.now();
        let mut d = dir.data.lock();
        let Content::Dir { entries, .. } = &mut d.content else {
            return_errno!(Errno::ENOTDIR);
        };
        let removed = entries.remove(name).ok_or(Errno::ENOENT)?;
        if removed.is_dir() {
            d.nlink -= 1;
        }
        d.mtime_ns = now;
        d.ctime_ns = now;
        drop(d);
        let mut r = removed.data.lock();
        if drops_name && !removed.is_dir() && r.nlink > 1 {
            self.space.uncharge_inode();
        }
        r.nlink = if removed.is_dir() {
            0
        } else {
            r.nlink.saturating_sub(1)
        };
        r.ctime_ns = now;
        drop(r);
        Ok(removed)
    }

    /// Removes a non-directory (`EISDIR` for a directory).
    pub fn unlink(&self, cwd: &InodeRef, path: &[u8]) -> Result<()> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        check_removable_name(&name).map_err(|_| Errno::EISDIR)?;
        let target = dir.lookup(&name)?;
        if target.is_dir() {
            return_errno!(Errno::EISDIR);
        }
        if path.ends_with(b"/") {
            return_errno!(Errno::ENOTDIR);
        }
        self.remove_entry(&dir, &name, true).map(drop)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, cwd: &InodeRef, path: &[u8]) -> Result<()> {
        let _ns = self.namespace.lock();
        let (dir, name) = self.resolve_parent(cwd, path)?;
        check_removable_name(&name)?;
        let target = dir.lookup(&name)?;
        if !target.is_dir() {
            return_errno!(Errno::ENOTDIR);
        }
        if !target.is_empty_dir() {
            return_errno!(Errno::ENOTEMPTY);
        }
        self.remove_entry(&dir, &name, true).map(drop)
    }

    /// Moves `old` to `new`, replacing a compatible `new` (POSIX rules:
    /// `EISDIR`, `ENOTDIR`, `ENOTEMPTY`, `EINVAL` for a directory moved
    /// into itself).
    pub fn rename(
        &self,
        old_cwd: &InodeRef,
        old: &[u8],
        new_cwd: &InodeRef,
        new: &[u8],
    ) -> Result<()> {
        let _ns = self.namespace.lock();
        let (src_dir, src_name) = self.resolve_parent(old_cwd, old)?;
        let (dst_dir, dst_name) = self.resolve_parent(new_cwd, new)?;
        check_removable_name(&src_name).map_err(|_| Errno::EBUSY)?;
        check_removable_name(&dst_name).map_err(|_| Errno::EBUSY)?;
        let src = src_dir.lookup(&src_name)?;
        if !src.is_dir() && (old.ends_with(b"/") || new.ends_with(b"/")) {
            return_errno!(Errno::ENOTDIR);
        }
        match dst_dir.lookup(&dst_name) {
            Ok(dst) if Arc::ptr_eq(&dst, &src) => return Ok(()),
            Ok(dst) => match (src.is_dir(), dst.is_dir()) {
                (true, false) => return_errno!(Errno::ENOTDIR),
                (false, true) => return_errno!(Errno::EISDIR),
                (true, true) if !dst.is_empty_dir() => return_errno!(Errno::ENOTEMPTY),
                _ => {}
            },
            Err(e) if e.errno() == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        if src.is_dir() {
            // Refuse to move a directory below itself.
            let mut cur = dst_dir.clone();
            loop {
                if Arc::ptr_eq(&cur, &src) {
                    return_errno_with_message!(
                        Errno::EINVAL,
                        "cannot move a directory into itself"
                    );
                }
                let up = cur.parent()?;
                if Arc::ptr_eq(&up, &cur) {
                    break;
                }
                cur = up;
            }
        }
        if dst_dir.lookup(&dst_name).is_ok() {
            self.remove_entry(&dst_dir, &dst_name, true)?;
        }
        let moved = self.remove_entry(&src_dir, &src_name, false)?;
        let now = self.now();
        {
            let mut m = moved.data.lock();
            m.nlink = if moved.is_dir() {
                2 + subdir_count(&m.content)
            } else {
                m.nlink + 1
            };
            m.ctime_ns = now;
            if let Content::Dir { parent, .. } = &mut m.content {
                *parent = Arc::downgrade(&dst_dir);
            }
        }
        let mut d = dst_dir.data.lock();
        if let Content::Dir { entries, .. } = &mut d.content {
            entries.insert(dst_name, moved.clone());
        }
        if moved.is_dir() {
            d.nlink += 1;
        }
        d.mtime_ns = now;
        d.ctime_ns = now;
        Ok(())
    }
}

fn subdir_count(content: &Content) -> u32 {
    match content {
        Content::Dir { entries, .. } => entries.values().filter(|i| i.is_dir()).count() as u32,
        _ => 0,
    }
}
