//! [`NetDevice`]: the network card as the LibOS sees it (raw Ethernet
//! frames in and out, never blocking), and `NicPhy`, the adapter that
//! lets smoltcp drive one.
//!
//! The kernel implements [`NetDevice`] for virtio-net; host tests join two
//! stacks with an in-memory pair. A frame the device cannot take yet
//! (`EAGAIN`) waits in a short software queue in `NicPhy` and goes first
//! at the next poll, so a full device queue delays frames instead of
//! dropping them (TCP would recover, but only after a retransmit timeout).
//! `NicPhy` counts what it sees in [`NetCounters`] (sent frames and TCP
//! retransmissions among them, frames held back, receive errors).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::counters::{NetCounters, RetransmitDetector, Segment};
use crate::error::{Errno, Result};

/// A network interface card: raw Ethernet frames in and out. Never blocks.
pub trait NetDevice: Send + Sync {
    /// The MAC address.
    fn mac(&self) -> [u8; 6];
    /// Largest Ethernet frame (header included, no FCS), e.g. 1514.
    fn max_frame(&self) -> usize;
    /// Queues one frame for sending; `Err(EAGAIN)` if the device's queue is full.
    fn transmit(&self, frame: &[u8]) -> Result<()>;
    /// Takes one received frame into `buf`; `Ok(None)` if none is waiting.
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>>;
}

/// Frames held back while the device's queue is full; past this smoltcp
/// is told there is no room (its sockets keep the data).
const TX_BACKLOG_FRAMES: usize = 64;

/// A [`NetDevice`] as a smoltcp [`phy::Device`].
pub(crate) struct NicPhy {
    dev: Arc<dyn NetDevice>,
    rx_buf: Vec<u8>,
    /// The length of a frame in `rx_buf` fetched by [`Self::peek`] and not
    /// yet given to smoltcp.
    rx_ahead: Option<usize>,
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
    pub(crate) fn new(dev: Arc<dyn NetDevice>, counters: Arc<NetCounters>) -> Self {
        let max = dev.max_frame();
        Self {
            dev,
            rx_buf: vec![0; max],
            rx_ahead: None,
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

/// A received frame, borrowed from [`NicPhy`]'s receive buffer.
pub(crate) struct NicRxToken<'a> {
    frame: &'a [u8],
}

/// Room to send one frame.
pub(crate) struct NicTxToken<'a> {
    dev: &'a dyn NetDevice,
    scratch: &'a mut Vec<u8>,
    backlog: &'a mut VecDeque<Vec<u8>>,
    counters: &'a NetCounters,
    retransmits: &'a mut RetransmitDetector,
}

impl phy::RxToken for NicRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for NicTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.scratch.clear();
        self.scratch.resize(len, 0);
        let result = f(self.scratch);
        NetCounters::bump(&self.counters.tx_frames);
        match self.retransmits.classify(self.scratch) {
            Segment::Retransmit => NetCounters::bump(&self.counters.tcp_retransmits),
            Segment::KeepAlive => NetCounters::bump(&self.counters.tcp_keepalives),
            Segment::New | Segment::Other => {}
        }
        // Keep the order: behind any held-back frame.
        if !self.backlog.is_empty() || self.dev.transmit(self.scratch).is_err() {
            NetCounters::bump(&self.counters.tx_deferred);
            self.backlog.push_back(self.scratch.clone());
        }
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
