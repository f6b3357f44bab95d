//! In-guest proof that the virtio-net device sees only the shared DMA
//! pool: during a burst of traffic to the slirp gateway, read back from
//! the device's own registers where each of its virtqueues lies, check the
//! queues lie in the pool, copy each descriptor table out of the pool and
//! check every address a descriptor (or an indirect table) gives the
//! device lies in the pool too. Run with `cargo cloister ktest dma`.

use libos::error::Errno;
use libos::net::NetDevice;

use super::ktests::{GATEWAY_IP, arp_request, drain_replies, nic, within_ms};
use super::virtio::{MAX_FRAME, QUEUE_SIZE};
use crate::ktest;
use crate::platform::dma::{self, SharedPool};
use crate::platform::mmio::{DeviceRegisters, map_registers};

// virtio-mmio registers (virtio 1.2, 4.2.2; legacy 4.2.4).
const VERSION: u64 = 0x004;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_PFN: u64 = 0x040;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
/// virtio-net's queues: 0 receive, 1 transmit.
const QUEUES: [u32; 2] = [0, 1];

/// Bytes of one descriptor, and its flag for an indirect table.
const DESC_BYTES: usize = 16;
const DESC_F_INDIRECT: u16 = 4;
/// Bytes of the avail and used rings of a queue of [`QUEUE_SIZE`].
const AVAIL_BYTES: usize = 2 * (3 + QUEUE_SIZE);
const USED_BYTES: usize = 6 + 8 * QUEUE_SIZE;

/// Where the device was told queue `queue` lies: descriptor table, avail
/// ring, used ring.
fn queue_addresses(regs: &DeviceRegisters, queue: u32) -> [u64; 3] {
    regs.write32(QUEUE_SEL, queue);
    assert!(
        regs.read32(QUEUE_NUM_MAX) as usize >= QUEUE_SIZE,
        "queue {queue}: the device offers fewer than {QUEUE_SIZE} entries"
    );
    let read64 = |low| u64::from(regs.read32(low)) | u64::from(regs.read32(low + 4)) << 32;
    if regs.read32(VERSION) == 1 {
        // Legacy: one page-aligned area, used ring on the next page.
        let desc = u64::from(regs.read32(QUEUE_PFN)) * 4096;
        let avail = desc + (QUEUE_SIZE * DESC_BYTES) as u64;
        let used = (avail + AVAIL_BYTES as u64).next_multiple_of(4096);
        [desc, avail, used]
    } else {
        [
            read64(QUEUE_DESC_LOW),
            read64(QUEUE_DRIVER_LOW),
            read64(QUEUE_DEVICE_LOW),
        ]
    }
}

/// What one walk of the queues found.
#[derive(Debug, Default)]
struct Walk {
    /// Descriptors holding a buffer, per queue.
    in_use: [usize; 2],
    /// Addresses outside the pool, described.
    outside: alloc::vec::Vec<alloc::string::String>,
}

impl Walk {
    /// Fails the test if anything lay outside the pool (naming the first
    /// few).
    fn assert_inside(&self, when: core::fmt::Arguments<'_>) {
        assert!(
            self.outside.is_empty(),
            "{when}: {} addresses outside the pool, first {:?}",
            self.outside.len(),
            &self.outside[..self.outside.len().min(4)]
        );
    }
}

/// Checks the descriptors of `table` (`count` of them, at a pool
/// address), following indirect tables one level.
fn check_table(pool: &SharedPool, table: u64, count: usize, walk: &mut Walk, queue: usize) {
    let mut bytes = alloc::vec![0u8; count * DESC_BYTES];
    if !pool.read(table, &mut bytes) {
        walk.outside.push(alloc::format!(
            "queue {queue}: table {table:#x} not in the pool"
        ));
        return;
    }
    for (i, d) in bytes.chunks_exact(DESC_BYTES).enumerate() {
        let addr = u64::from_le_bytes(d[0..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(d[8..12].try_into().expect("4 bytes")) as usize;
        let flags = u16::from_le_bytes([d[12], d[13]]);
        if addr == 0 && len == 0 {
            continue;
        }
        walk.in_use[queue] += 1;
        if !pool.contains(addr, len) {
            walk.outside.push(alloc::format!(
                "queue {queue} descriptor {i}: {addr:#x}+{len} outside the pool"
            ));
        } else if flags & DESC_F_INDIRECT != 0 {
            check_table(pool, addr, len / DESC_BYTES, walk, queue);
        }
    }
}

/// Reads every queue's location from the device and walks its
/// descriptors, with the driver locked.
fn walk_queues(regs: &DeviceRegisters, pool: &SharedPool) -> Walk {
    let mut walk = Walk::default();
    nic().while_locked(|| {
        for queue in QUEUES {
            let q = queue as usize;
            let [desc, avail, used] = queue_addresses(regs, queue);
            for (what, addr, len) in [
                ("descriptor table", desc, QUEUE_SIZE * DESC_BYTES),
                ("avail ring", avail, AVAIL_BYTES),
                ("used ring", used, USED_BYTES),
            ] {
                if !pool.contains(addr, len) {
                    walk.outside.push(alloc::format!(
                        "queue {q}: {what} {addr:#x}+{len} outside the pool"
                    ));
                }
            }
            check_table(pool, desc, QUEUE_SIZE, &mut walk, q);
        }
    });
    walk
}

ktest!(
    fn dma_every_descriptor_lies_in_the_shared_pool_during_traffic() {
        let nic = nic();
        let pool = dma::pool().expect("net::init set the pool up");
        let dev = *super::TRANSPORT.get().expect("net::init found the card");
        let regs = map_registers(dev.paddr, dev.size_bytes).expect("registers map");
        let mut buf = [0u8; MAX_FRAME];
        drain_replies(&nic, &mut buf);

        let idle = walk_queues(&regs, pool);
        idle.assert_inside(format_args!("idle"));
        assert_eq!(idle.in_use[0], QUEUE_SIZE, "every receive slot is posted");

        // A burst: send without draining, walking the queues after each
        // send, so transmit descriptors are caught in flight.
        let frame = arp_request(nic.mac(), GATEWAY_IP);
        let (mut walks, mut most_tx, mut replies) = (0, 0, 0);
        for i in 0..200 {
            let sent = within_ms(5_000, || match nic.transmit(&frame) {
                Ok(()) => true,
                Err(e) if e.errno() == Errno::EAGAIN => {
                    replies += drain_replies(&nic, &mut buf);
                    false
                }
                Err(e) => panic!("transmit {i}: {e:?}"),
            });
            assert!(sent, "frame {i}: the transmit queue stayed full for 5 s");
            let w = walk_queues(&regs, pool);
            walks += 1;
            w.assert_inside(format_args!("after frame {i}"));
            most_tx = most_tx.max(w.in_use[1]);
            if i % 16 == 15 {
                replies += drain_replies(&nic, &mut buf);
            }
        }
        // Replies arrive into receive slots: walk while taking them.
        within_ms(5_000, || {
            replies += drain_replies(&nic, &mut buf);
            let w = walk_queues(&regs, pool);
            walks += 1;
            w.assert_inside(format_args!("receiving"));
            replies > QUEUE_SIZE
        });
        let (used, peak) = pool.usage();
        crate::kprintln!(
            "dma: {walks} walks, up to {most_tx} transmit descriptors in flight, \
             {replies} replies; pool {} KiB, {} KiB in use (peak {} KiB)",
            pool.bytes() >> 10,
            used >> 10,
            peak >> 10
        );
        assert!(
            most_tx > 0,
            "no transmit descriptor was ever seen in flight"
        );
        assert!(replies > 0, "no reply from the gateway: no receive traffic");
    }
);
