//! RFC 3542 ancillary data of IPv6 datagram sockets, as Linux's
//! `ip6_datagram_send_ctl` and `ip6_datagram_recv_ctl` (net/ipv6/datagram.c)
//! see it: the per-datagram hop limit and traffic class a `sendmsg` may
//! choose (`IPV6_HOPLIMIT`, `IPV6_TCLASS` control messages) and a
//! `recvmsg` may report (after `IPV6_RECVHOPLIMIT`, `IPV6_RECVTCLASS`).
//!
//! The values travel in the datagram itself: [`Marks`] are the hop limit
//! and traffic class of an IPv6 header. A UDP socket tells the loopback
//! device (`super::loopback`) the marks of the datagram it just queued;
//! the device writes them into the IPv6 header it carries and, on
//! receipt, reads them back from the header into the `PacketMeta` id
//! smoltcp gives the receiving socket. UDP-Lite, which does not go
//! through smoltcp, carries them with each queued datagram.

use alloc::vec::Vec;

use smoltcp::phy::PacketMeta;

use super::socket::IPPROTO_IPV6;
use crate::error::{Errno, Result};
use crate::return_errno;

/// `IPPROTO_IPV6` option and control-message names of RFC 3542.
#[allow(missing_docs, reason = "the names are Linux's; see ipv6(7)")]
pub mod opt {
    pub const IPV6_2292PKTINFO: i32 = 2;
    pub const IPV6_2292HOPOPTS: i32 = 3;
    pub const IPV6_2292DSTOPTS: i32 = 4;
    pub const IPV6_2292RTHDR: i32 = 5;
    pub const IPV6_2292PKTOPTIONS: i32 = 6;
    pub const IPV6_2292HOPLIMIT: i32 = 8;
    pub const IPV6_FLOWINFO: i32 = 11;
    pub const IPV6_RECVPKTINFO: i32 = 49;
    pub const IPV6_PKTINFO: i32 = 50;
    pub const IPV6_RECVHOPLIMIT: i32 = 51;
    pub const IPV6_HOPLIMIT: i32 = 52;
    pub const IPV6_HOPOPTS: i32 = 54;
    pub const IPV6_RTHDRDSTOPTS: i32 = 55;
    pub const IPV6_RTHDR: i32 = 57;
    pub const IPV6_DSTOPTS: i32 = 59;
    pub const IPV6_DONTFRAG: i32 = 62;
    pub const IPV6_RECVTCLASS: i32 = 66;
    pub const IPV6_TCLASS: i32 = 67;
}
use opt::*;

/// One control message of a `sendmsg` (`struct cmsghdr` and its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmsg {
    /// `cmsg_level`
    pub level: i32,
    /// `cmsg_type`
    pub ty: i32,
    /// The data (`cmsg_len` less the header).
    pub data: Vec<u8>,
}

/// The hop limit and traffic class of an IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP and ECN).
    pub tclass: u8,
}

/// Set in a `PacketMeta` id that carries [`Marks`] (0, smoltcp's default,
/// carries none).
const MARKED: u32 = 1 << 31;

impl Marks {
    /// As a smoltcp packet id.
    pub fn to_meta(self) -> PacketMeta {
        let mut meta = PacketMeta::default();
        meta.id = MARKED | u32::from(self.tclass) << 8 | u32::from(self.hop_limit);
        meta
    }

    /// From a smoltcp packet id (`None` if it carries none).
    pub fn from_meta(meta: PacketMeta) -> Option<Self> {
        let [hop_limit, tclass, ..] = meta.id.to_le_bytes();
        (meta.id & MARKED != 0).then_some(Self { hop_limit, tclass })
    }

    /// Those of an IP packet, if it is IPv6 (`None` otherwise or if cut short).
    pub fn of_packet(packet: &[u8]) -> Option<Self> {
        if packet.len() < 40 || packet[0] >> 4 != 6 {
            return None;
        }
        Some(Self {
            hop_limit: packet[7],
            tclass: (packet[0] & 0x0f) << 4 | packet[1] >> 4,
        })
    }

    /// Writes them into an IPv6 packet's header (other packets are left
    /// alone). No IPv6 checksum covers these fields.
    pub fn apply(self, packet: &mut [u8]) {
        if packet.len() < 40 || packet[0] >> 4 != 6 {
            return;
        }
        packet[0] = 0x60 | self.tclass >> 4;
        packet[1] = (self.tclass & 0x0f) << 4 | (packet[1] & 0x0f);
        packet[7] = self.hop_limit;
    }
}

/// What the IPv6 control messages of one `sendmsg` ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendControl {
    /// `IPV6_HOPLIMIT` (absent or -1: the socket's).
    pub hop_limit: Option<u8>,
    /// `IPV6_TCLASS` (absent: the socket's). -1 is sent as 255, as Linux
    /// does (it keeps the message's -1 in a byte); RFC 3542 would make it
    /// the default.
    pub tclass: Option<u8>,
}

/// The `int` of a control message that must hold exactly one, in
/// `min..=max`; `EINVAL` otherwise (as Linux).
fn int_in(data: &[u8], min: i32, max: i32) -> Result<i32> {
    let Ok(bytes) = <[u8; 4]>::try_from(data) else {
        return_errno!(Errno::EINVAL);
    };
    let v = i32::from_le_bytes(bytes);
    if !(min..=max).contains(&v) {
        return_errno!(Errno::EINVAL);
    }
    Ok(v)
}

impl SendControl {
    /// The `IPPROTO_IPV6` messages of `control` as `ip6_datagram_send_ctl`
    /// reads them (other levels are not its business). `EINVAL` for a
    /// hop limit or traffic class not one `int` in -1..=255, a bad
    /// `IPV6_DONTFRAG`, an `IPV6_PKTINFO` of the wrong size or naming a
    /// source address this machine does not have, and unknown types;
    /// `EOPNOTSUPP` for the routing and option headers and flow labels,
    /// which are not supported.
    pub fn parse(control: &[Cmsg]) -> Result<Self> {
        let mut out = Self::default();
        for c in control.iter().filter(|c| c.level == IPPROTO_IPV6) {
            match c.ty {
                IPV6_HOPLIMIT => {
                    out.hop_limit = u8::try_from(int_in(&c.data, -1, 255)?).ok();
                }
                IPV6_TCLASS => out.tclass = Some(int_in(&c.data, -1, 255)?.to_le_bytes()[0]),
                // Never fragmented: the loopback's MTU is 64 KiB.
                IPV6_DONTFRAG => {
                    int_in(&c.data, 0, 1)?;
                }
                IPV6_PKTINFO | IPV6_2292PKTINFO => {
                    // struct in6_pktinfo: the source address, an ifindex.
                    if c.data.len() != 20 {
                        return_errno!(Errno::EINVAL);
                    }
                    let addr = &c.data[..16];
                    let local = addr.iter().all(|&b| b == 0)
                        || addr == core::net::Ipv6Addr::LOCALHOST.octets();
                    if !local {
                        return_errno!(Errno::EINVAL);
                    }
                }
                IPV6_FLOWINFO | IPV6_2292HOPOPTS | IPV6_HOPOPTS | IPV6_2292DSTOPTS
                | IPV6_DSTOPTS | IPV6_RTHDRDSTOPTS | IPV6_2292RTHDR | IPV6_RTHDR => {
                    return_errno!(Errno::EOPNOTSUPP)
                }
                _ => return_errno!(Errno::EINVAL),
            }
        }
        Ok(out)
    }
}

/// The `IPPROTO_IPV6` receive options of a datagram socket and its
/// `IPV6_TCLASS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramOptions {
    /// `IPV6_RECVHOPLIMIT`
    pub hop_limit: bool,
    /// `IPV6_RECVTCLASS`
    pub tclass: bool,
    /// `IPV6_TCLASS`: the traffic class of what the socket sends.
    pub send_tclass: u8,
}

impl DatagramOptions {
    /// `setsockopt` of one of these; `Ok(false)` if `name` is not one.
    /// `EINVAL` for a value shorter than an `int` or a traffic class
    /// outside -1..=255 (-1: the default, 0).
    pub fn set(&mut self, name: i32, value: &[u8]) -> Result<bool> {
        if self.get(name).is_none() {
            return Ok(false);
        }
        let v = super::socket::int_value(value)?;
        match name {
            IPV6_RECVHOPLIMIT => self.hop_limit = v != 0,
            IPV6_RECVTCLASS => self.tclass = v != 0,
            IPV6_TCLASS => {
                if !(-1..=255).contains(&v) {
                    return_errno!(Errno::EINVAL);
                }
                self.send_tclass = u8::try_from(v).unwrap_or(0);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `getsockopt` of one of these (`None` if `name` is not one).
    pub fn get(&self, name: i32) -> Option<i32> {
        match name {
            IPV6_RECVHOPLIMIT => Some(i32::from(self.hop_limit)),
            IPV6_RECVTCLASS => Some(i32::from(self.tclass)),
            IPV6_TCLASS => Some(i32::from(self.send_tclass)),
            _ => None,
        }
    }

    /// The control messages a datagram with `marks` gets, in Linux's
    /// order (`IPV6_HOPLIMIT`, then `IPV6_TCLASS`), each an `int`.
    pub fn received(&self, marks: Marks) -> Ancillary {
        Ancillary {
            hop_limit: self.hop_limit.then_some(marks.hop_limit),
            tclass: self.tclass.then_some(marks.tclass),
        }
    }
}

/// What a received datagram reports in `recvmsg`'s control buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// `IPV6_HOPLIMIT`, if asked for.
    pub hop_limit: Option<u8>,
    /// `IPV6_TCLASS`, if asked for.
    pub tclass: Option<u8>,
}

impl Ancillary {
    /// As `(level, type, data)` control messages, in Linux's order.
    pub fn messages(&self) -> Vec<(i32, i32, [u8; 4])> {
        let int = |v: u8| i32::from(v).to_le_bytes();
        let mut out = Vec::new();
        if let Some(h) = self.hop_limit {
            out.push((IPPROTO_IPV6, IPV6_HOPLIMIT, int(h)));
        }
        if let Some(t) = self.tclass {
            out.push((IPPROTO_IPV6, IPV6_TCLASS, int(t)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(ty: i32, data: &[u8]) -> Cmsg {
        Cmsg {
            level: IPPROTO_IPV6,
            ty,
            data: data.to_vec(),
        }
    }

    #[test]
    fn marks_go_through_a_packet_id_and_an_ipv6_header() {
        let m = Marks {
            hop_limit: 2,
            tclass: 0xb8,
        };
        assert_eq!(Marks::from_meta(m.to_meta()), Some(m));
        assert_eq!(Marks::from_meta(PacketMeta::default()), None);
        let mut p = alloc::vec![0u8; 48];
        p[0] = 0x60;
        p[1] = 0x0a; // flow label bits stay
        p[7] = 64;
        m.apply(&mut p);
        assert_eq!(&p[..2], &[0x6b, 0x8a]);
        assert_eq!(Marks::of_packet(&p), Some(m));
        let mut v4 = alloc::vec![0x45u8; 48];
        m.apply(&mut v4);
        assert!(v4.iter().all(|&b| b == 0x45), "IPv4 is left alone");
        assert_eq!(Marks::of_packet(&v4), None);
        assert_eq!(Marks::of_packet(&p[..39]), None);
    }

    #[test]
    fn send_control_is_checked_as_linux_does() {
        let int = |v: i32| v.to_le_bytes();
        let c = SendControl::parse(&[cmsg(IPV6_TCLASS, &int(-1)), cmsg(IPV6_HOPLIMIT, &int(2))])
            .unwrap();
        assert_eq!(
            c,
            SendControl {
                hop_limit: Some(2),
                tclass: Some(255)
            }
        );
        let c = SendControl::parse(&[cmsg(IPV6_HOPLIMIT, &int(-1))]).unwrap();
        assert_eq!(c, SendControl::default(), "hop limit -1: the socket's");
        let e = |c: Cmsg| SendControl::parse(&[c]).unwrap_err().errno();
        let mut odd = int(0).to_vec();
        odd.push(0);
        assert_eq!(e(cmsg(IPV6_TCLASS, &odd)), Errno::EINVAL);
        assert_eq!(e(cmsg(IPV6_HOPLIMIT, &int(256))), Errno::EINVAL);
        assert_eq!(e(cmsg(IPV6_HOPLIMIT, &int(-2))), Errno::EINVAL);
        assert_eq!(e(cmsg(IPV6_DONTFRAG, &int(2))), Errno::EINVAL);
        assert_eq!(e(cmsg(999, &int(0))), Errno::EINVAL);
        assert_eq!(e(cmsg(IPV6_RTHDR, &[])), Errno::EOPNOTSUPP);
        assert_eq!(e(cmsg(IPV6_PKTINFO, &[0; 16])), Errno::EINVAL);
        let mut far = [0u8; 20];
        far[0] = 0x20;
        assert_eq!(e(cmsg(IPV6_PKTINFO, &far)), Errno::EINVAL);
        assert!(SendControl::parse(&[cmsg(IPV6_PKTINFO, &[0; 20])]).is_ok());
        let other = Cmsg {
            level: 0,
            ty: 999,
            data: Vec::new(),
        };
        assert!(SendControl::parse(&[other]).is_ok(), "other levels ignored");
    }

    #[test]
    fn receive_options_choose_the_messages() {
        let mut o = DatagramOptions::default();
        let m = Marks {
            hop_limit: 7,
            tclass: 3,
        };
        assert!(o.received(m).messages().is_empty());
        assert!(o.set(IPV6_RECVTCLASS, &1i32.to_le_bytes()).unwrap());
        assert!(o.set(IPV6_RECVHOPLIMIT, &1i32.to_le_bytes()).unwrap());
        assert!(!o.set(IPV6_RTHDR, &1i32.to_le_bytes()).unwrap());
        assert_eq!(
            o.received(m).messages(),
            [
                (IPPROTO_IPV6, IPV6_HOPLIMIT, 7i32.to_le_bytes()),
                (IPPROTO_IPV6, IPV6_TCLASS, 3i32.to_le_bytes())
            ]
        );
        assert_eq!(o.get(IPV6_RECVHOPLIMIT), Some(1));
        o.set(IPV6_TCLASS, &0x20i32.to_le_bytes()).unwrap();
        assert_eq!(o.get(IPV6_TCLASS), Some(0x20));
        o.set(IPV6_TCLASS, &(-1i32).to_le_bytes()).unwrap();
        assert_eq!(o.get(IPV6_TCLASS), Some(0));
        let e = o.set(IPV6_TCLASS, &256i32.to_le_bytes()).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
    }
}
