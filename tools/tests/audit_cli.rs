//! `cloister audit show|verify` against region images written with the
//! `audit` crate, intact and tampered: exit codes and messages.

use std::path::PathBuf;
use std::process::{Command, Output};

use audit::{
    AuditLog, Config, Event, OverflowPolicy, RecordItem, RegionView, SyscallEvent, TextKind,
};

const KEY: [u8; 32] = [0x5a; 32];
const BOOT: [u8; 16] = [0x11; 16];

fn key_hex() -> String {
    KEY.iter().map(|b| format!("{b:02x}")).collect()
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit_cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Image offset and length of record `seq`, as the reader finds them.
fn record_span(img: &[u8], seq: u64) -> (usize, usize) {
    let view = RegionView::new_checked(img).unwrap();
    for slot in 0..view.header().block_count {
        for item in view.block(slot).records().into_iter().flatten() {
            if let RecordItem::Record(r) = item
                && r.seq == seq
            {
                return (r.offset as usize, r.bytes);
            }
        }
    }
    panic!("record {seq} not found");
}

/// Sequence number of block `seq`'s first record.
fn first_record_of(img: &[u8], block: u64) -> u64 {
    RegionView::new_checked(img)
        .unwrap()
        .block(block)
        .first_record_seq()
}

/// A 64 KiB image: boot, 200 syscalls, a checkpoint (sealing block 1), an
/// exception (forces a seal), an unsealed text record. Returns the image
/// and the checkpoint.
fn image() -> (Vec<u8>, String) {
    let mut img = vec![0u8; 64 * 1024];
    let mut log = AuditLog::format(&mut img, &Config::new(KEY, BOOT)).unwrap();
    log.append(
        &Event::Boot {
            memory_bytes: 256 << 20,
            cpu_count: 2,
            cmdline: "audit=64K quiet",
        },
        1,
        0,
    )
    .unwrap();
    for i in 0..200u64 {
        let ev = Event::Syscall(SyscallEvent::new(
            i as u32 % 300,
            [i, 2, 3, 4, 5, 6],
            0,
            42,
            120,
        ));
        log.append(&ev, 10 + i, (i % 2) as u16).unwrap();
    }
    log.append(
        &Event::UnsupportedSyscall {
            nr: 321,
            name: "bpf",
        },
        300,
        0,
    )
    .unwrap();
    let cp = log.checkpoint(301, 0).unwrap();
    log.append(
        &Event::CpuException {
            vector: 14,
            error_code: 2,
            rip: 0x40_1000,
            cr2: 0,
        },
        302,
        1,
    )
    .unwrap();
    log.append_fmt(TextKind::Text, format_args!("tail \"quoted\"\n"), 303, 0)
        .unwrap();
    drop(log);
    let cp_hex = cp.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    (img, cp_hex)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args(args)
        .output()
        .expect("run cloister")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(name: &str, img: &[u8]) -> String {
    let p = tmp(name);
    std::fs::write(&p, img).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn verify_intact_image_exits_zero() {
    let (img, cp) = image();
    let p = write("intact.img", &img);
    let o = run(&[
        "audit",
        "verify",
        &p,
        "--key",
        &key_hex(),
        "--checkpoint",
        &cp,
    ]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("result: verified: 0 errors"), "{out}");
    assert!(
        out.contains("WARNING") && out.contains("not sealed yet"),
        "{out}"
    );
}

#[test]
fn show_prints_records_as_text_and_json() {
    let (img, _) = image();
    let p = write("show.img", &img);
    let o = run(&["audit", "show", &p, "--key", &key_hex()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("boot memory_bytes=268435456 cpus=2 cmdline=\"audit=64K quiet\" [verified]"),
        "{out}"
    );
    assert!(
        out.contains("unsupported_syscall nr=321 name=\"bpf\" [verified]"),
        "{out}"
    );
    assert!(
        out.contains("cpu_exception vector=14 error_code=0x2 rip=0x401000 cr2=0x0 [verified]"),
        "{out}"
    );
    assert!(
        out.contains("text \"tail \\\"quoted\\\"\\n\" [unsealed]"),
        "{out}"
    );

    let o = run(&["audit", "show", &p, "--key", &key_hex(), "--json"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with('{') && l.ends_with('}')),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""kind":"syscall","auth":"verified""#)
                && l.contains(r#""args":[5,2,3,4,5,6]"#))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""text":"tail \"quoted\"\n""#)),
        "{out}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains(r#""type":"summary","result":"verified""#)
    );

    // Without a key: decoded, marked unchecked, exit 0.
    let o = run(&["audit", "show", &p]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("[unchecked]"));
    assert!(stdout(&o).contains("unverified (no key)"));
}

#[test]
fn bit_flip_fails_and_names_the_block() {
    let (mut img, _) = image();
    // Block 1 starts at 4096 + 4096; flip a byte inside one of its records.
    let (at, _) = record_span(&img, first_record_of(&img, 1) + 3);
    img[at + 6] ^= 0x20;
    let p = write("flip.img", &img);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("ERROR: block 1, slot 1, offset 0x2000: MAC mismatch"),
        "{out}"
    );
    assert!(out.contains("result: FAILED"), "{out}");

    let o = run(&["audit", "verify", &p, "--key", &key_hex(), "--json"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.contains(r#""severity":"error","code":"mac_mismatch","block":1,"slot":1"#),
        "{out}"
    );
}

#[test]
fn deleted_record_is_located() {
    let (mut img, _) = image();
    // Delete the syscall with seq 5 from block 0: the records after it
    // move up. Sequence numbers are implied by the block, so it is the
    // block (MAC, record count) that names the loss.
    let (start, len) = record_span(&img, 5);
    let count = RegionView::new_checked(&img)
        .unwrap()
        .block(0)
        .record_count();
    img.copy_within(start + len..8192, start);
    let p = write("delete.img", &img);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("ERROR: block 0, slot 0, offset 0x1000: MAC mismatch"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "block header says {count} records, found {}",
            count - 1
        )),
        "{out}"
    );
}

#[test]
fn rollback_is_caught_with_a_checkpoint() {
    let (img, cp) = image();
    // The host hands back a copy taken before the checkpoint's block (1)
    // was sealed: everything from block 1 on is gone, and so is the
    // header's memory of it.
    let mut old = img.clone();
    old[4096 + 4096..].fill(0);
    let hints = audit::wire::field::region::SEALED_BLOCKS;
    old[hints].copy_from_slice(&1u64.to_le_bytes());
    let p = write("rollback.img", &old);
    let o = run(&[
        "audit",
        "verify",
        &p,
        "--key",
        &key_hex(),
        "--checkpoint",
        &cp,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("rolled back or truncated"), "{out}");
}

#[test]
fn wrong_key_fails_clearly() {
    let (img, _) = image();
    let p = write("wrongkey.img", &img);
    let o = run(&["audit", "verify", &p, "--key", &"00".repeat(32)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("wrong key"));
}

#[test]
fn key_file_works_raw_and_hex() {
    let (img, _) = image();
    let p = write("keyfile.img", &img);
    let raw = tmp("key.bin");
    std::fs::write(&raw, KEY).unwrap();
    let o = run(&["audit", "verify", &p, "--key-file", raw.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let hexf = tmp("key.hex");
    std::fs::write(&hexf, format!("{}\n", key_hex())).unwrap();
    let o = run(&["audit", "verify", &p, "--key-file", hexf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn unusable_inputs_exit_two_with_advice() {
    let o = run(&[
        "audit",
        "verify",
        "/nonexistent/region.img",
        "--key",
        &key_hex(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read region image"));

    let p = write("garbage.img", &[0xAB; 10_000]);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a readable audit region"));

    let o = run(&["audit", "verify", &p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs the key"));

    let o = run(&["audit", "verify", &p, "--key", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("64 hex digits"));
}

#[test]
fn corrupt_images_never_crash_the_reader() {
    let (img, _) = image();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..12 {
        let mut t = img.clone();
        for _ in 0..(1 + i * 20) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % t.len();
            t[at] = (seed >> 32) as u8;
        }
        if i % 3 == 0 {
            t.truncate((seed as usize) % t.len());
        }
        let p = write(&format!("corrupt{i}.img"), &t);
        for sub in ["show", "verify"] {
            let o = run(&["audit", sub, &p, "--key", &key_hex(), "--json"]);
            let code = o.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "{sub} on corrupt{i}: {code:?} {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
        }
    }
}

#[test]
fn drop_newest_loss_is_reported() {
    let mut img = vec![0u8; 4096 + 4 * 1024];
    let mut cfg = Config::new(KEY, BOOT);
    cfg.policy = OverflowPolicy::DropNewest;
    cfg.block_bytes = 1024;
    let mut log = AuditLog::format(&mut img, &cfg).unwrap();
    let mut dropped = 0;
    // Pointer-sized arguments (8 bytes each): 62-byte records, 100 of
    // them for a ring of 4 KiB.
    for i in 0..100u64 {
        if log
            .append(
                &Event::Syscall(SyscallEvent::new(1, [i | 1 << 63; 6], 0, 1, 1)),
                i,
                0,
            )
            .is_err()
        {
            dropped += 1;
        }
    }
    drop(log);
    let p = write("dropnewest.img", &img);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{dropped} records dropped (ring full)")),
        "{out}"
    );
    assert!(out.contains(&format!("{dropped} records lost")), "{out}");
}

#[test]
fn torn_record_after_a_crash_still_verifies() {
    // Block 0 holds a boot record and 40 syscalls; the guest dies while
    // appending the 40th syscall: header and payload written, commit mark
    // not (here: the last one's commit mark cleared).
    let mut img = vec![0u8; 64 * 1024];
    let mut log = AuditLog::format(&mut img, &Config::new(KEY, BOOT)).unwrap();
    log.append(
        &Event::Boot {
            memory_bytes: 1,
            cpu_count: 1,
            cmdline: "",
        },
        0,
        0,
    )
    .unwrap();
    for i in 0..40u64 {
        log.append(&Event::Syscall(SyscallEvent::new(1, [i; 6], 0, 1, 1)), i, 0)
            .unwrap();
    }
    drop(log);
    let (last, _) = record_span(&img, 40);
    img[last] = 0;
    img[last + 1] = 0;
    let p = write("torn.img", &img);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "WARNING: block 0, slot 0, offset {last:#x}: record torn mid-append"
        )),
        "{out}"
    );
    assert!(
        out.contains("40 records (40 unsealed, 1 torn skipped)"),
        "{out}"
    );
    assert!(out.contains("result: verified: 0 errors"), "{out}");
}

/// Three syscalls on two threads, one failed, then a seal.
fn syscall_image() -> Vec<u8> {
    let mut img = vec![0u8; 64 * 1024];
    let mut log = AuditLog::format(&mut img, &Config::new(KEY, BOOT)).unwrap();
    let calls: [(u32, u32, i64, u64); 3] = [
        (288, 1, 5, 1_000_000_000), // accept4 on tid 1 at 1 s
        (1, 2, -32, 2_000_000_000), // write on tid 2 at 2 s: EPIPE
        (0, 1, 3, 3_000_000_000),   // read on tid 1 at 3 s
    ];
    for (nr, tid, result, at) in calls {
        let ev = Event::Syscall(SyscallEvent::new(nr, [0; 6], result, tid, 100));
        log.append(&ev, at, 0).unwrap();
    }
    log.seal();
    drop(log);
    img
}

/// The syscall lines `show` prints for `filters`.
fn shown(p: &str, filters: &[&str]) -> Vec<String> {
    let key = key_hex();
    let mut args = vec!["audit", "show", p, "--key", &key];
    args.extend_from_slice(filters);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    stdout(&o)
        .lines()
        .filter(|l| l.contains(" syscall "))
        .map(str::to_string)
        .collect()
}

#[test]
fn show_filters_by_syscall_thread_errors_and_time() {
    let p = write("filters.img", &syscall_image());
    let all = shown(&p, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[0].contains("syscall accept4 nr=288 tid=1"), "{all:?}");
    let accept = shown(&p, &["--syscall", "accept4"]);
    assert_eq!(accept.len(), 1);
    assert!(accept[0].contains("accept4"), "{accept:?}");
    let two = shown(&p, &["--syscall", "accept4,read"]);
    assert_eq!(two.len(), 2, "{two:?}");
    let tid2 = shown(&p, &["--tid", "2"]);
    assert_eq!(tid2.len(), 1);
    assert!(tid2[0].contains("write nr=1 tid=2") && tid2[0].contains("result=-32"));
    let errors = shown(&p, &["--errors"]);
    assert_eq!(errors, tid2);
    let window = shown(&p, &["--since", "1.5", "--until", "3"]);
    assert_eq!(window, tid2);
    // A misspelt name is refused, with the name in the message.
    let o = run(&["audit", "show", &p, "--syscall", "acept4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("acept4"));
}

#[test]
fn show_stats_counts_calls_and_errors_per_syscall() {
    let p = write("stats.img", &syscall_image());
    let o = run(&["audit", "show", &p, "--key", &key_hex(), "--stats"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
    };
    assert_eq!(row("accept4"), Some(vec!["1", "0"]), "{out}");
    assert_eq!(row("write"), Some(vec!["1", "1"]), "{out}");
    assert_eq!(row("read"), Some(vec!["1", "0"]), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with('#')),
        "records are counted, not printed: {out}"
    );
    assert!(out.contains("records by kind: syscall 3"), "{out}");
    let o = run(&[
        "audit",
        "show",
        &p,
        "--key",
        &key_hex(),
        "--stats",
        "--json",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains(r#"{"nr":1,"name":"write","calls":1,"errors":1}"#),
        "{out}"
    );
}

#[test]
fn scan_finds_the_region_inside_a_memory_image() {
    let region = syscall_image();
    let mut ram = vec![0xa5u8; 3 * 4096];
    ram.extend_from_slice(&region);
    ram.extend_from_slice(&[0u8; 8192]);
    let p = write("ram.img", &ram);
    let o = run(&["audit", "verify", &p, "--key", &key_hex()]);
    assert_eq!(o.status.code(), Some(2), "not a region at offset 0");
    let o = run(&["audit", "verify", &p, "--scan", "--key", &key_hex()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("3 records"), "{}", stdout(&o));
    let p = write("noise.img", &[0u8; 4 * 4096]);
    let o = run(&["audit", "verify", &p, "--scan", "--key", &key_hex()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no audit region"));
}
