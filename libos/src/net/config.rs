//! [`NetConfig`]: the addresses of the external interface, and how the
//! kernel command line changes them ([`NetConfig::with_args`]).

use core::net::Ipv4Addr;

/// The command-line key for the interface's address: `net.ip=ADDR/PREFIX`.
pub const IP_KEY: &str = "net.ip";
/// The command-line key for the default route: `net.gateway=ADDR`.
pub const GATEWAY_KEY: &str = "net.gateway";

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
    /// Frames to send of at most this many bytes are copied to a card
    /// that lends its buffers, not written in place
    /// ([`super::device::COPYBREAK`]; 0 writes every frame in place).
    pub copybreak: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            dns: Some(Ipv4Addr::new(10, 0, 2, 3)),
            random_seed: 0,
            copybreak: super::device::COPYBREAK,
        }
    }
}

/// A `net.ip=` or `net.gateway=` value that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadNetArg {
    /// The key.
    pub key: &'static str,
    /// What was expected.
    pub expected: &'static str,
}

impl NetConfig {
    /// This configuration with the command line's `net.ip=ADDR/PREFIX`
    /// (`ip`) and `net.gateway=ADDR` (`gateway`) applied, as a host that
    /// attaches the card to its own network (a TAP device) gives them.
    /// With `net.ip=` the user-mode network's gateway and DNS server no
    /// longer apply: the gateway is `net.gateway=`'s or none, and there is
    /// no DNS server. `net.gateway=` alone only replaces the gateway. A
    /// gateway outside the interface's subnet is refused.
    pub fn with_args(self, ip: Option<&str>, gateway: Option<&str>) -> Result<Self, BadNetArg> {
        let mut out = self;
        if let Some(value) = ip {
            let bad = BadNetArg {
                key: IP_KEY,
                expected: "an IPv4 address and prefix length such as 10.77.0.2/24",
            };
            let (addr, len) = value.split_once('/').ok_or(bad)?;
            let addr: Ipv4Addr = addr.parse().map_err(|_| bad)?;
            let len: u8 = len.parse().map_err(|_| bad)?;
            if !(1..=32).contains(&len) || addr.is_unspecified() || addr.is_broadcast() {
                return Err(bad);
            }
            out.addr = addr;
            out.prefix_len = len;
            out.gateway = None;
            out.dns = None;
        }
        if let Some(value) = gateway {
            let bad = BadNetArg {
                key: GATEWAY_KEY,
                expected: "an IPv4 address in the interface's subnet, such as 10.77.0.1",
            };
            let gw: Ipv4Addr = value.parse().map_err(|_| bad)?;
            if !out.contains(gw) || gw == out.addr {
                return Err(bad);
            }
            out.gateway = Some(gw);
        }
        Ok(out)
    }

    /// Whether `addr` is on the interface's subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(addr) & mask == u32::from(self.addr) & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_words_the_user_mode_network_stays() {
        let c = NetConfig::default().with_args(None, None).unwrap();
        assert_eq!(c, NetConfig::default());
    }

    #[test]
    fn an_address_drops_the_slirp_gateway_and_dns() {
        let c = NetConfig::default()
            .with_args(Some("10.77.0.2/24"), None)
            .unwrap();
        assert_eq!(c.addr, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(c.prefix_len, 24);
        assert_eq!((c.gateway, c.dns), (None, None));
        let c = NetConfig::default()
            .with_args(Some("10.77.0.2/24"), Some("10.77.0.1"))
            .unwrap();
        assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 77, 0, 1)));
        let c = NetConfig::default()
            .with_args(None, Some("10.0.2.1"))
            .unwrap();
        assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(c.addr, NetConfig::default().addr);
    }

    #[test]
    fn bad_words_are_refused_with_their_key() {
        for ip in [
            "10.77.0.2",
            "10.77.0.2/",
            "10.77.0.2/33",
            "10.77.0.2/0",
            "10.77.0/24",
            "0.0.0.0/24",
            "255.255.255.255/24",
            "/24",
            "",
        ] {
            let e = NetConfig::default().with_args(Some(ip), None).unwrap_err();
            assert_eq!(e.key, IP_KEY, "{ip}");
        }
        for gw in ["10.78.0.1", "10.77.0.2", "x", ""] {
            let e = NetConfig::default()
                .with_args(Some("10.77.0.2/24"), Some(gw))
                .unwrap_err();
            assert_eq!(e.key, GATEWAY_KEY, "{gw}");
        }
    }

    #[test]
    fn subnets_follow_the_prefix() {
        let c = NetConfig::default()
            .with_args(Some("192.168.1.9/32"), None)
            .unwrap();
        assert!(c.contains(Ipv4Addr::new(192, 168, 1, 9)));
        assert!(!c.contains(Ipv4Addr::new(192, 168, 1, 8)));
        let c = NetConfig::default()
            .with_args(Some("10.1.2.3/8"), None)
            .unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 200, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(11, 0, 0, 1)));
    }
}
