//! The virtio card on PCI: QEMU's `q35` and `pc` machines (the ones
//! SEV-SNP and TDX guests run on) have no virtio-mmio, so the card is a
//! `virtio-net-pci` function there, found on bus 0 through configuration
//! space ([`crate::platform::pci::PortCam`]) and driven through
//! [`PciCard`], the kernel's own modern (virtio 1.0) PCI transport.
//!
//! Why its own: on SEV-SNP and TDX the host answers every configuration
//! read and owns the BARs, and `virtio-drivers` 0.13's PCI transport
//! trusts them (it follows the capability list without a bound, computes
//! offsets in `u8`/`u32` arithmetic that can wrap, hands the result to the
//! HAL's mapping callback, which can only panic on failure, and indexes the
//! notification area with the device's `queue_notify_off` by `unwrap`).
//! Here the capability list is read and checked on its own
//! ([`libos::net::virtio_pci::parse`], host-tested, random lists
//! included): each structure must lie inside its BAR, and is then mapped
//! as a register range of exactly its length, so every later access is
//! bounded by what was checked once. A card whose layout fails the check
//! is logged and left unused.
//!
//! **BARs.** Under plain QEMU, SeaBIOS assigns them before the PVH entry.
//! An IGVM launch has no firmware: a memory BAR left at 0 gets an address
//! from the kernel ([`libos::net::virtio_pci::place_bars`], naturally
//! aligned in `[0xE000_0000, 0xFEC0_0000)`, clear of the other functions'
//! BARs). `net.pci_assign=always` does that even where the firmware did,
//! which is how the path is tested under plain QEMU.
//!
//! **Interrupts.** MSI-X when the function has it (QEMU's does): table
//! entry 0 sends [`crate::arch::trap::NET_VECTOR`] to this CPU's local
//! APIC, every queue raises it, and an interrupt costs no device access
//! but the end of interrupt (no ISR read, no I/O APIC), nor any firmware
//! routing. Otherwise, or with `net.pci_irq=intx`, the INTx line the
//! firmware routed (`q35`'s PIRQ routing raises the same I/O APIC input as
//! the 8259 line it writes to the interrupt-line register),
//! level-triggered, lowered by the ISR read.
//!
//! Only bus 0 is scanned: a card behind a PCIe root port or bridge is not
//! found (`-device virtio-net-pci` without `bus=` sits on bus 0).

use alloc::string::String;
use alloc::vec::Vec;

use libos::net::virtio_pci::{self, BarRequest, Layout, Structure};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, HeaderType, PciRoot,
};
use virtio_drivers::transport::pci::virtio_device_type;

use super::doorbell::{QUEUE_RECEIVE, QUEUE_TRANSMIT};
use super::pci_card::common;
pub use super::pci_card::{PciCard, QueueNotify};
use crate::platform::mmio::{self, DeviceRegisters};
use crate::platform::pci::PortCam;

/// The interrupt line and pin register.
const REG_INTERRUPT: u8 = 0x3c;
/// Largest BAR used (virtio-net-pci's are 4 and 16 KiB).
const MAX_BAR_BYTES: u64 = 1 << 20;
/// Where the kernel places BARs no firmware placed: inside `q35`'s 32-bit
/// PCI window, above its MMCONFIG area, below the I/O APIC.
const BAR_WINDOW: (u64, u64) = (0xe000_0000, 0xfec0_0000);
/// The local APIC's MSI address window.
const MSI_ADDRESS: u32 = 0xfee0_0000;
/// Message control's MSI-X enable and function mask bits, in the
/// capability's first dword.
const MSIX_ENABLE: u32 = 1 << 31;
const MSIX_FUNCTION_MASK: u32 = 1 << 30;

/// `net.pci_assign=always`: place the card's BARs even where a firmware
/// did (tests the firmware-free path).
pub const ASSIGN_KEY: &str = "net.pci_assign";
/// `net.pci_irq=intx`: keep the INTx line even where MSI-X exists.
pub const IRQ_KEY: &str = "net.pci_irq";

/// How to bring a PCI card up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PciOptions {
    /// Place every memory BAR, not only those left at 0.
    pub assign_always: bool,
    /// Use INTx even where MSI-X exists.
    pub intx: bool,
}

/// How the card interrupts.
#[derive(Debug, Clone, Copy)]
pub enum PciInterrupt {
    /// MSI-X table entry 0, masked until [`MsixEntry::unmask`].
    Msix(MsixEntry),
    /// The INTx line, as an I/O APIC input (a virtio-mmio card's line
    /// too).
    Intx(u32),
    /// None routed: the driver polls.
    None,
}

/// MSI-X table entry 0 of the card.
#[derive(Debug, Clone, Copy)]
pub struct MsixEntry(DeviceRegisters);

impl MsixEntry {
    /// Lets the entry's message through (once the handler is in place).
    pub fn unmask(&self) {
        self.0.write32(12, 0);
    }
}

/// A virtio function found on PCI.
#[derive(Debug, Clone, Copy)]
pub struct PciDevice {
    /// Bus, device and function.
    pub function: DeviceFunction,
    /// How it interrupts.
    pub interrupt: PciInterrupt,
    /// Whether the kernel placed its BARs.
    pub placed: bool,
}

impl core::fmt::Display for PciDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let placed = if self.placed {
            ", BARs placed by the kernel"
        } else {
            ""
        };
        write!(
            f,
            "PCI {} (one write per notification{placed})",
            self.function
        )
    }
}

/// The interrupt line the firmware wrote for a function whose interrupt
/// pin is INTA–INTD; `None` for no pin or an unrouted line (0 or 0xff).
pub fn interrupt_line(line_pin: u32) -> Option<u32> {
    let line = line_pin & 0xff;
    let pin = (line_pin >> 8) & 0xff;
    ((1..=4).contains(&pin) && line != 0 && line != 0xff).then_some(line)
}

/// The first function on bus 0 that holds a virtio device of `kind` and
/// opens; functions that do not (BARs that cannot be placed or mapped, a
/// layout that fails the checks) are logged and skipped.
pub fn find(kind: DeviceType, options: PciOptions) -> Option<(PciCard, PciDevice)> {
    let mut root = PciRoot::new(PortCam);
    // (function, ours, has the standard header whose six BARs it sizes).
    let all: Vec<(DeviceFunction, bool, bool)> = root
        .enumerate_bus(0)
        .map(|(df, info)| {
            let standard = info.header_type == HeaderType::Standard;
            (
                df,
                standard && virtio_device_type(&info) == Some(kind),
                standard,
            )
        })
        .collect();
    // Other functions whose BARs a placement must avoid (bridges have
    // bus numbers where a standard header has BARs 2–5: left alone).
    let others = |df: DeviceFunction| {
        all.iter()
            .filter(move |&&(o, _, standard)| standard && o != df)
            .map(|&(o, _, _)| o)
    };
    all.iter()
        .filter(|(_, ours, _)| *ours)
        .find_map(
            |&(df, _, _)| match open(&mut root, df, others(df).collect(), kind, options) {
                Ok(found) => Some(found),
                Err(why) => {
                    log::warn!("virtio-pci {df}: {why}: not used");
                    None
                }
            },
        )
}

/// Memory BARs: (address, size) per index, `(0, 0)` for I/O, absent or
/// oversized ones; and whether any memory BAR is unassigned.
fn memory_bars(bars: &[Option<BarInfo>; 6]) -> ([(u64, u64); 6], bool) {
    let placed: [(u64, u64); 6] = core::array::from_fn(|i| {
        bars[i]
            .as_ref()
            .and_then(|b| b.memory_address_size())
            .filter(|&(addr, bytes)| addr != 0 && bytes <= MAX_BAR_BYTES)
            .unwrap_or((0, 0))
    });
    let unassigned = bars
        .iter()
        .flatten()
        .any(|b| b.memory_address_size().is_some_and(|(addr, _)| addr == 0));
    (placed, unassigned)
}

/// Places `df`'s memory BARs, clear of `others`' (decoding off meanwhile).
fn place(
    root: &mut PciRoot<PortCam>,
    df: DeviceFunction,
    bars: &[Option<BarInfo>; 6],
    others: &[DeviceFunction],
) -> Result<(), String> {
    let mut taken = Vec::new();
    for &o in others {
        let Ok(theirs) = root.bars(o) else { continue };
        for (addr, bytes) in theirs
            .iter()
            .flatten()
            .filter_map(BarInfo::memory_address_size)
        {
            if addr != 0 {
                taken.push((addr, addr.saturating_add(bytes)));
            }
        }
    }
    let wanted: Vec<BarRequest> = bars
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let (_, bytes) = b.as_ref()?.memory_address_size()?;
            Some(BarRequest {
                index: i as u8,
                bytes,
            })
        })
        .collect();
    let spots = virtio_pci::place_bars(&wanted, &taken, BAR_WINDOW)
        .ok_or_else(|| String::from("its BARs do not fit the kernel's window"))?;
    let (_, command) = root.get_status_command(df);
    root.set_command(df, command - Command::MEMORY_SPACE);
    for (index, addr) in spots {
        let wide = bars[usize::from(index)]
            .as_ref()
            .is_some_and(BarInfo::takes_two_entries);
        if wide {
            root.set_bar_64(df, index, addr);
        } else {
            // Inside the window, below 4 GiB.
            root.set_bar_32(df, index, addr as u32);
        }
    }
    root.set_command(df, command);
    Ok(())
}

/// Places (if needed), reads and checks `df`'s layout, maps its
/// structures, sets its interrupt up and enables it.
fn open(
    root: &mut PciRoot<PortCam>,
    df: DeviceFunction,
    others: Vec<DeviceFunction>,
    kind: DeviceType,
    options: PciOptions,
) -> Result<(PciCard, PciDevice), String> {
    let read_bars = |root: &mut PciRoot<PortCam>| {
        root.bars(df)
            .map_err(|e| alloc::format!("its BARs cannot be read ({e})"))
    };
    let mut bars = read_bars(root)?;
    let (_, unassigned) = memory_bars(&bars);
    let placed_here = options.assign_always || unassigned;
    if placed_here {
        place(root, df, &bars, &others)?;
        bars = read_bars(root)?;
    }
    let (placed, _) = memory_bars(&bars);
    let sizes = placed.map(|(_, bytes)| bytes);
    let layout = virtio_pci::parse(|at| PortCam.read_word(df, at), &sizes)
        .map_err(|e| alloc::format!("its virtio capabilities are not usable ({e:?})"))?;
    // Decoding on before the first access to a BAR (off without a
    // firmware), bus mastering for the card's DMA.
    let (_, command) = root.get_status_command(df);
    let command = command | Command::MEMORY_SPACE | Command::BUS_MASTER;
    root.set_command(df, command);
    let at = |s: Structure| placed[usize::from(s.bar)].0 + u64::from(s.offset);
    let map = |s: Structure| {
        mmio::map_registers(at(s), u64::from(s.length))
            .map_err(|e| alloc::format!("registers at {:#x} cannot be mapped ({e:?})", at(s)))
    };
    let common = map(layout.common)?;
    let notify_base = at(layout.notify);
    let notify = QueueNotify {
        regs: [
            queue_register(&common, &layout, notify_base, QUEUE_RECEIVE)?,
            queue_register(&common, &layout, notify_base, QUEUE_TRANSMIT)?,
        ],
    };
    let msix = match layout.msix {
        Some(m) if !options.intx => Some(msix_entry(
            df,
            m.cap,
            map(Structure {
                length: virtio_pci::MSIX_ENTRY_BYTES,
                ..m.table
            })?,
        )),
        _ => None,
    };
    let interrupt = match msix {
        Some(entry) => {
            // The configuration-change vector stays NO_VECTOR, as the
            // device reset leaves it: only the queues interrupt.
            root.set_command(df, command | Command::INTERRUPT_DISABLE);
            PciInterrupt::Msix(entry)
        }
        None => match interrupt_line(PortCam.read_word(df, REG_INTERRUPT)) {
            Some(line) => PciInterrupt::Intx(line),
            None => PciInterrupt::None,
        },
    };
    let card = PciCard {
        device_type: kind,
        common,
        isr: map(layout.isr)?,
        device: layout.device.map(map).transpose()?,
        notify,
        msix: msix.is_some(),
    };
    Ok((
        card,
        PciDevice {
            function: df,
            interrupt,
            placed: placed_here,
        },
    ))
}

/// Writes MSI-X table entry 0 (`entry`, mapped) to send
/// [`crate::arch::trap::NET_VECTOR`] to this CPU, masked, and turns MSI-X
/// on for `df` (capability at `cap`).
fn msix_entry(df: DeviceFunction, cap: u8, entry: DeviceRegisters) -> MsixEntry {
    let apic = crate::arch::apic::id() & 0xff;
    entry.write32(12, 1);
    entry.write32(0, MSI_ADDRESS | apic << 12);
    entry.write32(4, 0);
    entry.write32(8, u32::from(crate::arch::trap::NET_VECTOR));
    let control = PortCam.read_word(df, cap);
    PortCam.write_word(df, cap, (control | MSIX_ENABLE) & !MSIX_FUNCTION_MASK);
    MsixEntry(entry)
}

/// `queue`'s notification register, mapped on its own.
fn queue_register(
    common: &DeviceRegisters,
    layout: &Layout,
    notify_base: u64,
    queue: u16,
) -> Result<DeviceRegisters, String> {
    common.write16(common::QUEUE_SELECT, queue);
    let off = common.read16(common::QUEUE_NOTIFY_OFF);
    let within = virtio_pci::notify_offset(layout.notify.length, off, layout.notify_multiplier)
        .ok_or_else(|| {
            alloc::format!("queue {queue}'s notification offset {off} lies outside its structure")
        })?;
    mmio::map_registers(notify_base + u64::from(within), 2)
        .map_err(|e| alloc::format!("queue {queue}'s notification register ({e:?})"))
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::interrupt_line;
    use crate::ktest;

    ktest!(
        fn pci_interrupt_line_needs_a_pin_and_a_routed_line() {
            assert_eq!(interrupt_line(0x0000_010b), Some(11));
            assert_eq!(interrupt_line(0x0000_040a), Some(10));
            assert_eq!(interrupt_line(0x0000_000b), None, "no pin");
            assert_eq!(interrupt_line(0x0000_0500), None, "pin 5 is not INTx");
            assert_eq!(interrupt_line(0x0000_0100), None, "line 0: unrouted");
            assert_eq!(interrupt_line(0x0000_01ff), None, "line 0xff: unrouted");
            assert_eq!(interrupt_line(u32::MAX), None, "no function");
        }
    );
}
