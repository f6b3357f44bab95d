//! Randomised robustness test of the whole syscall surface: seeded random
//! sequences of calls with a mix of valid, invalid, unmapped and huge
//! arguments. Every call must return a success value or a valid `-errno`,
//! and nothing may panic. (The cargo-fuzz targets cover the parsers; this
//! runs in `cargo test`.)

use alloc::sync::Arc;
use alloc::vec::Vec;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{SyscallTable, families};
use crate::fs::{DeviceRegistry, Vfs};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::user::UserMemory;

const SCRATCH: u64 = 0x40_0000;
const SCRATCH_BYTES: usize = 0x1_0000;

/// Paths placed in user memory at fixed offsets of the scratch area.
const PATHS: [&[u8]; 8] = [
    b"/",
    b"/tmp",
    b"/tmp/f",
    b"/etc/passwd",
    b"/dev/null",
    b"/dev/console",
    b"link",
    b"../tmp/./f",
];

fn argument(rng: &mut ChaCha20Rng) -> u64 {
    match rng.next_u32() % 10 {
        0 => u64::from(rng.next_u32() % 8), // small: fds, flags
        1 => (rng.next_u32() % 12) as u64 ^ 0xffff_ffff_ffff_ff00, // negative small
        2 => SCRATCH + 64 * u64::from(rng.next_u32() % PATHS.len() as u32), // a path
        3 => SCRATCH + 0x1000 + u64::from(rng.next_u32() % 0x8000), // writable memory
        4 => 0xdead_0000,                   // unmapped
        5 => rng.next_u64(),                // anything
        6 => u64::from(rng.next_u32() % 0x10000), // sizes, modes
        7 => -100i64 as u64,                // AT_FDCWD
        8 => 0,
        _ => SCRATCH + SCRATCH_BYTES as u64 - u64::from(rng.next_u32() % 64), // near the end
    }
}

fn run(seed: u64, calls: usize) {
    let platform = Arc::new(MockPlatform::new());
    platform.set_block_spins(0);
    let vfs = Arc::new(Vfs::new(
        platform.clone(),
        DeviceRegistry::standard(platform.clone(), platform.clone()),
    ));
    let root = vfs.root().clone();
    vfs.mkdir(&root, b"/tmp", 0o777).unwrap();
    vfs.mkdir(&root, b"/etc", 0o755).unwrap();
    vfs.create_file(&root, b"/etc/passwd", 0o644)
        .unwrap()
        .write_at(0, b"root:x:0:0\n", 0)
        .unwrap();
    vfs.symlink(&root, b"/tmp", b"/link").unwrap();
    let process = Process::new(platform.clone(), vfs);
    process.open_console_stdio().unwrap();
    platform.map(SCRATCH, SCRATCH_BYTES);
    for (i, path) in PATHS.iter().enumerate() {
        let mut bytes = path.to_vec();
        bytes.push(0);
        platform
            .write_user(SCRATCH + 64 * i as u64, &bytes)
            .unwrap();
    }
    let table = SyscallTable::new();
    let numbers: Vec<usize> = families()
        .into_iter()
        .flatten()
        .map(|&(nr, _, _)| nr)
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for _ in 0..calls {
        let nr = if rng.next_u32() % 50 == 0 {
            (rng.next_u32() % 600) as usize
        } else {
            numbers[rng.next_u32() as usize % numbers.len()]
        };
        let args = core::array::from_fn(|_| argument(&mut rng));
        if std::env::var_os("LIBOS_ROBUST_TRACE").is_some() {
            std::eprintln!("nr {nr} args {args:x?}");
        }
        let ret = table.dispatch(&process, nr, args) as i64;
        assert!(
            ret >= 0 || (-133..=-1).contains(&ret),
            "nr {nr} args {args:x?} returned {ret}"
        );
    }
}

/// Four seeds by default; set `LIBOS_ROBUST_SEEDS=N` for a longer run.
#[test]
fn random_syscalls_never_panic() {
    let seeds = std::env::var("LIBOS_ROBUST_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let first: u64 = std::env::var("LIBOS_ROBUST_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + seeds {
        run(seed, 4000);
    }
}
