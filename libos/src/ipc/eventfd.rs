//! `eventfd`: a 64-bit counter that `write` adds to and `read` drains
//! (or decrements by one, in semaphore mode). As Linux, every write is an
//! event for readers and every read one for writers (edge-triggered
//! `epoll` reports each).

use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use super::events::EventCounts;
use super::next_anon_ino;
use crate::error::{Errno, Result};
use crate::fd::{FileLike, PollEvents};
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::fs::{InodeType, Metadata};
use crate::return_errno;

/// `EFD_SEMAPHORE`
pub const EFD_SEMAPHORE: u32 = 1;
/// The counter's ceiling (`u64::MAX - 1`).
const MAX_COUNT: u64 = u64::MAX - 1;

/// An eventfd object.
#[derive(Debug)]
pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    flags: AtomicU32,
    ino: u64,
    events: EventCounts,
}

impl EventFd {
    /// A counter starting at `initial`; `flags` may hold `EFD_SEMAPHORE`
    /// and `EFD_NONBLOCK` (= `O_NONBLOCK`).
    pub fn new(initial: u32, flags: u32) -> Self {
        Self {
            count: Mutex::new(u64::from(initial)),
            semaphore: flags & EFD_SEMAPHORE != 0,
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: next_anon_ino(),
            events: EventCounts::new(),
        }
    }
}

impl FileLike for EventFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.len() < 8 {
            return_errno!(Errno::EINVAL);
        }
        let mut count = self.count.lock();
        if *count == 0 {
            return_errno!(Errno::EAGAIN);
        }
        let value = if self.semaphore { 1 } else { *count };
        *count -= value;
        drop(count);
        self.events.output();
        buf[..8].copy_from_slice(&value.to_le_bytes());
        Ok(8)
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        let Some(bytes) = buf.get(..8) else {
            return_errno!(Errno::EINVAL);
        };
        let mut v = [0u8; 8];
        v.copy_from_slice(bytes);
        let value = u64::from_le_bytes(v);
        if value == u64::MAX {
            return_errno!(Errno::EINVAL);
        }
        let mut count = self.count.lock();
        match count.checked_add(value) {
            Some(sum) if sum <= MAX_COUNT => {
                *count = sum;
                drop(count);
                // Even a write of 0: Linux wakes readers on every write.
                self.events.input();
                Ok(8)
            }
            _ => return_errno!(Errno::EAGAIN),
        }
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(Metadata::unnamed(self.ino, InodeType::Anonymous, 0o600))
    }

    fn poll(&self) -> PollEvents {
        let count = *self.count.lock();
        let mut ev = PollEvents::empty();
        if count > 0 {
            ev |= PollEvents::IN | PollEvents::RDNORM;
        }
        if count < MAX_COUNT {
            ev |= PollEvents::OUT | PollEvents::WRNORM;
        }
        ev
    }

    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        Some(self.events.seq(interest))
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags
            .store(O_RDWR | (flags & O_NONBLOCK), Ordering::Relaxed);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_semaphore() {
        let e = EventFd::new(0, 0);
        let mut buf = [0u8; 8];
        assert_eq!(e.read(&mut buf).unwrap_err().errno(), Errno::EAGAIN);
        assert_eq!(e.poll(), PollEvents::OUT | PollEvents::WRNORM);
        e.write(&3u64.to_le_bytes()).unwrap();
        e.write(&4u64.to_le_bytes()).unwrap();
        assert!(e.poll().contains(PollEvents::IN));
        assert_eq!(e.read(&mut buf).unwrap(), 8);
        assert_eq!(u64::from_le_bytes(buf), 7);
        assert_eq!(e.read(&mut [0u8; 4]).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(
            e.write(&u64::MAX.to_le_bytes()).unwrap_err().errno(),
            Errno::EINVAL
        );
        e.write(&(u64::MAX - 1).to_le_bytes()).unwrap();
        assert!(!e.poll().contains(PollEvents::OUT));
        assert_eq!(
            e.write(&1u64.to_le_bytes()).unwrap_err().errno(),
            Errno::EAGAIN
        );

        let s = EventFd::new(2, EFD_SEMAPHORE);
        assert_eq!(s.read(&mut buf).unwrap(), 8);
        assert_eq!(u64::from_le_bytes(buf), 1);
        s.read(&mut buf).unwrap();
        assert_eq!(s.read(&mut buf).unwrap_err().errno(), Errno::EAGAIN);
        assert_eq!(s.metadata().unwrap().mode, 0o600);
    }
}
