//! [`LoopbackPhy`]: the loopback device of the loopback interfaces, like
//! smoltcp's `phy::Loopback` (what is sent is received, in order) but
//! letting the stack look at the next packet before smoltcp takes it, so
//! that a parked connection can be put back in the polled set first
//! (`super::sockets`).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest packet over loopback (as smoltcp's loopback device).
const LOOPBACK_MTU: usize = 65535;

/// A loopback device carrying IP packets (no link layer).
#[derive(Debug, Default)]
pub(crate) struct LoopbackPhy {
    queue: VecDeque<Vec<u8>>,
}

impl LoopbackPhy {
    /// The next packet to be received, if any.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        self.queue.front().map(Vec::as_slice)
    }

    /// Whether no packet is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A packet taken from the queue.
pub(crate) struct LoopbackRx(Vec<u8>);

/// Room to queue one packet.
pub(crate) struct LoopbackTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for LoopbackRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for LoopbackTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        self.0.push_back(packet);
        r
    }
}

impl Device for LoopbackPhy {
    type RxToken<'a> = LoopbackRx;
    type TxToken<'a> = LoopbackTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.queue.pop_front()?;
        Some((LoopbackRx(packet), LoopbackTx(&mut self.queue)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        Some(LoopbackTx(&mut self.queue))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = LOOPBACK_MTU;
        // Nothing corrupts a packet between two sockets of this machine.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}
