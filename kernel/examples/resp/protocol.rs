//! RESP2 framing: requests as arrays of bulk strings (what `redis-cli` and
//! `redis-benchmark` send) or inline commands (`PING\r\n`), and replies.
//! Every length from the client is checked before it is used.

use alloc::vec::Vec;

/// The longest bulk string and the most arguments a request may have.
const MAX_BULK_BYTES: usize = 64 * 1024 * 1024;
const MAX_ARGS: usize = 1024 * 1024;

/// The start of a buffer, read as one request.
pub enum Parsed<'a> {
    /// More bytes are needed.
    Incomplete,
    /// A request's arguments and the bytes it took.
    Command(Vec<&'a [u8]>, usize),
    /// Not RESP: the error to send before closing.
    Invalid(&'static str),
}

/// The line at the start of `buf` (without its `\r\n`) and the bytes taken.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// A decimal count in a header line.
fn number(digits: &[u8]) -> Option<usize> {
    core::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads the request at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let Some(&first) = buf.first() else {
        return Parsed::Incomplete;
    };
    let Some((header, mut at)) = line(buf) else {
        return Parsed::Incomplete;
    };
    if first != b'*' {
        // An inline command: words separated by spaces.
        let words = header
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        return Parsed::Command(words, at);
    }
    let Some(count) = number(&header[1..]).filter(|&n| n <= MAX_ARGS) else {
        return Parsed::Invalid("ERR Protocol error: invalid multibulk length");
    };
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let rest = &buf[at..];
        let Some((header, taken)) = line(rest) else {
            return Parsed::Incomplete;
        };
        if header.first() != Some(&b'$') {
            return Parsed::Invalid("ERR Protocol error: expected '$'");
        }
        let Some(len) = number(&header[1..]).filter(|&n| n <= MAX_BULK_BYTES) else {
            return Parsed::Invalid("ERR Protocol error: invalid bulk length");
        };
        // `len` is bounded above, so these sums cannot overflow.
        let start = at + taken;
        let end = start + len;
        if buf.len() < end + 2 {
            return Parsed::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Invalid("ERR Protocol error: bulk string not followed by CRLF");
        }
        args.push(&buf[start..end]);
        at = end + 2;
    }
    Parsed::Command(args, at)
}

/// A reply.
pub enum Reply {
    /// `+OK`
    Simple(&'static str),
    /// `-ERR …`
    Error(&'static str),
    /// `:n`
    Integer(i64),
    /// `$n` and the bytes, or `$-1` for none.
    Bulk(Option<Vec<u8>>),
    /// `*n` and bulk strings.
    Array(Vec<Vec<u8>>),
}

impl Reply {
    /// Appends the reply's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use core::fmt::Write;
        let mut text = alloc::string::String::new();
        match self {
            Self::Simple(s) => out.extend_from_slice(alloc::format!("+{s}\r\n").as_bytes()),
            Self::Error(s) => out.extend_from_slice(alloc::format!("-{s}\r\n").as_bytes()),
            Self::Integer(n) => out.extend_from_slice(alloc::format!(":{n}\r\n").as_bytes()),
            Self::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Self::Bulk(Some(bytes)) => bulk(out, bytes),
            Self::Array(items) => {
                let _ = write!(text, "*{}\r\n", items.len());
                out.extend_from_slice(text.as_bytes());
                for item in items {
                    bulk(out, item);
                }
            }
        }
    }
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(alloc::format!("${}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}
