//! The vDSO image, its data page and its mapping at exec.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::cpio::CpioWriter;
use crate::elf::header::{PF_R, PF_X};
use crate::elf::stack::at;
use crate::elf::test_util::ElfBuilder;
use crate::exec::{AddressLayout, prepare_exec};
use crate::fs::DeviceRegistry;
use crate::mm::FaultAccess;
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::user::UserMemory;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_image_is_a_shared_object_exporting_the_clock_calls() {
    assert_eq!(&IMAGE[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([IMAGE[16], IMAGE[17]]), 3, "ET_DYN");
    for name in [
        &b"__vdso_clock_gettime\0"[..],
        b"__vdso_gettimeofday\0",
        b"__vdso_time\0",
        b"LINUX_2.6\0",
        b"linux-vdso.so.1\0",
    ] {
        assert!(contains(IMAGE, name), "{name:?}");
    }
    assert_eq!(IMAGE_BYTES, PAGE_SIZE, "one page, below the interpreter");
    assert!(BASE + IMAGE_BYTES <= AddressLayout::default().interp_bias);
}

/// The committed image is what `build.sh` makes of the committed source
/// (Debian 12's gcc, as CI installs it).
#[test]
fn vdso_image_is_built_from_its_source() {
    extern crate std;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vdso");
    let out = std::env::temp_dir().join(std::format!("cloister-vdso-{}.so", std::process::id()));
    let status = std::process::Command::new("sh")
        .arg(dir.join("build.sh"))
        .arg(&out)
        .status()
        .expect("sh runs");
    assert!(status.success(), "build.sh failed (gcc missing?)");
    let built = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(
        built == IMAGE,
        "libos/src/vdso/vdso.so is stale: run libos/src/vdso/build.sh and commit the result"
    );
}

#[test]
fn the_data_page_has_vdso_c_layout_under_a_sequence_count() {
    let m = Arc::new(MockPlatform::new());
    let vfs = Vfs::new(m.clone(), DeviceRegistry::standard(m.clone(), m));
    let vdso = Vdso::new(&vfs).unwrap();
    assert_eq!(vdso.data_bytes(), [0; 48], "disabled until published");
    let d = VdsoData {
        monotonic_enabled: true,
        realtime_enabled: true,
        tsc_base: 0x1111,
        ns_per_cycle_fp32: 0x2222,
        real_base_mono: 0x3333,
        real_base_ns: 0x4444,
        real_rate_fp32: 0x5555,
    };
    vdso.publish(&d);
    let b = vdso.data_bytes();
    let word = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
    assert_eq!(
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        2,
        "even after a write"
    );
    assert_eq!(
        u32::from_le_bytes(b[4..8].try_into().unwrap()),
        3,
        "both clocks"
    );
    assert_eq!(
        [word(8), word(16), word(24), word(32), word(40)],
        [0x1111, 0x2222, 0x3333, 0x4444, 0x5555]
    );
    vdso.publish(&d);
    assert_eq!(
        u32::from_le_bytes(vdso.data_bytes()[..4].try_into().unwrap()),
        4
    );
}

#[test]
fn the_clock_formulas_match_the_kernels() {
    // 2.5 GHz: 0.4 ns per cycle.
    let fp = ((1_000_000_000u128 << 32) / 2_500_000_000) as u64;
    let d = VdsoData {
        monotonic_enabled: true,
        realtime_enabled: true,
        tsc_base: 1_000,
        ns_per_cycle_fp32: fp,
        real_base_mono: 2_000_000_000,
        real_base_ns: 1_700_000_000_000_000_000,
        real_rate_fp32: 1 << 32,
    };
    let mono = d.monotonic_ns(1_000 + 5_000_000_000);
    assert!(mono.abs_diff(2_000_000_000) <= 1, "{mono}");
    assert_eq!(d.realtime_ns(2_000_000_000), 1_700_000_000_000_000_000);
    assert_eq!(d.realtime_ns(3_000_000_000), 1_700_000_001_000_000_000);
    // Before the base, the base (the kernel never publishes one ahead).
    assert_eq!(d.realtime_ns(0), 1_700_000_000_000_000_000);
    // A measured rate of +1 %.
    let fast = VdsoData {
        real_rate_fp32: (1 << 32) + (1 << 32) / 100,
        ..d
    };
    let t = fast.realtime_ns(3_000_000_000) - 1_700_000_000_000_000_000;
    assert!(t.abs_diff(1_010_000_000) <= 1, "{t}");
}

#[test]
fn a_clock_ahead_slows_onto_the_line_and_one_behind_steps_forward() {
    let one = 1u64 << 32;
    let first = VdsoData::default().rebased(1_000, 5_000_000, one, 2_000);
    assert_eq!(
        first.realtime_ns(1_000),
        5_000_000,
        "the first line as it is"
    );
    // The host says the clock ran 300 ns fast: no step back, a slower
    // rate that meets the host's line SLEW_NS later.
    let now = 10_000;
    let slower = first.rebased(now, 5_008_700, one, now);
    assert_eq!(slower.realtime_ns(now), 5_009_000);
    let met = slower.realtime_ns(now + SLEW_NS);
    assert!(met.abs_diff(5_008_700 + SLEW_NS) <= 1, "{met}");
    assert!(slower.realtime_ns(now + 1) >= 5_009_000);
    // Steered again at the next resync, it follows the line.
    let next = slower.rebased(now, 5_008_700, one, now + SLEW_NS);
    let t = next.realtime_ns(now + 2 * SLEW_NS);
    assert!(t.abs_diff(5_008_700 + 2 * SLEW_NS) <= 2, "{t}");
    // Far ahead: at most half speed, never backwards.
    let big = VdsoData::default().rebased(0, 50 * SLEW_NS, one, 0);
    let far = big.rebased(now, big.realtime_ns(now) - 10 * SLEW_NS, one, now);
    assert_eq!(far.realtime_ns(now), big.realtime_ns(now));
    assert_eq!(far.real_rate_fp32, one / 2);
    // The host says it ran 500 ns slow: it steps forward at once.
    let faster = first.rebased(now, 5_009_500, one, now);
    assert_eq!(faster.realtime_ns(now), 5_009_500);
    assert_eq!(faster.real_rate_fp32, one);
    // A measured rate applies from the rebase on.
    let rated = first.rebased(now, 5_009_000, one + one / 100, now);
    let t = rated.realtime_ns(1_010_000);
    assert!(t.abs_diff(5_009_000 + 1_010_000) <= 1, "{t}");
}

fn process_with_vdso() -> (Arc<MockPlatform>, Process) {
    let (m, mut p) = crate::process::mock_process();
    p.vdso = Some(Arc::new(Vdso::new(&p.vfs).unwrap()));
    (m, p)
}

fn exec(p: &Process, image: &[u8]) -> crate::exec::ProcessImage {
    let mut w = CpioWriter::new();
    w.add_file(b"bin/prog", 0o755, image).unwrap();
    p.vfs.unpack_cpio(&w.finish()).unwrap();
    let root = p.vfs.root().clone();
    let img = prepare_exec(
        &p.vfs,
        &root,
        b"/bin/prog",
        &[b"prog"],
        &[],
        &*p.platform,
        &AddressLayout::for_process(p),
    )
    .unwrap();
    crate::mm::load_image(p, &img).unwrap();
    img
}

#[test]
fn exec_maps_the_image_and_its_data_page_and_names_it_in_auxv() {
    let (m, p) = process_with_vdso();
    let vdso = p.vdso.clone().unwrap();
    let img = exec(
        &p,
        &ElfBuilder::exec()
            .load(0, 0x400000, 0x1000, 0x1000, PF_R | PF_X)
            .phdr(0x400040)
            .build(),
    );
    let ehdr = img
        .stack
        .auxv
        .iter()
        .find(|(k, _)| *k == at::AT_SYSINFO_EHDR);
    assert_eq!(ehdr, Some(&(at::AT_SYSINFO_EHDR, BASE)));
    crate::mm::ops::fault_in(&p, BASE - PAGE_SIZE, 2 * PAGE_SIZE, FaultAccess::Read);
    let mut head = [0u8; 64];
    m.read_user(BASE, &mut head).unwrap();
    assert_eq!(head, IMAGE[..64]);
    // The data page is the file's page: a later publish shows through.
    vdso.publish(&VdsoData {
        monotonic_enabled: true,
        tsc_base: 7,
        ..VdsoData::default()
    });
    let mut data = [0u8; 16];
    m.read_user(BASE - PAGE_SIZE, &mut data).unwrap();
    assert_eq!(data[..8], [2, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(u64::from_le_bytes(data[8..].try_into().unwrap()), 7);
    // Neither can be written; the maps name both.
    assert!(m.write_user(BASE, b"x").is_err());
    assert!(m.write_user(BASE - PAGE_SIZE, b"x").is_err());
    let maps = alloc::string::String::from_utf8(p.vm.lock().maps_text()).unwrap();
    assert!(maps.contains("[vvar]") && maps.contains("[vdso]"), "{maps}");
    let vvar_line: Vec<&str> = maps.lines().filter(|l| l.ends_with("[vvar]")).collect();
    assert!(vvar_line[0].contains(" r--s "), "{maps}");
    let vdso_line: Vec<&str> = maps.lines().filter(|l| l.ends_with("[vdso]")).collect();
    assert!(vdso_line[0].contains(" r-xp "), "{maps}");
}

#[test]
fn a_program_in_the_vdsos_place_runs_without_one() {
    let (_, p) = process_with_vdso();
    let img = exec(
        &p,
        &ElfBuilder::exec()
            .load(0, BASE - PAGE_SIZE, 0x1000, 0x1000, PF_R | PF_X)
            .phdr(BASE - PAGE_SIZE + 0x40)
            .build(),
    );
    assert_eq!(img.vdso, None);
    assert!(
        !img.stack
            .auxv
            .iter()
            .any(|(k, _)| *k == at::AT_SYSINFO_EHDR)
    );
}

#[test]
fn a_process_without_a_vdso_gets_none() {
    let m = Arc::new(MockPlatform::new());
    let vfs = Arc::new(Vfs::new(
        m.clone(),
        DeviceRegistry::standard(m.clone(), m.clone()),
    ));
    let p = Process::new(m, vfs);
    assert_eq!(AddressLayout::for_process(&p).vdso, None);
}
