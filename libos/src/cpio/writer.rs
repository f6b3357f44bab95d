//! [`CpioWriter`]: build a newc archive in memory.
//!
//! Needs only `alloc`, so host tools (the image builder in `tools/`) use the
//! same code the LibOS reads with. Inode numbers are assigned sequentially;
//! the archive ends with `TRAILER!!!` and is not padded to 512-byte blocks
//! (Linux does not require it).

use alloc::vec::Vec;

use super::TRAILER_NAME;
use super::header::{MAGIC_NEWC, MAGIC_NEWC_CRC};
use super::reader::{CpioError, align4};

/// Metadata of an entry to write (everything but its name and data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// `(major, minor)` of a device node.
    pub rdev: (u32, u32),
}

impl EntryMeta {
    const fn with_mode(mode: u32, nlink: u32) -> Self {
        Self {
            mode,
            uid: 0,
            gid: 0,
            nlink,
            mtime: 0,
            rdev: (0, 0),
        }
    }

    /// A regular file with permission bits `perm`, owned by root.
    pub const fn regular(perm: u32) -> Self {
        Self::with_mode(0o100000 | (perm & 0o7777), 1)
    }

    /// A directory with permission bits `perm`, owned by root.
    pub const fn directory(perm: u32) -> Self {
        Self::with_mode(0o040000 | (perm & 0o7777), 2)
    }

    /// A symbolic link (mode `0777`), owned by root.
    pub const fn symlink() -> Self {
        Self::with_mode(0o120777, 1)
    }

    /// A character device node.
    pub const fn char_device(perm: u32, major: u32, minor: u32) -> Self {
        let mut m = Self::with_mode(0o020000 | (perm & 0o7777), 1);
        m.rdev = (major, minor);
        m
    }
}

/// Builds a newc archive; call [`CpioWriter::finish`] to get the bytes.
#[derive(Debug, Clone, Default)]
pub struct CpioWriter {
    buf: Vec<u8>,
    next_ino: u32,
    checksums: bool,
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            next_ino: 1,
            checksums: false,
        }
    }

    /// Writes `070702` headers whose `check` field is the data's byte sum.
    pub fn with_checksums(mut self) -> Self {
        self.checksums = true;
        self
    }

    /// Appends an entry. `name` must be non-empty, without NUL bytes.
    pub fn push(&mut self, name: &[u8], meta: &EntryMeta, data: &[u8]) -> Result<(), CpioError> {
        let offset = self.buf.len();
        if name.is_empty() {
            return Err(CpioError::EmptyName { offset });
        }
        if name.contains(&0) {
            return Err(CpioError::NameNotNulTerminated { offset });
        }
        let overflow = CpioError::Overflow { offset };
        let namesize = name
            .len()
            .checked_add(1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(overflow)?;
        let filesize = u32::try_from(data.len()).map_err(|_| overflow)?;
        let ino = if name == TRAILER_NAME {
            0
        } else {
            let ino = self.next_ino;
            self.next_ino = self.next_ino.checked_add(1).ok_or(overflow)?;
            ino
        };
        let check = if self.checksums {
            data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
        } else {
            0
        };
        self.buf.extend_from_slice(if self.checksums {
            MAGIC_NEWC_CRC
        } else {
            MAGIC_NEWC
        });
        for value in [
            ino,
            meta.mode,
            meta.uid,
            meta.gid,
            meta.nlink,
            meta.mtime,
            filesize,
            0,
            0,
            meta.rdev.0,
            meta.rdev.1,
            namesize,
            check,
        ] {
            push_hex(&mut self.buf, value);
        }
        self.buf.extend_from_slice(name);
        self.buf.push(0);
        self.pad()?;
        self.buf.extend_from_slice(data);
        self.pad()
    }

    fn pad(&mut self) -> Result<(), CpioError> {
        let offset = self.buf.len();
        let target = align4(offset).ok_or(CpioError::Overflow { offset })?;
        self.buf.resize(target, 0);
        Ok(())
    }

    /// Appends a regular file owned by root.
    pub fn add_file(&mut self, name: &[u8], perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.push(name, &EntryMeta::regular(perm), data)
    }

    /// Appends a directory owned by root.
    pub fn add_dir(&mut self, name: &[u8], perm: u32) -> Result<(), CpioError> {
        self.push(name, &EntryMeta::directory(perm), &[])
    }

    /// Appends a symbolic link `name` → `target`.
    pub fn add_symlink(&mut self, name: &[u8], target: &[u8]) -> Result<(), CpioError> {
        self.push(name, &EntryMeta::symlink(), target)
    }

    /// Appends a character device node.
    pub fn add_char_device(
        &mut self,
        name: &[u8],
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.push(name, &EntryMeta::char_device(perm, major, minor), &[])
    }

    /// Appends the `TRAILER!!!` entry and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        let trailer = EntryMeta::with_mode(0, 1);
        // The trailer's name and empty data cannot overflow or be rejected.
        let _ = self.push(TRAILER_NAME, &trailer, &[]);
        self.buf
    }
}

fn push_hex(buf: &mut Vec<u8>, value: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for shift in (0..8).rev() {
        let nibble = (value >> (shift * 4)) & 0xf;
        buf.push(DIGITS[nibble as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_byte_exact() {
        let mut w = CpioWriter::new();
        w.add_file(b"ab", 0o755, b"xyz").unwrap();
        let a = w.finish();
        let expected_header = concat!(
            "070701", "00000001", "000081ED", "00000000", "00000000", "00000001", "00000000",
            "00000003", "00000000", "00000000", "00000000", "00000000", "00000003", "00000000"
        );
        assert_eq!(&a[..110], expected_header.as_bytes());
        assert_eq!(&a[110..113], b"ab\0");
        assert_eq!(&a[113..116], &[0, 0, 0]); // pad 113 -> 116
        assert_eq!(&a[116..119], b"xyz");
        assert_eq!(a[119], 0); // pad 119 -> 120
        assert_eq!(&a[120..126], b"070701");
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new();
        assert_eq!(
            w.add_file(b"", 0o644, b""),
            Err(CpioError::EmptyName { offset: 0 })
        );
        assert_eq!(
            w.add_file(b"a\0b", 0o644, b""),
            Err(CpioError::NameNotNulTerminated { offset: 0 })
        );
    }
}
