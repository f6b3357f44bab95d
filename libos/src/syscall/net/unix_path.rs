//! `AF_UNIX` path names as files: `bind` creates a socket file at the
//! path (`EADDRINUSE` if anything is there), `connect` resolves the path
//! (`ENOENT` if nothing is, `ECONNREFUSED` if it is not a socket or
//! nothing listens on it) — as Linux's `unix_bind`/`unix_find_bsd`. The
//! socket's name table is keyed by the file's inode, so `unlink` frees the
//! name and a renamed socket file is still found.

use crate::error::{Errno, Result};
use crate::fs::InodeType;
use crate::net::UnixSocket;
use crate::net::addr::{SockAddr, UnixName};
use crate::net::unix::NameKey;
use crate::process::Process;
use crate::return_errno;

/// The Unix socket and path of a `bind`/`connect` that names a path; `None`
/// for every other socket or address (the socket's own `bind`/`connect`).
fn path_of<'a>(
    sock: &'a dyn core::any::Any,
    addr: &'a SockAddr,
) -> Option<(&'a UnixSocket, &'a [u8])> {
    match (sock.downcast_ref::<UnixSocket>(), addr) {
        (Some(u), SockAddr::Unix(UnixName::Path(path))) => Some((u, path)),
        _ => None,
    }
}

/// `bind` of a path name: `Some(result)` when it was one.
pub(super) fn bind(p: &Process, sock: &dyn core::any::Any, addr: &SockAddr) -> Option<Result<()>> {
    let (unix, path) = path_of(sock, addr)?;
    Some((|| {
        if unix.is_bound() {
            return_errno!(Errno::EINVAL);
        }
        let cwd = p.cwd();
        let node = match p.vfs.mksock(&cwd, path, 0o777 & !p.umask()) {
            Err(e) if e.errno() == Errno::EEXIST => return_errno!(Errno::EADDRINUSE),
            other => other?,
        };
        let name = UnixName::Path(path.to_vec());
        unix.bind_key(name, NameKey::Node(node.ino()))
            .inspect_err(|_| {
                // Another thread bound the socket meanwhile: the file goes.
                let _ = p.vfs.unlink(&cwd, path);
            })
    })())
}

/// `connect` to a path name: `Some(result)` when it was one.
pub(super) fn connect(
    p: &Process,
    sock: &dyn core::any::Any,
    addr: &SockAddr,
) -> Option<Result<()>> {
    let (unix, path) = path_of(sock, addr)?;
    Some((|| {
        let node = p.vfs.resolve(&p.cwd(), path, true)?;
        if node.file_type() != InodeType::Socket {
            return_errno!(Errno::ECONNREFUSED);
        }
        unix.connect_key(&UnixName::Path(path.to_vec()), &NameKey::Node(node.ino()))
    })())
}
