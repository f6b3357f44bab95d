//! [`NetConfig`]: the addresses of the external interface.

use core::net::Ipv4Addr;

/// How the external (NIC) interface is set up. The default is QEMU's
/// user-mode network: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// The interface's IPv4 address.
    pub addr: Ipv4Addr,
    /// The network prefix length (24 for a /24).
    pub prefix_len: u8,
    /// The default route's next hop, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The DNS server (for `/etc/resolv.conf`; the stack itself does not resolve).
    pub dns: Option<Ipv4Addr>,
    /// Seeds smoltcp's generator of initial sequence numbers and the
    /// ephemeral-port start; the kernel should take it from its CSPRNG.
    pub random_seed: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            dns: Some(Ipv4Addr::new(10, 0, 2, 3)),
            random_seed: 0,
        }
    }
}
