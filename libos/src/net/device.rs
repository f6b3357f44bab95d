//! [`NetDevice`]: the network card as the LibOS sees it (raw Ethernet
//! frames in and out, never blocking), and `NicPhy`, the adapter that
//! lets smoltcp drive one.
//!
//! The kernel implements [`NetDevice`] for virtio-net; host tests join two
//! stacks with an in-memory pair.
//!
//! A received frame is copied once out of the device's buffer into
//! `NicPhy`'s private one ([`NetDevice::receive`]) before smoltcp parses
//! it. On SEV-SNP and TDX that copy is the design: the device's buffers
//! are shared with an untrusted host that could rewrite a frame while
//! smoltcp parses it (smoltcp re-reads fields it checked), so exactly one
//! copy between shared and private memory is made, as Linux's swiotlb
//! bounce does. Natively it costs less than the alternative: parsing in
//! the device's buffer (built and measured, docs/PERFORMANCE.md, "The
//! device trait without the extra copy") made every frame pay for the
//! loan, and a server receives short frames (requests, acknowledgements).
//!
//! A frame to send crosses in one of two ways:
//!
//! - *in place*: smoltcp writes it straight into a free device buffer
//!   ([`NetDevice::transmit_with`]), when the device lends its buffers
//!   (the virtio-net driver on the native backend, where the host can
//!   write all guest memory anyway, so a buffer shared with it is no
//!   weaker than private memory) and the frame is longer than the
//!   copybreak ([`COPYBREAK`], [`super::NetConfig::copybreak`]);
//! - *copied*: built in `NicPhy`'s private buffer and copied into a
//!   device buffer ([`NetDevice::transmit`]) — short frames, and every
//!   frame on a device that does not lend (SEV-SNP, TDX: smoltcp reads
//!   back header fields of the frame it writes, which the host could
//!   rewrite in shared memory).
//!
//! With a card that finishes TCP checksums and cuts long frames into
//! segments ([`NetDevice::offloads`], [`super::offload`]), smoltcp is told
//! so through its device capabilities, and each TCP frame it writes is
//! prepared for the card on its way out (the pseudo-header sum, and what
//! the card must finish, which the device puts in its header), written in
//! place or copied alike.
//!
//! A frame the device cannot take yet (`EAGAIN`) is built in private
//! memory and waits in a short software queue in `NicPhy` (the backlog),
//! sent first at the next poll; while it is not empty, new frames go
//! behind it, so the order holds. A full device queue thus delays frames
//! instead of dropping them (TCP would recover, but only after a
//! retransmit timeout). `NicPhy` counts what it sees in [`NetCounters`]
//! (sent frames and TCP retransmissions among them, frames held back,
//! frames written in place, receive errors).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use core::num::{NonZeroU16, NonZeroUsize};

use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use super::counters::{NetCounters, RetransmitDetector, Segment};
use super::offload::{self, Offloads, TxOffload};
use crate::error::{Errno, Result};

/// A network interface card: raw Ethernet frames in and out. Never blocks.
///
/// [`Self::receive`] and [`Self::transmit`] copy; [`Self::transmit_with`]
/// lends the device's own buffer, if it offers that (see the module
/// docs): its default answers `EOPNOTSUPP`, so a device that only copies
/// implements the first four methods and nothing else.
pub trait NetDevice: Send + Sync {
    /// The MAC address.
    fn mac(&self) -> [u8; 6];
    /// Largest Ethernet frame (header included, no FCS), e.g. 1514.
    fn max_frame(&self) -> usize;
    /// Queues one frame for sending; `Err(EAGAIN)` if the device's queue is full.
    fn transmit(&self, frame: &[u8]) -> Result<()>;
    /// Takes one received frame into `buf`; `Ok(None)` if none is waiting.
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>>;

    /// Sends a frame of `len` bytes that `fill` writes straight into a free
    /// device buffer (`fill` gets exactly `len` bytes). When it answers
    /// `EAGAIN` (no free buffer), `EOPNOTSUPP` (the default: no lending) or
    /// `EMSGSIZE` (`len` over [`Self::max_frame`]), `fill` was not called;
    /// the caller may build the frame in its own memory and use
    /// [`Self::transmit`]. Any other error comes after `fill` ran: the
    /// frame is lost, as on a wire.
    ///
    /// `fill` returns what the card must finish in the frame
    /// ([`super::offload::prepare`]; [`TxOffload::NONE`] for a complete
    /// frame), which the device passes on to its card. With segmentation
    /// offered, `len` may be up to [`Offloads::tso4_frame`].
    fn transmit_with(
        &self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> TxOffload,
    ) -> Result<()> {
        let _ = (len, fill);
        Err(Errno::EOPNOTSUPP.into())
    }

    /// What the card finishes for the sender: TCP checksums, and the
    /// cutting of long TCP frames into segments (see [`super::offload`]).
    /// The default: nothing, every frame is sent complete.
    fn offloads(&self) -> Offloads {
        Offloads::default()
    }

    /// Queues `frame`, which the card finishes as `offload` says; with
    /// segmentation it may be up to [`Offloads::tso4_frame`] long.
    /// `Err(EAGAIN)` if the device's queue is full. The default sends a
    /// complete frame through [`Self::transmit`] and refuses any other
    /// with `EOPNOTSUPP` (a device that offers no offload gets none).
    fn transmit_offloaded(&self, frame: &[u8], offload: TxOffload) -> Result<()> {
        if offload == TxOffload::NONE {
            self.transmit(frame)
        } else {
            Err(Errno::EOPNOTSUPP.into())
        }
    }

    /// Starts sending every frame queued so far. A device may hold back
    /// telling its hardware about queued frames until then (the kernel's
    /// virtio-net driver holds its doorbell); the LibOS calls this when a
    /// program looks for input and finds none, so a program that polls
    /// without ever blocking still gets its frames out. The default does
    /// nothing (nothing is held).
    fn flush(&self) {}
}

/// Frames to send of at most this many bytes are built in private memory
/// and copied even to a device that lends its buffers
/// ([`super::NetConfig::copybreak`]'s default), as Linux's drivers copy
/// short frames (`rx_copybreak`, virtio-net's `GOOD_COPY_LEN`): a loan
/// through `dyn FnMut` costs more than copying a short frame (smoltcp's
/// code that writes the frame is called, not inlined), and Redis's
/// requests and replies are short (docs/PERFORMANCE.md, "The device trait
/// without the extra copy").
pub const COPYBREAK: usize = 256;

/// Frames held back while the device's queue is full; past this smoltcp
/// is told there is no room (its sockets keep the data).
const TX_BACKLOG_FRAMES: usize = 64;

/// Bytes of frames held back past which smoltcp is told there is no room,
/// whatever their number: frames the card cuts into segments are up to
/// [`Offloads::tso4_frame`] long.
const TX_BACKLOG_BYTES: usize = 256 * 1024;

/// A frame held back, with what the card must finish in it.
type Held = (Vec<u8>, TxOffload);

/// A [`NetDevice`] as a smoltcp [`phy::Device`].
pub(crate) struct NicPhy {
    dev: Arc<dyn NetDevice>,
    rx_buf: Vec<u8>,
    /// The length of a frame in `rx_buf` fetched by [`Self::peek`] and not
    /// yet given to smoltcp.
    rx_ahead: Option<usize>,
    /// Frames to send built in private memory (short ones, a device that
    /// does not lend, or one with no free buffer).
    tx_buf: Vec<u8>,
    /// Frames to send of at most this many bytes are copied, not written
    /// in place ([`COPYBREAK`]).
    copybreak: usize,
    backlog: VecDeque<Held>,
    /// What the card finishes for the sender, asked once.
    offloads: Offloads,
    /// Shared with [`super::NetStack::counters`].
    counters: Arc<NetCounters>,
    retransmits: RetransmitDetector,
}

impl core::fmt::Debug for NicPhy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NicPhy")
            .field("mac", &self.dev.mac())
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl NicPhy {
    /// A NIC over `dev` that copies frames to send of at most
    /// `copybreak` bytes rather than borrow the device's buffers for them
    /// ([`COPYBREAK`]).
    pub(crate) fn new(
        dev: Arc<dyn NetDevice>,
        counters: Arc<NetCounters>,
        copybreak: usize,
    ) -> Self {
        let max = dev.max_frame();
        let mut offloads = dev.offloads();
        // Segmentation needs the checksum done by the card too.
        offloads.tso4_frame = offloads.tso4_frame.filter(|_| offloads.tcp_checksum);
        Self {
            dev,
            rx_buf: vec![0; max],
            rx_ahead: None,
            tx_buf: Vec::with_capacity(max),
            copybreak,
            backlog: VecDeque::new(),
            offloads,
            counters,
            retransmits: RetransmitDetector::default(),
        }
    }

    fn tx_token(&mut self) -> NicTxToken<'_> {
        NicTxToken {
            dev: &*self.dev,
            scratch: &mut self.tx_buf,
            backlog: &mut self.backlog,
            counters: &self.counters,
            retransmits: &mut self.retransmits,
            copybreak: self.copybreak,
            checksum_offload: self.offloads.tcp_checksum,
            mss: None,
        }
    }

    /// The device.
    pub(crate) fn device(&self) -> &Arc<dyn NetDevice> {
        &self.dev
    }

    /// Sends held-back frames; returns whether some are still waiting.
    pub(crate) fn flush(&mut self) -> bool {
        flush(&*self.dev, &mut self.backlog)
    }

    /// The next received frame, fetched from the card now if none is
    /// waiting, without taking it: smoltcp's next `receive` gets it. The
    /// stack reads its connection first, to bring a parked socket back
    /// (`super::sockets`).
    pub(crate) fn peek(&mut self) -> Option<&[u8]> {
        if self.rx_ahead.is_none() {
            self.rx_ahead = self.fetch();
        }
        let n = self.rx_ahead?;
        self.rx_buf.get(..n)
    }

    /// Takes one frame from the card into `rx_buf`; its length.
    fn fetch(&mut self) -> Option<usize> {
        match self.dev.receive(&mut self.rx_buf) {
            Ok(Some(n)) => {
                NetCounters::bump(&self.counters.rx_frames);
                Some(n.min(self.rx_buf.len()))
            }
            Ok(None) => None,
            Err(_) => {
                NetCounters::bump(&self.counters.rx_errors);
                None
            }
        }
    }
}

fn flush(dev: &dyn NetDevice, backlog: &mut VecDeque<Held>) -> bool {
    while let Some((frame, offload)) = backlog.front() {
        match dev.transmit_offloaded(frame, *offload) {
            Err(e) if e.errno() == Errno::EAGAIN => return true,
            // Sent, or refused for good (dropped, as a wire would).
            _ => {
                backlog.pop_front();
            }
        }
    }
    false
}

/// A received frame, borrowed from [`NicPhy`]'s receive buffer.
pub(crate) struct NicRxToken<'a> {
    frame: &'a [u8],
}

/// Room to send one frame.
pub(crate) struct NicTxToken<'a> {
    dev: &'a dyn NetDevice,
    scratch: &'a mut Vec<u8>,
    backlog: &'a mut VecDeque<Held>,
    counters: &'a NetCounters,
    retransmits: &'a mut RetransmitDetector,
    /// Frames of at most this many bytes are built here and copied.
    copybreak: usize,
    /// Whether smoltcp leaves TCP checksums to the card.
    checksum_offload: bool,
    /// The segment size smoltcp asked the card to cut this frame into.
    mss: Option<NonZeroU16>,
}

impl phy::RxToken for NicRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Counts a frame smoltcp wrote, by what it is.
fn count_sent(counters: &NetCounters, retransmits: &mut RetransmitDetector, frame: &[u8]) {
    NetCounters::bump(&counters.tx_frames);
    match retransmits.classify(frame) {
        Segment::Retransmit => NetCounters::bump(&counters.tcp_retransmits),
        Segment::KeepAlive => NetCounters::bump(&counters.tcp_keepalives),
        Segment::New | Segment::Other => {}
    }
}

impl NicTxToken<'_> {
    /// Counts a frame smoltcp wrote and readies it for the card: with
    /// checksum offload, the pseudo-header sum and what the card finishes.
    fn finish(&mut self, frame: &mut [u8]) -> TxOffload {
        count_sent(self.counters, self.retransmits, frame);
        if !self.checksum_offload {
            return TxOffload::NONE;
        }
        let offload = offload::prepare(frame, self.mss.map(NonZeroU16::get));
        if offload.segmentation.is_some() {
            NetCounters::bump(&self.counters.tx_segmented);
        }
        offload
    }
}

impl phy::TxToken for NicTxToken<'_> {
    fn set_meta(&mut self, meta: PacketMeta) {
        self.mss = meta.segmentation_offload_size;
    }

    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, len: usize, f: F) -> R {
        let mut f = Some(f);
        // Keep the order: with frames held back, this one goes behind
        // them, so it is not offered to the device now.
        let mut device_full = !self.backlog.is_empty();
        let short = len <= self.copybreak;
        if !device_full && !short {
            let mut out = None;
            let dev = self.dev;
            let sent = dev.transmit_with(len, &mut |buf| {
                let Some(f) = f.take() else {
                    return TxOffload::NONE;
                };
                out = Some(f(buf));
                self.finish(buf)
            });
            if let Some(out) = out {
                if sent.is_ok() {
                    NetCounters::bump(&self.counters.tx_in_place);
                }
                return out;
            }
            device_full = sent.is_err_and(|e| e.errno() == Errno::EAGAIN);
        }
        let Some(f) = f.take() else {
            // `transmit_with` calls `fill` at most once, and `out` is set
            // when it does: not reached.
            unreachable!("`fill` ran without a result")
        };
        let mut scratch = core::mem::take(self.scratch);
        scratch.clear();
        scratch.resize(len, 0);
        let result = f(&mut scratch);
        let offload = self.finish(&mut scratch);
        if device_full || self.dev.transmit_offloaded(&scratch, offload).is_err() {
            NetCounters::bump(&self.counters.tx_deferred);
            self.backlog.push_back((scratch.clone(), offload));
        } else if short {
            NetCounters::bump(&self.counters.tx_short_copied);
        }
        *self.scratch = scratch;
        result
    }
}

impl phy::Device for NicPhy {
    type RxToken<'a> = NicRxToken<'a>;
    type TxToken<'a> = NicTxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        flush(&*self.dev, &mut self.backlog);
        let n = match self.rx_ahead.take() {
            Some(n) => n,
            None => self.fetch()?,
        };
        let counters = &self.counters;
        Some((
            NicRxToken {
                frame: &self.rx_buf[..n],
            },
            NicTxToken {
                dev: &*self.dev,
                scratch: &mut self.tx_buf,
                backlog: &mut self.backlog,
                counters,
                retransmits: &mut self.retransmits,
                copybreak: self.copybreak,
                checksum_offload: self.offloads.tcp_checksum,
                mss: None,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        let full = self.backlog.len() >= TX_BACKLOG_FRAMES
            || self.backlog.iter().map(|(f, _)| f.len()).sum::<usize>() >= TX_BACKLOG_BYTES;
        if full && flush(&*self.dev, &mut self.backlog) {
            NetCounters::bump(&self.counters.tx_backlog_full);
            return None;
        }
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.dev.max_frame();
        if self.offloads.tcp_checksum {
            // Verified when received, left to the card when sent.
            caps.checksum.tcp = Checksum::Rx;
        }
        caps.segmentation.tcpv4 = self.offloads.tso4_frame.and_then(NonZeroUsize::new);
        caps
    }
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
