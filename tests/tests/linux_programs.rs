//! Issue 5's acceptance tests: unmodified Debian binaries run in Cloister
//! (QEMU, TCG by default) through `cloister run`'s library API, with their
//! output compared to the same command run natively on the same files.
//!
//! Needs `busybox-static`, `coreutils`, `python3`, `openssl` and `gcc`
//! (installed by `.ci/install-deps`). A missing one fails the test with a
//! message saying which: these are acceptance tests, not optional extras.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tools::run::options::FileMapping;
use tools::run::{RunOptions, RunResult, run};
use vm_tests::{Scratch, native, require};

/// Runs `argv` in Cloister with `files` (host → guest) packed in.
fn cloister(argv: &[&str], files: &[(&Path, &str)]) -> RunResult {
    let args: Vec<OsString> = argv[1..].iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(argv[0], &args);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.files = files
        .iter()
        .map(|(host, guest)| FileMapping {
            host: host.to_path_buf(),
            guest: Some(PathBuf::from(guest)),
        })
        .collect();
    run(&opts).expect("cloister run")
}

/// Asserts the Cloister run reported a status and returns (output, status).
fn finished(r: &RunResult) -> (Vec<u8>, i32) {
    assert!(
        r.diagnosis.is_none(),
        "no exit status: {:?}\nkernel: {:#?}",
        r.diagnosis,
        r.kernel_lines
    );
    (r.output.clone(), i32::from(r.exit_code()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directory of deterministic files (no subdirectories), the same path
/// on the host and in the guest so `ls -l` output can match byte for byte.
fn data_dir(s: &Scratch) -> PathBuf {
    let dir = s.path("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    let words = "pear\napple\nfig\nbanana\ncherry\napple\n";
    std::fs::write(dir.join("fruit.txt"), words).expect("write");
    let mut big = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.push((x >> 16) as u8);
    }
    std::fs::write(dir.join("random.bin"), &big).expect("write");
    let lines: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("lines.txt"), lines).expect("write");
    dir
}

#[test]
fn busybox_applets_match_native() {
    require("/bin/busybox", "busybox-static");
    let s = Scratch::new("busybox");
    let dir = data_dir(&s);
    let d = dir.to_str().expect("utf-8 path");
    let fruit = format!("{d}/fruit.txt");
    let random = format!("{d}/random.bin");
    let cases: Vec<Vec<String>> = vec![
        vec!["echo".into(), "hello".into(), "world".into()],
        vec!["ls".into(), "-l".into(), d.into()],
        vec!["cat".into(), fruit.clone()],
        vec!["sha256sum".into(), random.clone()],
        vec!["wc".into(), fruit.clone(), random.clone()],
        vec!["sort".into(), fruit.clone()],
    ];
    for case in cases {
        let mut argv = vec!["/bin/busybox"];
        argv.extend(case.iter().map(String::as_str));
        let ours = finished(&cloister(&argv, &[(&dir, d)]));
        assert_eq!(
            (text(&ours.0), ours.1),
            {
                let n = native(&argv);
                (text(&n.0), n.1)
            },
            "busybox {case:?}"
        );
    }
}

#[test]
fn busybox_ls_of_the_root_lists_the_image() {
    require("/bin/busybox", "busybox-static");
    let (out, status) = finished(&cloister(&["/bin/busybox", "ls", "-l", "/"], &[]));
    assert_eq!(status, 0);
    let out = text(&out);
    for entry in ["bin", "dev", "etc", "proc", "tmp"] {
        assert!(
            out.lines().any(|l| l.ends_with(&format!(" {entry}"))),
            "no {entry} in:\n{out}"
        );
    }
}

#[test]
fn glibc_true_and_false_exit_0_and_1() {
    assert_eq!(finished(&cloister(&["/usr/bin/true"], &[])).1, 0);
    assert_eq!(finished(&cloister(&["/usr/bin/false"], &[])).1, 1);
}

#[test]
fn glibc_coreutils_match_native() {
    let s = Scratch::new("coreutils");
    let dir = data_dir(&s);
    let d = dir.to_str().expect("utf-8 path");
    let cases: Vec<Vec<String>> = vec![
        vec!["/usr/bin/ls".into(), "-la".into(), d.into()],
        vec!["/usr/bin/sha256sum".into(), format!("{d}/random.bin")],
        vec!["/usr/bin/cat".into(), format!("{d}/fruit.txt")],
        vec![
            "/usr/bin/head".into(),
            "-n".into(),
            "3".into(),
            format!("{d}/lines.txt"),
        ],
    ];
    for case in cases {
        let argv: Vec<&str> = case.iter().map(String::as_str).collect();
        let ours = finished(&cloister(&argv, &[(&dir, d)]));
        let theirs = native(&argv);
        assert_eq!(
            (text(&ours.0), ours.1),
            (text(&theirs.0), theirs.1),
            "{case:?}"
        );
    }
}

#[test]
fn glibc_ls_la_etc_lists_the_images_etc() {
    let (out, status) = finished(&cloister(&["/usr/bin/ls", "-la", "/etc"], &[]));
    let out = text(&out);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("-rw-r--r--")
            && l.contains(" root root ")
            && l.ends_with(" passwd")),
        "{out}"
    );
}

#[test]
fn date_reads_the_wall_clock() {
    let fmt = "+%Y-%m-%d %H";
    let before = text(&native(&["/usr/bin/date", "-u", fmt]).0);
    let (out, status) = finished(&cloister(&["/usr/bin/date", "-u", fmt], &[]));
    let after = text(&native(&["/usr/bin/date", "-u", fmt]).0);
    assert_eq!(status, 0);
    let out = text(&out);
    assert!(
        out == before || out == after,
        "guest {out:?}, host {before:?}..{after:?}"
    );
}

#[test]
fn python_json_hashlib_and_threads() {
    require("/usr/bin/python3", "python3");
    let script = "import json, hashlib, threading\n\
        results = {}\n\
        def work(i):\n    results[i] = hashlib.sha256(str(i).encode()).hexdigest()\n\
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]\n\
        [t.start() for t in threads]\n\
        [t.join() for t in threads]\n\
        print(json.dumps({'threads': len(results), 'digests': [results[i][:12] for i in range(6)]}, sort_keys=True))\n\
        print(hashlib.sha256(b'cloister').hexdigest())\n";
    let argv = ["/usr/bin/python3", "-c", script];
    let r = cloister(
        &argv,
        &[(Path::new("/usr/lib/python3.11"), "/usr/lib/python3.11")],
    );
    let ours = finished(&r);
    let theirs = native(&argv);
    assert_eq!((text(&ours.0), ours.1), (text(&theirs.0), theirs.1));
    assert!(text(&ours.0).contains("\"threads\": 6"));
}

#[test]
fn python_pseudo_terminals_match_native() {
    // os.openpty through the line discipline, the master's EIO after the
    // slave closes, pty.fork's child as a session leader on the slave.
    require("/usr/bin/python3", "python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pty_check.py");
    let path = script.to_str().expect("utf-8");
    let argv = ["/usr/bin/python3", path];
    let r = cloister(
        &argv,
        &[
            (Path::new("/usr/lib/python3.11"), "/usr/lib/python3.11"),
            (&script, path),
        ],
    );
    let ours = finished(&r);
    let theirs = native(&argv);
    assert_eq!((text(&ours.0), ours.1), (text(&theirs.0), theirs.1));
    assert!(
        text(&ours.0).contains("already a session leader"),
        "{}",
        text(&ours.0)
    );
}

/// Builds `tests/programs/NAME.c` with the system gcc into the scratch dir.
fn compile(s: &Scratch, name: &str, extra: &[&str]) -> PathBuf {
    require("/usr/bin/gcc", "gcc");
    let out = s.path(name);
    vm_tests::compile_program(name, &out, extra);
    out
}

#[test]
fn vdso_clocks_agree_with_the_system_calls_as_natively() {
    // glibc reads the clocks through Cloister's vDSO (libos::vdso); its
    // answers interleave in order with the system calls'.
    let s = Scratch::new("vdso");
    let prog = compile(&s, "vdso_clock", &[]);
    let p = prog.to_str().expect("utf-8");
    let ours = finished(&cloister(&[p], &[]));
    let theirs = vm_tests::native(&[p]);
    assert_eq!((text(&ours.0), ours.1), (text(&theirs.0), theirs.1));
    assert!(
        text(&ours.0).starts_with("vdso: yes\n"),
        "{}",
        text(&ours.0)
    );
    assert!(!text(&ours.0).contains(": no"), "{}", text(&ours.0));
}

#[test]
fn pthreads_mutex_condvar_tls_exact_count() {
    let s = Scratch::new("pthread");
    let prog = compile(&s, "pthread_stress", &["-pthread"]);
    let p = prog.to_str().expect("utf-8");
    let (out, status) = finished(&cloister(&[p], &[]));
    assert_eq!(
        text(&out),
        "counter=8000000 expected=8000000 tls_errors=0 main_tls=-1\n"
    );
    assert_eq!(status, 0);
}

#[test]
fn pthread_exit_and_cancellation_unwind_as_natively() {
    // glibc loads libgcc_s.so.1 for them: `cloister run` packs it with libc
    // (it aborted with "libgcc_s.so.1 must be installed" before).
    let s = Scratch::new("pthread-exit");
    let prog = compile(&s, "pthread_exit", &["-pthread"]);
    let p = prog.to_str().expect("utf-8");
    let ours = finished(&cloister(&[p], &[]));
    let theirs = vm_tests::native(&[p]);
    assert_eq!((text(&ours.0), ours.1), (text(&theirs.0), theirs.1));
    assert_eq!(text(&ours.0), "pthread_exit gave 42\ncancelled: 1\n");
}

#[test]
fn poll_select_epoll_wake_for_pipes_and_eventfds_across_threads() {
    let s = Scratch::new("readiness");
    let prog = compile(&s, "readiness", &["-pthread"]);
    let p = prog.to_str().expect("utf-8");
    let (out, status) = finished(&cloister(&[p], &[]));
    assert_eq!(
        text(&out),
        "poll: 1 ping\nselect: 1 1\nepoll: 1 42 pong\neof: 1\nok\n"
    );
    assert_eq!(status, 0);
}

#[test]
fn openssl_sha256_and_speed() {
    require("/usr/bin/openssl", "openssl");
    let s = Scratch::new("openssl");
    let dir = data_dir(&s);
    let file = format!("{}/random.bin", dir.display());
    let argv = ["/usr/bin/openssl", "sha256", file.as_str()];
    let ours = finished(&cloister(&argv, &[(&dir, dir.to_str().expect("utf-8"))]));
    assert_eq!((text(&ours.0), ours.1), {
        let n = native(&argv);
        (text(&n.0), n.1)
    });
    let (out, status) = finished(&cloister(
        &[
            "/usr/bin/openssl",
            "speed",
            "-seconds",
            "1",
            "-bytes",
            "1024",
            "sha256",
        ],
        &[],
    ));
    let (bytes, end) = (out.len(), text(&out[out.len().saturating_sub(40)..]));
    let out = text(&out);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("sha256 ") && l.ends_with('k')),
        "no result line in these {bytes} bytes (the end: {end:?}):\n{out}"
    );
}

#[test]
fn bad_pointers_get_efault_and_null_dereference_is_sigsegv() {
    let s = Scratch::new("badptr");
    let prog = compile(&s, "bad_pointer", &[]);
    let p = prog.to_str().expect("utf-8");
    let (out, status) = finished(&cloister(&[p], &[]));
    assert_eq!(
        text(&out),
        "write(bad pointer) = -1, errno = EFAULT\nwrite(kernel pointer) = -1, errno = EFAULT\n"
    );
    assert_eq!(status, 0);
    let (out, status) = finished(&cloister(&[p, "null"], &[]));
    let out = text(&out);
    assert_eq!(status, 139, "{out}");
    assert!(
        out.contains("killed by SIGSEGV") && out.contains("at 0x0"),
        "no report in:\n{out}"
    );
}

/// `tests/programs/same_file_copy.c`: `read`/`write` of a regular file
/// into and from untouched `MAP_PRIVATE` and `MAP_SHARED` mappings of the
/// same file (the LibOS copies the file's pages straight to user memory
/// and must fault such a page in with the file's lock dropped, or it
/// deadlocks), and the bytes done or `EFAULT` for partly bad buffers —
/// compared with the native run.
#[test]
fn file_reads_and_writes_through_mappings_of_the_same_file_match_native() {
    let s = Scratch::new("same-file-copy");
    let prog = compile(&s, "same_file_copy", &[]);
    let p = prog.to_str().expect("utf-8");
    let ours = finished(&cloister(&[p], &[]));
    let theirs = native(&[p]);
    assert_eq!(text(&ours.0), text(&theirs.0));
    assert_eq!(ours.1, theirs.1);
    assert!(!text(&ours.0).contains("NO"), "{}", text(&ours.0));
}

#[test]
fn a_write_to_a_closed_pipe_raises_sigpipe() {
    let s = Scratch::new("sigpipe");
    let prog = compile(&s, "sigpipe", &[]);
    let p = prog.to_str().expect("utf-8");
    let (out, status) = finished(&cloister(&[p], &[]));
    assert_eq!(status, 141, "{}", text(&out));
    assert!(text(&out).contains("killed by signal 13"), "{}", text(&out));
    let (out, status) = finished(&cloister(&[p, "handle"], &[]));
    assert_eq!(
        (text(&out), status),
        (
            "write = -1 (Broken pipe), handler saw signal 13\n".to_string(),
            0
        )
    );
}

#[test]
fn unix_socket_names_are_files_as_natively() {
    // bind makes a socket file (stat, EADDRINUSE, unlink frees the name, a
    // renamed file still leads to the listener), connect to a regular file
    // is refused, autobind picks abstract names, MSG_PEEK leaves the bytes.
    let s = Scratch::new("unix-names");
    let prog = compile(&s, "unix_names", &[]);
    let p = prog.to_str().expect("utf-8");
    let (out, status) = finished(&cloister(&[p], &[]));
    let (native, native_status) = vm_tests::native(&[p]);
    assert_eq!((text(&out), status), (text(&native), native_status));
    assert!(text(&out).contains("stat: socket 1"), "{}", text(&out));
}

/// Runs static busybox's path with `replacement` packed over it, so the
/// guest's exec sees the bad file (the host resolver only checks the real
/// busybox).
fn run_replaced(replacement: &Path) -> (String, i32) {
    require("/bin/busybox", "busybox-static");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(replacement, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (out, status) = finished(&cloister(
        &["/bin/busybox", "true"],
        &[(replacement, "/bin/busybox")],
    ));
    (text(&out), status)
}

#[test]
fn bad_executables_fail_with_a_clear_error() {
    let s = Scratch::new("badelf");
    let elf = std::fs::read("/usr/bin/true").expect("read /usr/bin/true");

    let truncated = s.path("truncated");
    std::fs::write(&truncated, &elf[..100]).expect("write");
    let (out, status) = run_replaced(&truncated);
    assert_eq!(status, 126, "{out}");
    assert!(
        out.contains("cannot execute /bin/busybox") && out.contains("ENOEXEC"),
        "{out}"
    );

    let mut arm = elf.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let foreign = s.path("foreign");
    std::fs::write(&foreign, &arm).expect("write");
    let (out, status) = run_replaced(&foreign);
    assert_eq!(status, 126, "{out}");
    assert!(out.contains("ENOEXEC"), "{out}");

    let interp = b"/lib64/ld-linux-x86-64.so.2";
    let at = elf
        .windows(interp.len())
        .position(|w| w == interp)
        .expect("PT_INTERP string");
    let mut missing = elf.clone();
    missing[at..at + interp.len()].copy_from_slice(b"/lib64/ld-linux-x86-64.so.X");
    let no_interp = s.path("no-interp");
    std::fs::write(&no_interp, &missing).expect("write");
    let (out, status) = run_replaced(&no_interp);
    assert_eq!(status, 127, "{out}");
    assert!(out.contains("interpreter not found"), "{out}");
}
