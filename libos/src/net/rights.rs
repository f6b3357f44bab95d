//! [`Rights`]: open files in flight on one direction of an `AF_UNIX`
//! stream (`SCM_RIGHTS`).
//!
//! A `sendmsg` with `SCM_RIGHTS` attaches its files to the first byte of
//! the data it sends; they are handed to the `recvmsg` that reads that
//! byte. As Linux (`unix_stream_read_generic`), a read stops before a
//! message that carries files (so they are not delivered early with other
//! data) and at the end of that message's batch (so two batches never
//! arrive in one read). A plain `read` takes the files and drops them,
//! which closes them, as Linux does.
//!
//! Bytes are counted in stream offsets: every write and read of the
//! direction goes through [`Rights::send`] / [`Rights::recv`], which hold
//! the lock around the pipe operation, so a batch's offset is exact. Files
//! passed over a socket to itself form a reference cycle that is not
//! collected (Linux has a garbage collector for that case).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use crate::error::Result;
use crate::fd::FileLike;

/// The most files one message may carry (Linux's `SCM_MAX_FD`).
pub const MAX_FILES: usize = 253;

/// Files passed with a message.
pub type Files = Vec<Arc<dyn FileLike>>;

#[derive(Debug, Default)]
struct Inner {
    /// Bytes written into the direction so far.
    sent: u64,
    /// Bytes read from it so far.
    read: u64,
    /// Batches of files, by the offset of the first byte they came with.
    batches: VecDeque<(u64, Files)>,
}

/// One direction's files in flight and byte counts.
#[derive(Debug, Default)]
pub struct Rights {
    inner: Mutex<Inner>,
}

impl Rights {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends through `write` (the pipe's write, which writes some prefix
    /// of its argument or fails), attaching `files` to the first byte if
    /// any byte went. A failed or empty write sends no file.
    pub fn send(&self, files: Files, write: impl FnOnce() -> Result<usize>) -> Result<usize> {
        let mut inner = self.inner.lock();
        let n = write()?;
        if n > 0 {
            if !files.is_empty() {
                let at = inner.sent;
                inner.batches.push_back((at, files));
            }
            inner.sent += n as u64;
        }
        Ok(n)
    }

    /// Receives through `read` (the pipe's read into at most the given
    /// number of bytes): returns the bytes read and the files that came
    /// with them.
    pub fn recv(
        &self,
        want: usize,
        read: impl FnOnce(usize) -> Result<usize>,
    ) -> Result<(usize, Files)> {
        let mut inner = self.inner.lock();
        let at = inner.read;
        let mut batches = inner.batches.iter().map(|(o, _)| *o);
        let limit = match batches.next() {
            // Stop before the message that carries files.
            Some(o) if o > at => want.min(clamp(o - at)),
            // This read takes them: stop before the next batch.
            Some(_) => batches
                .next()
                .map_or(want, |next| want.min(clamp(next - at))),
            None => want,
        };
        let n = read(limit)?;
        let mut files = Vec::new();
        if n > 0 && inner.batches.front().is_some_and(|(o, _)| *o == at) {
            files = inner
                .batches
                .pop_front()
                .map(|(_, f)| f)
                .unwrap_or_default();
        }
        inner.read += n as u64;
        Ok((n, files))
    }

    /// Batches not yet received.
    pub fn pending(&self) -> usize {
        self.inner.lock().batches.len()
    }
}

/// A stream distance as a read length.
fn clamp(d: u64) -> usize {
    usize::try_from(d).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::new_pipe;

    fn file() -> Arc<dyn FileLike> {
        new_pipe(0).0
    }

    #[test]
    fn files_arrive_with_their_message_and_never_early() {
        let (r, w) = new_pipe(0);
        let rights = Rights::new();
        let a = file();
        assert_eq!(rights.send(Vec::new(), || w.write(b"ab")).unwrap(), 2);
        assert_eq!(
            rights
                .send(alloc::vec![a.clone()], || w.write(b"cd"))
                .unwrap(),
            2
        );
        assert_eq!(
            rights.send(alloc::vec![file()], || w.write(b"e")).unwrap(),
            1
        );
        let mut buf = [0u8; 16];
        // Stops before "cd", which carries a file.
        let (n, f) = rights.recv(16, |k| r.read(&mut buf[..k])).unwrap();
        assert_eq!((&buf[..n], f.len()), (&b"ab"[..], 0));
        // "cd" with its file, not running into "e" and its batch.
        let (n, f) = rights.recv(16, |k| r.read(&mut buf[..k])).unwrap();
        assert_eq!((&buf[..n], f.len()), (&b"cd"[..], 1));
        assert!(Arc::ptr_eq(&f[0], &a));
        let (n, f) = rights.recv(16, |k| r.read(&mut buf[..k])).unwrap();
        assert_eq!((&buf[..n], f.len()), (&b"e"[..], 1));
        assert_eq!(rights.pending(), 0);
    }

    #[test]
    fn a_failed_send_carries_no_file_and_a_short_read_keeps_the_rest() {
        let (r, w) = new_pipe(0);
        let rights = Rights::new();
        let err = rights.send(alloc::vec![file()], || {
            Err(crate::error::Errno::EAGAIN.into())
        });
        assert!(err.is_err());
        assert_eq!(rights.pending(), 0);
        rights
            .send(alloc::vec![file()], || w.write(b"xyz"))
            .unwrap();
        let mut buf = [0u8; 1];
        let (n, f) = rights.recv(1, |k| r.read(&mut buf[..k])).unwrap();
        assert_eq!((n, f.len()), (1, 1), "the first byte brings the files");
        let (n, f) = rights.recv(1, |k| r.read(&mut buf[..k])).unwrap();
        assert_eq!((n, f.len()), (1, 0));
    }
}
