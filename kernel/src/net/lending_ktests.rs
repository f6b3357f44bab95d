//! In-guest tests of how frames to send cross the driver: on the native
//! backend the virtio-net transmit slots are lent (an ARP request written
//! into a slot in the shared DMA pool's window; smoltcp over the card
//! writing every frame in place without a copybreak, and with the default
//! one copying the short ARP request and writing a 1,000-byte datagram in
//! place), and the copying of SEV-SNP and TDX, forced here, still carries
//! frames both ways and the stack over it. Run with `cargo cloister ktest
//! lending`.

use alloc::sync::Arc;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::{AtomicU64, Ordering};

use libos::error::Errno;
use libos::net::offload::TxOffload;
use libos::net::{COPYBREAK, NetConfig, NetDevice, NetStack, SockAddr, Socket, UdpSocket};

use super::VirtioNet;
use super::ktests::{
    GATEWAY_IP, arp_reply_from, arp_request, drain_replies, nic, replied_within_ms, within_ms,
};
use super::virtio::MAX_FRAME;
use crate::ktest;
use crate::platform::dma::{self, DMA_WINDOW_BASE};
use crate::platform::{PlatformKind, platform};

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Whether `frame` lies in the shared DMA pool's window.
fn in_pool(frame: &[u8]) -> bool {
    let pool = dma::pool().expect("the pool the card's slots come from");
    let (start, end) = (DMA_WINDOW_BASE, DMA_WINDOW_BASE + pool.bytes());
    let at = frame.as_ptr() as u64;
    at >= start && at + frame.len() as u64 <= end
}

/// Sets the card's mode for a test and restores the platform's after it.
struct Mode(Arc<VirtioNet>);

impl Mode {
    fn lending(nic: &Arc<VirtioNet>, on: bool) -> Self {
        nic.set_lending(on);
        Self(nic.clone())
    }
}

impl Drop for Mode {
    fn drop(&mut self) {
        let native = !platform().kind().protects_private_memory();
        self.0.set_lending(native);
    }
}

ktest!(
    fn natively_the_card_lends_its_slots() {
        assert_eq!(platform().kind(), PlatformKind::Native);
        assert!(!PlatformKind::Native.protects_private_memory());
        assert!(PlatformKind::SevSnp.protects_private_memory());
        assert!(PlatformKind::Tdx.protects_private_memory());
        assert!(nic().lends(), "the native backend copies frames");
    }
);

ktest!(
    fn an_arp_request_is_written_in_place_in_a_slot() {
        let nic = nic();
        let _mode = Mode::lending(&nic, true);
        let mac = nic.mac();
        let mut buf = [0u8; MAX_FRAME];
        drain_replies(&nic, &mut buf);
        let s = nic.stats();
        let tx_before = get(&s.tx_in_place);
        let request = arp_request(mac, GATEWAY_IP);
        let mut written_in_pool = false;
        nic.transmit_with(request.len(), &mut |slot| {
            written_in_pool = in_pool(slot);
            slot.copy_from_slice(&request);
            TxOffload::NONE
        })
        .expect("a free transmit slot");
        assert!(written_in_pool, "the frame was not written into a slot");
        assert_eq!(get(&s.tx_in_place), tx_before + 1);
        // The request as written went out: the gateway answers it.
        let answered = within_ms(5_000, || {
            let mut replies = 0;
            while let Some(n) = nic.receive(&mut buf).expect("receive") {
                replies += usize::from(arp_reply_from(&buf[..n], mac, GATEWAY_IP).is_some());
            }
            replies > 0
        });
        assert!(answered, "no ARP reply from 10.0.2.2 within 5 s");
    }
);

ktest!(
    fn forced_copying_refuses_to_lend_and_still_carries_frames() {
        let nic = nic();
        let _mode = Mode::lending(&nic, false);
        let mut buf = [0u8; MAX_FRAME];
        drain_replies(&nic, &mut buf);
        let s = nic.stats();
        let tx_before = get(&s.tx_in_place);
        let mut called = false;
        let e = nic
            .transmit_with(42, &mut |_| {
                called = true;
                TxOffload::NONE
            })
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EOPNOTSUPP);
        assert!(!called, "fill ran although nothing was lent");
        nic.transmit(&arp_request(nic.mac(), GATEWAY_IP))
            .expect("transmit");
        let got = replied_within_ms(&nic, &mut buf, 5_000);
        assert!(got, "no ARP reply from 10.0.2.2 within 5 s");
        assert_eq!(get(&s.tx_in_place), tx_before);
    }
);

/// The kernel's clock, for a stack of the test's own.
#[derive(Debug)]
struct KernelClock;

impl libos::platform::Clock for KernelClock {
    fn monotonic_ns(&self) -> u64 {
        crate::time::now_ns()
    }
    fn realtime_ns(&self) -> u64 {
        crate::time::now_ns()
    }
}

/// smoltcp on the card sends a datagram to the gateway (an ARP exchange
/// first); returns the stack's counters once the ARP reply came in and
/// the datagram went out.
/// A stack over the card with `copybreak` sends a datagram of `len`
/// bytes to the gateway; its counters once the ARP exchange and the
/// datagram are through.
fn stack_sends_a_datagram(
    nic: &Arc<VirtioNet>,
    copybreak: usize,
    len: usize,
) -> libos::net::counters::CountersSnapshot {
    let mut buf = [0u8; MAX_FRAME];
    drain_replies(nic, &mut buf);
    let dev: Arc<dyn NetDevice> = nic.clone();
    let config = NetConfig {
        copybreak,
        ..NetConfig::default()
    };
    let stack = Arc::new(NetStack::new(Some(dev), config, Arc::new(KernelClock)));
    let udp = UdpSocket::new(stack.clone(), 0);
    // slirp passes it to the host's 127.0.0.1:9 (discard), or drops it.
    let to = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::from(GATEWAY_IP), 9));
    let datagram = alloc::vec![0x5a; len];
    assert_eq!(udp.send(&datagram, Some(&to)).expect("send"), len);
    let mut counters = stack.counters().expect("a stack with a card counts");
    // ARP request out, reply in, the datagram out.
    let done = within_ms(5_000, || {
        stack.poll();
        counters = stack.counters().expect("counters");
        counters.rx_frames >= 1 && counters.tx_frames >= 2
    });
    assert!(done, "the stack did not get the datagram out: {counters}");
    crate::kprintln!("net: stack over the card: {counters}");
    counters
}

ktest!(
    fn smoltcp_writes_frames_in_place_in_the_slots() {
        let nic = nic();
        let _mode = Mode::lending(&nic, true);
        let s = nic.stats();
        let tx_before = get(&s.tx_in_place);
        // No copybreak: the short ARP request is written in place too.
        let c = stack_sends_a_datagram(&nic, 0, 4);
        assert_eq!(c.tx_in_place, c.tx_frames, "{c}");
        // The card agrees.
        assert_eq!(get(&s.tx_in_place) - tx_before, c.tx_in_place, "{c}");
    }
);

ktest!(
    fn smoltcp_copies_frames_up_to_the_copybreak_and_writes_longer_ones_in_place() {
        let nic = nic();
        let _mode = Mode::lending(&nic, true);
        // The ARP request is short: copied. The datagram is not: written
        // in place.
        let c = stack_sends_a_datagram(&nic, COPYBREAK, 1000);
        assert!(c.tx_in_place >= 1 && c.tx_short_copied >= 1, "{c}");
        assert_eq!(c.tx_in_place + c.tx_short_copied, c.tx_frames, "{c}");
    }
);

ktest!(
    fn smoltcp_over_forced_copying_copies_every_frame() {
        let nic = nic();
        let _mode = Mode::lending(&nic, false);
        let c = stack_sends_a_datagram(&nic, 0, 1000);
        assert_eq!(c.tx_in_place, 0, "{c}");
        assert!(c.tx_frames >= 2 && c.rx_frames >= 1, "{c}");
    }
);
