//! [`NetDevice`]: raw Ethernet frames in and out, never blocking.

use crate::error::Result;

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
