//! The in-memory file system.
//!
//! - [`inode`]: [`Inode`] (regular file, directory, symlink, character
//!   device) with its [`Metadata`] for `stat`, shared as [`InodeRef`].
//! - [`vfs`]: [`Vfs`], the tree and its namespace operations.
//! - `path.rs`: path resolution on [`Vfs`] (`.`/`..`, symlinks → `ELOOP`
//!   after 40, `ENAMETOOLONG`, trailing slashes).
//! - [`data`]: a regular file's contents in sparse 4 KiB pages;
//!   [`space`]: the file system's page and inode limits ([`Space`]);
//!   [`direct`]: `read`/`write` between those pages and user memory with
//!   no buffer in between, and the lock order that keeps it from
//!   deadlocking with the fault path.
//! - [`initramfs`]: unpacking a cpio archive into the tree.
//! - [`xattr`]: an inode's extended attributes; [`flock`]: its `flock`
//!   locks.
//! - [`procfs`]: the `/proc` and `/sys` files glibc and programs read.
//! - [`device`]: `/dev/null`, `/dev/zero`, `/dev/urandom`, `/dev/console`
//!   and the [`ConsoleSink`] the kernel provides.
//!
//! The syscall layer (`crate::syscall::fs`) drives it through open file
//! descriptions in `crate::fd`.

pub mod data;
pub mod device;
pub mod direct;
pub mod file;
pub mod flock;
pub mod initramfs;
pub mod inode;
pub mod locks;
mod path;
pub mod procfs;
pub mod procpid;
pub mod pty;
pub mod space;
pub mod stdio;
pub mod vfs;
pub mod xattr;

pub use device::{CharDevice, ConsoleSink, DeviceRegistry};
pub use file::InodeFile;
pub use initramfs::UnpackReport;
pub use inode::{Inode, InodeRef, InodeType, Metadata, SyntheticFile, TimeNs};
pub use path::{MAX_SYMLINK_FOLLOWS, NAME_MAX, PATH_MAX, components};
pub use space::{FsLimits, Space};
pub use vfs::Vfs;

#[cfg(test)]
mod tests;
