//! [`NetDevice`]: the network card as the LibOS sees it (raw Ethernet
//! frames in and out, never blocking), and `NicPhy`, the adapter that
//! lets smoltcp drive one.
//!
//! The kernel implements [`NetDevice`] for virtio-net; host tests join two
//! stacks with an in-memory pair. A frame crosses the trait in one of two
//! ways:
//!
//! - *in place*: the device lends smoltcp its own buffer. A received frame
//!   is held by the device ([`NetDevice::hold_received`]), read where it
//!   lies ([`NetDevice::peek_held`], [`NetDevice::consume_held`]) and only
//!   then given back to the device; a frame to send is written by smoltcp
//!   straight into a free device buffer ([`NetDevice::transmit_with`]).
//!   The virtio-net driver lends its buffers on the native backend, where
//!   the host can write all guest memory anyway, so a buffer shared with
//!   it is no weaker than private memory. Frames of at most the
//!   copybreak ([`COPYBREAK`], [`super::NetConfig::copybreak`]) are copied
//!   even so, as Linux's drivers copy short frames: a loan costs more
//!   than copying a few hundred bytes;
//! - *copied*: the frame is copied between the device's buffer and
//!   `NicPhy`'s private buffers ([`NetDevice::receive`],
//!   [`NetDevice::transmit`]). Every device offers this; it is what a
//!   device that does not lend gets (the lending methods' defaults answer
//!   `EOPNOTSUPP`), and what the virtio-net driver does on SEV-SNP and TDX,
//!   where its buffers are shared with an untrusted host that could
//!   rewrite a frame while smoltcp parses it (smoltcp re-reads fields it
//!   checked): there exactly one copy between shared and private memory is
//!   the design, as Linux's swiotlb bounce is.
//!
//! A frame the device cannot take yet (`EAGAIN`) is built in private
//! memory and waits in a short software queue in `NicPhy` (the backlog),
//! sent first at the next poll; while it is not empty, new frames go
//! behind it, so the order holds. A full device queue thus delays frames
//! instead of dropping them (TCP would recover, but only after a
//! retransmit timeout). `NicPhy` counts what it sees in [`NetCounters`]
//! (sent frames and TCP retransmissions among them, frames held back,
//! receive errors, frames moved in place).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::counters::{NetCounters, RetransmitDetector, Segment};
use crate::error::{Errno, Result};

/// A network interface card: raw Ethernet frames in and out. Never blocks.
///
/// [`Self::receive`] and [`Self::transmit`] copy; the other methods lend
/// the device's own buffers, if it offers that (see the module docs). The
/// lending methods' defaults answer `EOPNOTSUPP`, so a device that only
/// copies implements the first four methods and nothing else.
pub trait NetDevice: Send + Sync {
    /// The MAC address.
    fn mac(&self) -> [u8; 6];
    /// Largest Ethernet frame (header included, no FCS), e.g. 1514.
    fn max_frame(&self) -> usize;
    /// Queues one frame for sending; `Err(EAGAIN)` if the device's queue is full.
    fn transmit(&self, frame: &[u8]) -> Result<()>;
    /// Takes one received frame into `buf`; `Ok(None)` if none is waiting.
    /// A frame held for [`Self::consume_held`] is taken first.
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>>;

    /// Takes the next received frame and holds it in the device's buffer,
    /// not given back to the device until [`Self::consume_held`]:
    /// `Ok(Some(Received::Held(len)))`, the frame already held if there is
    /// one, `Ok(None)` if none waits. A frame not held before that fits
    /// `copy` is copied there instead and its buffer given back at once
    /// (`Received::Copied(len)`): for a short frame a copy costs less than
    /// a loan ([`COPYBREAK`]); an empty `copy` holds every frame.
    /// `Err(EOPNOTSUPP)` (the default): the device does not lend its
    /// buffers (now); take frames with [`Self::receive`].
    fn hold_received(&self, copy: &mut [u8]) -> Result<Option<Received>> {
        let _ = copy;
        Err(Errno::EOPNOTSUPP.into())
    }

    /// Calls `f` with the held frame where it lies, leaving it held (any
    /// number of times). `Err(ENOENT)` without a held frame (`f` not
    /// called).
    fn peek_held(&self, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let _ = f;
        Err(Errno::EOPNOTSUPP.into())
    }

    /// Calls `f` with the held frame where it lies, then gives its buffer
    /// back to the device. `Err(ENOENT)` without a held frame (`f` not
    /// called).
    fn consume_held(&self, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let _ = f;
        Err(Errno::EOPNOTSUPP.into())
    }

    /// Sends a frame of `len` bytes that `fill` writes straight into a free
    /// device buffer (`fill` gets exactly `len` bytes). When it answers
    /// `EAGAIN` (no free buffer), `EOPNOTSUPP` (the default: no lending) or
    /// `EMSGSIZE` (`len` over [`Self::max_frame`]), `fill` was not called;
    /// the caller may build the frame in its own memory and use
    /// [`Self::transmit`]. Any other error comes after `fill` ran: the
    /// frame is lost, as on a wire.
    fn transmit_with(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<()> {
        let _ = (len, fill);
        Err(Errno::EOPNOTSUPP.into())
    }
}

/// What [`NetDevice::hold_received`] did with the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Held in the device's buffer, this long: read it with
    /// [`NetDevice::peek_held`] and [`NetDevice::consume_held`].
    Held(usize),
    /// Copied into the caller's buffer, this long (it was short); the
    /// device has its buffer back.
    Copied(usize),
}

/// Frames of at most this many bytes cross a lending device by copy, not
/// by loan ([`super::NetConfig::copybreak`]'s default), as Linux's drivers
/// copy short frames (`rx_copybreak`, virtio-net's `GOOD_COPY_LEN`): a
/// loan costs about 100 instructions more than a copy of the frame's
/// bytes does up to a few hundred bytes (calls through `dyn FnMut` that
/// smoltcp's code is no longer inlined into, an atomic exchange), so
/// Redis's requests, replies and acknowledgements went from 1,225–1,247
/// to 1,498–1,580 instructions of device path per request when every
/// frame was lent (docs/PERFORMANCE.md, "The device trait without the
/// extra copy").
pub const COPYBREAK: usize = 256;

/// Where a received frame waits for smoltcp.
#[derive(Debug, Clone, Copy)]
enum Fetched {
    /// Held by the device, in its buffer.
    Held,
    /// Copied into `NicPhy::rx_buf`, this long.
    Copied(usize),
}

/// Frames held back while the device's queue is full; past this smoltcp
/// is told there is no room (its sockets keep the data).
const TX_BACKLOG_FRAMES: usize = 64;

/// A [`NetDevice`] as a smoltcp [`phy::Device`].
pub(crate) struct NicPhy {
    dev: Arc<dyn NetDevice>,
    /// Private copies of received frames (a device that does not lend).
    rx_buf: Vec<u8>,
    /// A frame fetched by [`Self::peek`] and not yet given to smoltcp.
    rx_ahead: Option<Fetched>,
    /// Frames of at most this many bytes are copied, not lent
    /// ([`COPYBREAK`]).
    copybreak: usize,
    /// Frames to send built in private memory (a device that does not
    /// lend, or has no free buffer).
    tx_buf: Vec<u8>,
    backlog: VecDeque<Vec<u8>>,
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
    /// A NIC over `dev` that copies frames of at most `copybreak` bytes
    /// rather than borrow the device's buffers for them ([`COPYBREAK`]).
    pub(crate) fn new(
        dev: Arc<dyn NetDevice>,
        counters: Arc<NetCounters>,
        copybreak: usize,
    ) -> Self {
        let max = dev.max_frame();
        Self {
            dev,
            rx_buf: vec![0; max],
            rx_ahead: None,
            copybreak,
            tx_buf: Vec::with_capacity(max),
            backlog: VecDeque::new(),
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

    /// What `f` makes of the next received frame, fetched from the card
    /// now if none is waiting, without taking it: smoltcp's next `receive`
    /// gets it. The stack reads its connection first, to bring a parked
    /// socket back (`super::sockets`).
    pub(crate) fn peek<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        if self.rx_ahead.is_none() {
            self.rx_ahead = self.fetch();
        }
        match self.rx_ahead? {
            Fetched::Copied(n) => self.rx_buf.get(..n).map(f),
            Fetched::Held => {
                let mut f = Some(f);
                let mut out = None;
                // Fails only if someone else took the held frame: then
                // there is nothing to look at.
                let _ = self.dev.peek_held(&mut |frame| {
                    if let Some(f) = f.take() {
                        out = Some(f(frame));
                    }
                });
                out
            }
        }
    }

    /// Takes one frame from the card: held in its buffer if it lends it,
    /// else copied into `rx_buf`.
    fn fetch(&mut self) -> Option<Fetched> {
        let short = self.copybreak.min(self.rx_buf.len());
        match self.dev.hold_received(&mut self.rx_buf[..short]) {
            Ok(Some(Received::Held(_))) => {
                NetCounters::bump(&self.counters.rx_frames);
                NetCounters::bump(&self.counters.rx_in_place);
                return Some(Fetched::Held);
            }
            Ok(Some(Received::Copied(n))) => {
                NetCounters::bump(&self.counters.rx_frames);
                NetCounters::bump(&self.counters.rx_short_copied);
                return Some(Fetched::Copied(n.min(short)));
            }
            Ok(None) => return None,
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
            Err(_) => {
                NetCounters::bump(&self.counters.rx_errors);
                return None;
            }
        }
        match self.dev.receive(&mut self.rx_buf) {
            Ok(Some(n)) => {
                NetCounters::bump(&self.counters.rx_frames);
                Some(Fetched::Copied(n.min(self.rx_buf.len())))
            }
            Ok(None) => None,
            Err(_) => {
                NetCounters::bump(&self.counters.rx_errors);
                None
            }
        }
    }
}

fn flush(dev: &dyn NetDevice, backlog: &mut VecDeque<Vec<u8>>) -> bool {
    while let Some(frame) = backlog.front() {
        match dev.transmit(frame) {
            Err(e) if e.errno() == Errno::EAGAIN => return true,
            // Sent, or refused for good (dropped, as a wire would).
            _ => {
                backlog.pop_front();
            }
        }
    }
    false
}

/// A received frame: in the device's buffer or in [`NicPhy`]'s.
pub(crate) enum NicRxToken<'a> {
    /// Held by the device.
    Held {
        dev: &'a dyn NetDevice,
        counters: &'a NetCounters,
    },
    /// Copied into `NicPhy::rx_buf`.
    Copied(&'a [u8]),
}

/// Room to send one frame.
pub(crate) struct NicTxToken<'a> {
    dev: &'a dyn NetDevice,
    scratch: &'a mut Vec<u8>,
    backlog: &'a mut VecDeque<Vec<u8>>,
    counters: &'a NetCounters,
    retransmits: &'a mut RetransmitDetector,
    /// Frames of at most this many bytes are built here and copied.
    copybreak: usize,
}

impl phy::RxToken for NicRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let (dev, counters) = match self {
            Self::Copied(frame) => return f(frame),
            Self::Held { dev, counters } => (dev, counters),
        };
        let mut f = Some(f);
        let mut out = None;
        let _ = dev.consume_held(&mut |frame| {
            if let Some(f) = f.take() {
                out = Some(f(frame));
            }
        });
        if let Some(out) = out {
            return out;
        }
        // The held frame went elsewhere (not through this stack): smoltcp
        // gets an empty frame, which it drops as malformed.
        NetCounters::bump(&counters.rx_errors);
        f.take().expect("`f` did not run")(&[])
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

impl phy::TxToken for NicTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let Self {
            dev,
            scratch,
            backlog,
            counters,
            retransmits,
            copybreak,
        } = self;
        let mut f = Some(f);
        // Keep the order: with frames held back, this one goes behind
        // them, so it is not offered to the device now.
        let mut device_full = !backlog.is_empty();
        let short = len <= copybreak;
        if !device_full && !short {
            let mut out = None;
            let sent = dev.transmit_with(len, &mut |buf| {
                if let Some(f) = f.take() {
                    out = Some(f(buf));
                    count_sent(counters, retransmits, buf);
                }
            });
            if let Some(out) = out {
                if sent.is_ok() {
                    NetCounters::bump(&counters.tx_in_place);
                }
                return out;
            }
            device_full = sent.is_err_and(|e| e.errno() == Errno::EAGAIN);
        }
        let f = f.take().expect("`fill` was not called");
        scratch.clear();
        scratch.resize(len, 0);
        let result = f(scratch);
        count_sent(counters, retransmits, scratch);
        if device_full || dev.transmit(scratch).is_err() {
            NetCounters::bump(&counters.tx_deferred);
            backlog.push_back(scratch.clone());
        } else if short {
            NetCounters::bump(&counters.tx_short_copied);
        }
        result
    }
}

impl phy::Device for NicPhy {
    type RxToken<'a> = NicRxToken<'a>;
    type TxToken<'a> = NicTxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        flush(&*self.dev, &mut self.backlog);
        let fetched = match self.rx_ahead.take() {
            Some(fetched) => fetched,
            None => self.fetch()?,
        };
        let counters = &self.counters;
        let rx = match fetched {
            Fetched::Held => NicRxToken::Held {
                dev: &*self.dev,
                counters,
            },
            Fetched::Copied(n) => NicRxToken::Copied(&self.rx_buf[..n]),
        };
        Some((
            rx,
            NicTxToken {
                dev: &*self.dev,
                scratch: &mut self.tx_buf,
                backlog: &mut self.backlog,
                counters,
                retransmits: &mut self.retransmits,
                copybreak: self.copybreak,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if self.backlog.len() >= TX_BACKLOG_FRAMES && flush(&*self.dev, &mut self.backlog) {
            NetCounters::bump(&self.counters.tx_backlog_full);
            return None;
        }
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.dev.max_frame();
        caps
    }
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
