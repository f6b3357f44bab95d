//! In-guest tests of the held-back transmit doorbell (`super::doorbell`)
//! against QEMU's virtio-net: a frame queued with the notification held
//! is not sent until the doorbell rings, the queue rings by itself after
//! `RING_AFTER` held notifications, and with holding off every frame is
//! announced at once. Interrupts stay off while they look, so neither the
//! timer tick nor a halting CPU rings meanwhile. Then the receive queue's
//! notifications, which go only to a device that asked: receive buffers
//! given back while the device has plenty notify nothing, and a device
//! that ran out is told of the next one (else the frames it holds back
//! would never arrive). Run with `cargo cloister ktest doorbell`.

use libos::net::NetDevice;
use x86_64::instructions::interrupts::without_interrupts;

use super::doorbell::RING_AFTER;
use super::ktests::{GATEWAY_IP, arp_request, drain_replies, nic, replied_within_ms, within_ms};
use super::virtio::MAX_FRAME;
use super::virtio::QUEUE_SIZE;
use crate::ktest;

/// Waits until the device finished every send and had time to ask for
/// the next notification again (QEMU re-enables it after its last pass
/// over the queue).
fn settle(nic: &super::VirtioNet, buf: &mut [u8]) {
    nic.ring();
    let idle = within_ms(5_000, || {
        drain_replies(nic, buf);
        nic.tx_in_flight() == 0
    });
    assert!(idle, "{} sends never completed", nic.tx_in_flight());
    within_ms(20, || false);
    drain_replies(nic, buf);
}

ktest!(
    fn a_held_frame_waits_for_the_doorbell() {
        let nic = nic();
        let bell = nic.bell();
        assert!(bell.holds(), "the doorbell is held by default");
        let mut buf = [0u8; MAX_FRAME];
        without_interrupts(|| {
            settle(&nic, &mut buf);
            let rung = bell.rung();
            nic.transmit(&arp_request(nic.mac(), GATEWAY_IP))
                .expect("transmit");
            assert_eq!(bell.owed(), 1, "the device did not ask for a notification");
            assert_eq!(bell.rung(), rung);
            // Slirp answers an ARP request at once when it sees one: no
            // answer while the notification is held means the device
            // did not look at the queue.
            let early = replied_within_ms(&nic, &mut buf, 200);
            assert!(!early, "a frame went out before the doorbell rang");
            nic.ring();
            assert_eq!((bell.owed(), bell.rung()), (0, rung + 1));
            let answered = replied_within_ms(&nic, &mut buf, 5_000);
            assert!(answered, "no ARP reply within 5 s of the doorbell");
        });
    }
);

ktest!(
    fn the_queue_rings_by_itself_after_ring_after_frames() {
        let nic = nic();
        let bell = nic.bell();
        let mut buf = [0u8; MAX_FRAME];
        let frame = arp_request(nic.mac(), GATEWAY_IP);
        without_interrupts(|| {
            settle(&nic, &mut buf);
            let rung = bell.rung();
            for i in 1..RING_AFTER {
                nic.transmit(&frame).expect("transmit");
                assert_eq!(bell.owed(), i, "frame {i}");
            }
            assert_eq!(bell.rung(), rung);
            nic.transmit(&frame).expect("transmit");
            assert_eq!((bell.owed(), bell.rung()), (0, rung + 1));
            let answered = replied_within_ms(&nic, &mut buf, 5_000);
            assert!(answered, "no ARP reply within 5 s");
        });
    }
);

ktest!(
    fn without_holding_every_frame_is_announced() {
        let nic = nic();
        let bell = nic.bell();
        let mut buf = [0u8; MAX_FRAME];
        nic.set_hold(false);
        without_interrupts(|| {
            settle(&nic, &mut buf);
            let rung = bell.rung();
            nic.transmit(&arp_request(nic.mac(), GATEWAY_IP))
                .expect("transmit");
            assert_eq!((bell.owed(), bell.rung()), (0, rung + 1));
            let answered = replied_within_ms(&nic, &mut buf, 5_000);
            assert!(answered, "no ARP reply within 5 s");
        });
        nic.set_hold(true);
    }
);

ktest!(
    fn buffers_given_back_to_a_device_with_plenty_notify_nothing() {
        let nic = nic();
        let bell = nic.bell();
        let mut buf = [0u8; MAX_FRAME];
        let frame = arp_request(nic.mac(), GATEWAY_IP);
        without_interrupts(|| {
            settle(&nic, &mut buf);
            let (rx, declined) = (bell.rx_rung(), bell.declined());
            for i in 0..8 {
                nic.transmit(&frame).expect("transmit");
                nic.ring();
                let answered = replied_within_ms(&nic, &mut buf, 5_000);
                assert!(answered, "no ARP reply {i} within 5 s");
            }
            // Each reply took a receive buffer and gave it back; the
            // device had the other 127 meanwhile and did not ask.
            assert_eq!(bell.rx_rung(), rx, "a receive buffer given back notified");
            assert!(
                bell.declined() >= declined + 8,
                "{} notifications declined, expected 8 or more",
                bell.declined() - declined
            );
        });
    }
);

ktest!(
    fn a_device_out_of_receive_buffers_is_told_of_the_next() {
        let nic = nic();
        let bell = nic.bell();
        let mut buf = [0u8; MAX_FRAME];
        let frame = arp_request(nic.mac(), GATEWAY_IP);
        // More requests than receive buffers, none taken meanwhile: the
        // device fills every buffer and QEMU holds the other replies back
        // until it hears of a free buffer.
        const BATCH: usize = 40;
        const BATCHES: usize = QUEUE_SIZE / BATCH + 3;
        let sent = BATCHES * BATCH;
        without_interrupts(|| {
            settle(&nic, &mut buf);
            for b in 0..BATCHES {
                for _ in 0..BATCH {
                    nic.transmit(&frame).expect("transmit");
                }
                nic.ring();
                let sent_all = within_ms(5_000, || nic.tx_in_flight() == 0);
                assert!(sent_all, "batch {b}: sends never completed");
            }
            // Time for slirp to answer them all.
            within_ms(300, || false);
            let rx = bell.rx_rung();
            let mut replies = 0;
            within_ms(5_000, || {
                replies += drain_replies(&nic, &mut buf);
                replies >= sent
            });
            assert_eq!(
                replies, sent,
                "replies held back by a device out of buffers never came"
            );
            assert!(
                bell.rx_rung() > rx,
                "the device that ran out was not notified"
            );
        });
    }
);
