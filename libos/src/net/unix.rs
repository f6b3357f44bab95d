//! [`UnixSocket`]: `AF_UNIX` `SOCK_STREAM` sockets in memory, each
//! direction a pipe (`crate::ipc::pipe`): `socketpair`, and
//! `bind`/`listen`/`connect`/`accept` on names kept in the stack's
//! table of Unix names ([`UnixNames`]). A path name is a socket file: the
//! syscall layer creates it at `bind` (`EADDRINUSE` if the path exists)
//! and resolves it at `connect`, and the table is keyed by that file's
//! inode ([`NameKey::Node`]) — so the name can be `stat`ed, `unlink`ing
//! it frees it for another `bind`, and a listener whose file is gone
//! cannot be reached. Abstract names are keys of their own; binding the
//! empty name picks a free abstract one (`\0` and five hex digits, unix(7)
//! "Autobind").
//!
//! Writes of at most `PIPE_BUF` bytes are atomic, as on a pipe; closing
//! or `shutdown(SHUT_WR)` gives the peer end of file, and writing to a
//! peer that has gone gives `EPIPE`.
//!
//! For edge-triggered `epoll` ([`FileLike::event_seq`]) a listener counts
//! each connection queued, a connection the events of its two pipes (each
//! arrival of data, room freed for a writer, the peer closing or shutting
//! down) and its own shutdowns.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use super::addr::{AF_UNIX, SockAddr, UnixName};
use super::rights::{Files, Rights};
use super::socket::{
    CommonOptions, Received, SOCK_STREAM, SOL_SOCKET, Shutdown, Socket, merge_nonblock,
    socket_ioctl, socket_metadata,
};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::Metadata;
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::ipc::events::{EventCounts, wants_input};
use crate::ipc::{PIPE_CAPACITY, PipeEnd, new_pipe, next_anon_ino};
use crate::return_errno;

/// Connections waiting for `accept` on a listening Unix socket.
#[derive(Debug)]
pub struct UnixBacklog {
    pending: Mutex<VecDeque<UnixSocket>>,
    backlog: usize,
    name: UnixName,
    key: NameKey,
    /// One input event per connection queued.
    events: EventCounts,
}

/// What a bound name is found by in [`UnixNames`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameKey {
    /// A path: the socket file's inode number.
    Node(u64),
    /// A name in the abstract namespace.
    Abstract(Vec<u8>),
}

/// Bound Unix names → their listener's queue.
#[derive(Debug, Default)]
pub struct UnixNames {
    names: Mutex<BTreeMap<NameKey, Weak<UnixBacklog>>>,
}

/// Autobind names: five hex digits, as Linux.
const AUTOBIND_NAMES: u32 = 1 << 20;

/// The read and write ends of a connection (`None` once shut down), with
/// the files in flight each way (read side, write side).
type Ends = (
    Option<Arc<PipeEnd>>,
    Option<Arc<PipeEnd>>,
    (Arc<Rights>, Arc<Rights>),
);

/// One direction of a connection: its pipe and its files in flight.
type Direction = (Arc<PipeEnd>, Arc<PipeEnd>, Arc<Rights>);

/// A new direction.
fn direction() -> Direction {
    let (r, w) = new_pipe(0);
    (r, w, Arc::new(Rights::new()))
}

#[derive(Debug)]
enum Phase {
    /// Not listening: unbound, or bound to a name with its key.
    Idle(UnixName, Option<NameKey>),
    Listening(Arc<UnixBacklog>),
    Connected {
        rx: Option<Arc<PipeEnd>>,
        tx: Option<Arc<PipeEnd>>,
        /// Files in flight to us, and from us.
        rights: (Arc<Rights>, Arc<Rights>),
        local: UnixName,
        peer: UnixName,
        /// The name this socket bound before connecting, released with it.
        bound: Option<NameKey>,
    },
}

/// An `AF_UNIX` stream socket.
#[derive(Debug)]
pub struct UnixSocket {
    names: Arc<UnixNames>,
    phase: Mutex<Phase>,
    flags: AtomicU32,
    ino: u64,
    common: Mutex<CommonOptions>,
    /// Its own shutdowns, and the events of pipe ends it let go (so the
    /// count never goes back).
    events: EventCounts,
}

impl UnixSocket {
    /// A new unbound socket whose names live in `names`.
    pub fn new(names: Arc<UnixNames>, flags: u32) -> Self {
        Self::with_phase(names, flags, Phase::Idle(UnixName::Unnamed, None))
    }

    fn with_phase(names: Arc<UnixNames>, flags: u32, phase: Phase) -> Self {
        Self {
            names,
            phase: Mutex::new(phase),
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: next_anon_ino(),
            common: Mutex::new(CommonOptions::new((PIPE_CAPACITY, PIPE_CAPACITY))),
            events: EventCounts::new(),
        }
    }

    /// A connected socket reading direction `inbound` and writing
    /// `outbound`.
    fn connected(
        names: &Arc<UnixNames>,
        flags: u32,
        inbound: &Direction,
        outbound: &Direction,
        local: UnixName,
        peer: UnixName,
    ) -> Self {
        Self::with_phase(
            names.clone(),
            flags,
            Phase::Connected {
                rx: Some(inbound.0.clone()),
                tx: Some(outbound.1.clone()),
                rights: (inbound.2.clone(), outbound.2.clone()),
                local,
                peer,
                bound: None,
            },
        )
    }

    /// Two connected sockets (`socketpair`).
    pub fn pair(names: &Arc<UnixNames>, flags: u32) -> (Self, Self) {
        let (a, b) = (direction(), direction());
        (
            Self::connected(names, flags, &a, &b, UnixName::Unnamed, UnixName::Unnamed),
            Self::connected(names, flags, &b, &a, UnixName::Unnamed, UnixName::Unnamed),
        )
    }

    /// Whether the socket has a name (another `bind` is `EINVAL`).
    pub fn is_bound(&self) -> bool {
        !matches!(&*self.phase.lock(), Phase::Idle(UnixName::Unnamed, _))
    }

    /// Binds `name`, found by `key` (`EINVAL` if already bound,
    /// `EADDRINUSE` if the key is taken).
    pub fn bind_key(&self, name: UnixName, key: NameKey) -> Result<()> {
        let mut phase = self.phase.lock();
        if !matches!(&*phase, Phase::Idle(UnixName::Unnamed, _)) {
            return_errno!(Errno::EINVAL);
        }
        let mut names = self.names.names.lock();
        if names.contains_key(&key) {
            return_errno!(Errno::EADDRINUSE);
        }
        // Reserved until `listen` puts the queue in.
        names.insert(key.clone(), Weak::new());
        *phase = Phase::Idle(name, Some(key));
        Ok(())
    }

    /// Binds a free abstract name (`bind` of the empty name).
    fn autobind(&self) -> Result<()> {
        let start = self.ino as u32 % AUTOBIND_NAMES;
        for i in 0..AUTOBIND_NAMES {
            let n = alloc::format!("{:05x}", (start + i) % AUTOBIND_NAMES).into_bytes();
            match self.bind_key(UnixName::Abstract(n.clone()), NameKey::Abstract(n)) {
                Err(e) if e.errno() == Errno::EADDRINUSE => continue,
                other => return other,
            }
        }
        return_errno!(Errno::ENOSPC)
    }

    /// Connects to the listener `key` finds, whose name is `name`
    /// (`ECONNREFUSED` when nothing listens there).
    pub fn connect_key(&self, name: &UnixName, key: &NameKey) -> Result<()> {
        let mut phase = self.phase.lock();
        let (local, bound) = match &*phase {
            Phase::Idle(n, key) => (n.clone(), key.clone()),
            _ => return_errno!(Errno::EISCONN),
        };
        let queue = match self.names.names.lock().get(key) {
            None => return_errno!(Errno::ECONNREFUSED),
            Some(w) => w.upgrade().ok_or(Errno::ECONNREFUSED)?,
        };
        let mut pending = queue.pending.lock();
        if pending.len() >= queue.backlog {
            return_errno!(Errno::EAGAIN);
        }
        // `to_us` is read here and written by the accepted socket.
        let (to_us, to_them) = (direction(), direction());
        pending.push_back(Self::connected(
            &self.names,
            0,
            &to_them,
            &to_us,
            name.clone(),
            local.clone(),
        ));
        drop(pending);
        queue.events.input();
        *phase = Phase::Connected {
            rx: Some(to_us.0),
            tx: Some(to_them.1),
            rights: (to_us.2, to_them.2),
            local,
            peer: name.clone(),
            bound,
        };
        Ok(())
    }

    fn ends(&self) -> Result<Ends> {
        match &*self.phase.lock() {
            Phase::Connected { rx, tx, rights, .. } => Ok((rx.clone(), tx.clone(), rights.clone())),
            _ => return_errno!(Errno::ENOTCONN),
        }
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let key = match &*self.phase.lock() {
            Phase::Listening(b) => Some(b.key.clone()),
            Phase::Idle(_, key) | Phase::Connected { bound: key, .. } => key.clone(),
        };
        if let Some(key) = key {
            self.names.names.lock().remove(&key);
        }
    }
}

impl Socket for UnixSocket {
    /// Abstract names and autobind; a path needs the file system, which
    /// the syscall layer has (`sys_bind` calls [`UnixSocket::bind_key`]).
    fn bind(&self, addr: &SockAddr) -> Result<()> {
        match addr {
            SockAddr::Unix(UnixName::Unnamed) => self.autobind(),
            SockAddr::Unix(name @ UnixName::Abstract(n)) => {
                self.bind_key(name.clone(), NameKey::Abstract(n.clone()))
            }
            _ => return_errno!(Errno::EINVAL),
        }
    }

    fn listen(&self, backlog: usize) -> Result<()> {
        let mut phase = self.phase.lock();
        let (name, key) = match &*phase {
            Phase::Listening(_) => return Ok(()),
            Phase::Idle(name, Some(key)) => (name.clone(), key.clone()),
            Phase::Idle(_, None) | Phase::Connected { .. } => return_errno!(Errno::EINVAL),
        };
        let queue = Arc::new(UnixBacklog {
            pending: Mutex::new(VecDeque::new()),
            backlog: backlog.clamp(1, 4096),
            name,
            key: key.clone(),
            events: EventCounts::new(),
        });
        self.names.names.lock().insert(key, Arc::downgrade(&queue));
        *phase = Phase::Listening(queue);
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, SockAddr)> {
        let Phase::Listening(queue) = &*self.phase.lock() else {
            return_errno!(Errno::EINVAL);
        };
        let Some(sock) = queue.pending.lock().pop_front() else {
            return_errno!(Errno::EAGAIN);
        };
        merge_nonblock(&sock.flags, if nonblock { O_NONBLOCK } else { 0 });
        Ok((Arc::new(sock), SockAddr::Unix(UnixName::Unnamed)))
    }

    /// Abstract names; a path is resolved by the syscall layer
    /// (`sys_connect` calls [`UnixSocket::connect_key`]).
    fn connect(&self, addr: &SockAddr) -> Result<()> {
        match addr {
            SockAddr::Unix(name @ UnixName::Abstract(n)) => {
                self.connect_key(name, &NameKey::Abstract(n.clone()))
            }
            SockAddr::Unix(UnixName::Unnamed) => return_errno!(Errno::EINVAL),
            SockAddr::Unix(UnixName::Path(_)) => return_errno!(Errno::ENOENT),
            _ => return_errno!(Errno::EINVAL),
        }
    }

    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize> {
        if to.is_some() {
            return_errno!(Errno::EISCONN);
        }
        self.send_files(buf, Vec::new())
    }

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received> {
        // Files that came with the bytes are dropped (closed), as Linux
        // does for a read without room for them.
        self.recv_files(buf, peek).map(|(r, _)| r)
    }

    fn send_files(&self, buf: &[u8], files: Files) -> Result<usize> {
        let (_, tx, (_, out)) = self.ends()?;
        match tx {
            Some(tx) => out.send(files, || tx.write(buf)),
            None => return_errno!(Errno::EPIPE),
        }
    }

    fn recv_files(&self, buf: &mut [u8], peek: bool) -> Result<(Received, Files)> {
        let (rx, _, (inbound, _)) = self.ends()?;
        if peek {
            // The bytes stay; files in flight are not passed by a peek
            // (Linux would pass duplicates).
            let len = match rx {
                Some(rx) => rx.peek(buf)?,
                None => 0,
            };
            let received = Received {
                len,
                full_len: len,
                from: None,
                ancillary: Default::default(),
            };
            return Ok((received, Vec::new()));
        }
        let (len, files) = match rx {
            Some(rx) => inbound.recv(buf.len(), |n| rx.read(&mut buf[..n]))?,
            None => (0, Vec::new()),
        };
        Ok((
            Received {
                len,
                full_len: len,
                from: None,
                ancillary: Default::default(),
            },
            files,
        ))
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        match &mut *self.phase.lock() {
            Phase::Connected { rx, tx, .. } => {
                let both = PollEvents::IN | PollEvents::OUT;
                if how.read
                    && let Some(rx) = rx.take()
                {
                    self.events.add(rx.event_seq(both).unwrap_or(0), 0);
                }
                if how.write
                    && let Some(tx) = tx.take()
                {
                    self.events.add(0, tx.event_seq(both).unwrap_or(0));
                }
                // Linux wakes every waiter of a socket shut down.
                self.events.all();
                Ok(())
            }
            _ => return_errno!(Errno::ENOTCONN),
        }
    }

    fn local_addr(&self) -> Result<SockAddr> {
        Ok(SockAddr::Unix(match &*self.phase.lock() {
            Phase::Idle(n, _) | Phase::Connected { local: n, .. } => n.clone(),
            Phase::Listening(q) => q.name.clone(),
        }))
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        match &*self.phase.lock() {
            Phase::Connected { peer, .. } => Ok(SockAddr::Unix(peer.clone())),
            _ => return_errno!(Errno::ENOTCONN),
        }
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        match level {
            SOL_SOCKET => self.common.lock().set(name, value),
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>> {
        match level {
            // Buffers are the pipes' fixed capacity whatever was asked.
            SOL_SOCKET => {
                let mut c = *self.common.lock();
                c.buffers = (PIPE_CAPACITY, PIPE_CAPACITY);
                c.get(name, (AF_UNIX, SOCK_STREAM, 0))
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }
}

impl FileLike for UnixSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv(buf, false).map(|r| r.len)
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.send(buf, None)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(socket_metadata(self.ino))
    }

    fn poll(&self) -> PollEvents {
        let (rx, tx) = match &*self.phase.lock() {
            Phase::Connected { rx, tx, .. } => (rx.clone(), tx.clone()),
            Phase::Listening(q) => {
                return if q.pending.lock().is_empty() {
                    PollEvents::empty()
                } else {
                    PollEvents::IN | PollEvents::RDNORM
                };
            }
            Phase::Idle(..) => return PollEvents::OUT | PollEvents::HUP,
        };
        let r = rx.map_or(PollEvents::HUP, |rx| rx.poll());
        let w = tx.map_or(PollEvents::ERR, |tx| tx.poll());
        let mut ev = PollEvents::empty();
        if r.intersects(PollEvents::IN | PollEvents::HUP) {
            ev |= PollEvents::IN | PollEvents::RDNORM;
        }
        if w.intersects(PollEvents::OUT | PollEvents::ERR) {
            ev |= PollEvents::OUT | PollEvents::WRNORM;
        }
        if r.contains(PollEvents::HUP) && w.contains(PollEvents::ERR) {
            ev |= PollEvents::HUP;
        }
        ev
    }

    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        let part = |end: &Option<Arc<PipeEnd>>| {
            end.as_ref()
                .and_then(|e| e.event_seq(interest))
                .unwrap_or(0)
        };
        let theirs = match &*self.phase.lock() {
            Phase::Listening(q) if wants_input(interest) => q.events.input_count(),
            Phase::Connected { rx, tx, .. } => part(rx).wrapping_add(part(tx)),
            Phase::Listening(_) | Phase::Idle(..) => 0,
        };
        Some(self.events.seq(interest).wrapping_add(theirs))
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        socket_ioctl(&self.flags, cmd, arg, || 0)
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        merge_nonblock(&self.flags, flags);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_socket(&self) -> Option<&dyn Socket> {
        Some(self)
    }

    fn fasync(&self) -> Option<Arc<crate::fasync::AsyncOwner>> {
        match &*self.phase.lock() {
            Phase::Connected { rx: Some(rx), .. } => rx.reader_async(),
            _ => None,
        }
    }
}
