//! `NicPhy` over the test cards: frames to send written in place into a
//! card that lends its buffers, short ones copied, the backlog's order
//! when a lending card is full, and frames copied both ways through a
//! card that does not lend.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;

use super::{NetDevice, NicPhy};
use crate::net::counters::NetCounters;
use crate::net::testdev::{PairEnd, PairStats, device_pair, lending_pair};

/// A NIC that writes every frame to send in place where the card lends
/// (no copybreak): these tests' frames are short.
fn nic(card: &Arc<PairEnd>) -> (NicPhy, Arc<NetCounters>) {
    nic_with_copybreak(card, 0)
}

fn nic_with_copybreak(card: &Arc<PairEnd>, copybreak: usize) -> (NicPhy, Arc<NetCounters>) {
    let counters = Arc::new(NetCounters::default());
    let dev: Arc<dyn NetDevice> = card.clone();
    (NicPhy::new(dev, counters.clone(), copybreak), counters)
}

/// A frame of `len` bytes, each `tag` (no protocol: these tests look at
/// bytes, not at smoltcp's parse).
fn frame(tag: u8, len: usize) -> Vec<u8> {
    vec![tag; len]
}

/// smoltcp's receive: the frame's bytes and where they lay.
fn take(phy: &mut NicPhy) -> Option<(Vec<u8>, usize)> {
    let (rx, _tx) = phy.receive(Instant::ZERO)?;
    Some(rx.consume(|f| (f.to_vec(), f.as_ptr() as usize)))
}

/// smoltcp's send of a frame of `len` bytes `tag`: where it was written.
fn send(phy: &mut NicPhy, tag: u8, len: usize) -> usize {
    let tx = phy.transmit(Instant::ZERO).expect("room to send");
    tx.consume(len, |b| {
        b.fill(tag);
        b.as_ptr() as usize
    })
}

fn get(c: &core::sync::atomic::AtomicU64) -> u64 {
    c.load(core::sync::atomic::Ordering::Relaxed)
}

#[test]
fn frames_to_send_up_to_the_copybreak_are_copied_and_longer_ones_lent() {
    let (card, _peer) = lending_pair(8);
    let (mut phy, counters) = nic_with_copybreak(&card, 100);
    // The short frame is built here and copied, the long one written into
    // the card's buffer.
    let short_at = send(&mut phy, 3, 100);
    let long_at = send(&mut phy, 4, 101);
    let sent = card.take_sent();
    assert_eq!(sent, [frame(3, 100), frame(4, 101)]);
    assert_ne!(sent[0].as_ptr() as usize, short_at);
    assert_eq!(sent[1].as_ptr() as usize, long_at);
    assert_eq!(PairStats::get(&card.stats.tx_copied), 1);
    assert_eq!(PairStats::get(&card.stats.tx_lent), 1);
    assert_eq!(get(&counters.tx_short_copied), 1);
    assert_eq!(get(&counters.tx_in_place), 1);
    assert_eq!(get(&counters.tx_frames), 2);
}

#[test]
fn a_lending_card_gets_frames_written_into_its_own_buffer() {
    let (card, _peer) = lending_pair(8);
    let (mut phy, counters) = nic(&card);
    let written_at = send(&mut phy, 7, 60);
    assert_eq!(written_at, PairStats::get(&card.stats.last_lent_addr));
    let sent = card.take_sent();
    assert_eq!(sent, [frame(7, 60)]);
    // The very buffer smoltcp wrote crossed the wire.
    assert_eq!(sent[0].as_ptr() as usize, written_at);
    assert_eq!(PairStats::get(&card.stats.tx_lent), 1);
    assert_eq!(PairStats::get(&card.stats.tx_copied), 0);
    assert_eq!(get(&counters.tx_frames), 1);
    assert_eq!(get(&counters.tx_in_place), 1);
    assert_eq!(get(&counters.tx_deferred), 0);
}

#[test]
fn a_full_lending_card_falls_back_to_the_backlog_and_keeps_the_order() {
    let (card, _peer) = lending_pair(2);
    let (mut phy, counters) = nic(&card);
    for tag in 0..5 {
        send(&mut phy, tag, 60 + usize::from(tag));
    }
    // Two in place; the card was full for the third, and the last two
    // went behind it although the card had no more room anyway.
    assert_eq!(card.take_sent(), [frame(0, 60), frame(1, 61)]);
    assert_eq!(get(&counters.tx_in_place), 2);
    assert_eq!(get(&counters.tx_deferred), 3);
    // Room again, but frames are held back: a new one goes behind them
    // instead of overtaking them in place.
    card.set_limit(64);
    send(&mut phy, 5, 65);
    assert_eq!(get(&counters.tx_in_place), 2, "overtook the backlog");
    assert!(!phy.flush(), "the backlog drains into an empty card");
    let want: Vec<Vec<u8>> = (2..6).map(|t| frame(t, 60 + usize::from(t))).collect();
    assert_eq!(card.take_sent(), want);
    // Backlog empty: in place again.
    send(&mut phy, 6, 66);
    assert_eq!(card.take_sent(), [frame(6, 66)]);
    assert_eq!(get(&counters.tx_in_place), 3);
    assert_eq!(get(&counters.tx_frames), 7);
    assert_eq!(PairStats::get(&card.stats.tx_copied), 4);
}

#[test]
fn a_copying_card_still_works_through_the_private_buffers() {
    let (card, _peer) = device_pair(8);
    let (mut phy, counters) = nic(&card);
    card.inject(&frame(3, 80));
    card.inject(&frame(4, 90));
    assert_eq!(phy.peek(), Some(&frame(3, 80)[..]));
    let (first, _) = take(&mut phy).expect("a frame");
    assert_eq!(first, frame(3, 80));
    let (second, _) = take(&mut phy).expect("a frame");
    assert_eq!(second, frame(4, 90));
    send(&mut phy, 5, 100);
    assert_eq!(card.take_sent(), [frame(5, 100)]);
    assert_eq!(PairStats::get(&card.stats.rx_copied), 2);
    assert_eq!(PairStats::get(&card.stats.tx_copied), 1);
    assert_eq!(get(&counters.rx_frames), 2);
    assert_eq!(get(&counters.tx_frames), 1);
    assert_eq!(get(&counters.tx_in_place), 0);
}
