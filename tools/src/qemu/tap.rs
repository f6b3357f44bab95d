//! A TAP network of a run's own: a network namespace holding a TAP device
//! that QEMU (started in the namespace with `ip netns exec`) attaches the
//! guest's card to, with `-netdev tap,…,script=no,downscript=no` (no
//! vhost: it needs a real KVM host and `/dev/vhost-net`).
//!
//! Inside every namespace the TAP device is [`HOST_ADDR`]/24 and the guest
//! [`GUEST_ADDR`] (Cloister learns it from the `net.ip=`/`net.gateway=`
//! words of [`kernel_args`]; the Linux bench guest's `/init` sets the
//! same). Namespaces are isolated, so the same subnet serves every run at
//! once; nothing is routed out of a namespace, so no traffic leaves it.
//! Clients reach the guest from inside: [`TapNet::command`] runs a program
//! there (`ip netns exec`), [`TapNet::connect`] opens a TCP connection
//! from a thread that entered the namespace (`setns`).
//!
//! Names are `cloister-<pid>-<n>`, unique per process and run. The
//! namespace (and with it the TAP device) is deleted when the [`TapNet`]
//! is dropped, by [`remove_all`] (the runner's Ctrl-C handler calls it
//! before exiting), and — for a process killed outright — by a guard
//! process started with it (`guard`: it waits for this process to go,
//! then kills what runs in the namespace and deletes it) and, should that
//! be killed too, by the next [`TapNet::create`] of any process, which
//! deletes namespaces whose process is gone. Needs root (`CAP_NET_ADMIN`) and `ip` (iproute2).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The TAP device's address in every namespace (the guest's gateway).
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The guest's address.
pub const GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The subnet's prefix length.
pub const PREFIX_LEN: u8 = 24;
/// The TAP device's name inside the namespace.
pub const DEVICE: &str = "tap0";
/// The prefix of every namespace this module creates.
const PREFIX: &str = "cloister-";

/// Namespaces of this process not yet deleted (for [`remove_all`]).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The next run number of this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a TAP device, deleted on drop.
#[derive(Debug)]
pub struct TapNet {
    namespace: String,
    /// The guard process (see `guard`), ended on drop.
    guard: Mutex<Option<Child>>,
}

impl PartialEq for TapNet {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
    }
}

impl Eq for TapNet {}

/// A process that outlives this one if it is killed (`SIGKILL`,
/// `SIGTERM`, a panic that aborts): once this process is gone it kills
/// what still runs in `namespace` (QEMU) and deletes it; it exits by itself
/// within a second of the namespace's normal deletion. Its own process
/// group, so a Ctrl-C on the terminal does not end it.
fn guard(namespace: &str) -> Option<Child> {
    const SCRIPT: &str = "while kill -0 \"$0\" 2>/dev/null && [ -e \"/run/netns/$1\" ]; do sleep 1; done; \
        if [ -e \"/run/netns/$1\" ]; then ip netns pids \"$1\" | xargs -r kill -9; ip netns delete \"$1\"; fi";
    Command::new("sh")
        .args(["-c", SCRIPT, &std::process::id().to_string(), namespace])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

/// The Cloister kernel words that give the guest its TAP address.
pub fn kernel_args() -> Vec<String> {
    vec![
        format!("net.ip={GUEST_ADDR}/{PREFIX_LEN}"),
        format!("net.gateway={HOST_ADDR}"),
    ]
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (Debian: iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The process id in a namespace name of this module, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Deletes namespaces of this module whose process no longer exists.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(pid) = owner_pid(name)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// Deletes every namespace this process created and still holds (for an
/// exit that skips destructors, such as a Ctrl-C handler's).
pub fn remove_all() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        let _ = ip(&["netns", "delete", &name]);
    }
}

impl TapNet {
    /// Creates a namespace with loopback up and [`DEVICE`] at
    /// [`HOST_ADDR`]/[`PREFIX_LEN`], up.
    pub fn create() -> Result<Arc<Self>> {
        remove_stale();
        let namespace = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &namespace]).context(
            "--net tap needs root (CAP_NET_ADMIN) and network namespaces; without them use the default user-mode network",
        )?;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(namespace.clone());
        // From here on, drop deletes it whatever fails below.
        let guard = Mutex::new(guard(&namespace));
        let net = Arc::new(Self { namespace, guard });
        let ns = net.namespace.as_str();
        let host = format!("{HOST_ADDR}/{PREFIX_LEN}");
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "tuntap", "add", "dev", DEVICE, "mode", "tap"])?;
        ip(&["-n", ns, "addr", "add", &host, "dev", DEVICE])?;
        ip(&["-n", ns, "link", "set", DEVICE, "up"])?;
        Ok(net)
    }

    /// The namespace's name (`ip netns exec NAME …`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespace, program]);
        c
    }

    /// The `-netdev` value for QEMU started in the namespace.
    pub fn netdev(&self) -> String {
        format!("tap,id=n0,ifname={DEVICE},script=no,downscript=no")
    }

    /// A TCP connection to the guest's `port` from inside the namespace
    /// (made on a thread that joins the namespace and then ends).
    pub fn connect(&self, port: u16, timeout: Duration) -> Result<TcpStream> {
        let path = format!("/run/netns/{}", self.namespace);
        std::thread::scope(|s| {
            s.spawn(|| -> Result<TcpStream> {
                let ns =
                    std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("cannot enter the network namespace {path}"))?;
                let addr = SocketAddr::from((GUEST_ADDR, port));
                TcpStream::connect_timeout(&addr, timeout)
                    .with_context(|| format!("cannot connect to {addr} in {path}"))
            })
            .join()
            .unwrap_or_else(|_| bail!("the connecting thread panicked"))
        })
    }
}

impl Drop for TapNet {
    fn drop(&mut self) {
        let guard = self.guard.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = ip(&["netns", "delete", &self.namespace]);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| n != &self.namespace);
    }
}

/// Whether this machine can make a [`TapNet`]: creates and deletes one;
/// the error says why not.
pub fn available() -> Result<()> {
    TapNet::create().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_and_kernel_words_the_addresses() {
        assert_eq!(owner_pid("cloister-1234-0"), Some(1234));
        assert_eq!(owner_pid("cloister-x-0"), None);
        assert_eq!(owner_pid("other-1-0"), None);
        assert_eq!(
            kernel_args(),
            ["net.ip=10.77.0.2/24", "net.gateway=10.77.0.1"]
        );
    }

    /// Only where namespaces can be made (root); says so otherwise.
    #[test]
    fn a_namespace_is_made_and_removed_on_drop() {
        let net = match TapNet::create() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("SKIPPED: no network namespaces here: {e:#}");
                return;
            }
        };
        let name = net.namespace().to_string();
        let listed = |n: &str| {
            let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(n))
        };
        assert!(listed(&name));
        let out = net
            .command("ip")
            .args(["addr", "show", DEVICE])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("10.77.0.1/24"), "{text}");
        drop(net);
        assert!(!listed(&name));
    }
}
