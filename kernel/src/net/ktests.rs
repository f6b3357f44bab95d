//! In-guest tests of the virtio-net driver against QEMU's user-mode network
//! (slirp): the guest is 10.0.2.15, the gateway 10.0.2.2 answers ARP. The
//! ktest runner gives every test guest a `-netdev user` card; these tests
//! fail when there is none.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use libos::error::Errno;
use libos::net::NetDevice;

use super::VirtioNet;
use super::virtio::{MAX_FRAME, QUEUE_SIZE};
use crate::ktest;

const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
pub(super) const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

pub(super) fn nic() -> Arc<VirtioNet> {
    super::virtio_device().expect("no network card: the ktest runner adds `-netdev user`")
}

/// A broadcast ARP request "who has `target`? tell 10.0.2.15".
pub(super) fn arp_request(mac: [u8; 6], target: [u8; 4]) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP);
    // Ethernet/IPv4, 6-byte and 4-byte addresses, operation 1 (request).
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&GUEST_IP);
    f[38..42].copy_from_slice(&target);
    f
}

/// The sender's MAC if `frame` is an ARP reply from `from` to us.
pub(super) fn arp_reply_from(frame: &[u8], mac: [u8; 6], from: [u8; 4]) -> Option<[u8; 6]> {
    let is_reply = frame.len() >= 42
        && frame[0..6] == mac
        && frame[12..14] == ETHERTYPE_ARP
        && frame[20..22] == [0, 2]
        && frame[28..32] == from
        && frame[38..42] == GUEST_IP;
    is_reply.then(|| frame[22..28].try_into().expect("6 bytes"))
}

/// Takes every waiting frame; returns how many were ARP replies from the
/// gateway.
pub(super) fn drain_replies(nic: &VirtioNet, buf: &mut [u8]) -> usize {
    let mut replies = 0;
    while let Some(len) = nic.receive(buf).expect("receive") {
        if arp_reply_from(&buf[..len], nic.mac(), GATEWAY_IP).is_some() {
            replies += 1;
        }
    }
    replies
}

/// Whether an ARP reply from the gateway arrives within `timeout_ms`
/// (every frame meanwhile is taken).
pub(super) fn replied_within_ms(nic: &VirtioNet, buf: &mut [u8], timeout_ms: u64) -> bool {
    within_ms(timeout_ms, || drain_replies(nic, buf) > 0)
}

/// Runs `step` until it returns `true` or `timeout_ms` pass.
pub(super) fn within_ms(timeout_ms: u64, mut step: impl FnMut() -> bool) -> bool {
    let deadline = crate::time::now_ns() + timeout_ms * 1_000_000;
    while crate::time::now_ns() < deadline {
        if step() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

ktest!(
    fn the_card_has_a_unicast_mac_and_takes_whole_frames() {
        let nic = nic();
        let mac = nic.mac();
        assert_eq!(mac[0] & 1, 0, "multicast MAC {mac:02x?}");
        assert_ne!(mac, [0; 6]);
        assert_eq!(nic.max_frame(), 1514);
        let too_long = alloc::vec![0u8; MAX_FRAME + 1];
        let e = nic.transmit(&too_long).unwrap_err();
        assert_eq!(e.errno(), Errno::EMSGSIZE);
    }
);

ktest!(
    fn the_slirp_gateway_answers_an_arp_request() {
        let nic = nic();
        let mac = nic.mac();
        let mut buf = [0u8; MAX_FRAME];
        // Frames from before (another test's replies) do not count.
        drain_replies(&nic, &mut buf);
        nic.transmit(&arp_request(mac, GATEWAY_IP))
            .expect("transmit");
        let mut gateway_mac = None;
        let answered = within_ms(5_000, || {
            while let Some(len) = nic.receive(&mut buf).expect("receive") {
                gateway_mac = gateway_mac.or(arp_reply_from(&buf[..len], mac, GATEWAY_IP));
            }
            gateway_mac.is_some()
        });
        assert!(answered, "no ARP reply from 10.0.2.2 within 5 s");
        let gw = gateway_mac.expect("answered");
        assert_eq!(gw[0] & 1, 0, "gateway MAC {gw:02x?}");
    }
);

ktest!(
    fn a_received_frame_raises_the_device_interrupt() {
        let nic = nic();
        let mut buf = [0u8; MAX_FRAME];
        drain_replies(&nic, &mut buf);
        let before = nic.stats().interrupts.load(Ordering::Relaxed);
        nic.transmit(&arp_request(nic.mac(), GATEWAY_IP))
            .expect("transmit");
        // Halt until the interrupt (or a timer tick) and look again.
        let fired = within_ms(5_000, || {
            x86_64::instructions::interrupts::enable_and_hlt();
            nic.stats().interrupts.load(Ordering::Relaxed) > before
        });
        assert!(fired, "no device interrupt within 5 s");
        let got = replied_within_ms(&nic, &mut buf, 5_000);
        assert!(got, "the interrupt came but no reply");
    }
);

ktest!(
    fn a_thousand_frames_never_jam_the_transmit_queue() {
        let nic = nic();
        let mac = nic.mac();
        let mut buf = [0u8; MAX_FRAME];
        drain_replies(&nic, &mut buf);
        let frame = arp_request(mac, GATEWAY_IP);
        let start_ns = crate::time::now_ns();
        let mut replies = 0;
        let mut refused = 0u64;
        for i in 0..1000 {
            let sent = within_ms(5_000, || match nic.transmit(&frame) {
                Ok(()) => true,
                Err(e) if e.errno() == Errno::EAGAIN => {
                    refused += 1;
                    // Keep the receive side moving meanwhile.
                    replies += drain_replies(&nic, &mut buf);
                    false
                }
                Err(e) => panic!("transmit {i}: {e:?}"),
            });
            assert!(sent, "frame {i}: the transmit queue stayed full for 5 s");
            replies += drain_replies(&nic, &mut buf);
        }
        let settled = within_ms(5_000, || {
            replies += drain_replies(&nic, &mut buf);
            nic.tx_in_flight() == 0
        });
        assert!(settled, "{} sends never completed", nic.tx_in_flight());
        // More replies than receive buffers: the buffers were recycled.
        within_ms(5_000, || {
            replies += drain_replies(&nic, &mut buf);
            replies > 2 * QUEUE_SIZE
        });
        let elapsed_us = (crate::time::now_ns() - start_ns) / 1000;
        crate::kprintln!(
            "net: 1000 frames sent ({refused} EAGAIN), {replies} ARP replies, {} ms",
            elapsed_us / 1000
        );
        assert!(
            replies > 2 * QUEUE_SIZE,
            "only {replies} replies to 1000 requests"
        );
    }
);

/// The guest port `tests/tests/net.rs` publishes.
const PUBLISHED_GUEST_PORT: u16 = 7777;

/// Whether `frame` is a TCP SYN to 10.0.2.15:`port`.
fn is_syn_to(frame: &[u8], port: u16) -> bool {
    if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ip = &frame[14..];
    let header_bytes = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ip[9] != 6 || ip[16..20] != GUEST_IP || ip.len() < header_bytes + 20 {
        return false;
    }
    let tcp = &ip[header_bytes..];
    let syn = tcp[13] & 0x02 != 0;
    u16::from_be_bytes([tcp[2], tcp[3]]) == port && syn
}

// Run by `tests/tests/net.rs`, which publishes a host port to
// PUBLISHED_GUEST_PORT and connects once the guest says it waits.
ktest!(
    #[ignore]
    fn a_host_connection_reaches_the_guest_through_publish() {
        let nic = nic();
        let mac = nic.mac();
        let mut buf = [0u8; MAX_FRAME];
        // Slirp learns the guest's MAC from its ARP request.
        nic.transmit(&arp_request(mac, GATEWAY_IP))
            .expect("transmit");
        let answered = replied_within_ms(&nic, &mut buf, 5_000);
        assert!(answered, "no ARP reply from 10.0.2.2 within 5 s");
        crate::kprintln!("net: waiting for a TCP SYN to port {PUBLISHED_GUEST_PORT}");
        let got = within_ms(60_000, || {
            let mut seen = false;
            while let Some(len) = nic.receive(&mut buf).expect("receive") {
                seen |= is_syn_to(&buf[..len], PUBLISHED_GUEST_PORT);
            }
            seen
        });
        assert!(got, "no SYN to port {PUBLISHED_GUEST_PORT} within 60 s");
    }
);
