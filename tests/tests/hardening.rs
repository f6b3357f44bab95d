//! Issue 11's panics, now Linux's answers: file sizes a program controls
//! (`ftruncate` to 3.5 GiB and 256 MiB on a 128 MiB guest, a one-byte write
//! past 2 GiB, the largest offset) behave as on the host's file system, and
//! filling `/tmp` with 1 MiB writes ends in `ENOSPC` with the program — and
//! the kernel — going on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tools::run::{RunOptions, run};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("cloister-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn compile(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    vm_tests::compile_program(name, &out, &[]);
    out
}

#[test]
fn file_sizes_a_program_controls_get_linux_answers_and_a_full_tmp_gives_enospc() {
    let dir = scratch("files");
    let prog = compile(&dir, "file_limits");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let native = Command::new(&prog).arg(&data).output().expect("native run");
    assert!(native.status.success());
    let native = String::from_utf8_lossy(&native.stdout).into_owned();

    let mut opts = RunOptions::new(&prog, ["/tmp", "fill"]);
    opts.capture = true;
    opts.memory_mib = 128;
    opts.timeout = Some(Duration::from_secs(300));
    let result = run(&opts).expect("cloister run");
    let out = String::from_utf8_lossy(&result.stdout).into_owned();
    assert_eq!(result.exit_code(), 0, "{out}\n{:#?}", result.kernel_lines);
    assert!(
        out.starts_with(&native),
        "native:\n{native}\nCloister:\n{out}"
    );
    let fill = &out[native.len()..];
    assert!(fill.contains("then: No space left on device"), "{fill}");
    assert!(fill.contains("statfs: free blocks nearly none"), "{fill}");
    assert!(
        fill.contains("after truncating: free blocks many again"),
        "{fill}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
