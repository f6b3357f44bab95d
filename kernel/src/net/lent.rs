//! The ownership words of the slots the virtio-net driver lends
//! ([`super::virtio`], native backend): which received frame is held, lent
//! to a reader or consumed and waiting to be posted again ([`RxHeld`]),
//! and the transmit slot set aside for the next frame written in place
//! ([`TxSpare`]). They are atomics outside the device lock, so that lending
//! a slot costs no lock round trip of its own: a received frame takes one
//! lock (to take it off the used ring; posting it again rides on the next
//! one), a sent frame one (to hand it to the device and set the next slot
//! aside), as when frames were copied.
//!
//! Who may touch a slot follows from the word: a receive slot is read only
//! while its frame is `Lent` (by the one caller whose compare-exchange
//! made it so), copied out only by the caller whose compare-exchange took
//! it from `Held` to `Empty`, and posted again only from `Done`, under the
//! lock; a spare transmit slot belongs to whoever swapped it out.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A received frame in a slot the device has given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    /// The receive slot.
    pub slot: u16,
    /// The virtio-net header's length: where the frame starts.
    pub header: u16,
    /// The frame's length; `header + len` fits the slot (checked before a
    /// frame is held).
    pub len: u16,
}

/// Where the held frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RxState {
    /// No frame held.
    Empty,
    /// Held, nobody reading it.
    Held(Held),
    /// A caller reads it, without the lock.
    Lent(Held),
    /// Consumed in place; its slot is posted again under the next lock.
    Done(Held),
}

const EMPTY: u64 = 0;
const TAG_HELD: u64 = 1;
const TAG_LENT: u64 = 2;
const TAG_DONE: u64 = 3;

fn pack(tag: u64, h: Held) -> u64 {
    tag << 48 | u64::from(h.slot) << 32 | u64::from(h.header) << 16 | u64::from(h.len)
}

fn unpack(word: u64) -> RxState {
    let h = Held {
        slot: (word >> 32) as u16,
        header: (word >> 16) as u16,
        len: word as u16,
    };
    match word >> 48 {
        TAG_HELD => RxState::Held(h),
        TAG_LENT => RxState::Lent(h),
        TAG_DONE => RxState::Done(h),
        _ => RxState::Empty,
    }
}

/// The held received frame's state (see the module docs).
#[derive(Debug, Default)]
pub(super) struct RxHeld(AtomicU64);

impl RxHeld {
    /// The state now.
    pub fn get(&self) -> RxState {
        unpack(self.0.load(Ordering::Acquire))
    }

    /// Holds `h` (under the device lock, from `Empty`).
    pub fn hold(&self, h: Held) {
        self.0.store(pack(TAG_HELD, h), Ordering::Release);
    }

    /// Takes the consumed frame's slot back to post it (under the device
    /// lock): the state becomes `Empty`.
    pub fn take_done(&self) -> Option<Held> {
        match self.get() {
            RxState::Done(h) => {
                // Only the lock holder moves a `Done` frame on.
                self.0.store(EMPTY, Ordering::Release);
                Some(h)
            }
            _ => None,
        }
    }

    /// Takes the held frame `h` to copy it out and post it (under the device
    /// lock); `false` if it is lent meanwhile.
    pub fn take_held(&self, h: Held) -> bool {
        self.0
            .compare_exchange(
                pack(TAG_HELD, h),
                EMPTY,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Lends the held frame to the caller: `Err(state)` if none is held or
    /// it is lent already.
    pub fn lend(&self) -> Result<Held, RxState> {
        let word = self.0.load(Ordering::Acquire);
        let RxState::Held(h) = unpack(word) else {
            return Err(unpack(word));
        };
        self.0
            .compare_exchange(word, pack(TAG_LENT, h), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| h)
            .map_err(unpack)
    }

    /// Ends the loan of `h`: held again, or consumed.
    pub fn give_back(&self, h: Held, consumed: bool) {
        let tag = if consumed { TAG_DONE } else { TAG_HELD };
        self.0.store(pack(tag, h), Ordering::Release);
    }
}

const NO_SPARE: u32 = u32::MAX;

/// A free transmit slot set aside, its virtio-net header written.
#[derive(Debug)]
pub(super) struct TxSpare(AtomicU32);

impl Default for TxSpare {
    fn default() -> Self {
        Self(AtomicU32::new(NO_SPARE))
    }
}

impl TxSpare {
    /// Takes the spare slot and its header's length, if there is one.
    pub fn take(&self) -> Option<(u16, u16)> {
        let word = self.0.swap(NO_SPARE, Ordering::AcqRel);
        (word != NO_SPARE).then_some(((word >> 16) as u16, word as u16))
    }

    /// Sets `slot` aside; `false` (nothing changed) if one is set aside
    /// already.
    pub fn offer(&self, slot: u16, header: u16) -> bool {
        let word = u32::from(slot) << 16 | u32::from(header);
        self.0
            .compare_exchange(NO_SPARE, word, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether a slot is set aside.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire) != NO_SPARE
    }
}
