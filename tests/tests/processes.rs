//! Issue 12's processes: `fork`, `vfork`, `execve`, `wait`, pipes between
//! processes, busybox `sh` scripts with pipelines, subshells, `$(…)`,
//! redirections, `wait` and `trap`, CPython's `subprocess` and `os.fork`
//! — each run in Cloister (QEMU, TCG by default) and compared byte for
//! byte with the same run natively — and a fork bomb that ends with
//! `EAGAIN` while the kernel stays up.
//!
//! Needs `busybox-static`, `python3` and `gcc` (installed by
//! `.ci/install-deps`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tools::run::options::FileMapping;
use tools::run::{RunOptions, RunResult, run};
use vm_tests::{Scratch, require};

const BUSYBOX: &str = "/bin/busybox";

/// Builds `tests/programs/NAME.c` into the scratch dir.
fn compile(s: &Scratch, name: &str) -> PathBuf {
    require("/usr/bin/gcc", "gcc");
    let out = s.0.join(name);
    vm_tests::compile_program(name, &out, &[]);
    out
}

/// Runs `argv` in Cloister with busybox and `files` (each at its host
/// path) packed in; returns (output, status).
fn cloister(argv: &[&str], files: &[&Path]) -> (String, i32) {
    let args: Vec<OsString> = argv[1..].iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(argv[0], &args);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(400));
    opts.files = std::iter::once(Path::new(BUSYBOX))
        .chain(files.iter().copied())
        .map(|host| FileMapping {
            host: host.to_path_buf(),
            guest: Some(host.to_path_buf()),
        })
        .collect();
    let r: RunResult = run(&opts).expect("cloister run");
    assert!(
        r.diagnosis.is_none(),
        "no exit status: {:?}\nkernel: {:#?}",
        r.diagnosis,
        r.kernel_lines
    );
    (
        String::from_utf8_lossy(&r.output).into_owned(),
        i32::from(r.exit_code()),
    )
}

/// [`vm_tests::native`] as text, as [`cloister`] returns it.
fn native(argv: &[&str]) -> (String, i32) {
    let (bytes, status) = vm_tests::native(argv);
    (String::from_utf8_lossy(&bytes).into_owned(), status)
}

#[test]
fn fork_wait_exec_vfork_and_pipes_match_native() {
    require(BUSYBOX, "busybox-static");
    let s = Scratch::new("fork-wait");
    let prog = compile(&s, "fork_wait");
    let p = prog.to_str().expect("utf-8");
    let ours = cloister(&[p, BUSYBOX], &[&prog]);
    let theirs = native(&[p, BUSYBOX]);
    assert_eq!(ours, theirs);
    assert!(ours.0.contains("eight children, statuses sum to 36"));
}

/// Runs `tests/scripts/NAME.sh` with busybox `sh` in Cloister and natively.
fn script_matches_native(name: &str) {
    require(BUSYBOX, "busybox-static");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scripts/{name}.sh"));
    let path = script.to_str().expect("utf-8");
    let ours = cloister(&[BUSYBOX, "sh", path], &[&script]);
    let theirs = native(&[BUSYBOX, "sh", path]);
    assert_eq!(ours, theirs, "script {name}");
    assert_eq!(ours.1, 0);
}

#[test]
fn busybox_sh_pipelines_subshells_and_substitutions_match_native() {
    script_matches_native("pipelines");
}

#[test]
fn busybox_sh_jobs_wait_and_traps_match_native() {
    script_matches_native("jobs_and_traps");
}

#[test]
fn busybox_sh_redirections_and_here_documents_match_native() {
    script_matches_native("redirections");
}

#[test]
fn a_fork_bomb_gets_eagain_and_the_kernel_stays_up() {
    let s = Scratch::new("fork-bomb");
    let prog = compile(&s, "fork_bomb");
    let p = prog.to_str().expect("utf-8");
    let (out, status) = cloister(&[p], &[&prog]);
    assert_eq!(
        out,
        "fork failed with EAGAIN after at least 16 children\n\
         reaped all, all exited cleanly: yes\n\
         a fork after the bomb: 9\n"
    );
    assert_eq!(status, 0);
}

#[test]
fn python_subprocess_and_os_fork_match_native() {
    require("/usr/bin/python3", "python3");
    let script = "import os, subprocess, sys\n\
        print(subprocess.run(['echo', 'hi'], capture_output=True).stdout)\n\
        print(subprocess.run(['sh', '-c', 'exit 3']).returncode)\n\
        pid = os.fork()\n\
        if pid == 0:\n    os._exit(7)\n\
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n\
        r, w = os.pipe()\n\
        if os.fork() == 0:\n    os.write(w, b'from the child'); os._exit(0)\n\
        os.close(w); print(os.read(r, 100)); os.wait()\n";
    let argv = ["/usr/bin/python3", "-c", script];
    let lib = Path::new("/usr/lib/python3.11");
    let (echo, sh) = (Path::new("/usr/bin/echo"), Path::new("/usr/bin/sh"));
    let ours = cloister(&argv, &[lib, echo, sh]);
    let theirs = native(&argv);
    assert_eq!(ours, theirs);
    assert!(ours.0.starts_with("b'hi\\n'\n3\n7\n"), "{}", ours.0);
}

#[test]
fn futexes_on_map_shared_memory_work_across_processes() {
    let s = Scratch::new("shared-futex");
    let prog = compile(&s, "shared_futex");
    let p = prog.to_str().expect("utf-8");
    let ours = cloister(&[p], &[&prog]);
    let theirs = native(&[p]);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours.0,
        "200 rounds through shared semaphores, the child's count: 200\n\
         child woken from FUTEX_WAIT, exit status 0\n"
    );
}

/// `/proc/<pid>/{stat,status,cmdline,exe,fd,maps}` and `/proc/self` as
/// `ps` and Python read them (`tests/scripts/proc_fields.py`: a child
/// running `busybox sleep`, the script itself, `busybox ps`), compared
/// with the native run.
#[test]
fn proc_pid_entries_read_by_ps_and_python_match_native() {
    require("/usr/bin/python3", "python3");
    require(BUSYBOX, "busybox-static");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/proc_fields.py");
    let path = script.to_str().expect("utf-8");
    let argv = ["/usr/bin/python3", path];
    let lib = Path::new("/usr/lib/python3.11");
    let ours = cloister(&argv, &[lib, &script]);
    let theirs = native(&argv);
    assert_eq!(ours, theirs);
    assert!(
        ours.0.contains("stat: comm busybox state S fields 52\n"),
        "{}",
        ours.0
    );
    assert!(
        ours.0.ends_with("child: -9 entry after reaping False\n"),
        "{}",
        ours.0
    );
}

/// Redis persistence through `fork` (`tests/scripts/redis_persistence.sh`,
/// every server inside the guest): `BGSAVE` writes a `dump.rdb` that
/// `redis-check-rdb` accepts and a second server loads with every key;
/// `appendonly yes` and `BGREWRITEAOF` write an AOF that `redis-check-aof`
/// accepts and a third server loads, with the writes after the rewrite.
/// The expected lines are those of the same script run natively.
#[test]
fn redis_bgsave_and_bgrewriteaof_persist_through_fork() {
    for (path, package) in [
        ("/usr/bin/redis-server", "redis-server"),
        ("/usr/bin/redis-cli", "redis-tools"),
        (BUSYBOX, "busybox-static"),
    ] {
        require(path, package);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis_persistence.sh");
    let path = script.to_str().expect("utf-8");
    // The script runs these: they go in the image (their interpreter and
    // libraries are added by `cloister run`).
    let files = [
        Path::new("/usr/bin/redis-server"),
        Path::new("/usr/bin/redis-check-rdb"),
        Path::new("/usr/bin/redis-check-aof"),
        Path::new("/usr/bin/redis-cli"),
        &script,
    ];
    let (out, status) = cloister(&[BUSYBOX, "sh", path], &files);
    assert_eq!(
        out,
        "dbsize before: 200\n\
         bgsave: Background saving started\n\
         rdb_changes_since_last_save:0\n\
         rdb_last_bgsave_status:ok\n\
         redis-check-rdb: 0 RDB looks OK\n\
         appendonly: OK\n\
         bgrewriteaof: Background append only file rewriting started\n\
         aof_enabled:1\n\
         aof_last_bgrewrite_status:ok\n\
         shutdown: \n\
         redis-check-aof: 0 is valid\n\
         from dump.rdb: 200 keys, key77=value77\n\
         from the AOF: 202 keys, key200=value200 last=after-rewrite-two\n\
         all servers exited\n"
    );
    assert_eq!(status, 0);
}

#[test]
fn posix_timers_signal_thread_and_none_notifications_match_native() {
    // timer_create with SIGEV_SIGNAL (SI_TIMER, value, id), a periodic
    // timer counting overruns while its signal is blocked, SIGEV_NONE, a
    // timer signal interrupting epoll_wait, glibc's SIGEV_THREAD (its helper
    // thread waits in sigtimedwait), a deleted timer.
    let s = Scratch::new("posix-timers");
    let prog = compile(&s, "posix_timers");
    let p = prog.to_str().expect("utf-8");
    let ours = cloister(&[p], &[&prog]);
    let theirs = native(&[p]);
    assert_eq!(ours, theirs);
    assert!(ours.0.contains("thread notification ran 1"), "{}", ours.0);
}

#[test]
fn ended_processes_and_threads_give_back_their_memory() {
    // Checked in Cloister only: Linux's free memory moves with its caches.
    let s = Scratch::new("process-leak");
    let prog = compile(&s, "process_leak");
    let p = prog.to_str().expect("utf-8");
    let (out, status) = cloister(&[p, "400"], &[&prog]);
    assert_eq!(
        out,
        "400 processes; each left under 1 KiB behind: yes\n\
         400 threads; each left under 1 KiB behind: yes\n"
    );
    assert_eq!(status, 0);
}

/// `MAP_SHARED` file mappings (`tests/programs/shared_file_map.c`): a
/// parent and a forked child sharing a /dev/shm file's pages, `write()`
/// and stores seen both ways, two mappings of one file, truncate and
/// unlink while mapped, `SIGBUS` past the end, and `sem_open` semaphores
/// the child opens again by name — compared with the native run.
#[test]
fn shared_file_mappings_and_named_semaphores_work_across_fork() {
    let s = Scratch::new("shared-file-map");
    require("/usr/bin/gcc", "gcc");
    let prog = s.0.join("shared_file_map");
    vm_tests::compile_program("shared_file_map", &prog, &["-pthread"]);
    let p = prog.to_str().expect("utf-8");
    let ours = cloister(&[p], &[&prog]);
    let theirs = native(&[p]);
    assert_eq!(ours, theirs);
    assert!(
        ours.0
            .starts_with("child exit 0, 100 rounds through named semaphores, in step: yes\n"),
        "{}",
        ours.0
    );
    assert!(ours.0.ends_with("past the end: signal 7\n"), "{}", ours.0);
}

/// CPython's `multiprocessing` with the fork context: a `Pool(2).map`,
/// and two processes counting under a `multiprocessing.Lock` into a
/// `Value` (glibc's `sem_open` and multiprocessing's heap both map files
/// in /dev/shm shared) — compared with the native run.
#[test]
fn python_multiprocessing_pool_and_lock_across_fork() {
    require("/usr/bin/python3", "python3");
    let script = "import multiprocessing as mp\n\
        def sq(x):\n    return x * x\n\
        def add(v, lock, n):\n    for _ in range(n):\n        with lock:\n            v.value += 1\n\
        ctx = mp.get_context('fork')\n\
        with ctx.Pool(2) as pool:\n    print(pool.map(sq, range(10)))\n\
        lock = ctx.Lock()\n\
        v = ctx.Value('i', 0, lock=False)\n\
        ps = [ctx.Process(target=add, args=(v, lock, 200)) for _ in range(2)]\n\
        [p.start() for p in ps]\n\
        [p.join() for p in ps]\n\
        print(v.value, [p.exitcode for p in ps])\n";
    let argv = ["/usr/bin/python3", "-c", script];
    let lib = Path::new("/usr/lib/python3.11");
    let ours = cloister(&argv, &[lib]);
    let theirs = native(&argv);
    assert_eq!(ours, theirs);
    assert_eq!(ours.0, "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n400 [0, 0]\n");
}

#[test]
fn execveat_and_fexecve_match_native() {
    // A path from a directory fd, the file an fd (or an O_PATH fd) names,
    // glibc's fexecve, an absolute path, and Linux's errors.
    require(BUSYBOX, "busybox-static");
    let s = Scratch::new("execveat");
    let prog = compile(&s, "execveat");
    let p = prog.to_str().expect("utf-8");
    let ours = cloister(&[p, BUSYBOX], &[&prog]);
    let theirs = native(&[p, BUSYBOX]);
    assert_eq!(ours, theirs);
    assert!(ours.0.contains("fexecve: exit 0"), "{}", ours.0);
}
