//! [`SockAddr`]: socket addresses as user space passes them (`struct
//! sockaddr_in`, `struct sockaddr_in6`, `struct sockaddr_un`), parsed and
//! encoded in one place.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::error::{Errno, Result};
use crate::return_errno;

/// `AF_UNSPEC`
pub const AF_UNSPEC: u16 = 0;
/// `AF_UNIX`
pub const AF_UNIX: u16 = 1;
/// `AF_INET`
pub const AF_INET: u16 = 2;
/// `AF_INET6`
pub const AF_INET6: u16 = 10;

/// `sizeof(struct sockaddr_in)`
pub const SOCKADDR_IN_BYTES: usize = 16;
/// `sizeof(struct sockaddr_in6)`
pub const SOCKADDR_IN6_BYTES: usize = 28;
/// `SIN6_LEN_RFC2133`: a `sockaddr_in6` without `sin6_scope_id`, the
/// shortest Linux accepts.
pub const SOCKADDR_IN6_MIN_BYTES: usize = 24;
/// `sizeof(struct sockaddr_un)`
pub const SOCKADDR_UN_BYTES: usize = 110;
/// `sizeof(struct sockaddr_storage)`: the most a syscall reads.
pub const SOCKADDR_MAX_BYTES: usize = 128;

/// A socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// `AF_UNSPEC` (a UDP `connect` to it dissolves the association).
    Unspec,
    /// An IPv4 address and port.
    Inet(SocketAddrV4),
    /// An IPv6 address, port, flow label and scope id.
    Inet6(SocketAddrV6),
    /// An `AF_UNIX` name: a path, an abstract name (leading NUL kept
    /// out), or nothing (an unbound socket).
    Unix(UnixName),
}

/// The name of an `AF_UNIX` socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnixName {
    /// Not bound.
    Unnamed,
    /// A file-system path.
    Path(Vec<u8>),
    /// A name in the abstract namespace (without the leading NUL).
    Abstract(Vec<u8>),
}

impl SockAddr {
    /// Parses `bytes` (the user's `addrlen` bytes): `EINVAL` when too
    /// short for its family, `EAFNOSUPPORT` for another family.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let Some(family) = bytes.get(..2) else {
            return_errno!(Errno::EINVAL);
        };
        match u16::from_le_bytes([family[0], family[1]]) {
            AF_UNSPEC => Ok(Self::Unspec),
            AF_INET => {
                if bytes.len() < SOCKADDR_IN_BYTES {
                    return_errno!(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([bytes[2], bytes[3]]);
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                Ok(Self::Inet(SocketAddrV4::new(ip, port)))
            }
            AF_INET6 => {
                if bytes.len() < SOCKADDR_IN6_MIN_BYTES {
                    return_errno!(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([bytes[2], bytes[3]]);
                let flowinfo = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&bytes[8..24]);
                // `sin6_scope_id` is host order; absent in the RFC 2133 form.
                let scope = match bytes.get(24..28) {
                    Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    None => 0,
                };
                Ok(Self::Inet6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    flowinfo,
                    scope,
                )))
            }
            AF_UNIX => {
                let path = &bytes[2..bytes.len().min(SOCKADDR_UN_BYTES)];
                Ok(Self::Unix(match path.first() {
                    None => UnixName::Unnamed,
                    Some(0) => UnixName::Abstract(path[1..].to_vec()),
                    Some(_) => {
                        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                        UnixName::Path(path[..end].to_vec())
                    }
                }))
            }
            _ => return_errno!(Errno::EAFNOSUPPORT),
        }
    }

    /// The IPv4 address, or `EAFNOSUPPORT` for another family.
    pub fn inet(&self) -> Result<SocketAddrV4> {
        match self {
            Self::Inet(a) => Ok(*a),
            _ => return_errno!(Errno::EAFNOSUPPORT),
        }
    }

    /// The bytes of the matching `struct sockaddr_*`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Unspec => out.extend_from_slice(&AF_UNSPEC.to_le_bytes()),
            Self::Inet(a) => {
                out.extend_from_slice(&AF_INET.to_le_bytes());
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&[0; 8]);
            }
            Self::Inet6(a) => {
                out.extend_from_slice(&AF_INET6.to_le_bytes());
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.flowinfo().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.scope_id().to_le_bytes());
            }
            Self::Unix(name) => {
                out.extend_from_slice(&AF_UNIX.to_le_bytes());
                match name {
                    UnixName::Unnamed => {}
                    UnixName::Path(p) => {
                        out.extend_from_slice(p);
                        out.push(0);
                    }
                    UnixName::Abstract(n) => {
                        out.push(0);
                        out.extend_from_slice(n);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_errors() {
        let a = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 6379));
        let b = a.to_bytes();
        assert_eq!(b.len(), SOCKADDR_IN_BYTES);
        assert_eq!(&b[..8], &[2, 0, 0x18, 0xeb, 127, 0, 0, 1]);
        assert_eq!(SockAddr::parse(&b).unwrap(), a);
        let e = |b: &[u8]| SockAddr::parse(b).unwrap_err().errno();
        assert_eq!(e(&b[..15]), Errno::EINVAL);
        assert_eq!(e(&[1]), Errno::EINVAL);
        assert_eq!(e(&[10, 0, 0, 0]), Errno::EINVAL, "a short sockaddr_in6");
        assert_eq!(e(&[11, 0, 0, 0]), Errno::EAFNOSUPPORT);
        let u = SockAddr::parse(b"\x01\x00/tmp/s\0junk").unwrap();
        assert_eq!(u, SockAddr::Unix(UnixName::Path(b"/tmp/s".to_vec())));
        assert_eq!(u.to_bytes(), b"\x01\x00/tmp/s\0");
        let abs = SockAddr::parse(b"\x01\x00\0name").unwrap();
        assert_eq!(abs, SockAddr::Unix(UnixName::Abstract(b"name".to_vec())));
        assert_eq!(
            SockAddr::parse(&[1, 0]).unwrap(),
            SockAddr::Unix(UnixName::Unnamed)
        );
    }

    #[test]
    fn sockaddr_in6_round_trips_with_and_without_scope() {
        let a = SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8080, 0x1234, 3));
        let b = a.to_bytes();
        assert_eq!(b.len(), SOCKADDR_IN6_BYTES);
        assert_eq!(&b[..4], &[10, 0, 0x1f, 0x90]);
        assert_eq!(&b[4..8], &[0, 0, 0x12, 0x34]);
        assert_eq!(b[23], 1);
        assert_eq!(&b[24..], &[3, 0, 0, 0]);
        assert_eq!(SockAddr::parse(&b).unwrap(), a);
        let short = SockAddr::parse(&b[..SOCKADDR_IN6_MIN_BYTES]).unwrap();
        assert_eq!(
            short,
            SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8080, 0x1234, 0))
        );
        let e = |b: &[u8]| SockAddr::parse(b).unwrap_err().errno();
        for n in 2..SOCKADDR_IN6_MIN_BYTES {
            assert_eq!(e(&b[..n]), Errno::EINVAL, "{n} bytes");
        }
    }
}
