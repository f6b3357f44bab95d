//! The options of a [`TcpSocket`]: the `IPPROTO_TCP` ones ([`opt`],
//! kept in `TcpOptions`), `SOL_SOCKET` ([`CommonOptions`], with
//! `SO_ERROR` and `SO_ACCEPTCONN` answered from the connection),
//! `IPPROTO_IP` and `IPPROTO_IPV6` (the family's, [`Inet`]), and
//! `configure`, which applies them to a smoltcp socket.

use alloc::vec::Vec;

use smoltcp::socket::tcp;
use smoltcp::time::Duration;

use super::state::{Phase, TcpSocket, refresh};
use crate::error::{Errno, Result};
use crate::net::inet::Inet;
use crate::net::socket::{
    CommonOptions, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOCK_STREAM, SOL_SOCKET, int_bytes,
    int_value, so,
};
use crate::return_errno;

/// `TCP_*` option names.
#[allow(missing_docs, reason = "the names are Linux's; see tcp(7)")]
pub mod opt {
    pub const TCP_NODELAY: i32 = 1;
    pub const TCP_MAXSEG: i32 = 2;
    pub const TCP_CORK: i32 = 3;
    pub const TCP_KEEPIDLE: i32 = 4;
    pub const TCP_KEEPINTVL: i32 = 5;
    pub const TCP_KEEPCNT: i32 = 6;
    pub const TCP_DEFER_ACCEPT: i32 = 9;
    pub const TCP_QUICKACK: i32 = 12;
    pub const TCP_USER_TIMEOUT: i32 = 18;
    pub const TCP_FASTOPEN: i32 = 23;
}
use opt::*;

/// TCP-level options.
#[derive(Debug, Clone, Copy)]
pub(super) struct TcpOptions {
    pub(super) nodelay: bool,
    pub(super) cork: bool,
    pub(super) keep_idle_s: i32,
    pub(super) keep_intvl_s: i32,
    pub(super) keep_cnt: i32,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            nodelay: false,
            cork: false,
            keep_idle_s: 7200,
            keep_intvl_s: 75,
            keep_cnt: 9,
        }
    }
}

/// Applies the options to a smoltcp socket.
pub(super) fn configure(s: &mut tcp::Socket, common: &CommonOptions, t: &TcpOptions, inet: &Inet) {
    s.set_nagle_enabled(!t.nodelay && !t.cork);
    s.set_hop_limit(inet.hop_limit());
    s.set_keep_alive(
        common
            .keepalive
            .then(|| Duration::from_secs(t.keep_idle_s.max(1) as u64)),
    );
}

/// `setsockopt`, applied at once to a connection.
pub(super) fn set_option(socket: &TcpSocket, level: i32, name: i32, value: &[u8]) -> Result<()> {
    let mut st = socket.state.lock();
    match level {
        SOL_SOCKET => st.common.set(name, value)?,
        IPPROTO_TCP => {
            let v = int_value(value)?;
            match name {
                TCP_NODELAY => st.tcp.nodelay = v != 0,
                TCP_CORK => st.tcp.cork = v != 0,
                TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT if v < 1 => {
                    return_errno!(Errno::EINVAL)
                }
                TCP_KEEPIDLE => st.tcp.keep_idle_s = v,
                TCP_KEEPINTVL => st.tcp.keep_intvl_s = v,
                TCP_KEEPCNT => st.tcp.keep_cnt = v,
                TCP_MAXSEG | TCP_DEFER_ACCEPT | TCP_QUICKACK | TCP_USER_TIMEOUT | TCP_FASTOPEN => {}
                _ => return_errno!(Errno::ENOPROTOOPT),
            }
        }
        IPPROTO_IP => match name {
            // IP_TOS, IP_TTL: accepted, not applied.
            1 | 2 => {
                int_value(value)?;
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        },
        // ENOPROTOOPT on an AF_INET socket.
        IPPROTO_IPV6 => {
            let bound = st.lease.is_some();
            st.inet.set_option(name, value, bound)?;
        }
        _ => return_errno!(Errno::ENOPROTOOPT),
    }
    let (common, t, inet) = (st.common, st.tcp, st.inet);
    if let Phase::Connected(c) = &st.phase {
        let (i, h) = (c.iface, c.handle);
        socket
            .stack
            .with(|inner| configure(inner.tcp(i, h), &common, &t, &inet));
    }
    Ok(())
}

/// `getsockopt`
pub(super) fn get_option(socket: &TcpSocket, level: i32, name: i32) -> Result<Vec<u8>> {
    match (level, name) {
        (SOL_SOCKET, so::SO_ERROR) => {
            let mut st = socket.state.lock();
            let err = match &mut st.phase {
                Phase::Connected(c) => {
                    let (i, h) = (c.iface, c.handle);
                    socket.stack.polled(|inner| refresh(c, inner.tcp(i, h)));
                    c.error.take()
                }
                _ => None,
            };
            Ok(int_bytes(err.map_or(0, Errno::as_i32)))
        }
        (SOL_SOCKET, so::SO_ACCEPTCONN) => Ok(int_bytes(i32::from(matches!(
            socket.state.lock().phase,
            Phase::Listening { .. }
        )))),
        (SOL_SOCKET, _) => {
            let st = socket.state.lock();
            st.common
                .get(name, (st.inet.domain(), SOCK_STREAM, IPPROTO_TCP))
        }
        (IPPROTO_IPV6, _) => socket.state.lock().inet.get_option(name),
        (IPPROTO_TCP, _) => {
            let t = socket.state.lock().tcp;
            Ok(int_bytes(match name {
                TCP_NODELAY => i32::from(t.nodelay),
                TCP_CORK => i32::from(t.cork),
                TCP_KEEPIDLE => t.keep_idle_s,
                TCP_KEEPINTVL => t.keep_intvl_s,
                TCP_KEEPCNT => t.keep_cnt,
                TCP_MAXSEG => 1460,
                _ => return_errno!(Errno::ENOPROTOOPT),
            }))
        }
        _ => return_errno!(Errno::ENOPROTOOPT),
    }
}
