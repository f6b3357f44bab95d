//! Per-file event counters for edge-triggered `epoll`
//! ([`FileLike::event_seq`](crate::fd::FileLike::event_seq)).
//!
//! Linux wakes an `EPOLLET` registration on every event on its file's
//! wait queue — each write into a pipe, each connection queued on a
//! listener, each read that frees room for a blocked writer — even when
//! the file was already ready. A file here counts those events in an
//! [`EventCounts`]: one atomic increment per event, no allocation. The
//! counts are split as Linux keys its wake-ups: events for readers
//! (`EPOLLIN`) and events for writers (`EPOLLOUT`); a close or shutdown
//! wakes both. `epoll` compares the count a registration's interest sees
//! with the one at its last report.
//!
//! Neighbours: [`super::epoll`] reads the counts; pipes, eventfds and
//! sockets (`crate::net`) keep them.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::fd::PollEvents;

/// Whether a registration for `interest` is woken by events for readers.
pub fn wants_input(interest: PollEvents) -> bool {
    interest.intersects(PollEvents::IN | PollEvents::PRI | PollEvents::RDNORM)
}

/// Whether a registration for `interest` is woken by events for writers.
pub fn wants_output(interest: PollEvents) -> bool {
    interest.intersects(PollEvents::OUT | PollEvents::WRNORM)
}

/// Counts of the events a file had, for readers and for writers; both
/// only grow.
#[derive(Debug, Default)]
pub struct EventCounts {
    input: AtomicU64,
    output: AtomicU64,
}

impl EventCounts {
    /// No events yet.
    pub const fn new() -> Self {
        Self {
            input: AtomicU64::new(0),
            output: AtomicU64::new(0),
        }
    }

    /// Something came for readers (data, a connection, an end of file).
    pub fn input(&self) {
        self.input.fetch_add(1, Ordering::Relaxed);
    }

    /// Room came back for writers.
    pub fn output(&self) {
        self.output.fetch_add(1, Ordering::Relaxed);
    }

    /// A change every waiter hears of (a close, a shutdown).
    pub fn all(&self) {
        self.input();
        self.output();
    }

    /// Adds `input` and `output` events at once (what a file folds in
    /// from a part it lets go, so its counts never go back).
    pub fn add(&self, input: u64, output: u64) {
        self.input.fetch_add(input, Ordering::Relaxed);
        self.output.fetch_add(output, Ordering::Relaxed);
    }

    /// Events for readers so far.
    pub fn input_count(&self) -> u64 {
        self.input.load(Ordering::Relaxed)
    }

    /// Events for writers so far.
    pub fn output_count(&self) -> u64 {
        self.output.load(Ordering::Relaxed)
    }

    /// The events a registration for `interest` is woken by, so far.
    pub fn seq(&self, interest: PollEvents) -> u64 {
        let input = if wants_input(interest) {
            self.input_count()
        } else {
            0
        };
        let output = if wants_output(interest) {
            self.output_count()
        } else {
            0
        };
        input.wrapping_add(output)
    }
}

/// Room for writers in a buffer the program cannot watch drain (a socket
/// whose send queue the network stack empties): as Linux's
/// `SOCK_NOSPACE`, a write that found the buffer full arms it, and the
/// first look that finds room again counts one event for writers.
#[derive(Debug, Default)]
pub struct SpaceWait {
    armed: AtomicBool,
    freed: AtomicU64,
}

impl SpaceWait {
    /// Nothing waiting.
    pub const fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            freed: AtomicU64::new(0),
        }
    }

    /// A write found the buffer full (or filled it).
    pub fn full(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }

    /// The times room came back after [`SpaceWait::full`], given whether
    /// there is room now.
    pub fn seq(&self, writable: bool) -> u64 {
        if writable && self.armed.swap(false, Ordering::Relaxed) {
            self.freed.fetch_add(1, Ordering::Relaxed);
        }
        self.freed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_sees_the_events_its_interest_is_woken_by() {
        let c = EventCounts::new();
        let (r, w, rw) = (
            PollEvents::IN,
            PollEvents::OUT,
            PollEvents::IN | PollEvents::OUT,
        );
        c.input();
        assert_eq!((c.seq(r), c.seq(w), c.seq(rw)), (1, 0, 1));
        c.output();
        assert_eq!((c.seq(r), c.seq(w), c.seq(rw)), (1, 1, 2));
        c.all();
        assert_eq!((c.seq(r), c.seq(w), c.seq(rw)), (2, 2, 4));
        assert_eq!(c.seq(PollEvents::HUP), 0, "no input or output interest");
        c.add(3, 0);
        assert_eq!(c.seq(PollEvents::RDNORM), 5);
    }

    #[test]
    fn room_counts_once_after_a_full_buffer() {
        let s = SpaceWait::new();
        assert_eq!(s.seq(true), 0, "never full: no event");
        s.full();
        assert_eq!(s.seq(false), 0, "still full");
        assert_eq!(s.seq(true), 1);
        assert_eq!(s.seq(true), 1, "once");
        s.full();
        assert_eq!(s.seq(true), 2);
    }
}
