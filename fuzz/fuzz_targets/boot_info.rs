//! Fuzz what the host hands the kernel at boot: the PVH start-info
//! structure, its module list and memory map (read from guest memory the
//! host filled), the memory map arithmetic, and the kernel command line.
//! Any input must parse or give a clean error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libos::boot::cmdline::{KernelArgs, parse_size};
use libos::boot::memmap::MemoryMap;
use libos::boot::pvh::{MAX_CMDLINE_BYTES, PhysReader, StartInfo};

/// Guest memory: the input at physical address 0.
struct Mem<'a>(&'a [u8]);

impl PhysReader for Mem<'_> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(paddr) else {
            return false;
        };
        match start.checked_add(buf.len()).and_then(|end| self.0.get(start..end)) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mem = Mem(data);
    if let Ok(info) = StartInfo::read(&mem, 0) {
        for i in 0..info.module_count.min(64) {
            let _ = info.module(&mem, i);
        }
        let mut map = MemoryMap::new();
        for i in 0..info.memmap_count.min(64) {
            if let Ok(e) = info.memory_entry(&mem, i) {
                let _ = map.add_usable(e.paddr, e.size_bytes);
            }
        }
        let _ = map.reserve(0, 1 << 20);
        let _ = map.take_below(4096, u64::MAX);
        let mut buf = [0u8; MAX_CMDLINE_BYTES];
        if let Ok(n) = info.read_cmdline(&mem, &mut buf) {
            if let Ok(line) = core::str::from_utf8(&buf[..n]) {
                exercise_cmdline(line);
            }
        }
    }
    if let Ok(line) = core::str::from_utf8(data) {
        exercise_cmdline(line);
    }
});

fn exercise_cmdline(line: &str) {
    let args = KernelArgs::parse(line);
    let _ = args.options().count();
    let _ = args.app_args().count();
    let _ = args.log_level();
    let _ = args.timer_hz();
    let _ = args.audit_region_bytes();
    let _ = args.unknown_keys(&["ktest"]).count();
    for (_, v) in args.options() {
        if let Some(v) = v {
            let _ = parse_size(v);
        }
    }
}
