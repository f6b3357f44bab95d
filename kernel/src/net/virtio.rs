//! [`VirtioNet`]: the virtio-net driver behind [`NetDevice`], over
//! `virtio-drivers`' [`VirtIONetRaw`] (which owns the virtqueues) with the
//! packet buffers managed here.
//!
//! Buffers (`super::slots`): fixed 2 KiB slots (virtio-net header + one
//! 1514-byte frame), [`QUEUE_SIZE`] to receive and [`SMALL_TX`] to send,
//! plus, when the device cuts long TCP frames into segments (segmentation
//! offload, `libos::net::offload`: QEMU offers it on a TAP network), an
//! arena that frames of up to [`LONG_FRAME`] bytes take their own length
//! of ([`LongFrames`], [`LONG_FRAMES`] at once); one descriptor per frame,
//! so a free slot always has a free descriptor. They are allocated once
//! through the HAL ([`KernelHal`]'s `dma_alloc`) from the shared DMA
//! pool, so sending and receiving never touch the heap, no slot is
//! bounced (the HAL shares a pool buffer in place), and nothing the
//! device touches lies outside the pool. Every receive slot is posted to
//! the device at start.
//!
//! Offloads: the driver accepts the device's TCP checksum and
//! segmentation offloads when offered (`super::doorbell`, unless
//! `net.offload=off`) and tells the LibOS ([`NetDevice::offloads`]); each
//! frame's virtio-net header then carries what the LibOS says the device
//! must finish in it. A long frame weighs on the held doorbell as the
//! segments it becomes, and the doorbell rings at once when no long frame
//! can be taken, so that the device gives room back.
//!
//! A received frame is copied out of its slot into the caller's private
//! buffer once ([`NetDevice::receive`]) and the slot posted again at once:
//! from the copy on, only private memory is parsed (no double fetch). A
//! frame to send crosses in one of two ways, by what the platform says of
//! shared memory ([`PlatformKind::protects_private_memory`]):
//!
//! - natively (no memory encryption: the host can write all guest memory,
//!   so a slot is no weaker than private memory) the driver *lends* its
//!   transmit slots: [`NetDevice::transmit_with`] takes a free one, lets
//!   smoltcp write the frame after the virtio-net header, and hands it to
//!   the device (the LibOS does so for frames longer than its copybreak,
//!   256 bytes; shorter ones cost less copied);
//! - on SEV-SNP and TDX the slots are shared with an untrusted host, so
//!   `transmit_with` answers `EOPNOTSUPP` and [`NetDevice::transmit`]
//!   copies a frame into a free slot (smoltcp reads back header fields of
//!   the frame it writes, which the host could rewrite there).
//!
//! A received frame's length comes from the used ring, which the host
//! writes, and is bounds-checked against the slot before any slice of it
//! is made. With no free transmit slot, sending answers `EAGAIN` (the
//! caller retries after a while — the device finishes sends on its own),
//! after first reclaiming the slots of finished sends.
//!
//! The transport under `virtio-drivers` is a [`Doorbell`]: the transmit
//! queue's notification is held back until [`VirtioNet::ring`] (see
//! `super::doorbell`), unless `net.doorbell=each`.
//!
//! Locking: one spin lock around the device, always taken with interrupts
//! off (the device interrupt handler, [`VirtioNet::handle_interrupt`],
//! takes it too). smoltcp's closures are never called with it held: it
//! may send while it parses a received frame. A lent transmit slot is
//! off the free list while the lock is released, so nothing else touches
//! it meanwhile; the next frame's slot is set aside while the lock is held
//! for a send ([`super::lent::TxSpare`]), so a frame written in place
//! costs one lock round trip, as a copied one does.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libos::error::{Errno, Result};
use libos::net::NetDevice;
use libos::net::offload::{Offloads, TxOffload};
use spin::Mutex;
use virtio_drivers::device::net::VirtIONetRaw;
use x86_64::instructions::interrupts::without_interrupts;

use super::doorbell::{Bell, Doorbell};
use super::hal::KernelHal;
use super::lent::TxSpare;
use super::slots::{
    FreeList, HEADER_ROOM, LONG_FRAME, LONG_FRAMES, LongFrames, NO_SLOT, SLOT_BYTES, Slots,
};
use super::transport::CardTransport;
use crate::platform::PlatformKind;

/// Descriptors per virtqueue, and so slots per queue.
pub const QUEUE_SIZE: usize = 128;
/// Small transmit slots; the transmit slot numbers from here on are long
/// frames' ([`LongFrames`]).
pub const SMALL_TX: usize = QUEUE_SIZE - LONG_FRAMES;
/// Bytes of the virtio-net header's fields that say what the device
/// finishes ([`TxOffload::virtio_header`]); the whole header is 10 or 12.
const OFFLOAD_HEADER: usize = 10;
/// The largest Ethernet frame handled: 1500-byte MTU + 14-byte header.
pub const MAX_FRAME: usize = 1514;

type Raw = VirtIONetRaw<KernelHal, Doorbell, QUEUE_SIZE>;

/// Frame counters, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Frames handed to the device.
    pub tx_frames: AtomicU64,
    /// `transmit` calls refused with `EAGAIN`.
    pub tx_queue_full: AtomicU64,
    /// Frames taken from the device.
    pub rx_frames: AtomicU64,
    /// Received frames dropped (too long for the caller's buffer).
    pub rx_dropped: AtomicU64,
    /// Receive bursts that took [`QUEUE_SIZE`] frames in a row without the
    /// ring running empty: every slot was filled at least once during the
    /// burst, so the device may have had none free and dropped frames (an
    /// upper bound: virtio-net reports no drops itself).
    pub rx_ring_full: AtomicU64,
    /// Device interrupts handled.
    pub interrupts: AtomicU64,
    /// Of [`Self::tx_frames`], those written in place into their slot.
    pub tx_in_place: AtomicU64,
}

/// The state behind the lock.
struct Inner {
    raw: Raw,
    /// The small transmit slots, numbered from 0.
    tx: Slots,
    /// Long frames, numbered from [`SMALL_TX`], with segmentation offload.
    long: Option<LongFrames>,
    rx: Slots,
    /// Small transmit slots not in the device's hands.
    tx_free: FreeList<SMALL_TX>,
    /// Bytes in use in each transmit slot (what was passed to the device).
    tx_len: [u16; QUEUE_SIZE],
    /// The slot of each in-flight token (a token is a descriptor index).
    tx_slot_of: [u16; QUEUE_SIZE],
    rx_slot_of: [u16; QUEUE_SIZE],
    /// Frames taken since the receive ring was last found empty.
    rx_burst: usize,
}

// SAFETY: `Inner` is only reached through `VirtioNet`'s mutex on one CPU;
// the raw pointers inside the transport and pools point at device registers
// and DMA memory owned by this driver, not tied to any thread.
unsafe impl Send for Inner {}

/// A virtio-net device.
pub struct VirtioNet {
    inner: Mutex<Inner>,
    mac: [u8; 6],
    stats: NetStats,
    /// Whether transmit slots are lent to the caller (see the module
    /// docs).
    lends: AtomicBool,
    /// A transmit slot set aside for the next frame written in place.
    tx_spare: TxSpare,
    /// Address of transmit slot 0 (the spare slot is reached without the
    /// lock).
    tx_base: u64,
    /// What the device finishes in frames sent.
    offloads: Offloads,
    /// The transmit queue's notification, held back until [`Self::ring`].
    bell: Arc<Bell>,
}

impl core::fmt::Debug for VirtioNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtioNet")
            .field("mac", &self.mac)
            .field("stats", &self.stats)
            .field("lends", &self.lends)
            .field("holds", &self.bell.holds())
            .finish_non_exhaustive()
    }
}

/// Why the device could not be brought up.
#[derive(Debug)]
pub enum InitError {
    /// The transport or the virtqueues failed.
    Virtio(virtio_drivers::Error),
    /// The shared DMA pool has no room for the packet slots.
    OutOfMemory,
}

impl From<virtio_drivers::Error> for InitError {
    fn from(e: virtio_drivers::Error) -> Self {
        Self::Virtio(e)
    }
}

impl VirtioNet {
    /// Brings the device up and posts every receive buffer. It lends its
    /// slots unless `platform` protects private memory (see the module
    /// docs), holds its transmit notifications back until [`Self::ring`]
    /// if `hold` (`super::doorbell`), and accepts the device's offloads if
    /// `offload`.
    pub fn new(
        transport: CardTransport,
        platform: PlatformKind,
        hold: bool,
        offload: bool,
    ) -> core::result::Result<Self, InitError> {
        let bell = Bell::new(transport, hold, offload);
        let raw = Raw::new(Doorbell(bell.clone()))?;
        let mac = raw.mac_address();
        let (Some(tx), Some(rx)) = (
            Slots::new(SMALL_TX, SLOT_BYTES),
            Slots::new(QUEUE_SIZE, SLOT_BYTES),
        ) else {
            return Err(InitError::OutOfMemory);
        };
        let mut offloads = Offloads::from_virtio_features(bell.features(), LONG_FRAME);
        let long = offloads.tso4_frame.and_then(|_| LongFrames::new(SMALL_TX));
        if offloads.tso4_frame.is_some() && long.is_none() {
            log::warn!(
                "virtio-net: no room in the shared DMA pool for long frames; frames are not cut by the device"
            );
            offloads.tso4_frame = None;
        }
        let mut inner = Inner {
            raw,
            tx,
            long,
            rx,
            tx_free: FreeList::new(0),
            tx_len: [0; QUEUE_SIZE],
            tx_slot_of: [NO_SLOT; QUEUE_SIZE],
            rx_slot_of: [NO_SLOT; QUEUE_SIZE],
            rx_burst: 0,
        };
        for slot in 0..QUEUE_SIZE as u16 {
            inner.post_rx(slot)?;
        }
        let tx_base = inner.tx.base();
        Ok(Self {
            inner: Mutex::new(inner),
            mac,
            stats: NetStats::default(),
            lends: AtomicBool::new(!platform.protects_private_memory()),
            tx_spare: TxSpare::default(),
            tx_base,
            offloads,
            bell,
        })
    }

    /// Whether transmit slots are lent to the caller (frames written in
    /// place) rather than copied into.
    pub fn lends(&self) -> bool {
        self.lends.load(Ordering::Relaxed)
    }

    /// Lends transmit slots or not: the ktests force the copying of
    /// SEV-SNP and TDX natively. Takes effect at the next frame.
    #[cfg(feature = "ktest")]
    pub(crate) fn set_lending(&self, on: bool) {
        self.lends.store(on, Ordering::Relaxed);
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        without_interrupts(|| f(&mut self.inner.lock()))
    }

    /// Runs `f` with the device locked (no send, receive or interrupt
    /// acknowledgement meanwhile): the ktests read its queues then.
    #[cfg(feature = "ktest")]
    pub(crate) fn while_locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.with(|_| f())
    }

    /// Sends the transmit queue's held-back notification, if one is owed:
    /// the device starts on the frames queued since the last one. The
    /// kernel calls it when a thread's wait finds nothing to do, when a
    /// CPU is about to halt and at every timer tick; the queue rings by
    /// itself every [`super::doorbell::RING_AFTER`] frames.
    #[inline]
    pub fn ring(&self) {
        if self.bell.owed() != 0 {
            self.with(|_| self.bell.ring());
        }
    }

    /// Holds the transmit notification back (`true`, the default) or
    /// sends it after every frame; what is owed is sent when holding
    /// stops. The ktests switch it; a run chooses with `net.doorbell=`.
    #[cfg(feature = "ktest")]
    pub(crate) fn set_hold(&self, on: bool) {
        self.bell.set_hold(on);
        if !on {
            self.with(|_| self.bell.ring());
        }
    }

    /// The doorbell's state (holding, notifications owed and sent).
    pub fn bell(&self) -> &Bell {
        &self.bell
    }

    /// The device's frame counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Transmit slots the device still holds (after reclaiming finished
    /// sends).
    pub fn tx_in_flight(&self) -> usize {
        self.with(|d| {
            d.reclaim_tx();
            d.tx_slot_of.iter().filter(|&&s| s != NO_SLOT).count()
        })
    }

    /// Turns the device's used-buffer interrupts on or off.
    pub fn set_interrupts(&self, on: bool) {
        self.with(|d| {
            if on {
                d.raw.enable_interrupts();
            } else {
                d.raw.disable_interrupts();
            }
        });
    }

    /// From the interrupt handler: acknowledges the device's interrupt (so
    /// its level-triggered line drops). The waiting threads find the frames
    /// when the scheduler re-checks them after the interrupt.
    pub fn handle_interrupt(&self) {
        // Interrupts are off here, and every holder of the lock keeps them
        // off, so on the one CPU the lock is free; `try_lock` only guards
        // against a re-entrant bug.
        if let Some(mut d) = self.inner.try_lock() {
            d.raw.ack_interrupt();
            self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Transmit slot `slot`, small or long, or its first `len` bytes.
///
/// # Safety
///
/// As [`Slots::slot`] or [`LongFrames::slot`]; `slot` is one of the
/// device's (a long one only with `long`) and `len` fits it.
#[expect(clippy::mut_from_ref, reason = "slots are disjoint DMA memory")]
unsafe fn tx_slot<'s>(
    tx: &'s Slots,
    long: Option<&'s LongFrames>,
    slot: u16,
    len: usize,
) -> &'s mut [u8] {
    if usize::from(slot) < SMALL_TX {
        // SAFETY: the caller's obligations.
        return unsafe { tx.slot(slot, len) };
    }
    let long = long.expect("a long frame without long frames");
    // SAFETY: the caller's obligations.
    unsafe { long.slot(slot, len) }
}

/// The slot recorded for `token`, if the token is one in flight.
fn slot_of(slot_of: &[u16; QUEUE_SIZE], token: u16) -> Option<u16> {
    slot_of
        .get(usize::from(token))
        .copied()
        .filter(|&s| s != NO_SLOT)
}

impl Inner {
    /// Gives receive slot `slot` to the device.
    fn post_rx(&mut self, slot: u16) -> virtio_drivers::Result<()> {
        // SAFETY: the slot is not in the device's hands (fresh, or just
        // completed), and the buffer stays valid and untouched until
        // `receive_complete` returns it.
        let token = unsafe { self.raw.receive_begin(self.rx.slot(slot, SLOT_BYTES)) }?;
        self.rx_slot_of[usize::from(token)] = slot;
        Ok(())
    }

    /// Transmit slot `slot` (small or big), or its first `len` bytes.
    ///
    /// # Safety
    ///
    /// As [`tx_slot`].
    #[expect(clippy::mut_from_ref, reason = "slots are disjoint DMA memory")]
    unsafe fn tx_slot(&self, slot: u16, len: usize) -> &mut [u8] {
        // SAFETY: the caller's obligations.
        unsafe { tx_slot(&self.tx, self.long.as_ref(), slot, len) }
    }

    /// Puts transmit slot `slot` back on its free list.
    fn give_back(&mut self, slot: u16) {
        if usize::from(slot) < SMALL_TX {
            self.tx_free.push(slot);
        } else if let Some(long) = &mut self.long {
            long.give_back(slot);
        }
    }

    /// Takes back the slots of every send the device has finished.
    #[inline(always)]
    fn reclaim_tx(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            // The token comes from the used ring, which the host writes.
            let Some(slot) = slot_of(&self.tx_slot_of, token) else {
                log::error!("virtio-net: the device returned unknown transmit token {token}");
                return;
            };
            let len = usize::from(self.tx_len[usize::from(slot)]);
            // SAFETY: the same buffer (slot and length) that
            // `transmit_begin` was given with this token.
            let done = unsafe {
                self.raw
                    .transmit_complete(token, tx_slot(&self.tx, self.long.as_ref(), slot, len))
            };
            if let Err(e) = done {
                log::error!("virtio-net: completing transmit token {token}: {e:?}");
                return;
            }
            self.tx_slot_of[usize::from(token)] = NO_SLOT;
            self.give_back(slot);
        }
    }

    /// Takes a free transmit slot for a frame of `len` bytes (a long
    /// frame's past [`MAX_FRAME`]) and writes its virtio-net header: the
    /// slot, the header's length and the slot's address. `EAGAIN` with
    /// none free, `EMSGSIZE` for a frame no slot holds. The slot is the
    /// caller's until [`Self::submit_tx`].
    #[inline(always)]
    fn take_tx_slot(&mut self, len: usize) -> Result<(u16, usize, u64)> {
        self.reclaim_tx();
        let slot = match &mut self.long {
            _ if len <= MAX_FRAME => self.tx_free.pop(),
            Some(long) if len <= LONG_FRAME => long.take(len),
            _ => return Err(Errno::EMSGSIZE.into()),
        };
        let Some(slot) = slot else {
            return Err(Errno::EAGAIN.into());
        };
        // SAFETY: a free slot: the device does not hold it, and this is the
        // only reference; a small one holds `SLOT_BYTES`, a long one at
        // least the header's room.
        let buf = unsafe { self.tx_slot(slot, HEADER_ROOM) };
        let addr = buf.as_ptr() as u64;
        match self.raw.fill_buffer_header(buf) {
            Ok(header) => Ok((slot, header, addr)),
            Err(_) => {
                self.give_back(slot);
                Err(Errno::EIO.into())
            }
        }
    }

    /// Hands `slot` (from [`Self::take_tx_slot`]), its first `len` bytes
    /// written, to the device; on failure the slot goes back on the free
    /// list.
    #[inline(always)]
    fn submit_tx(&mut self, slot: u16, len: usize) -> Result<()> {
        // SAFETY: the slot is off the free list and written; it stays
        // untouched until `reclaim_tx` completes its token with the same
        // slice.
        let token = match unsafe {
            self.raw
                .transmit_begin(tx_slot(&self.tx, self.long.as_ref(), slot, len))
        } {
            Ok(t) => t,
            Err(e) => {
                self.give_back(slot);
                // One descriptor a slot and as many descriptors as slots:
                // a free slot means a free descriptor, so the queue is
                // never full here.
                return Err(match e {
                    virtio_drivers::Error::QueueFull => Errno::EAGAIN,
                    _ => Errno::EIO,
                }
                .into());
            }
        };
        self.tx_len[usize::from(slot)] = len as u16;
        self.tx_slot_of[usize::from(token)] = slot;
        Ok(())
    }

    /// Copies `frame` into a free slot behind a header saying what the
    /// device finishes (`offload`) and sends it; the slot it went in.
    #[inline(always)]
    fn transmit(&mut self, frame: &[u8], offload: &TxOffload) -> Result<u16> {
        let (slot, header, _) = self.take_tx_slot(frame.len())?;
        let len = header + frame.len();
        // SAFETY: taken off the free list above: this is the only
        // reference, and the device does not hold it.
        let buf = unsafe { self.tx_slot(slot, len) };
        buf[..OFFLOAD_HEADER].copy_from_slice(&offload.virtio_header());
        buf[header..].copy_from_slice(frame);
        self.submit_tx(slot, len)?;
        Ok(slot)
    }

    /// One received frame into `buf`: `Ok(Some(len))`, `Ok(None)` if none
    /// waits, `Err(EMSGSIZE)` if it did not fit (it is dropped).
    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        let Some(token) = self.raw.poll_receive() else {
            self.rx_burst = 0;
            return Ok(None);
        };
        self.rx_burst += 1;
        let Some(slot) = slot_of(&self.rx_slot_of, token) else {
            log::error!("virtio-net: the device returned unknown receive token {token}");
            return Err(Errno::EIO.into());
        };
        self.rx_slot_of[usize::from(token)] = NO_SLOT;
        // SAFETY: the same buffer `post_rx` gave the device with this token.
        let done = unsafe {
            self.raw
                .receive_complete(token, self.rx.slot(slot, SLOT_BYTES))
        };
        // The lengths come from the used ring, which the host writes.
        let copied = match done {
            Ok((header, len)) if len <= buf.len() && header + len <= SLOT_BYTES => {
                // SAFETY: the device has given the slot back.
                let data = unsafe { self.rx.slot(slot, header + len) };
                // The one read of the frame in shared memory: from here on
                // (smoltcp) only the private copy in `buf` is parsed.
                buf[..len].copy_from_slice(&data[header..]);
                Ok(Some(len))
            }
            Ok(_) => Err(Errno::EMSGSIZE.into()),
            Err(_) => Err(Errno::EIO.into()),
        };
        if self.post_rx(slot).is_err() {
            log::error!("virtio-net: cannot repost receive slot {slot}");
        }
        copied
    }
}

/// `len` bytes at `offset` from `addr`, a transmit slot's address.
///
/// # Safety
///
/// `addr` is the address of a transmit slot of a live device (small, or a
/// long frame's bytes) with room for `offset + len`; the caller owns the
/// slot exclusively (no other reference to these bytes, the device does
/// not hold it) for `'a`.
unsafe fn lent_slot<'a>(addr: u64, offset: usize, len: usize) -> &'a mut [u8] {
    // SAFETY: the caller's obligations.
    unsafe { core::slice::from_raw_parts_mut((addr + offset as u64) as *mut u8, len) }
}

impl VirtioNet {
    /// After a long frame of `len` bytes: the segments it becomes weigh
    /// on the doorbell as frames, and the doorbell rings at once when no
    /// slot number is left for the next. Call with the lock held. (The
    /// LibOS counts these frames: `tx_segmented`.)
    fn sent_long(&self, d: &Inner, len: usize) {
        self.bell.owe((len / MAX_FRAME) as u32);
        if d.long.as_ref().is_some_and(|l| l.free() == 0) {
            self.bell.ring();
        }
    }

    /// With a long frame refused for want of room (`EAGAIN`), rings the
    /// doorbell: the device gives room back as it sends what it holds.
    /// Call with the lock held.
    fn refused_long<T>(&self, r: &Result<T>, len: usize) {
        if len > MAX_FRAME && r.as_ref().is_err_and(|e| e.errno() == Errno::EAGAIN) {
            self.bell.ring();
        }
    }

    /// The longest frame the device takes: [`LONG_FRAME`] with
    /// segmentation offload, else [`MAX_FRAME`].
    fn longest(&self) -> usize {
        self.offloads.tso4_frame.unwrap_or(MAX_FRAME).max(MAX_FRAME)
    }

    fn count_transmit(&self, r: &Result<()>) {
        match r {
            Ok(()) => self.stats.tx_frames.fetch_add(1, Ordering::Relaxed),
            Err(e) if e.errno() == Errno::EAGAIN => {
                self.stats.tx_queue_full.fetch_add(1, Ordering::Relaxed)
            }
            Err(_) => 0,
        };
    }
}

impl NetDevice for VirtioNet {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn max_frame(&self) -> usize {
        MAX_FRAME
    }

    fn transmit(&self, frame: &[u8]) -> Result<()> {
        self.transmit_offloaded(frame, TxOffload::NONE)
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn transmit_offloaded(&self, frame: &[u8], offload: TxOffload) -> Result<()> {
        if offload != TxOffload::NONE && !self.offloads.tcp_checksum {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if frame.len() > self.longest() {
            return Err(Errno::EMSGSIZE.into());
        }
        let r = self.with(|d| {
            let sent = d.transmit(frame, &offload);
            self.refused_long(&sent, frame.len());
            if usize::from(sent?) >= SMALL_TX {
                self.sent_long(d, frame.len());
            }
            Ok(())
        });
        self.count_transmit(&r);
        r
    }

    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let (r, ring_full) = self.with(|d| {
            let r = d.receive(buf);
            // Counted once per burst of a whole ring.
            (r, d.rx_burst == QUEUE_SIZE)
        });
        if ring_full {
            self.stats.rx_ring_full.fetch_add(1, Ordering::Relaxed);
        }
        match &r {
            Ok(Some(_)) => self.stats.rx_frames.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.rx_dropped.fetch_add(1, Ordering::Relaxed),
            Ok(None) => 0,
        };
        r
    }

    fn flush(&self) {
        self.ring();
    }

    fn transmit_with(
        &self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> TxOffload,
    ) -> Result<()> {
        if !self.lends() {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if len > self.longest() {
            return Err(Errno::EMSGSIZE.into());
        }
        let long = len > MAX_FRAME;
        // The slot set aside at the last send, or one taken now (a long
        // frame's is never set aside).
        let spare = if long { None } else { self.tx_spare.take() };
        let taken = match spare {
            Some((slot, header)) => Ok((
                slot,
                usize::from(header),
                self.tx_base + (usize::from(slot) * SLOT_BYTES) as u64,
            )),
            None => self.with(|d| {
                let taken = d.take_tx_slot(len);
                self.refused_long(&taken, len);
                taken
            }),
        };
        let (slot, header, addr) = match taken {
            Ok(t) => t,
            Err(e) => {
                self.count_transmit(&Err(e));
                return Err(e);
            }
        };
        // SAFETY:
        // 1. `addr` is the slot's address (`take_tx_slot`'s, or the spare's
        //    computed from transmit slot 0 of `self.inner`'s set, which
        //    lives as long as `self`, borrowed past this call).
        // 2. `header + len` fits the slot: a small slot holds a virtio-net
        //    header and `MAX_FRAME` bytes, a long frame's room was taken
        //    for `len` bytes after the header (`take_tx_slot` takes one
        //    past `MAX_FRAME`, and `len <= longest()`).
        // 3. The slot is this caller's alone: `take_tx_slot` took it off
        //    the free list under the lock (directly, or for the spare,
        //    which the swap in `take` gave to this caller only); the device
        //    does not hold it, and nothing else reaches it until
        //    `submit_tx` below hands it on.
        let frame = unsafe { lent_slot(addr, header, len) };
        let offload = fill(frame);
        // SAFETY: as above; the header lies before the frame, and this
        // borrow ends before the frame's.
        let head = unsafe { lent_slot(addr, 0, OFFLOAD_HEADER) };
        head.copy_from_slice(&offload.virtio_header());
        let r = self.with(|d| {
            let r = d.submit_tx(slot, header + len);
            if long {
                if r.is_ok() {
                    self.sent_long(d, len);
                }
            } else if let Ok((spare, header, _)) = d.take_tx_slot(MAX_FRAME)
                && !self.tx_spare.offer(spare, header as u16)
            {
                // Set the next frame's slot aside while the lock is held.
                d.give_back(spare);
            }
            r
        });
        self.count_transmit(&r);
        match r {
            Ok(()) => {
                self.stats.tx_in_place.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // `fill` ran: the frame is lost (see the trait).
            Err(e) => {
                log::error!("virtio-net: a written transmit slot was refused: {e:?}");
                Err(Errno::EIO.into())
            }
        }
    }
}
