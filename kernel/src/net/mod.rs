//! The network card: discovery at boot, the virtio-net driver and the
//! handle the LibOS's network stack is given.
//!
//! - [`mmio`]: virtio-mmio transports from the `virtio_mmio.device=` entries
//!   QEMU's `microvm` appends to the command line (with `acpi=off`);
//! - [`pci`]: otherwise a `virtio-net-pci` function on PCI bus 0 (`q35`,
//!   `pc`: the machines SEV-SNP and TDX guests run on), driven by the
//!   kernel's own transport, which checks what the host says;
//! - [`transport`]: either, for the driver;
//! - [`hal`]: DMA memory and address translation for `virtio-drivers`,
//!   over the shared DMA pool ([`crate::platform::dma`]), which [`init`]
//!   sets up first (`dma.pool=SIZE`);
//! - [`virtio`]: [`VirtioNet`], the driver, implementing
//!   [`libos::net::NetDevice`]: a received frame is copied once out of its
//!   slot into private memory; natively it lends its transmit slots
//!   (smoltcp writes frames longer than the LibOS's copybreak in place),
//!   on SEV-SNP and TDX it copies every frame to send into a slot;
//! - `lent`: the transmit slot set aside for the next frame written in
//!   place;
//! - [`doorbell`]: the transport under the driver, which holds the
//!   transmit queue's notification back until a CPU is about to halt, the
//!   timer ticks ([`ring`]) or [`doorbell::RING_AFTER`] are owed, so the
//!   frames of one burst of work reach the device together.
//!
//! [`init`] runs once at boot (after paging, the heap and the local APIC)
//! and logs `net: virtio-net <mac>` or `net: no device`; [`device`] then
//! hands the card to whoever builds the network stack. Receiving works by
//! polling ([`NetDevice::receive`] checks the used ring); the device's
//! interrupt is routed through the I/O APIC only so that an idle CPU (all
//! threads blocked, halted) wakes when a frame arrives instead of at the
//! next timer tick. Its handler just acknowledges the device.

#[cfg(feature = "ktest")]
mod dma_ktests;
pub mod doorbell;
#[cfg(feature = "ktest")]
mod doorbell_ktests;
pub mod hal;
#[cfg(feature = "ktest")]
mod ktests;
#[cfg(feature = "ktest")]
mod lending_ktests;
mod lent;
pub mod mmio;
pub mod pci;
mod pci_card;
mod slots;
pub mod transport;
pub mod virtio;

use alloc::sync::Arc;

use libos::boot::cmdline::KernelArgs;
use libos::net::{NetConfig, NetDevice};
use virtio_drivers::transport::DeviceType;

use transport::CardTransport;

use crate::platform::dma;

pub use virtio::VirtioNet;

/// Command-line keys this module reads.
pub const CMDLINE_KEYS: &[&str] = &[
    mmio::CMDLINE_KEY,
    NO_IRQ_KEY,
    doorbell::HOLD_KEY,
    OFFLOAD_KEY,
    dma::CMDLINE_KEY,
    pci::ASSIGN_KEY,
    pci::IRQ_KEY,
    libos::net::config::IP_KEY,
    libos::net::config::GATEWAY_KEY,
];

/// `net.poll`: leave the device interrupt unrouted (pure polling).
const NO_IRQ_KEY: &str = "net.poll";

/// `net.offload=off`: send every frame complete, even to a device that
/// offers to finish TCP checksums and cut long frames (`on`, the
/// default, accepts what it offers).
pub const OFFLOAD_KEY: &str = "net.offload";

static DEVICE: spin::Once<Option<Arc<VirtioNet>>> = spin::Once::new();
/// Where [`DEVICE`]'s transport is, if it is virtio-mmio (the ktests read
/// its queue registers).
static TRANSPORT: spin::Once<mmio::MmioDevice> = spin::Once::new();

/// Where the card was found.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// A virtio-mmio transport on the command line.
    Mmio(mmio::MmioDevice),
    /// A function on PCI.
    Pci(pci::PciDevice),
}

impl Found {
    /// How it interrupts.
    fn interrupt(&self) -> pci::PciInterrupt {
        match self {
            Self::Mmio(d) => pci::PciInterrupt::Intx(d.irq),
            Self::Pci(d) => d.interrupt,
        }
    }
}

impl core::fmt::Display for Found {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Mmio(d) => write!(f, "at {:#x}", d.paddr),
            Self::Pci(d) => write!(f, "on {d}"),
        }
    }
}

/// Finds the first virtio-net device announced on the command line (or,
/// without one, on PCI), brings it up and routes its interrupt. Call once,
/// after the heap and the local APIC are up; later calls do nothing.
pub fn init(args: &KernelArgs<'_>) {
    if DEVICE.is_completed() {
        return;
    }
    // Devices see only the shared pool: without it, no device.
    let bytes = dma::pool_bytes(args).unwrap_or_else(|_| {
        log::warn!(
            "ignoring {}=: expected a multiple of 4K from 256K to 64M",
            dma::CMDLINE_KEY
        );
        dma::DEFAULT_POOL_BYTES
    });
    match dma::init(bytes) {
        Ok(pool) => log::info!(
            "shared DMA pool: {} KiB at {:#x}",
            pool.bytes() >> 10,
            pool.paddr()
        ),
        Err(e) => {
            DEVICE.call_once(|| None);
            crate::kprintln!("net: no device (no shared DMA pool: {e:?})");
            return;
        }
    }
    let Some((nic, dev)) = probe(args) else {
        DEVICE.call_once(|| None);
        crate::kprintln!("net: no device");
        return;
    };
    // Published before the line is routed: the handler must find the
    // device to acknowledge it, or the level-triggered line would fire for
    // ever.
    if let Found::Mmio(d) = dev {
        TRANSPORT.call_once(|| d);
    }
    DEVICE.call_once(|| Some(nic.clone()));
    let irq = match dev.interrupt() {
        _ if args.has(NO_IRQ_KEY) => {
            nic.set_interrupts(false);
            alloc::string::String::from("polling")
        }
        pci::PciInterrupt::None => {
            log::warn!("net: the card {dev} has no routed interrupt; polling only");
            nic.set_interrupts(false);
            alloc::string::String::from("polling")
        }
        pci::PciInterrupt::Msix(entry) => {
            crate::arch::irq::register(crate::arch::trap::NET_VECTOR, handle_interrupt);
            entry.unmask();
            alloc::format!("msi-x vector {}", crate::arch::trap::NET_VECTOR)
        }
        pci::PciInterrupt::Intx(line) => {
            crate::arch::irq::register(crate::arch::trap::NET_VECTOR, handle_interrupt);
            match crate::arch::ioapic::route_level(line, crate::arch::trap::NET_VECTOR) {
                Ok(()) => alloc::format!("irq {line}"),
                Err(e) => {
                    log::warn!("net: cannot route irq {line}: {e:?}; polling only");
                    nic.set_interrupts(false);
                    alloc::string::String::from("polling")
                }
            }
        }
    };
    let (used, _) = dma::pool().map_or((0, 0), |p| p.usage());
    let offloads = nic.offloads();
    let offload = match (offloads.tcp_checksum, offloads.tso4_frame) {
        (_, Some(frame)) => alloc::format!("tcp checksum, segmentation up to {frame} bytes"),
        (true, None) => alloc::string::String::from("tcp checksum"),
        (false, None) => alloc::string::String::from("none"),
    };
    crate::kprintln!(
        "net: virtio-net {} {dev}, {irq}, offloads: {offload}, {} KiB of the shared DMA pool in use",
        format_mac(&nic.mac()),
        used >> 10
    );
}

/// The first working virtio-net device on the command line, or else on
/// PCI bus 0.
fn probe(args: &KernelArgs<'_>) -> Option<(Arc<VirtioNet>, Found)> {
    let (dev, transport) = match mmio::from_cmdline(args)
        .find_map(|d| mmio::open(&d, DeviceType::Network).map(|t| (d, t)))
    {
        Some((d, t)) => (Found::Mmio(d), CardTransport::Mmio(t)),
        None => {
            let options = pci::PciOptions {
                assign_always: args.get(pci::ASSIGN_KEY) == Some("always"),
                intx: args.get(pci::IRQ_KEY) == Some("intx"),
            };
            let (card, d) = pci::find(DeviceType::Network, options)?;
            (Found::Pci(d), CardTransport::Pci(card))
        }
    };
    let hold = match args.get(doorbell::HOLD_KEY) {
        None | Some("held") => true,
        Some("each") => false,
        Some(other) => {
            log::warn!(
                "ignoring {}={other}: expected `held` or `each`",
                doorbell::HOLD_KEY
            );
            true
        }
    };
    let offload = match args.get(OFFLOAD_KEY) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            log::warn!("ignoring {OFFLOAD_KEY}={other}: expected `on` or `off`");
            true
        }
    };
    match VirtioNet::new(transport, crate::platform::platform().kind(), hold, offload) {
        Ok(nic) => Some((Arc::new(nic), dev)),
        Err(e) => {
            log::error!("net: virtio-net {dev} failed: {e:?}");
            None
        }
    }
}

/// The external interface's addresses: QEMU user-mode networking's unless
/// the command line gives `net.ip=ADDR/PREFIX` (and `net.gateway=ADDR`), as
/// `cloister run --net tap` does; a bad value is logged and the default
/// kept.
pub fn config(args: &KernelArgs<'_>) -> NetConfig {
    let default = NetConfig::default();
    match default.with_args(
        args.get(libos::net::config::IP_KEY),
        args.get(libos::net::config::GATEWAY_KEY),
    ) {
        Ok(config) => config,
        Err(e) => {
            log::warn!(
                "ignoring the network words: {}= expects {}; using {}/{}",
                e.key,
                e.expected,
                default.addr,
                default.prefix_len
            );
            default
        }
    }
}

/// The prefix of [`summary`]'s line (the host tools look for it).
pub const SUMMARY_PREFIX: &str = "net counters:";

/// The end-of-run line of the network path's stall counters: the stack's
/// (`libos::net::counters`: sent frames, TCP retransmissions, frames held
/// back for a full device queue, receive errors, frames moved in place) and the device's (sends
/// refused for a full queue, frames dropped, receive bursts of a whole
/// ring, interrupts, transmit and receive notifications sent, and those
/// the driver asked for that the device had not: `doorbell`). Formatting it takes no lock and allocates nothing,
/// so the NMI stop path may print it too.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    stack: libos::net::counters::CountersSnapshot,
    tx_queue_full: u64,
    rx_dropped: u64,
    rx_ring_full: u64,
    interrupts: u64,
    doorbells: u64,
    rx_notifies: u64,
    notifies_declined: u64,
}

impl core::fmt::Display for Summary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{SUMMARY_PREFIX} {} dev_tx_queue_full={} dev_rx_dropped={} dev_rx_ring_full={} dev_interrupts={} dev_doorbells={} dev_rx_notifies={} dev_notifies_declined={}",
            self.stack,
            self.tx_queue_full,
            self.rx_dropped,
            self.rx_ring_full,
            self.interrupts,
            self.doorbells,
            self.rx_notifies,
            self.notifies_declined
        )
    }
}

/// The counters of `stack` and the card; `None` without a card.
pub fn summary(stack: &libos::net::NetStack) -> Option<Summary> {
    let stack_counters = stack.counters()?;
    let Some(Some(nic)) = DEVICE.get() else {
        return None;
    };
    let s = nic.stats();
    let get = |c: &core::sync::atomic::AtomicU64| c.load(core::sync::atomic::Ordering::Relaxed);
    Some(Summary {
        stack: stack_counters,
        tx_queue_full: get(&s.tx_queue_full),
        rx_dropped: get(&s.rx_dropped),
        rx_ring_full: get(&s.rx_ring_full),
        interrupts: get(&s.interrupts),
        doorbells: nic.bell().rung(),
        rx_notifies: nic.bell().rx_rung(),
        notifies_declined: nic.bell().declined(),
    })
}

/// The network card, if [`init`] found one: what the run module hands to
/// the LibOS's network stack (`libos::net::NetStack::new(device, config,
/// platform)` on the `net-libos` branch). `None` means loopback only.
///
/// Its methods never block and may be called from any context, interrupt
/// handlers included (the lock is taken with interrupts off).
pub fn device() -> Option<Arc<dyn NetDevice>> {
    virtio_device().map(|d| d as Arc<dyn NetDevice>)
}

/// The card as its concrete type (statistics, tests).
pub fn virtio_device() -> Option<Arc<VirtioNet>> {
    DEVICE.get().cloned().flatten()
}

/// The device interrupt (vector [`crate::arch::trap::NET_VECTOR`]), before
/// the end-of-interrupt.
pub fn handle_interrupt() {
    if let Some(Some(nic)) = DEVICE.get() {
        nic.handle_interrupt();
    }
    // Frames arrived: waits on sockets re-check.
    crate::task::bump_epoch();
}

/// Rings the card's held-back transmit doorbell, if one is owed
/// (`doorbell`): a CPU is about to halt, or the timer ticked.
#[inline]
pub fn ring() {
    if let Some(Some(nic)) = DEVICE.get() {
        nic.ring();
    }
}

/// `52:54:00:12:34:56`.
pub fn format_mac(mac: &[u8; 6]) -> alloc::string::String {
    let [a, b, c, d, e, f] = *mac;
    alloc::format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
