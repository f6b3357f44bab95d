//! Finding virtio-mmio devices: the `virtio_mmio.device=<size>@<addr>:<irq>`
//! entries on the kernel command line (Linux's convention; QEMU's `microvm`
//! machine appends one per occupied transport when it runs with `acpi=off`
//! and `auto-kernel-cmdline=on`, the default), and the check of a
//! transport's header.

use libos::boot::cmdline::KernelArgs;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use crate::platform::mmio;

/// The command-line key that announces a virtio-mmio transport.
pub const CMDLINE_KEY: &str = "virtio_mmio.device";

/// One virtio-mmio transport announced on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDevice {
    /// Physical address of its registers.
    pub paddr: u64,
    /// Bytes of registers (512 on QEMU).
    pub size_bytes: u64,
    /// Its interrupt line (a GSI of the I/O APIC).
    pub irq: u32,
}

/// Parses a number as Linux's `memparse` does for these entries: decimal or
/// `0x` hexadecimal, with an optional `K`/`M`/`G` suffix.
fn parse_number(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    n.checked_mul(1 << shift)
}

/// Parses one entry's value, `<size>@<addr>:<irq>[:<first id>]`.
pub fn parse_entry(value: &str) -> Option<MmioDevice> {
    let (size, rest) = value.split_once('@')?;
    let mut parts = rest.split(':');
    let paddr = parse_number(parts.next()?)?;
    let irq = parts.next()?.parse().ok()?;
    let size_bytes = parse_number(size)?;
    if size_bytes == 0 || paddr.checked_add(size_bytes).is_none() {
        return None;
    }
    Some(MmioDevice {
        paddr,
        size_bytes,
        irq,
    })
}

/// Every well-formed transport on the command line, in order (malformed
/// entries are logged and skipped).
pub fn from_cmdline<'a>(args: &KernelArgs<'a>) -> impl Iterator<Item = MmioDevice> + 'a {
    args.options()
        .filter(|(key, _)| *key == CMDLINE_KEY)
        .filter_map(|(_, value)| {
            let parsed = value.and_then(parse_entry);
            if parsed.is_none() {
                log::warn!("ignoring {CMDLINE_KEY}={value:?}: expected SIZE@ADDR:IRQ");
            }
            parsed
        })
}

/// Maps `dev`'s registers and opens its transport if it holds a device of
/// `kind` (an empty transport has device id 0 and is skipped).
pub fn open(dev: &MmioDevice, kind: DeviceType) -> Option<MmioTransport<'static>> {
    // Transports share pages (QEMU's are 512 bytes apart): mapping one
    // twice is fine.
    let regs = match mmio::map_registers(dev.paddr, dev.size_bytes) {
        Ok(r) => r,
        Err(e) => {
            log::warn!(
                "cannot map virtio-mmio registers at {:#x}: {e:?}",
                dev.paddr
            );
            return None;
        }
    };
    let header = regs.as_ptr().cast::<VirtIOHeader>();
    // SAFETY: `header` points at `size_bytes` of device registers, just
    // mapped through the platform (or left to trap into its emulation);
    // nothing else in the kernel touches them (each transport is opened
    // once, by `net::init`).
    let transport = match unsafe { MmioTransport::new(header, dev.size_bytes as usize) } {
        Ok(t) => t,
        Err(e) => {
            log::debug!("no virtio-mmio transport at {:#x}: {e}", dev.paddr);
            return None;
        }
    };
    (transport.device_type() == kind).then_some(transport)
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::*;
    use crate::ktest;

    ktest!(
        fn parses_qemu_microvm_entries() {
            assert_eq!(
                parse_entry("512@0xfeb00e00:12"),
                Some(MmioDevice {
                    paddr: 0xfeb0_0e00,
                    size_bytes: 512,
                    irq: 12
                })
            );
            assert_eq!(
                parse_entry("4K@0x10000000:5:3"),
                Some(MmioDevice {
                    paddr: 0x1000_0000,
                    size_bytes: 4096,
                    irq: 5
                })
            );
            assert_eq!(parse_entry("512@0xfeb00e00"), None);
            assert_eq!(parse_entry("0@0x1000:1"), None);
            assert_eq!(parse_entry("512@0xffffffffffffffff:1"), None);
            assert_eq!(parse_entry("x@0x1000:1"), None);
            let args = KernelArgs::parse(
                "log=warn virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=bad \
                 virtio_mmio.device=512@0xfeb00c00:11",
            );
            let found: alloc::vec::Vec<_> = from_cmdline(&args).map(|d| d.irq).collect();
            assert_eq!(found, [12, 11]);
        }
    );
}
