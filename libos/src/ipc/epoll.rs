//! `epoll` instances: an interest list of (fd, file, events, data) checked
//! against each file's [`FileLike::poll`] readiness.
//!
//! Level-triggered by default. `EPOLLET` reports a registration when its
//! readiness gains a bit it did not have at the previous check (programs
//! that follow the edge-triggered contract — read until `EAGAIN` — see
//! the same events as on Linux; new data arriving on a still-readable fd
//! is not reported again). `EPOLLONESHOT` disables a registration after one
//! report, until `EPOLL_CTL_MOD`. A registration ends when its file is
//! closed everywhere.
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
    /// The process's would-block epoch at the last report.
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
    /// `epoch` is the process's would-block count: Linux raises an edge
    /// on every new arrival or freed space, which the LibOS cannot see per
    /// file; instead, once the program has been told `EAGAIN` since a
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
        let mut ready_list: Vec<(u64, i32, u32)> = Vec::new();
        for (&fd, interest) in list.iter_mut() {
            let Some(file) = interest.file.upgrade() else {
                continue;
            };
            let ready = u32::from(file.poll().bits()) & ((interest.events & POLL_BITS) | ALWAYS);
            let edge = interest.events & EPOLLET != 0;
            // Bits that went away were seen going away: their return is an edge.
            interest.last_ready &= ready;
            // Without an epoch (an epoll fd polled itself) none has passed.
            let epoch = epoch.unwrap_or(interest.last_epoch);
            let previous = if interest.last_epoch == epoch {
                interest.last_ready
            } else {
                0
            };
            let reportable = ready != 0 && !interest.disabled && (!edge || ready & !previous != 0);
            if !reportable {
                if consume {
                    interest.last_ready = ready;
                    interest.last_epoch = epoch;
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
            ready_list.push((queued_at, fd, ready));
        }
        // Pass 2: the first `max` in list order.
        ready_list.sort_unstable();
        ready_list.truncate(max);
        ready_list
            .into_iter()
            .filter_map(|(_, fd, events)| {
                let data = list.get(&fd)?.data;
                Some(Ready { fd, events, data })
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

    #[test]
    fn edge_triggered_sees_falling_edges_while_looking_and_after_would_block() {
        let ep = Epoll::new();
        let (r, w) = new_pipe(0);
        let w: Arc<dyn FileLike> = w;
        ep.add(5, &w, 4 | EPOLLET, 50).unwrap(); // EPOLLOUT
        assert_eq!(ep.collect(8, true, Some(0)), [(4, 50)]);
        assert!(ep.collect(8, true, Some(0)).is_empty(), "no new edge");
        // Writability never dropped where epoll could see it, but the
        // program was told EAGAIN meanwhile (epoch 1): a new edge.
        assert_eq!(ep.collect(8, true, Some(1)), [(4, 50)]);
        assert!(ep.collect(8, true, Some(1)).is_empty());
        // Fill the pipe: a look while full records the fall, so room
        // coming back is an edge even in the same epoch.
        while w.write(&[0u8; 4096]).is_ok_and(|n| n > 0) {}
        assert!(ep.collect(8, false, Some(1)).is_empty());
        let mut buf = alloc::vec![0u8; 8192];
        r.read(&mut buf).unwrap();
        assert_eq!(ep.collect(8, true, Some(1)), [(4, 50)]);
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
