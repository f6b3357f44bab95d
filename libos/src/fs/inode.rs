//! In-memory inodes: regular files, directories, symbolic links,
//! character devices, FIFOs and socket nodes, each behind a lock, shared
//! as [`InodeRef`].
//!
//! Directories own their children (`BTreeMap<name, InodeRef>`) and keep a
//! weak link to their parent for `..`; an open file keeps its inode alive
//! after it is unlinked, as on Linux.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

use super::data::FileData;
pub use super::data::MAX_FILE_BYTES;
use super::device::CharDevice;
use super::space::Space;
use crate::error::{Errno, Result};
use crate::return_errno;

/// A shared reference to an inode.
pub type InodeRef = Arc<Inode>;

/// `S_IFMT` type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InodeType {
    /// `S_IFREG`
    Regular,
    /// `S_IFDIR`
    Directory,
    /// `S_IFLNK`
    Symlink,
    /// `S_IFCHR`
    CharDevice,
    /// `S_IFIFO`: a pipe.
    Fifo,
    /// `S_IFSOCK`
    Socket,
    /// No type bits: an anonymous inode (eventfd, epoll), as Linux reports.
    Anonymous,
}

impl InodeType {
    /// The `S_IFMT` bits of `st_mode`.
    pub const fn mode_bits(self) -> u32 {
        match self {
            Self::Regular => 0o100000,
            Self::Directory => 0o040000,
            Self::Symlink => 0o120000,
            Self::CharDevice => 0o020000,
            Self::Fifo => 0o010000,
            Self::Socket => 0o140000,
            Self::Anonymous => 0,
        }
    }

    /// The `d_type` of `getdents64` (`DT_REG`, `DT_DIR`, …).
    pub const fn dirent_type(self) -> u8 {
        match self {
            Self::Regular => 8,
            Self::Directory => 4,
            Self::Symlink => 10,
            Self::CharDevice => 2,
            Self::Fifo => 1,
            Self::Socket => 12,
            Self::Anonymous => 0,
        }
    }
}

/// A point in time, nanoseconds since the Unix epoch.
pub type TimeNs = u64;

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub file_type: InodeType,
    /// `st_mode`: type bits and permission bits.
    pub mode: u32,
    /// Link count (2 + subdirectories for a directory).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (target length for a symlink).
    pub size: u64,
    /// `(major, minor)` for a device.
    pub rdev: (u32, u32),
    /// Last access.
    pub atime_ns: TimeNs,
    /// Last content change.
    pub mtime_ns: TimeNs,
    /// Last status change.
    pub ctime_ns: TimeNs,
    /// Bytes of storage held (whole pages; less than `size` for a sparse
    /// file): `st_blocks` × 512.
    pub allocated_bytes: u64,
}

impl Metadata {
    /// What `fstat` reports for an object outside the file tree (a pipe,
    /// socket, eventfd or epoll instance): owned by root, one link, no
    /// size or times; `mode` is the permission bits (the type's are added).
    pub const fn unnamed(ino: u64, file_type: InodeType, mode: u32) -> Self {
        Self {
            ino,
            file_type,
            mode: file_type.mode_bits() | mode,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 0,
            rdev: (0, 0),
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            allocated_bytes: 0,
        }
    }

    /// 512-byte blocks, as `st_blocks` counts them: the whole 4 KiB pages
    /// the file holds, as tmpfs allocates them (holes hold none), so
    /// `ls -s`/`du`/`ls -l`'s total match Linux.
    pub const fn blocks_512(&self) -> u64 {
        self.allocated_bytes / 512
    }
}

/// A read-only file whose contents are generated on each read (`/proc`).
pub trait SyntheticFile: Send + Sync {
    /// The whole current contents.
    fn contents(&self) -> Vec<u8>;
}

pub(crate) enum Content {
    File(FileData),
    Synthetic(Arc<dyn SyntheticFile>),
    Dir {
        entries: BTreeMap<Vec<u8>, InodeRef>,
        parent: Weak<Inode>,
    },
    Symlink(Vec<u8>),
    Device(Arc<dyn CharDevice>),
    /// A named pipe: the queue every open of it shares.
    Fifo(Arc<crate::ipc::pipe::Pipe>),
    /// A socket node made by `mknod` (opening one gives `ENXIO`).
    Socket,
}

pub(crate) struct InodeData {
    pub(crate) perm: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) nlink: u32,
    pub(crate) atime_ns: TimeNs,
    pub(crate) mtime_ns: TimeNs,
    pub(crate) ctime_ns: TimeNs,
    pub(crate) content: Content,
    /// Extended attributes.
    pub(crate) xattrs: super::xattr::Xattrs,
    /// `flock` locks.
    pub(crate) flocks: super::flock::FlockState,
}

/// What an inode holds of the file system's [`Space`] besides its file
/// data: one inode, and the pages of a long symlink target. Returned when
/// the inode is dropped.
pub(crate) struct InodeCharge {
    pub(crate) space: Arc<Space>,
    pub(crate) pages: u64,
}

/// One file-system object.
pub struct Inode {
    ino: u64,
    file_type: InodeType,
    /// Whether `data` holds a regular file's pages (`Content::File`; fixed
    /// for the inode's life), so `read`/`write` can ask without the lock.
    pub(super) file_pages: bool,
    pub(crate) data: Mutex<InodeData>,
    charge: Option<InodeCharge>,
    /// The shared-memory object id `MAP_SHARED` mappings of the file key
    /// shared futexes by (given on first use).
    shared_object: spin::Once<u64>,
}

impl Drop for Inode {
    fn drop(&mut self) {
        if let Some(c) = &self.charge {
            c.space.uncharge_inode();
            c.space.uncharge_pages(c.pages);
        }
    }
}

impl core::fmt::Debug for Inode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Inode({}, {:?})", self.ino, self.file_type)
    }
}

impl Inode {
    pub(crate) fn new(
        ino: u64,
        perm: u32,
        content: Content,
        now: TimeNs,
        charge: Option<InodeCharge>,
    ) -> InodeRef {
        let (file_type, nlink) = match &content {
            Content::File(_) | Content::Synthetic(_) => (InodeType::Regular, 1),
            Content::Dir { .. } => (InodeType::Directory, 2),
            Content::Symlink(_) => (InodeType::Symlink, 1),
            Content::Device(_) => (InodeType::CharDevice, 1),
            Content::Fifo(_) => (InodeType::Fifo, 1),
            Content::Socket => (InodeType::Socket, 1),
        };
        let file_pages = matches!(content, Content::File(_));
        Arc::new(Self {
            ino,
            file_type,
            file_pages,
            data: Mutex::new(InodeData {
                perm: perm & 0o7777,
                uid: 0,
                gid: 0,
                nlink,
                atime_ns: now,
                mtime_ns: now,
                ctime_ns: now,
                content,
                xattrs: super::xattr::Xattrs::default(),
                flocks: super::flock::FlockState::default(),
            }),
            charge,
            shared_object: spin::Once::new(),
        })
    }

    /// The id of the file as a shared-memory object (the id space of
    /// [`crate::mm::SharedObject`]): shared futexes in `MAP_SHARED`
    /// mappings of the file are keyed by it and the file offset, so every
    /// process mapping the file reaches the same waiters.
    pub fn shared_object_id(&self) -> u64 {
        *self
            .shared_object
            .call_once(|| crate::mm::SharedObject::new().id)
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// File type.
    pub fn file_type(&self) -> InodeType {
        self.file_type
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type == InodeType::Directory
    }

    /// The `stat` view.
    pub fn metadata(&self) -> Metadata {
        let d = self.data.lock();
        let (size, rdev, allocated_bytes) = match &d.content {
            Content::File(data) => (data.len(), (0, 0), data.allocated_pages() * 4096),
            Content::Symlink(bytes) => {
                let len = bytes.len() as u64;
                (len, (0, 0), len.div_ceil(4096) * 4096)
            }
            // Like Linux's /proc files: size 0, read until end of file.
            Content::Synthetic(_) => (0, (0, 0), 0),
            Content::Dir { .. } => (4096, (0, 0), 4096),
            Content::Device(dev) => (0, dev.rdev(), 0),
            Content::Fifo(_) | Content::Socket => (0, (0, 0), 0),
        };
        Metadata {
            ino: self.ino,
            file_type: self.file_type,
            mode: self.file_type.mode_bits() | d.perm,
            nlink: d.nlink,
            uid: d.uid,
            gid: d.gid,
            size,
            rdev,
            atime_ns: d.atime_ns,
            mtime_ns: d.mtime_ns,
            ctime_ns: d.ctime_ns,
            allocated_bytes,
        }
    }

    /// `utimensat`: sets the access and/or modification time (`None`
    /// keeps it); the change time becomes `now`.
    pub fn set_times(&self, atime_ns: Option<TimeNs>, mtime_ns: Option<TimeNs>, now: TimeNs) {
        let mut d = self.data.lock();
        if let Some(t) = atime_ns {
            d.atime_ns = t;
        }
        if let Some(t) = mtime_ns {
            d.mtime_ns = t;
        }
        d.ctime_ns = now;
    }

    /// Sets owner, group and modification time (used when unpacking).
    pub fn set_owner_and_mtime(&self, uid: u32, gid: u32, mtime_ns: TimeNs) {
        let mut d = self.data.lock();
        d.uid = uid;
        d.gid = gid;
        d.mtime_ns = mtime_ns;
        d.ctime_ns = mtime_ns;
        d.atime_ns = mtime_ns;
    }

    /// `chown`: sets the owner and/or group (`None` keeps it); clears the
    /// set-user-ID and set-group-ID bits of a non-directory, as Linux does.
    pub fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, now: TimeNs) {
        let mut d = self.data.lock();
        if let Some(uid) = uid {
            d.uid = uid;
        }
        if let Some(gid) = gid {
            d.gid = gid;
        }
        if !matches!(d.content, Content::Dir { .. }) {
            d.perm &= !0o6000;
        }
        d.ctime_ns = now;
    }

    /// Changes the permission bits.
    pub fn set_permissions(&self, perm: u32, now: TimeNs) {
        let mut d = self.data.lock();
        d.perm = perm & 0o7777;
        d.ctime_ns = now;
    }

    /// The device behind a character-device inode.
    pub fn device(&self) -> Option<Arc<dyn CharDevice>> {
        match &self.data.lock().content {
            Content::Device(dev) => Some(dev.clone()),
            _ => None,
        }
    }

    /// The queue behind a FIFO inode.
    pub fn fifo(&self) -> Option<Arc<crate::ipc::pipe::Pipe>> {
        match &self.data.lock().content {
            Content::Fifo(pipe) => Some(pipe.clone()),
            _ => None,
        }
    }

    /// The frame a `MAP_SHARED` mapping maps for the page of a regular
    /// file holding `offset` (see
    /// [`FileData::shared_frame`](super::data::FileData::shared_frame):
    /// `ENXIO` past the end of the file); `ENODEV` for any other inode.
    pub fn shared_frame(
        &self,
        offset: u64,
        frames: &Arc<dyn crate::platform::PageFrames>,
    ) -> Result<u64> {
        match &mut self.data.lock().content {
            Content::File(data) => {
                data.shared_frame(offset / super::data::PAGE_BYTES as u64, frames)
            }
            _ => return_errno!(Errno::ENODEV),
        }
    }

    /// Reads file bytes at `offset` into `buf`; 0 at or past the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let d = self.data.lock();
        match &d.content {
            Content::File(data) => Ok(data.read_at(offset, buf)),
            Content::Synthetic(generator) => {
                let generator = generator.clone();
                drop(d);
                let bytes = generator.contents();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = (bytes.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                Ok(n)
            }
            Content::Dir { .. } => return_errno!(Errno::EISDIR),
            Content::Device(dev) => {
                let dev = dev.clone();
                drop(d);
                dev.read(buf)
            }
            Content::Symlink(_) | Content::Fifo(_) | Content::Socket => {
                return_errno!(Errno::EINVAL)
            }
        }
    }

    /// Writes `buf` at `offset` (a gap becomes a hole); returns the count
    /// written, short if the file system filled up part way.
    pub fn write_at(&self, offset: u64, buf: &[u8], now: TimeNs) -> Result<usize> {
        let mut d = self.data.lock();
        match &mut d.content {
            Content::File(data) => {
                let n = data.write_at(offset, buf)?;
                d.mtime_ns = now;
                d.ctime_ns = now;
                Ok(n)
            }
            Content::Synthetic(_) => return_errno!(Errno::EACCES),
            Content::Dir { .. } => return_errno!(Errno::EISDIR),
            Content::Device(dev) => {
                let dev = dev.clone();
                drop(d);
                dev.write(buf)
            }
            Content::Symlink(_) | Content::Fifo(_) | Content::Socket => {
                return_errno!(Errno::EINVAL)
            }
        }
    }

    /// `lseek`'s `SEEK_DATA` (`data`) or `SEEK_HOLE` from `offset` in a
    /// regular file (see [`FileData::seek_data_or_hole`]); `None` for any
    /// other kind of inode.
    pub fn seek_data_or_hole(&self, offset: u64, data: bool) -> Option<Result<u64>> {
        match &self.data.lock().content {
            Content::File(f) => Some(f.seek_data_or_hole(offset, data)),
            _ => None,
        }
    }

    /// Sets a regular file's length (growing leaves a hole).
    pub fn truncate(&self, len: u64, now: TimeNs) -> Result<()> {
        let mut d = self.data.lock();
        match &mut d.content {
            Content::File(data) => {
                data.truncate(len)?;
                d.mtime_ns = now;
                d.ctime_ns = now;
                Ok(())
            }
            Content::Dir { .. } => return_errno!(Errno::EISDIR),
            Content::Synthetic(_) => return_errno!(Errno::EACCES),
            _ => return_errno!(Errno::EINVAL),
        }
    }

    /// `fallocate` mode 0 or `FALLOC_FL_KEEP_SIZE` on a regular file (see
    /// [`FileData::allocate`](super::data::FileData::allocate)); `ENODEV`
    /// for anything else, as Linux for a file that is not regular.
    pub fn allocate(&self, offset: u64, len: u64, keep_size: bool, now: TimeNs) -> Result<()> {
        let mut d = self.data.lock();
        match &mut d.content {
            Content::File(data) => {
                data.allocate(offset, len, keep_size)?;
                d.ctime_ns = now;
                if !keep_size {
                    d.mtime_ns = now;
                }
                Ok(())
            }
            Content::Dir { .. } => return_errno!(Errno::EISDIR),
            _ => return_errno!(Errno::ENODEV),
        }
    }

    /// Runs `f` on the extended attributes, with whether the inode is a
    /// regular file or a directory (`user.` attributes live only there).
    /// Changing them moves `ctime`.
    pub fn with_xattrs<T>(
        &self,
        now: Option<TimeNs>,
        f: impl FnOnce(&mut super::xattr::Xattrs, bool) -> Result<T>,
    ) -> Result<T> {
        let regular_or_dir = matches!(self.file_type, InodeType::Regular | InodeType::Directory);
        let mut d = self.data.lock();
        let out = f(&mut d.xattrs, regular_or_dir)?;
        if let Some(now) = now {
            d.ctime_ns = now;
        }
        Ok(out)
    }

    /// `flock`: a shared or `exclusive` lock for `owner` (`EAGAIN` on a
    /// conflict), or with `exclusive` `None` its lock dropped.
    pub fn flock(&self, owner: super::flock::Owner, exclusive: Option<bool>) -> Result<()> {
        let mut d = self.data.lock();
        match exclusive {
            Some(exclusive) => d.flocks.lock(owner, exclusive),
            None => {
                d.flocks.unlock(owner);
                Ok(())
            }
        }
    }

    /// A symlink's target.
    pub fn read_link(&self) -> Result<Vec<u8>> {
        match &self.data.lock().content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => return_errno!(Errno::EINVAL),
        }
    }

    /// The child `name` of a directory.
    pub fn lookup(&self, name: &[u8]) -> Result<InodeRef> {
        match &self.data.lock().content {
            Content::Dir { entries, .. } => entries.get(name).cloned().ok_or(Errno::ENOENT.into()),
            _ => return_errno!(Errno::ENOTDIR),
        }
    }

    /// A directory's parent (itself for the root).
    pub fn parent(self: &Arc<Self>) -> Result<InodeRef> {
        match &self.data.lock().content {
            Content::Dir { parent, .. } => Ok(parent.upgrade().unwrap_or_else(|| self.clone())),
            _ => return_errno!(Errno::ENOTDIR),
        }
    }

    /// Visits the directory entries from position `pos` on — `.` is 0,
    /// `..` is 1, then the children in name order — as `(name, ino,
    /// type)` until `visit` returns `false`; returns how many it accepted.
    /// Nothing is copied: the directory stays locked while `visit` runs,
    /// so `visit` must not touch it.
    pub fn visit_dir(
        self: &Arc<Self>,
        pos: usize,
        mut visit: impl FnMut(&[u8], u64, InodeType) -> bool,
    ) -> Result<usize> {
        let parent = self.parent()?;
        let d = self.data.lock();
        let Content::Dir { entries, .. } = &d.content else {
            return_errno!(Errno::ENOTDIR);
        };
        let dots = [
            (&b"."[..], self.ino, InodeType::Directory),
            (&b".."[..], parent.ino, InodeType::Directory),
        ];
        let children = entries
            .iter()
            .map(|(n, i)| (n.as_slice(), i.ino, i.file_type));
        let mut taken = 0;
        for (name, ino, ty) in dots.into_iter().chain(children).skip(pos) {
            if !visit(name, ino, ty) {
                break;
            }
            taken += 1;
        }
        Ok(taken)
    }

    /// The name under which this directory holds the inode `ino`.
    pub(crate) fn name_of(&self, ino: u64) -> Result<Vec<u8>> {
        let d = self.data.lock();
        let Content::Dir { entries, .. } = &d.content else {
            return_errno!(Errno::ENOTDIR);
        };
        let name = entries
            .iter()
            .find(|(_, i)| i.ino == ino)
            .map(|(n, _)| n.as_slice())
            .ok_or(Errno::ENOENT)?;
        crate::fallible::copy_of(name)
    }

    /// Directory entries from position `pos` on, collected (see
    /// [`Inode::visit_dir`]).
    #[cfg(test)]
    pub fn read_dir(self: &Arc<Self>, pos: usize) -> Result<Vec<(Vec<u8>, u64, InodeType)>> {
        let mut out = Vec::new();
        self.visit_dir(pos, |n, i, t| {
            out.push((n.to_vec(), i, t));
            true
        })?;
        Ok(out)
    }

    /// Whether a directory has no children.
    pub fn is_empty_dir(&self) -> bool {
        matches!(&self.data.lock().content, Content::Dir { entries, .. } if entries.is_empty())
    }
}
