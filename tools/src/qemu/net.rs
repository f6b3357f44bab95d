//! The guest's network card: QEMU user-mode networking (slirp) behind a
//! virtio-net device on a virtio-mmio transport, and host-port forwards;
//! or, with [`Nic::tap`], a TAP device in a namespace of the run's own
//! ([`super::tap`], `cloister run --net tap`).
//!
//! The guest is 10.0.2.15/24, the gateway 10.0.2.2. The network is always
//! `restrict=on`: the guest cannot reach the host or the outside world on
//! its own; only the forwards given here (`cloister run --publish
//! HOST:GUEST`) let the host connect in, and they listen on 127.0.0.1 only,
//! never on other interfaces.
//!
//! On `microvm` the card is a `virtio-net-device` on a virtio-mmio
//! transport; the kernel finds it through the `virtio_mmio.device=` entry
//! QEMU appends to the command line, which it does only with `acpi=off`
//! (see [`machine_arg`]). On `q35` and `pc` (the machines SEV-SNP and TDX
//! guests run on) it is a modern-only `virtio-net-pci` function on PCI bus
//! 0, which the kernel finds by scanning the bus (`kernel/src/net/pci.rs`).

use std::fmt;
use std::sync::Arc;

use anyhow::{Result, bail};

use super::tap::TapNet;

/// The address forwards listen on: loopback only.
pub const FORWARD_HOST_ADDR: &str = "127.0.0.1";

/// One TCP forward from the host's loopback to a guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// Port on 127.0.0.1.
    pub host_port: u16,
    /// Port in the guest (10.0.2.15).
    pub guest_port: u16,
}

impl PortForward {
    /// Parses `HOST:GUEST`, or `PORT` for the same port on both sides.
    pub fn parse(s: &str) -> Result<Self> {
        let port = |p: &str| -> Result<u16> {
            match p.trim().parse::<u16>() {
                Ok(0) | Err(_) => bail!(
                    "--publish {s:?}: {p:?} is not a port (1-65535); use HOST:GUEST, e.g. 8080:80"
                ),
                Ok(n) => Ok(n),
            }
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [both] => {
                let p = port(both)?;
                Ok(Self {
                    host_port: p,
                    guest_port: p,
                })
            }
            [host, guest] => Ok(Self {
                host_port: port(host)?,
                guest_port: port(guest)?,
            }),
            _ => bail!(
                "--publish {s:?}: expected HOST:GUEST (ports only: forwards always listen on {FORWARD_HOST_ADDR})"
            ),
        }
    }

    /// The forward as a `-netdev user` option value.
    fn hostfwd(&self) -> String {
        format!(
            "hostfwd=tcp:{FORWARD_HOST_ADDR}:{}-:{}",
            self.host_port, self.guest_port
        )
    }
}

impl fmt::Display for PortForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{FORWARD_HOST_ADDR}:{} -> guest:{}",
            self.host_port, self.guest_port
        )
    }
}

/// The guest's network card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nic {
    /// TCP forwards from the host's loopback into the guest (user-mode
    /// networking only).
    pub forwards: Vec<PortForward>,
    /// Attach the card to this namespace's TAP device instead of user-mode
    /// networking (QEMU then runs inside the namespace, see [`super::tap`]).
    pub tap: Option<Arc<TapNet>>,
}

impl Nic {
    /// A card with these forwards; refuses a host port given twice.
    pub fn with_forwards(forwards: Vec<PortForward>) -> Result<Self> {
        for (i, f) in forwards.iter().enumerate() {
            if forwards[..i].iter().any(|g| g.host_port == f.host_port) {
                bail!(
                    "--publish: host port {} is given twice; each host port forwards to one guest port",
                    f.host_port
                );
            }
        }
        Ok(Self {
            forwards,
            tap: None,
        })
    }

    /// A card on `net`'s TAP device.
    pub fn tap(net: Arc<TapNet>) -> Self {
        Self {
            forwards: Vec::new(),
            tap: Some(net),
        }
    }

    /// The QEMU arguments for the card on `machine`: a virtio-mmio card on
    /// `microvm`, a virtio-pci one elsewhere.
    pub fn qemu_args(&self, machine: &str) -> Vec<String> {
        let device = if is_microvm(machine) {
            "virtio-net-device,netdev=n0"
        } else {
            // Modern only: the kernel's transport is virtio 1.0's.
            "virtio-net-pci,netdev=n0,disable-legacy=on"
        };
        let netdev = match &self.tap {
            Some(net) => net.netdev(),
            None => {
                let mut netdev = String::from("user,id=n0,restrict=on");
                for f in &self.forwards {
                    netdev.push(',');
                    netdev.push_str(&f.hostfwd());
                }
                netdev
            }
        };
        vec!["-netdev".into(), netdev, "-device".into(), device.into()]
    }
}

/// Whether `-M` value `machine` is QEMU's `microvm` (virtio-mmio; any other
/// machine gets its card on PCI).
pub fn is_microvm(machine: &str) -> bool {
    machine.split(',').next() == Some("microvm")
}

/// The `-M` value: `microvm` gets `acpi=off`, so that QEMU describes its
/// virtio-mmio devices on the kernel command line (`virtio_mmio.device=`)
/// rather than in ACPI tables, which the kernel does not read.
pub fn machine_arg(machine: &str) -> String {
    if is_microvm(machine) && !machine.contains("acpi=") {
        format!("{machine},acpi=off")
    } else {
        machine.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_guest_and_a_bare_port() {
        assert_eq!(
            PortForward::parse("8080:80").unwrap(),
            PortForward {
                host_port: 8080,
                guest_port: 80
            }
        );
        assert_eq!(
            PortForward::parse("6379").unwrap(),
            PortForward {
                host_port: 6379,
                guest_port: 6379
            }
        );
    }

    #[test]
    fn refuses_addresses_bad_ports_and_duplicates_with_a_hint() {
        for bad in [
            "0.0.0.0:80:80",
            "80:",
            ":80",
            "0:80",
            "80:70000",
            "http",
            "",
        ] {
            let err = PortForward::parse(bad).unwrap_err().to_string();
            assert!(err.contains("HOST:GUEST"), "{bad}: {err}");
        }
        let twice = vec![
            PortForward::parse("8080:80").unwrap(),
            PortForward::parse("8080:81").unwrap(),
        ];
        let err = Nic::with_forwards(twice).unwrap_err().to_string();
        assert!(err.contains("8080"), "{err}");
    }

    #[test]
    fn forwards_listen_on_loopback_only_and_the_net_is_restricted() {
        let nic = Nic::with_forwards(vec![
            PortForward::parse("8080:80").unwrap(),
            PortForward::parse("16379:6379").unwrap(),
        ])
        .unwrap();
        assert_eq!(
            nic.qemu_args("microvm"),
            [
                "-netdev",
                "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:16379-:6379",
                "-device",
                "virtio-net-device,netdev=n0"
            ]
        );
        assert_eq!(
            Nic::default().qemu_args("microvm")[1],
            "user,id=n0,restrict=on"
        );
    }

    #[test]
    fn q35_gets_a_pci_card_and_only_microvm_acpi_off() {
        let q35 = Nic::with_forwards(vec![PortForward::parse("8080:80").unwrap()])
            .unwrap()
            .qemu_args("q35");
        assert_eq!(
            q35,
            [
                "-netdev",
                "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8080-:80",
                "-device",
                "virtio-net-pci,netdev=n0,disable-legacy=on"
            ]
        );
        assert_eq!(Nic::default().qemu_args("pc")[3], q35[3]);
        assert_eq!(machine_arg("microvm"), "microvm,acpi=off");
        assert_eq!(machine_arg("microvm,acpi=on"), "microvm,acpi=on");
        assert_eq!(machine_arg("q35"), "q35");
    }
}
