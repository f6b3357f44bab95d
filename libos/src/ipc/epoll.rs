//! `epoll` instances: an interest list of (fd, file, events, data) checked
//! against each file's [`FileLike::poll`] readiness.
//!
//! Level-triggered by default. `EPOLLET` reports a ready registration
//! when its readiness gained a bit since its last report (a fall seen by
//! any check counts), or when its file had a new event since, as Linux
//! wakes an edge-triggered waiter on every event even on a file already
//! ready: each write into a pipe, each connection queued on a listener,
//! each segment or datagram arriving, room freed for a writer that found
//! the buffer full, a close or shutdown. Files count their events
//! ([`FileLike::event_seq`], [`super::events`]): pipes and FIFOs,
//! eventfds, Unix stream, TCP and UDP sockets. For files that keep no
//! count, readiness present after the program was told `EAGAIN` since the
//! last report counts as a new edge (the would-block epoch, an
//! approximation: a program that stops reading early is not told of new
//! data there). `EPOLLONESHOT` disables a registration after one report,
//! until `EPOLL_CTL_MOD`. A registration ends when its file is closed
//! everywhere.
//!
//! An epoll instance can watch another (it is readable while the inner one
//! has a ready registration). As Linux, adding one that would close a loop,
//! or make a chain deeper than [`MAX_NESTS`], is `ELOOP`; `EPOLLEXCLUSIVE`
//! takes only in/out/error/hang-up/edge bits, never on an epoll target, and
//! cannot be set or changed by `EPOLL_CTL_MOD` (`EINVAL`).
//!
//! Ready registrations come back in Linux's ready-list order: the order
//! their files became ready ([`FileLike::ready_stamp`], or when `epoll`
//! first saw them ready for files that cannot tell), not fd order. A
//! level-triggered registration that is reported goes to the back of the
//! list, and registrations left out for lack of room (`maxevents`) stay
//! at the front, so a small `maxevents` serves every ready fd in turn.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use spin::Mutex;

use super::next_anon_ino;
use crate::error::{Errno, Result};
use crate::fd::{FileLike, PollEvents};
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::fs::{InodeType, Metadata};
use crate::return_errno;

/// `EPOLLET`
pub const EPOLLET: u32 = 1 << 31;
/// `EPOLLONESHOT`
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLEXCLUSIVE`
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `EPOLLWAKEUP`
const EPOLLWAKEUP: u32 = 1 << 29;
/// The bits `EPOLLEXCLUSIVE` may come with (Linux `EPOLLEXCLUSIVE_OK_BITS`).
const EXCLUSIVE_OK: u32 = 0x001 | 0x004 | ALWAYS | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// How deep epoll instances may watch one another (Linux `EP_MAX_NESTS`).
pub const MAX_NESTS: usize = 4;
/// Event bits that are always reported: `EPOLLERR | EPOLLHUP`.
const ALWAYS: u32 = 0x008 | 0x010;
/// The readiness bits `poll` and `epoll` share.
const POLL_BITS: u32 = 0xffff;

#[derive(Debug)]
struct Interest {
    file: Weak<dyn FileLike>,
    events: u32,
    data: u64,
    disabled: bool,
    last_ready: u32,
    /// The file's event count ([`FileLike::event_seq`]) at the last
    /// report or the last check that found it not ready.
    last_seq: u64,
    /// The process's would-block epoch at the last report (for files
    /// without an event count).
    last_epoch: u64,
    /// Its place in the ready list (a [`super::ready_seq`] value); 0 while
    /// it is not on the list.
    queued_at: u64,
    /// When it last left the list (reported or found not ready): a file
    /// stamp older than this is readiness already accounted for.
    left_at: u64,
}

/// A ready registration [`Epoll::gather`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The fd it was registered under.
    pub fd: i32,
    /// The events to report.
    pub events: u32,
    /// The registration's `epoll_data`.
    pub data: u64,
    /// The file's event count when it was found ready.
    seq: Option<u64>,
}

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    interests: Mutex<BTreeMap<i32, Interest>>,
    ino: u64,
    /// `O_NONBLOCK` as `F_SETFL`/`FIONBIO` left it (`epoll_wait` ignores it).
    nonblock: core::sync::atomic::AtomicBool,
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

impl Epoll {
    /// An empty interest list.
    pub fn new() -> Self {
        Self {
            interests: Mutex::new(BTreeMap::new()),
            ino: next_anon_ino(),
            nonblock: core::sync::atomic::AtomicBool::new(false),
        }
    }

    fn check_target(&self, file: &Arc<dyn FileLike>, events: u32) -> Result<()> {
        let inner = file.as_any().downcast_ref::<Epoll>();
        if events & EPOLLEXCLUSIVE != 0 && (inner.is_some() || events & !EXCLUSIVE_OK != 0) {
            return_errno!(Errno::EINVAL);
        }
        if let Some(inner) = inner {
            if core::ptr::eq(inner, self) {
                return_errno!(Errno::EINVAL);
            }
            // The chain below `inner`, plus `inner` itself, plus `self`:
            // at most `MAX_NESTS + 1` instances (Linux's five).
            match inner.depth_without(self) {
                Some(depth) if depth < MAX_NESTS => {}
                _ => return_errno!(Errno::ELOOP),
            }
        }
        if file
            .inode()
            .is_some_and(|i| matches!(i.file_type(), InodeType::Regular | InodeType::Directory))
        {
            // Linux: regular files and directories do not support epoll.
            return_errno!(Errno::EPERM);
        }
        Ok(())
    }

    /// How many epoll instances deep the chains below `self` go (0: it
    /// watches none), or `None` if `avoid` is among them (a loop) or they
    /// go deeper than [`MAX_NESTS`]. Only inner instances are locked, one
    /// at a time, never `avoid`.
    fn depth_without(&self, avoid: &Epoll) -> Option<usize> {
        let inner: Vec<Arc<dyn FileLike>> = self
            .interests
            .lock()
            .values()
            .filter_map(|i| i.file.upgrade())
            .filter(|f| f.as_any().is::<Epoll>())
            .collect();
        let mut depth = 0;
        for file in inner {
            let Some(ep) = file.as_any().downcast_ref::<Epoll>() else {
                continue;
            };
            if core::ptr::eq(ep, avoid) {
                return None;
            }
            let below = ep.depth_without(avoid)? + 1;
            if below > MAX_NESTS {
                return None;
            }
            depth = depth.max(below);
        }
        Some(depth)
    }

    /// `EPOLL_CTL_ADD`
    pub fn add(&self, fd: i32, file: &Arc<dyn FileLike>, events: u32, data: u64) -> Result<()> {
        self.check_target(file, events)?;
        let mut list = self.interests.lock();
        if list.get(&fd).is_some_and(|i| i.file.strong_count() > 0) {
            return_errno!(Errno::EEXIST);
        }
        list.insert(
            fd,
            Interest {
                file: Arc::downgrade(file),
                events,
                data,
                disabled: false,
                last_ready: 0,
                last_seq: 0,
                last_epoch: 0,
                queued_at: 0,
                left_at: 0,
            },
        );
        Ok(())
    }

    /// `EPOLL_CTL_MOD`
    pub fn modify(&self, fd: i32, events: u32, data: u64) -> Result<()> {
        let mut list = self.interests.lock();
        if events & EPOLLEXCLUSIVE != 0 {
            return_errno!(Errno::EINVAL);
        }
        let interest = list.get_mut(&fd).ok_or(Errno::ENOENT)?;
        if interest.events & EPOLLEXCLUSIVE != 0 {
            return_errno!(Errno::EINVAL);
        }
        interest.events = events;
        interest.data = data;
        interest.disabled = false;
        interest.last_ready = 0;
        Ok(())
    }

    /// `EPOLL_CTL_DEL`
    pub fn delete(&self, fd: i32) -> Result<()> {
        match self.interests.lock().remove(&fd) {
            Some(_) => Ok(()),
            None => return_errno!(Errno::ENOENT),
        }
    }

    /// Collects up to `max` ready `(events, data)` pairs, applying
    /// edge-triggered and one-shot rules. Pass `consume = false` to only
    /// look (it records falling edges, reports nothing as consumed).
    ///
    /// An edge-triggered registration is reported when it is ready and
    /// its readiness gained a bit since the last report, or its file had
    /// an event since ([`FileLike::event_seq`]: each new arrival, freed
    /// space, close), as Linux.
    ///
    /// `epoch` is the process's would-block count, for files that keep no
    /// event count: once the program has been told `EAGAIN` since such a
    /// registration's last report, any readiness counts as a new edge
    /// (a program honouring the edge-triggered contract drains until
    /// `EAGAIN`, so it cannot miss data or space; it may see an extra
    /// event, which the contract allows).
    pub fn collect(&self, max: usize, consume: bool, epoch: Option<u64>) -> Vec<(u32, u64)> {
        let ready = self.gather(max, consume, epoch);
        if consume {
            self.report(&ready, epoch);
        }
        ready.iter().map(|r| (r.events, r.data)).collect()
    }

    /// The first `max` ready registrations, in ready-list order, without
    /// reporting them (what `collect` would return); with `consume`, the
    /// readiness seen is recorded. Pass what reached the program to
    /// [`Epoll::report`]: as Linux, events that could not be copied out
    /// (`EFAULT`) stay ready, an edge is not lost.
    pub fn gather(&self, max: usize, consume: bool, epoch: Option<u64>) -> Vec<Ready> {
        let mut list = self.interests.lock();
        list.retain(|_, i| i.file.strong_count() > 0);
        // Pass 1: readiness of every registration, and the ready list.
        let mut ready_list: Vec<(u64, i32, u32, Option<u64>)> = Vec::new();
        for (&fd, interest) in list.iter_mut() {
            let Some(file) = interest.file.upgrade() else {
                continue;
            };
            let edge = interest.events & EPOLLET != 0;
            // The count before the readiness: an event between the two is
            // seen again next time rather than lost.
            let seq = if edge {
                let wanted = PollEvents::from_bits_truncate((interest.events & POLL_BITS) as u16);
                file.event_seq(wanted)
            } else {
                None
            };
            let ready = u32::from(file.poll().bits()) & ((interest.events & POLL_BITS) | ALWAYS);
            // Bits that went away were seen going away: their return is an edge.
            interest.last_ready &= ready;
            // Without an epoch (an epoll fd polled itself) none has passed.
            let epoch = epoch.unwrap_or(interest.last_epoch);
            let unchanged = match seq {
                Some(seq) => interest.last_seq == seq,
                None => interest.last_epoch == epoch,
            };
            let previous = if unchanged { interest.last_ready } else { 0 };
            let reportable = ready != 0 && !interest.disabled && (!edge || ready & !previous != 0);
            if !reportable {
                if consume {
                    interest.last_ready = ready;
                    interest.last_epoch = epoch;
                    interest.last_seq = seq.unwrap_or(interest.last_seq);
                    if interest.queued_at != 0 {
                        interest.queued_at = 0;
                        interest.left_at = super::ready_seq();
                    }
                }
                continue;
            }
            let queued_at = if interest.queued_at != 0 {
                interest.queued_at
            } else {
                let stamp = file.ready_stamp();
                if stamp > interest.left_at {
                    stamp
                } else {
                    super::ready_seq()
                }
            };
            if consume {
                interest.queued_at = queued_at;
            }
            ready_list.push((queued_at, fd, ready, seq));
        }
        // Pass 2: the first `max` in list order.
        ready_list.sort_unstable();
        ready_list.truncate(max);
        ready_list
            .into_iter()
            .filter_map(|(_, fd, events, seq)| {
                let data = list.get(&fd)?.data;
                Some(Ready {
                    fd,
                    events,
                    data,
                    seq,
                })
            })
            .collect()
    }

    /// Records that `reported` (from [`Epoll::gather`]) reached the
    /// program: edge-triggered and one-shot rules apply from here on.
    pub fn report(&self, reported: &[Ready], epoch: Option<u64>) {
        let mut list = self.interests.lock();
        for r in reported {
            let Some(interest) = list.get_mut(&r.fd) else {
                continue;
            };
            interest.last_ready = r.events;
            interest.last_epoch = epoch.unwrap_or(interest.last_epoch);
            interest.last_seq = r.seq.unwrap_or(interest.last_seq);
            let level = interest.events & (EPOLLET | EPOLLONESHOT) == 0;
            if interest.events & EPOLLONESHOT != 0 {
                interest.disabled = true;
            }
            // Linux puts a reported level-triggered item back at the
            // tail; edge-triggered and one-shot ones leave the list.
            let now = super::ready_seq();
            interest.left_at = now;
            interest.queued_at = if level { now } else { 0 };
        }
    }
}

impl FileLike for Epoll {
    fn metadata(&self) -> Result<Metadata> {
        Ok(Metadata::unnamed(self.ino, InodeType::Anonymous, 0o600))
    }

    fn poll(&self) -> PollEvents {
        if self.collect(1, false, None).is_empty() {
            PollEvents::empty()
        } else {
            PollEvents::IN | PollEvents::RDNORM
        }
    }

    fn status_flags(&self) -> u32 {
        let nonblock = self.nonblock.load(core::sync::atomic::Ordering::Relaxed);
        O_RDWR | if nonblock { O_NONBLOCK } else { 0 }
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.nonblock.store(
            flags & O_NONBLOCK != 0,
            core::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::{EventFd, new_pipe};

    /// A file with settable readiness that keeps no event count (as a
    /// kind of file that cannot tell its events).
    #[derive(Debug, Default)]
    struct Gauge(core::sync::atomic::AtomicU16);

    impl Gauge {
        fn set(&self, bits: u16) {
            self.0.store(bits, core::sync::atomic::Ordering::Relaxed);
        }
    }

    impl FileLike for Gauge {
        fn metadata(&self) -> Result<Metadata> {
            Ok(Metadata::unnamed(1, InodeType::Anonymous, 0o600))
        }
        fn poll(&self) -> PollEvents {
            PollEvents::from_bits_truncate(self.0.load(core::sync::atomic::Ordering::Relaxed))
        }
        fn status_flags(&self) -> u32 {
            O_RDWR
        }
        fn set_status_flags(&self, _flags: u32) -> Result<()> {
            Ok(())
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn edge_triggered_sees_falling_edges_while_looking_and_after_would_block() {
        // A file without event counts: the would-block approximation.
        let ep = Epoll::new();
        let g = Arc::new(Gauge::default());
        g.set(4);
        let f: Arc<dyn FileLike> = g.clone();
        ep.add(5, &f, 4 | EPOLLET, 50).unwrap(); // EPOLLOUT
        assert_eq!(ep.collect(8, true, Some(0)), [(4, 50)]);
        assert!(ep.collect(8, true, Some(0)).is_empty(), "no new edge");
        // Writability never dropped where epoll could see it, but the
        // program was told EAGAIN meanwhile (epoch 1): a new edge.
        assert_eq!(ep.collect(8, true, Some(1)), [(4, 50)]);
        assert!(ep.collect(8, true, Some(1)).is_empty());
        // A look while not writable records the fall: writability coming
        // back is an edge even in the same epoch.
        g.set(0);
        assert!(ep.collect(8, false, Some(1)).is_empty());
        g.set(4);
        assert_eq!(ep.collect(8, true, Some(1)), [(4, 50)]);
        ep.delete(5).unwrap();
        // A pipe keeps event counts: EAGAIN elsewhere is no edge; room
        // coming back after the pipe was full is one.
        let (r, w) = new_pipe(0);
        let w: Arc<dyn FileLike> = w;
        ep.add(6, &w, 4 | EPOLLET, 60).unwrap();
        assert_eq!(ep.collect(8, true, Some(1)), [(4, 60)]);
        assert!(ep.collect(8, true, Some(2)).is_empty(), "EAGAIN elsewhere");
        while w.write(&[0u8; 4096]).is_ok_and(|n| n > 0) {}
        assert!(ep.collect(8, false, Some(2)).is_empty());
        let mut buf = alloc::vec![0u8; 8192];
        r.read(&mut buf).unwrap();
        assert_eq!(ep.collect(8, true, Some(2)), [(4, 60)]);
        assert!(ep.collect(8, true, Some(2)).is_empty());
    }

    #[test]
    fn edge_triggered_pipe_reports_every_write_and_nothing_else() {
        // As Linux: a second write into a pipe still unread is a new
        // event; a program that read only part is not told again until
        // more comes; room freed is no event for a read-only registration.
        let ep = Epoll::new();
        let (r, w) = new_pipe(0);
        let rf: Arc<dyn FileLike> = r.clone();
        ep.add(3, &rf, 1 | EPOLLET, 30).unwrap();
        assert!(ep.collect(8, true, Some(0)).is_empty());
        w.write(b"one").unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 30)]);
        assert!(ep.collect(8, true, Some(0)).is_empty());
        w.write(b"two").unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 30)], "second write");
        let mut buf = [0u8; 2];
        r.read(&mut buf).unwrap();
        assert!(ep.collect(8, true, Some(1)).is_empty(), "stopped early");
        // A look between the write and the wait does not use up the edge.
        w.write(b"three").unwrap();
        assert_eq!(ep.collect(8, false, Some(1)), [(1, 30)]);
        assert_eq!(ep.collect(8, true, Some(1)), [(1, 30)]);
        // The writer closing is an event (end of file, HUP).
        drop(w);
        assert_eq!(ep.collect(8, true, Some(1)), [(1 | 0x10, 30)]);
        assert!(ep.collect(8, true, Some(1)).is_empty());
        // Level-triggered is untouched: reported while readable.
        ep.modify(3, 1, 31).unwrap();
        assert_eq!(ep.collect(8, true, Some(1)), [(1 | 0x10, 31)]);
        assert_eq!(ep.collect(8, true, Some(1)), [(1 | 0x10, 31)]);
    }

    #[test]
    fn an_event_that_could_not_be_copied_out_stays_ready() {
        // `gather` without `report` (EFAULT): the edge is not used up.
        let ep = Epoll::new();
        let (r, w) = new_pipe(0);
        let r: Arc<dyn FileLike> = r;
        ep.add(3, &r, 1 | EPOLLET, 30).unwrap();
        w.write(b"x").unwrap();
        ep.collect(8, true, Some(0));
        w.write(b"y").unwrap();
        let ready = ep.gather(8, true, Some(0));
        assert_eq!(ready.len(), 1);
        assert_eq!(ep.gather(8, true, Some(0)), ready, "not reported yet");
        ep.report(&ready, Some(0));
        assert!(ep.gather(8, true, Some(0)).is_empty());
    }

    #[test]
    fn edge_triggered_eventfd_reports_every_write_and_every_read() {
        // Linux wakes readers on each write and writers on each read.
        let ep = Epoll::new();
        let e = Arc::new(EventFd::new(0, 0));
        let f: Arc<dyn FileLike> = e.clone();
        ep.add(4, &f, 1 | EPOLLET, 40).unwrap();
        let one = 1u64.to_le_bytes();
        e.write(&one).unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 40)]);
        assert!(ep.collect(8, true, Some(0)).is_empty());
        e.write(&one).unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 40)], "second write");
        e.write(&0u64.to_le_bytes()).unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 40)], "even of 0");
        // A writer's registration: a read is an event for it, a write not.
        ep.modify(4, 4 | EPOLLET, 41).unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(4, 41)]);
        e.write(&one).unwrap();
        assert!(ep.collect(8, true, Some(0)).is_empty());
        let mut b = [0u8; 8];
        e.read(&mut b).unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(4, 41)], "read");
        assert!(ep.collect(8, true, Some(5)).is_empty(), "EAGAIN elsewhere");
    }

    #[test]
    fn ready_files_come_back_in_the_order_they_became_ready() {
        // As Linux: fd 3 becomes readable after fd 9, so 9 comes first
        // (ascending fd order would put 3 first).
        let ep = Epoll::new();
        let (r3, w3) = new_pipe(0);
        let (r9, w9) = new_pipe(0);
        let (r3, r9): (Arc<dyn FileLike>, Arc<dyn FileLike>) = (r3, r9);
        ep.add(3, &r3, 1, 30).unwrap();
        ep.add(9, &r9, 1, 90).unwrap();
        assert!(ep.collect(8, true, Some(0)).is_empty());
        w9.write(b"b").unwrap();
        w3.write(b"a").unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 90), (1, 30)]);
        // Drained and filled again in the other order: the order follows.
        let mut buf = [0u8; 4];
        r3.read(&mut buf).unwrap();
        r9.read(&mut buf).unwrap();
        assert!(ep.collect(8, true, Some(0)).is_empty());
        w3.write(b"a").unwrap();
        w9.write(b"b").unwrap();
        assert_eq!(ep.collect(8, true, Some(0)), [(1, 30), (1, 90)]);
    }

    #[test]
    fn a_small_maxevents_serves_every_ready_fd_in_turn() {
        // Linux moves a reported level-triggered item to the back of the
        // ready list: with maxevents 1 and three always-ready fds, three
        // calls report three different fds, and the fourth the first again.
        let ep = Epoll::new();
        let mut keep = alloc::vec::Vec::new();
        for fd in [4, 5, 6] {
            let (r, w) = new_pipe(0);
            w.write(b"x").unwrap();
            let r: Arc<dyn FileLike> = r;
            ep.add(fd, &r, 1, fd as u64).unwrap();
            keep.push((r, w));
        }
        let turns: alloc::vec::Vec<u64> =
            (0..4).map(|_| ep.collect(1, true, Some(0))[0].1).collect();
        assert_eq!(turns, [4, 5, 6, 4]);
        // Looking (consume = false) changes nothing.
        assert_eq!(ep.collect(1, false, Some(0)), [(1, 5)]);
        assert_eq!(ep.collect(1, true, Some(0)), [(1, 5)]);
    }

    #[test]
    fn level_edge_and_oneshot() {
        let ep = Epoll::new();
        let (r, w) = new_pipe(0);
        let r: Arc<dyn FileLike> = r;
        let e: Arc<dyn FileLike> = Arc::new(EventFd::new(0, 0));
        ep.add(3, &r, 1, 30).unwrap();
        ep.add(4, &e, 1 | EPOLLET, 40).unwrap();
        assert_eq!(ep.add(3, &r, 1, 0).unwrap_err().errno(), Errno::EEXIST);
        assert!(ep.collect(8, true, None).is_empty());
        assert!(ep.poll().is_empty());
        w.write(b"x").unwrap();
        e.write(&1u64.to_le_bytes()).unwrap();
        assert!(ep.poll().contains(PollEvents::IN));
        assert_eq!(ep.collect(8, true, None), [(1, 30), (1, 40)]);
        // Level-triggered repeats; edge-triggered does not until re-armed.
        assert_eq!(ep.collect(8, true, None), [(1, 30)]);
        assert_eq!(ep.collect(1, true, None).len(), 1, "maxevents");
        let mut b = [0u8; 8];
        e.read(&mut b).unwrap();
        assert_eq!(ep.collect(8, true, None), [(1, 30)]);
        e.write(&1u64.to_le_bytes()).unwrap();
        assert_eq!(ep.collect(8, true, None), [(1, 30), (1, 40)], "new edge");
        // One-shot.
        ep.modify(3, 1 | EPOLLONESHOT, 31).unwrap();
        assert_eq!(ep.collect(8, true, None)[0], (1, 31));
        assert!(ep.collect(8, true, None).is_empty());
        ep.modify(3, 1, 32).unwrap();
        assert_eq!(ep.collect(8, true, None)[0], (1, 32));
        // Closing the file ends the registration; HUP is always reported.
        ep.delete(4).unwrap();
        assert_eq!(ep.delete(4).unwrap_err().errno(), Errno::ENOENT);
        drop(w);
        assert_eq!(ep.collect(8, true, None), [(1 | 0x10, 32)]);
        drop(r);
        assert!(ep.collect(8, true, None).is_empty());
        assert_eq!(ep.modify(3, 1, 0).unwrap_err().errno(), Errno::ENOENT);
    }

    #[test]
    fn an_epoll_watches_another_and_loops_are_refused() {
        // stress-ng's epoll stressor: efd watches efd2, efd2 watching efd
        // would be a loop (ELOOP), efd watching itself is EINVAL.
        let (outer, inner) = (Arc::new(Epoll::new()), Arc::new(Epoll::new()));
        let (o, i): (Arc<dyn FileLike>, Arc<dyn FileLike>) = (outer.clone(), inner.clone());
        outer.add(4, &i, 1 | EPOLLET, 4).unwrap();
        assert_eq!(inner.add(3, &o, 1, 3).unwrap_err().errno(), Errno::ELOOP);
        assert_eq!(outer.add(3, &o, 1, 3).unwrap_err().errno(), Errno::EINVAL);
        // The outer one is readable once the inner one has a ready fd.
        let (r, w) = new_pipe(0);
        let r: Arc<dyn FileLike> = r;
        inner.add(5, &r, 1, 5).unwrap();
        assert!(outer.collect(8, true, None).is_empty());
        w.write(b"x").unwrap();
        assert_eq!(outer.collect(8, true, None), [(1, 4)]);
        assert_eq!(inner.collect(8, true, None), [(1, 5)]);
        outer.delete(4).unwrap();
        inner.add(3, &o, 1, 3).unwrap();
    }

    #[test]
    fn chains_deeper_than_max_nests_are_refused() {
        let eps: Vec<Arc<Epoll>> = (0..=MAX_NESTS + 1)
            .map(|_| Arc::new(Epoll::new()))
            .collect();
        // eps[k] watches eps[k + 1], built from the bottom up.
        let mut refused = None;
        for k in (0..eps.len() - 1).rev() {
            let below: Arc<dyn FileLike> = eps[k + 1].clone();
            if let Err(e) = eps[k].add(1, &below, 1, 0) {
                assert_eq!(e.errno(), Errno::ELOOP);
                refused = Some(k);
                break;
            }
        }
        // Five instances in a chain are allowed (four links), six are not.
        assert_eq!(refused, Some(eps.len() - 1 - MAX_NESTS - 1));
    }

    #[test]
    fn epollexclusive_follows_linux_rules() {
        let ep = Epoll::new();
        let (r, _w) = new_pipe(0);
        let r: Arc<dyn FileLike> = r;
        let other: Arc<dyn FileLike> = Arc::new(Epoll::new());
        let einval = |res: Result<()>| assert_eq!(res.unwrap_err().errno(), Errno::EINVAL);
        einval(ep.add(3, &r, 1 | EPOLLEXCLUSIVE | EPOLLONESHOT, 0));
        einval(ep.add(4, &other, 1 | EPOLLEXCLUSIVE, 0));
        ep.add(3, &r, 1 | EPOLLET | EPOLLEXCLUSIVE, 0).unwrap();
        einval(ep.modify(3, 1, 0));
        ep.delete(3).unwrap();
        ep.add(3, &r, 1, 0).unwrap();
        einval(ep.modify(3, 1 | EPOLLEXCLUSIVE, 0));
        ep.modify(3, 4, 0).unwrap();
    }
}
