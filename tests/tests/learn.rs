//! `cloister run`'s learning pass: programs whose data files the resolver
//! cannot know (Python's standard library, Perl's modules, the time-zone
//! database, OpenSSL's configuration) run with no `--file`, and the second
//! run of the same command comes from the cache without a learning boot.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use vm_tests::cloister_cli;

fn run(cache: &Path, verbose: bool, argv: &[&str]) -> Output {
    let mut cmd = Command::new(cloister_cli());
    cmd.arg("run");
    if verbose {
        cmd.arg("-v");
    }
    cmd.arg("--")
        .args(argv)
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::null())
        .output()
        .expect("cloister run")
}

fn native(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("native run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cache(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cloister-learn-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn python_finds_its_standard_library_zoneinfo_and_ssl_with_no_file_option() {
    let argv = [
        "/usr/bin/python3",
        "-c",
        "import sqlite3, json, ssl, zoneinfo, datetime; \
         print(json.dumps({'tz': str(zoneinfo.ZoneInfo('Europe/Paris')), 'sqlite': sqlite3.sqlite_version, \
         'dt': datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Paris')).utcoffset().seconds}))",
    ];
    let dir = cache("python");
    let out = run(&dir, true, &argv);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), native(&argv));
    assert!(
        err.contains("packing /usr/lib/python3.11"),
        "-v says what and why: {err}"
    );
    assert!(err.contains("packing /usr/share/zoneinfo"), "{err}");
    // Again: from the cache.
    let out = run(&dir, true, &argv);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), native(&argv));
    assert!(
        text(&out.stderr).contains("cached"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn perl_finds_its_modules_with_no_file_option() {
    let argv = [
        "/usr/bin/perl",
        "-MPOSIX",
        "-MDigest::SHA=sha256_hex",
        "-e",
        "print sha256_hex('cloister'), ' ', floor(2.5), ' ', strftime('%Y', gmtime(0)), \"\\n\"",
    ];
    let dir = cache("perl");
    let out = run(&dir, false, &argv);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), native(&argv));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_learn_keeps_the_image_as_resolved() {
    let dir = cache("none");
    let mut cmd = Command::new(cloister_cli());
    let out = cmd
        .args([
            "run",
            "--no-learn",
            "--",
            "/usr/bin/python3",
            "-c",
            "print(1)",
        ])
        .env("XDG_CACHE_HOME", &dir)
        .stdin(Stdio::null())
        .output()
        .expect("cloister run");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("encodings"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.exists(), "nothing learnt, nothing cached");
}
