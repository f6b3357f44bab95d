//! The PVH boot protocol's `hvm_start_info` (Xen `arch-x86/hvm/start_info.h`).
//!
//! A PVH loader (QEMU `-kernel`, Firecracker, cloud-hypervisor) enters the
//! kernel in 32-bit mode with `%ebx` holding the guest-physical address of a
//! [`StartInfo`]. Everything it points to is guest-physical and untrusted in
//! shape, so every read goes through [`PhysReader`] and every count and size
//! is bounded before use.

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Bytes of a version-1 `hvm_start_info`.
pub const START_INFO_V1_BYTES: usize = 56;
/// Bytes of one `hvm_modlist_entry`.
pub const MODLIST_ENTRY_BYTES: usize = 32;
/// Bytes of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_BYTES: usize = 24;
/// The most memory-map entries or modules we accept (a sanity bound).
pub const MAX_TABLE_ENTRIES: u32 = 1024;
/// The longest command line we read, in bytes (NUL excluded).
pub const MAX_CMDLINE_BYTES: usize = 4096;

/// Reads guest-physical memory. The kernel implements it over its direct map.
pub trait PhysReader {
    /// Fills `buf` from guest-physical address `paddr`; `false` when the
    /// range is not readable.
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool;
}

/// Why a start-info structure was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhError {
    /// A range could not be read (bad address from the loader).
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// Its guest-physical address.
        paddr: u64,
    },
    /// The magic number was wrong: not a PVH boot.
    BadMagic(u32),
    /// A table claimed more entries than [`MAX_TABLE_ENTRIES`].
    TooManyEntries {
        /// Which table.
        what: &'static str,
        /// The claimed count.
        count: u32,
    },
    /// The command line had no NUL within [`MAX_CMDLINE_BYTES`].
    CmdlineTooLong,
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unreadable { what, paddr } => write!(f, "cannot read {what} at {paddr:#x}"),
            Self::BadMagic(m) => write!(
                f,
                "hvm_start_info magic is {m:#x}, expected {START_INFO_MAGIC:#x}: not a PVH boot"
            ),
            Self::TooManyEntries { what, count } => {
                write!(
                    f,
                    "{what} claims {count} entries (limit {MAX_TABLE_ENTRIES})"
                )
            }
            Self::CmdlineTooLong => write!(f, "command line longer than {MAX_CMDLINE_BYTES} bytes"),
        }
    }
}

/// The fields of `hvm_start_info` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (0 has no memory map).
    pub version: u32,
    /// Number of entries at `modlist_paddr`.
    pub module_count: u32,
    /// Guest-physical address of the module list.
    pub modlist_paddr: u64,
    /// Guest-physical address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Guest-physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Guest-physical address of the memory map (version ≥ 1), or 0.
    pub memmap_paddr: u64,
    /// Number of memory-map entries.
    pub memmap_count: u32,
}

/// One loaded module (e.g. QEMU's `-initrd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// Guest-physical start.
    pub paddr: u64,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// E820-style memory types used by `hvm_memmap_table_entry.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryType {
    /// 1: usable RAM.
    Ram,
    /// 2: reserved.
    Reserved,
    /// 3: ACPI reclaimable.
    AcpiReclaimable,
    /// 4: ACPI NVS.
    AcpiNvs,
    /// 5: unusable.
    Unusable,
    /// Any other value.
    Other(u32),
}

impl From<u32> for MemoryType {
    fn from(value: u32) -> Self {
        match value {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            other => Self::Other(other),
        }
    }
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEntry {
    /// Guest-physical start.
    pub paddr: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// What the range is.
    pub kind: MemoryType,
}

fn read<const N: usize>(
    mem: &dyn PhysReader,
    what: &'static str,
    paddr: u64,
) -> Result<[u8; N], PvhError> {
    let mut buf = [0u8; N];
    if mem.read_phys(paddr, &mut buf) {
        Ok(buf)
    } else {
        Err(PvhError::Unreadable { what, paddr })
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn entry_addr(
    base: u64,
    index: u32,
    entry_bytes: usize,
    what: &'static str,
) -> Result<u64, PvhError> {
    u64::from(index)
        .checked_mul(entry_bytes as u64)
        .and_then(|off| base.checked_add(off))
        .ok_or(PvhError::Unreadable { what, paddr: base })
}

impl StartInfo {
    /// Reads and checks the structure at `paddr`.
    pub fn read(mem: &dyn PhysReader, paddr: u64) -> Result<Self, PvhError> {
        // Version 0 is 48 bytes; read the first 48 and the tail only for v1+.
        let head: [u8; 48] = read(mem, "hvm_start_info", paddr)?;
        let magic = u32_at(&head, 0);
        if magic != START_INFO_MAGIC {
            return Err(PvhError::BadMagic(magic));
        }
        let version = u32_at(&head, 4);
        let mut info = Self {
            version,
            module_count: u32_at(&head, 12),
            modlist_paddr: u64_at(&head, 16),
            cmdline_paddr: u64_at(&head, 24),
            rsdp_paddr: u64_at(&head, 32),
            memmap_paddr: 0,
            memmap_count: 0,
        };
        if version >= 1 {
            let tail: [u8; 8] = read(mem, "hvm_start_info", paddr + 48)?;
            info.memmap_paddr = u64_at(&head, 40);
            info.memmap_count = u32_at(&tail, 0);
        }
        for (what, count) in [
            ("module list", info.module_count),
            ("memory map", info.memmap_count),
        ] {
            if count > MAX_TABLE_ENTRIES {
                return Err(PvhError::TooManyEntries { what, count });
            }
        }
        Ok(info)
    }

    /// The `index`-th module. Reads each entry unaligned (qboot places the
    /// list at an odd address).
    pub fn module(&self, mem: &dyn PhysReader, index: u32) -> Result<Module, PvhError> {
        let addr = entry_addr(
            self.modlist_paddr,
            index,
            MODLIST_ENTRY_BYTES,
            "module list",
        )?;
        let raw: [u8; MODLIST_ENTRY_BYTES] = read(mem, "module list entry", addr)?;
        Ok(Module {
            paddr: u64_at(&raw, 0),
            size_bytes: u64_at(&raw, 8),
        })
    }

    /// The `index`-th memory-map entry.
    pub fn memory_entry(&self, mem: &dyn PhysReader, index: u32) -> Result<MemoryEntry, PvhError> {
        let addr = entry_addr(self.memmap_paddr, index, MEMMAP_ENTRY_BYTES, "memory map")?;
        let raw: [u8; MEMMAP_ENTRY_BYTES] = read(mem, "memory map entry", addr)?;
        Ok(MemoryEntry {
            paddr: u64_at(&raw, 0),
            size_bytes: u64_at(&raw, 8),
            kind: MemoryType::from(u32_at(&raw, 16)),
        })
    }

    /// Copies the command line into `buf` and returns its length (without
    /// the NUL); 0 when there is none.
    pub fn read_cmdline(
        &self,
        mem: &dyn PhysReader,
        buf: &mut [u8; MAX_CMDLINE_BYTES],
    ) -> Result<usize, PvhError> {
        if self.cmdline_paddr == 0 {
            return Ok(0);
        }
        for (i, slot) in buf.iter_mut().enumerate() {
            let [byte]: [u8; 1] = read(mem, "command line", self.cmdline_paddr + i as u64)?;
            if byte == 0 {
                return Ok(i);
            }
            *slot = byte;
        }
        Err(PvhError::CmdlineTooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake guest memory: one window of bytes at a base address.
    struct FakeMem {
        base: u64,
        bytes: Vec<u8>,
    }

    impl PhysReader for FakeMem {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
            let Some(off) = paddr.checked_sub(self.base) else {
                return false;
            };
            let off = off as usize;
            match self.bytes.get(off..off + buf.len()) {
                Some(src) => {
                    buf.copy_from_slice(src);
                    true
                }
                None => false,
            }
        }
    }

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// start_info at 0x1000, cmdline at 0x1100, modlist at 0x1201 (odd, as
    /// qboot does), memmap at 0x1300.
    fn image() -> FakeMem {
        let mut b = vec![0u8; 0x1000];
        put32(&mut b, 0, START_INFO_MAGIC);
        put32(&mut b, 4, 1);
        put32(&mut b, 12, 1);
        put64(&mut b, 16, 0x1201);
        put64(&mut b, 24, 0x1100);
        put64(&mut b, 40, 0x1300);
        put32(&mut b, 48, 2);
        b[0x100..0x10b].copy_from_slice(b"log=debug\0\0");
        put64(&mut b, 0x201, 0x800_0000);
        put64(&mut b, 0x209, 12345);
        put64(&mut b, 0x300, 0);
        put64(&mut b, 0x308, 0x9fc00);
        put32(&mut b, 0x310, 1);
        put64(&mut b, 0x318, 0x10_0000);
        put64(&mut b, 0x320, 0x7ff0_0000);
        put32(&mut b, 0x328, 2);
        FakeMem {
            base: 0x1000,
            bytes: b,
        }
    }

    #[test]
    fn mutated_start_infos_and_command_lines_never_panic() {
        // What the host hands the kernel, corrupted at random: every read
        // gives a value or a clean error (the cargo-fuzz target
        // `boot_info` does the same with coverage guidance).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut mem = image();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % 0x340) as usize;
                mem.bytes[at] = next() as u8;
            }
            let Ok(info) = StartInfo::read(&mem, 0x1000) else {
                continue;
            };
            parsed += 1;
            for i in 0..info.module_count.min(64) {
                let _ = info.module(&mem, i);
            }
            let mut map = crate::boot::memmap::MemoryMap::new();
            for i in 0..info.memmap_count.min(64) {
                if let Ok(e) = info.memory_entry(&mem, i) {
                    let _ = map.add_usable(e.paddr, e.size_bytes);
                }
            }
            let _ = map.take_below(4096, u64::MAX);
            let mut buf = [0u8; MAX_CMDLINE_BYTES];
            if let Ok(n) = info.read_cmdline(&mem, &mut buf)
                && let Ok(line) = core::str::from_utf8(&buf[..n])
            {
                let args = crate::boot::cmdline::KernelArgs::parse(line);
                let _ = (args.log_level(), args.timer_hz(), args.audit_region_bytes());
                let _ = args.options().count() + args.app_args().count();
            }
        }
        assert!(
            parsed > 1000,
            "mutations kept too few start infos valid: {parsed}"
        );
    }

    #[test]
    fn reads_a_v1_start_info() {
        let mem = image();
        let info = StartInfo::read(&mem, 0x1000).unwrap();
        assert_eq!(info.version, 1);
        assert_eq!(info.memmap_count, 2);
        let m = info.module(&mem, 0).unwrap();
        assert_eq!((m.paddr, m.size_bytes), (0x800_0000, 12345));
        let e0 = info.memory_entry(&mem, 0).unwrap();
        assert_eq!((e0.size_bytes, e0.kind), (0x9fc00, MemoryType::Ram));
        let e1 = info.memory_entry(&mem, 1).unwrap();
        assert_eq!(e1.kind, MemoryType::Reserved);
        let mut buf = [0u8; MAX_CMDLINE_BYTES];
        let n = info.read_cmdline(&mem, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"log=debug");
    }

    #[test]
    fn rejects_bad_magic_and_huge_tables() {
        let mut mem = image();
        mem.bytes[0] ^= 1;
        assert!(matches!(
            StartInfo::read(&mem, 0x1000),
            Err(PvhError::BadMagic(_))
        ));
        let mut mem = image();
        put32(&mut mem.bytes, 48, 1_000_000);
        assert_eq!(
            StartInfo::read(&mem, 0x1000),
            Err(PvhError::TooManyEntries {
                what: "memory map",
                count: 1_000_000
            })
        );
    }

    #[test]
    fn out_of_range_pointers_are_errors() {
        let mem = image();
        assert!(matches!(
            StartInfo::read(&mem, 0x10),
            Err(PvhError::Unreadable { .. })
        ));
        let mut info = StartInfo::read(&mem, 0x1000).unwrap();
        info.modlist_paddr = u64::MAX - 8;
        assert!(info.module(&mem, 3).is_err());
        info.cmdline_paddr = 0x2000;
        let mut buf = [0u8; MAX_CMDLINE_BYTES];
        assert!(info.read_cmdline(&mem, &mut buf).is_err());
    }

    #[test]
    fn unterminated_cmdline_is_rejected() {
        let mut b = vec![b'x'; MAX_CMDLINE_BYTES + 8];
        b.extend_from_slice(&[0; 8]);
        let mem = FakeMem { base: 0, bytes: b };
        let info = StartInfo {
            version: 1,
            module_count: 0,
            modlist_paddr: 0,
            cmdline_paddr: 1,
            rsdp_paddr: 0,
            memmap_paddr: 0,
            memmap_count: 0,
        };
        let mut buf = [0u8; MAX_CMDLINE_BYTES];
        assert_eq!(
            info.read_cmdline(&mem, &mut buf),
            Err(PvhError::CmdlineTooLong)
        );
    }
}
