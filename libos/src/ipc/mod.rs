//! Inter-process (here: inter-thread) communication objects that fds can
//! name: [`pipe`], [`eventfd`] and [`epoll`] instances, and the [`events`]
//! counters edge-triggered `epoll` reads. Each is a [`FileLike`](crate::fd::FileLike)
//! whose `read`/`write` never block — they fail with `EAGAIN` — and whose
//! `poll` reports readiness; the syscall layer turns `EAGAIN` on a
//! blocking fd into a wait through [`Blocker`](crate::platform::Blocker).
//! Sockets will follow the same pattern.

pub mod epoll;
pub mod eventfd;
pub mod events;
pub mod pipe;

pub use epoll::Epoll;
pub use eventfd::EventFd;
pub use events::{EventCounts, SpaceWait};
pub use pipe::{PIPE_BUF, PIPE_CAPACITY, PipeEnd, new_pipe};

use core::sync::atomic::{AtomicU64, Ordering};

/// Inode numbers for anonymous objects (pipes, eventfds), counting down
/// from the top so they never collide with VFS inodes.
pub(crate) fn next_anon_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX / 2);
    NEXT.fetch_sub(1, Ordering::Relaxed)
}

/// The readiness clock: a value that grows with every event that can make
/// a file ready (a received segment, a write into an empty pipe) and every
/// `epoll` report. [`FileLike::ready_stamp`](crate::fd::FileLike::ready_stamp)
/// values come from it, so `epoll` can put ready files in the order they
/// became ready, as Linux's ready list does.
pub fn ready_seq() -> u64 {
    READY_SEQ.fetch_add(1, Ordering::Relaxed)
}

static READY_SEQ: AtomicU64 = AtomicU64::new(1);
