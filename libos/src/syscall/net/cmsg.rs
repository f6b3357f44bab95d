//! Ancillary data of `sendmsg`/`recvmsg` (`struct cmsghdr`: `cmsg_len`
//! u64, `cmsg_level` i32, `cmsg_type` i32, data, each message padded to 8
//! bytes): `SCM_RIGHTS`, open files passed over an `AF_UNIX` stream
//! (`crate::net::rights`), and the bytes of other messages, which the
//! sockets read (`crate::net::ancillary`); `recvmsg`'s messages written
//! as Linux's `put_cmsg` does, truncation included.

use alloc::vec::Vec;

use crate::error::{Errno, Result};
use crate::net::ancillary::Cmsg;
use crate::net::rights::MAX_FILES;
use crate::return_errno;

/// `SOL_SOCKET`
const SOL_SOCKET: i32 = 1;
/// `SCM_RIGHTS`
const SCM_RIGHTS: i32 = 1;
/// `SCM_CREDENTIALS`
const SCM_CREDENTIALS: i32 = 2;
/// `sizeof(struct cmsghdr)`
const HEADER: usize = 16;
/// The most ancillary bytes a `sendmsg` may pass (Linux's default
/// `optmem_max`).
pub(super) const MAX_CONTROL: usize = 20_480;

/// `CMSG_ALIGN`
fn align(n: usize) -> usize {
    n.saturating_add(7) & !7
}

fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut v = [0u8; N];
    v.copy_from_slice(&b[at..at + N]);
    v
}

/// The control messages of a `sendmsg` control buffer, walked as Linux's
/// `for_each_cmsghdr` (a tail shorter than a header is ignored); `EINVAL`
/// for a `cmsg_len` shorter than a header or past the buffer (`CMSG_OK`).
pub(super) fn parse(control: &[u8]) -> Result<Vec<Cmsg>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while control.len() - at >= HEADER {
        let len = u64::from_le_bytes(field(control, at));
        let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
        if len < HEADER || len > control.len() - at {
            return_errno!(Errno::EINVAL);
        }
        out.push(Cmsg {
            level: i32::from_le_bytes(field(control, at + 8)),
            ty: i32::from_le_bytes(field(control, at + 12)),
            data: control[at + HEADER..at + len].to_vec(),
        });
        at = at.saturating_add(align(len)).min(control.len());
    }
    Ok(out)
}

/// The fds of every `SCM_RIGHTS` message among `messages`. `EINVAL` for
/// another `SOL_SOCKET` type or more than [`MAX_FILES`] fds;
/// `EOPNOTSUPP` for `SCM_CREDENTIALS`. Messages of other levels are
/// ignored, as an `AF_UNIX` socket does.
pub(super) fn rights(messages: &[Cmsg]) -> Result<Vec<i32>> {
    let mut fds = Vec::new();
    for m in messages.iter().filter(|m| m.level == SOL_SOCKET) {
        match m.ty {
            SCM_RIGHTS => {
                for fd in m.data.chunks_exact(4) {
                    fds.push(i32::from_le_bytes(field(fd, 0)));
                }
                if fds.len() > MAX_FILES {
                    return_errno!(Errno::EINVAL);
                }
            }
            SCM_CREDENTIALS => return_errno!(Errno::EOPNOTSUPP),
            _ => return_errno!(Errno::EINVAL),
        }
    }
    Ok(fds)
}

/// [`parse`] then [`rights`].
#[cfg(test)]
fn parse_rights(control: &[u8]) -> Result<Vec<i32>> {
    rights(&parse(control)?)
}

/// `recvmsg`'s control buffer of `room` bytes filled with `messages`
/// (`(level, type, data)`) as Linux's `put_cmsg` does one after another:
/// a message whose header does not fit is left out, one whose data does
/// not is cut (its `cmsg_len` says how much is there), and either sets
/// `MSG_CTRUNC`; each takes `CMSG_SPACE` of its data, or what room is
/// left. Returns the bytes to write, the `msg_controllen` to report (the
/// room used) and whether anything was truncated.
pub(super) fn put(messages: &[(i32, i32, &[u8])], room: usize) -> (Vec<u8>, usize, bool) {
    let mut out = Vec::new();
    let mut truncated = false;
    for &(level, ty, data) in messages {
        let left = room - out.len();
        if left < HEADER {
            truncated = true;
            continue;
        }
        let mut len = HEADER + data.len();
        if left < len {
            truncated = true;
            len = left;
        }
        let start = out.len();
        out.extend_from_slice(&(len as u64).to_le_bytes());
        out.extend_from_slice(&level.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&data[..len - HEADER]);
        out.resize(start + align(HEADER + data.len()).min(left), 0);
    }
    let used = out.len();
    (out, used, truncated)
}

/// How many of `count` received fds fit a control buffer of `room` bytes
/// (`recvmsg`): the rest are dropped and `MSG_CTRUNC` set.
pub(super) fn rights_room(room: usize, count: usize) -> usize {
    room.saturating_sub(HEADER)
        .checked_div(4)
        .unwrap_or(0)
        .min(count)
}

/// One `SCM_RIGHTS` message holding `fds`, and the `msg_controllen` to
/// report for it in a buffer of `room` bytes (`CMSG_SPACE`, capped).
pub(super) fn encode_rights(fds: &[i32], room: usize) -> (Vec<u8>, usize) {
    let len = HEADER + 4 * fds.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&SOL_SOCKET.to_le_bytes());
    out.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
    for fd in fds {
        out.extend_from_slice(&fd.to_le_bytes());
    }
    (out, align(len).min(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(level: i32, ty: i32, fds: &[i32]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER + 4 * fds.len()) as u64).to_le_bytes());
        m.extend_from_slice(&level.to_le_bytes());
        m.extend_from_slice(&ty.to_le_bytes());
        for fd in fds {
            m.extend_from_slice(&fd.to_le_bytes());
        }
        m.resize(align(m.len()), 0);
        m
    }

    #[test]
    fn rights_are_gathered_from_every_message() {
        let mut c = message(SOL_SOCKET, SCM_RIGHTS, &[3, 4, 5]);
        c.extend(message(41, 50, &[9])); // another level: ignored
        c.extend(message(SOL_SOCKET, SCM_RIGHTS, &[7]));
        assert_eq!(parse_rights(&c).unwrap(), [3, 4, 5, 7]);
        assert_eq!(parse_rights(&[]).unwrap(), [0i32; 0]);
    }

    #[test]
    fn malformed_or_unsupported_control_is_refused() {
        let mut c = message(SOL_SOCKET, SCM_RIGHTS, &[3]);
        c[0] = 8; // shorter than a header
        assert_eq!(parse_rights(&c).unwrap_err().errno(), Errno::EINVAL);
        let mut c = message(SOL_SOCKET, SCM_RIGHTS, &[3]);
        c[0] = 200; // past the buffer
        assert_eq!(parse_rights(&c).unwrap_err().errno(), Errno::EINVAL);
        let c = message(SOL_SOCKET, 99, &[]);
        assert_eq!(parse_rights(&c).unwrap_err().errno(), Errno::EINVAL);
        let c = message(SOL_SOCKET, SCM_CREDENTIALS, &[1, 2, 3]);
        assert_eq!(parse_rights(&c).unwrap_err().errno(), Errno::EOPNOTSUPP);
        let many: Vec<i32> = (0..254).collect();
        let c = message(SOL_SOCKET, SCM_RIGHTS, &many);
        assert_eq!(parse_rights(&c).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn random_control_buffers_never_panic() {
        // A program hands any bytes as msg_control: 20,000 random buffers
        // (some with plausible headers) must parse or fail with an errno.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut c: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= HEADER && next() % 2 == 0 {
                let claimed = (next() % (len as u64 + 8)).to_le_bytes();
                c[..8].copy_from_slice(&claimed);
                c[8..12].copy_from_slice(&SOL_SOCKET.to_le_bytes());
            }
            if let Ok(fds) = parse_rights(&c) {
                assert!(fds.len() <= MAX_FILES);
            }
        }
    }

    #[test]
    fn messages_are_put_and_cut_as_linux_put_cmsg() {
        let (hop, class) = (64i32.to_le_bytes(), 3i32.to_le_bytes());
        let two: [(i32, i32, &[u8]); 2] = [(41, 52, &hop), (41, 67, &class)];
        let (b, used, cut) = put(&two, 10_240);
        assert_eq!((b.len(), used, cut), (48, 48, false));
        let back = parse(&b).unwrap();
        assert_eq!((back[0].ty, &back[0].data[..]), (52, &hop[..]));
        assert_eq!((back[1].ty, &back[1].data[..]), (67, &class[..]));
        // CMSG_SPACE(4) * 2 exactly: no truncation.
        assert!(!put(&two, 48).2);
        // Room for the first only (CMSG_SPACE(4) + 1): the second left out.
        let (b, used, cut) = put(&two, 25);
        assert_eq!((b.len(), used, cut), (24, 24, true));
        // Cut in the data (CMSG_LEN(4) - 1): cmsg_len says 19.
        let (b, used, cut) = put(&two[..1], 19);
        assert_eq!((used, cut), (19, true));
        assert_eq!(&b[..8], &19u64.to_le_bytes());
        assert_eq!(&b[16..], &hop[..3]);
        // CMSG_LEN(4): the message fits, its padding need not.
        let (b, used, cut) = put(&two[..1], 20);
        assert_eq!((b.len(), used, cut), (20, 20, false));
        // Less than a header: nothing.
        for room in [0, 1, 8, 15] {
            assert_eq!(put(&two, room), (Vec::new(), 0, true));
        }
        assert_eq!(put(&[], 0), (Vec::new(), 0, false));
    }

    #[test]
    fn received_rights_fit_the_room_given() {
        assert_eq!(rights_room(0, 3), 0);
        assert_eq!(rights_room(15, 3), 0);
        assert_eq!(rights_room(20, 3), 1);
        assert_eq!(rights_room(24, 3), 2);
        assert_eq!(rights_room(64, 3), 3);
        let (bytes, reported) = encode_rights(&[7, 8], 64);
        assert_eq!(bytes.len(), 24);
        assert_eq!(reported, 24);
        assert_eq!(parse_rights(&bytes).unwrap(), [7, 8]);
        assert_eq!(
            encode_rights(&[7], 20).1,
            20,
            "CMSG_SPACE capped by the room"
        );
    }
}
