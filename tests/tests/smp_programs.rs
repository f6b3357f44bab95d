//! Programs on several vCPUs (issue 15): user threads run on the
//! application processors, in parallel in user mode, under the big kernel
//! lock (docs/ARCHITECTURE.md "CPUs").
//!
//! - the 8-thread pthread stress (mutex, condition variable, TLS) keeps the
//!   exact count on 2 and 4 vCPUs, and every CPU ran threads;
//! - a CPU-bound hash loop in 2 threads gives native's hash, and its
//!   threads saw both CPUs (`getcpu`);
//! - `munmap` while another thread on another CPU reads the page: the
//!   reader faults at once with SIGSEGV (`SEGV_MAPERR`, the address in the
//!   page), as natively — the TLB shootdown; without it the reader's CPU
//!   would read on through its stale translation.
//!
//! Needs `gcc`. Run with `cargo test -p vm-tests --test smp_programs`.

use std::time::Duration;

use tools::run::{RunOptions, RunResult, run};
use vm_tests::{Scratch, native, require};

fn compile(s: &Scratch, name: &str) -> String {
    require("/usr/bin/gcc", "gcc");
    let out = s.path(name);
    vm_tests::compile_program(name, &out, &["-pthread"]);
    out.to_str().expect("utf-8").to_string()
}

fn cloister(cpus: u32, prog: &str, args: &[&str]) -> RunResult {
    let mut opts = RunOptions::new(prog, args);
    opts.capture = true;
    opts.cpus = Some(cpus);
    opts.timeout = Some(Duration::from_secs(600));
    let r = run(&opts).expect("cloister run");
    assert!(
        r.diagnosis.is_none(),
        "no exit status: {:?}\nkernel: {:#?}",
        r.diagnosis,
        r.kernel_lines
    );
    r
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The numbers of the kernel's `smp:` summary line: thread runs per CPU,
/// then TLB shootdowns.
fn summary(r: &RunResult) -> (Vec<u64>, u64) {
    let line = r
        .kernel_lines
        .iter()
        .find_map(|l| l.split("smp: thread runs per CPU").nth(1))
        .unwrap_or_else(|| panic!("no smp summary: {:#?}", r.kernel_lines));
    let (runs, rest) = line.split_once(';').expect("summary shape");
    let runs = runs
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    let shootdowns = rest
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("shootdown count");
    (runs, shootdowns)
}

fn pthread_stress_on(cpus: u32) {
    let s = Scratch::new(&format!("smp-pthread-{cpus}"));
    let prog = compile(&s, "pthread_stress");
    let r = cloister(cpus, &prog, &[]);
    assert_eq!(
        text(&r.stdout),
        "counter=8000000 expected=8000000 tls_errors=0 main_tls=-1\n",
        "{:#?}",
        r.kernel_lines
    );
    assert_eq!(r.exit_code(), 0);
    let (runs, _) = summary(&r);
    assert_eq!(runs.len(), cpus as usize, "{:#?}", r.kernel_lines);
    assert!(runs.iter().all(|&n| n > 0), "a CPU ran no thread: {runs:?}");
}

#[test]
fn pthread_stress_keeps_the_exact_count_on_two_vcpus() {
    pthread_stress_on(2);
}

#[test]
fn pthread_stress_keeps_the_exact_count_on_four_vcpus() {
    pthread_stress_on(4);
}

#[test]
fn two_hash_threads_run_on_both_cpus_with_natives_result() {
    let s = Scratch::new("smp-hash");
    let prog = compile(&s, "smp_hash");
    let args = ["2", "20000000"];
    let ours = cloister(2, &prog, &args);
    let mut argv = vec![prog.as_str()];
    argv.extend(args);
    let (theirs, status) = native(&argv);
    assert_eq!(status, 0);
    let want = text(&theirs);
    let want = want
        .lines()
        .find(|l| l.starts_with("threads="))
        .expect("native's hash");
    assert_eq!(text(&ours.stdout), format!("{want}\n"));
    assert!(
        text(&ours.stderr).starts_with("cpus_seen=2 "),
        "{}",
        text(&ours.stderr)
    );
    // One vCPU: the same hash, one CPU seen.
    let one = cloister(1, &prog, &args);
    assert_eq!(text(&one.stdout), format!("{want}\n"));
    assert!(text(&one.stderr).starts_with("cpus_seen=1 "));
}

fn munmap_race_on(cpus: u32) {
    let s = Scratch::new(&format!("smp-munmap-{cpus}"));
    let prog = compile(&s, "munmap_race");
    let ours = cloister(cpus, &prog, &[]);
    let theirs = native(&[&prog]);
    assert_eq!(
        (text(&ours.stdout), i32::from(ours.exit_code())),
        (text(&theirs.0), theirs.1)
    );
    assert_eq!(
        text(&ours.stdout),
        "main: unmapping while the reader reads\n\
         reader: signal 11 code SEGV_MAPERR address in the page: yes\n"
    );
    let (_, shootdowns) = summary(&ours);
    assert!(shootdowns > 0, "{:#?}", ours.kernel_lines);
}

#[test]
fn munmap_under_a_reader_on_another_cpu_faults_it_as_natively() {
    munmap_race_on(2);
    munmap_race_on(4);
}
