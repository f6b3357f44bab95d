//! IPv6 sockets from a real program: Debian's `python3` runs
//! `tests/scripts/ipv6_sockets.py` (TCP and UDP over `::1`, an IPv4
//! client of a `::` listener seen as `::ffff:127.0.0.1`, a mapped address
//! reaching an IPv4 listener, `IPV6_V6ONLY` refusing IPv4, hop limits,
//! RFC 3542 ancillary data over UDP and UDP-Lite: hop limit and traffic
//! class chosen by `sendmsg` or the socket and reported by `recvmsg`, cut
//! control buffers, bad control messages) in Cloister and natively; the
//! outputs must be equal.
//!
//! Needs `python3` (installed by `.ci/install-deps`); the native run, the
//! reference, needs IPv6 on the host's loopback (without it only the
//! checks of Linux's answers written in the test are made).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tools::run::options::FileMapping;
use tools::run::{RunOptions, run};
use vm_tests::{native, require};

#[test]
fn python_ipv6_and_dual_stack_sockets_match_native() {
    require("/usr/bin/python3", "python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ipv6_sockets.py");
    let path = script.to_str().expect("utf-8");
    let argv = ["/usr/bin/python3", path];
    let mut opts = RunOptions::new(argv[0], &[OsString::from(path)]);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.files = [
        (Path::new("/usr/lib/python3.11"), "/usr/lib/python3.11"),
        (script.as_path(), path),
    ]
    .iter()
    .map(|(host, guest)| FileMapping {
        host: host.to_path_buf(),
        guest: Some(PathBuf::from(guest)),
    })
    .collect();
    let r = run(&opts).expect("cloister run");
    assert!(
        r.diagnosis.is_none(),
        "no exit status: {:?}\nkernel: {:#?}",
        r.diagnosis,
        r.kernel_lines
    );
    let ours = (
        String::from_utf8_lossy(&r.output).into_owned(),
        r.exit_code(),
    );
    // The native run needs `::1` on the host; without it, the checks below
    // still hold Cloister to Linux's answers.
    let host_v6 = std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with(&format!("{:032x}", 1))));
    if host_v6 {
        let (bytes, status) = native(&argv);
        let theirs = (String::from_utf8_lossy(&bytes).into_owned(), status);
        assert_eq!(
            (ours.0.as_str(), i32::from(ours.1)),
            (theirs.0.as_str(), theirs.1)
        );
    } else {
        eprintln!("no ::1 on this host's loopback: the native comparison is skipped");
        assert_eq!(ours.1, 0, "{}", ours.0);
    }
    assert!(
        ours.0
            .contains("dual v4 client b'FROM V4' 127.0.0.1 ('::ffff:127.0.0.1'"),
        "{}",
        ours.0
    );
    assert!(ours.0.contains("v6only refuses v4"), "{}", ours.0);
    for proto in ["udp", "udplite"] {
        let chosen = format!(
            "rfc3542 {proto} chosen b'chosen' [(41, 52, '02000000'), (41, 67, '20000000')] False"
        );
        assert!(ours.0.contains(&chosen), "{}", ours.0);
    }
}
