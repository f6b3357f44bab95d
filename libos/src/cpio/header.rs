//! The newc header, wire style: a [`field`] module of byte ranges and a
//! [`Header`] view that validates its buffer once in [`Header::new_checked`].

use super::reader::CpioError;

/// Byte ranges of the newc header fields: six bytes of magic, then thirteen
/// fields of eight ASCII hex digits each.
pub mod field {
    use core::ops::Range;

    /// `070701` (newc) or `070702` (newc with checksum).
    pub const MAGIC: Range<usize> = 0..6;
    /// Inode number.
    pub const INO: Range<usize> = 6..14;
    /// File type and permission bits, as in `st_mode`.
    pub const MODE: Range<usize> = 14..22;
    /// Owner user id.
    pub const UID: Range<usize> = 22..30;
    /// Owner group id.
    pub const GID: Range<usize> = 30..38;
    /// Number of links.
    pub const NLINK: Range<usize> = 38..46;
    /// Modification time, seconds since the epoch.
    pub const MTIME: Range<usize> = 46..54;
    /// Size of the data that follows the name, in bytes.
    pub const FILESIZE: Range<usize> = 54..62;
    /// Major number of the device holding the file.
    pub const DEVMAJOR: Range<usize> = 62..70;
    /// Minor number of the device holding the file.
    pub const DEVMINOR: Range<usize> = 70..78;
    /// Major number of a device node.
    pub const RDEVMAJOR: Range<usize> = 78..86;
    /// Minor number of a device node.
    pub const RDEVMINOR: Range<usize> = 86..94;
    /// Length of the name including its terminating NUL.
    pub const NAMESIZE: Range<usize> = 94..102;
    /// Checksum of the data (`070702` only; zero otherwise).
    pub const CHECK: Range<usize> = 102..110;
    /// Length of the header.
    pub const HEADER_LEN: usize = CHECK.end;

    /// Every hex field with its name, for validation and error messages.
    pub const HEX_FIELDS: [(&str, Range<usize>); 13] = [
        ("ino", INO),
        ("mode", MODE),
        ("uid", UID),
        ("gid", GID),
        ("nlink", NLINK),
        ("mtime", MTIME),
        ("filesize", FILESIZE),
        ("devmajor", DEVMAJOR),
        ("devminor", DEVMINOR),
        ("rdevmajor", RDEVMAJOR),
        ("rdevminor", RDEVMINOR),
        ("namesize", NAMESIZE),
        ("check", CHECK),
    ];
}

/// Magic of a plain newc header.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Magic of a newc header whose `check` field is the sum of the data bytes.
pub const MAGIC_NEWC_CRC: &[u8; 6] = b"070702";

/// A read-only view of a newc header at the start of `buffer`.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` without checking it; accessors may then return 0 for
    /// fields that are not valid hex. Use [`Header::new_checked`] on input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole header with a
    /// known magic and valid hex fields. `offset` is the header's position
    /// in the archive, used only in errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, CpioError> {
        let header = Self::new_unchecked(buffer);
        header.check(offset)?;
        Ok(header)
    }

    /// Validates length, magic and every hex field.
    pub fn check(&self, offset: usize) -> Result<(), CpioError> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(CpioError::Truncated {
                offset,
                what: "header",
            });
        }
        let magic = &data[field::MAGIC];
        if magic != MAGIC_NEWC && magic != MAGIC_NEWC_CRC {
            return Err(CpioError::BadMagic { offset });
        }
        for (name, range) in field::HEX_FIELDS {
            if parse_hex(&data[range.clone()]).is_none() {
                return Err(CpioError::BadHexField {
                    offset: offset + range.start,
                    field: name,
                });
            }
        }
        Ok(())
    }

    fn hex(&self, range: core::ops::Range<usize>) -> u32 {
        self.buffer
            .as_ref()
            .get(range)
            .and_then(parse_hex)
            .unwrap_or(0)
    }

    /// Whether the `check` field holds a data checksum (magic `070702`).
    pub fn has_checksum(&self) -> bool {
        self.buffer.as_ref().get(field::MAGIC) == Some(MAGIC_NEWC_CRC.as_slice())
    }

    /// Inode number.
    pub fn ino(&self) -> u32 {
        self.hex(field::INO)
    }
    /// `st_mode`: file type and permission bits.
    pub fn mode(&self) -> u32 {
        self.hex(field::MODE)
    }
    /// Owner user id.
    pub fn uid(&self) -> u32 {
        self.hex(field::UID)
    }
    /// Owner group id.
    pub fn gid(&self) -> u32 {
        self.hex(field::GID)
    }
    /// Link count.
    pub fn nlink(&self) -> u32 {
        self.hex(field::NLINK)
    }
    /// Modification time in seconds since the epoch.
    pub fn mtime(&self) -> u32 {
        self.hex(field::MTIME)
    }
    /// Data length in bytes.
    pub fn filesize(&self) -> u32 {
        self.hex(field::FILESIZE)
    }
    /// Major number of the containing device.
    pub fn dev_major(&self) -> u32 {
        self.hex(field::DEVMAJOR)
    }
    /// Minor number of the containing device.
    pub fn dev_minor(&self) -> u32 {
        self.hex(field::DEVMINOR)
    }
    /// Major number of a device node.
    pub fn rdev_major(&self) -> u32 {
        self.hex(field::RDEVMAJOR)
    }
    /// Minor number of a device node.
    pub fn rdev_minor(&self) -> u32 {
        self.hex(field::RDEVMINOR)
    }
    /// Name length in bytes, including the terminating NUL.
    pub fn namesize(&self) -> u32 {
        self.hex(field::NAMESIZE)
    }
    /// Data checksum (meaningful only when [`Header::has_checksum`]).
    pub fn check_field(&self) -> u32 {
        self.hex(field::CHECK)
    }
}

/// Parses exactly eight ASCII hex digits (either case).
pub fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some((acc << 4) | v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes() -> [u8; 110] {
        let mut h = [b'0'; 110];
        h[..6].copy_from_slice(MAGIC_NEWC);
        h[field::MODE].copy_from_slice(b"000081A4");
        h[field::FILESIZE].copy_from_slice(b"0000000c");
        h[field::NAMESIZE].copy_from_slice(b"00000006");
        h
    }

    #[test]
    fn parses_fields() {
        let bytes = header_bytes();
        let h = Header::new_checked(&bytes[..], 0).unwrap();
        assert_eq!(h.mode(), 0o100644);
        assert_eq!(h.filesize(), 12);
        assert_eq!(h.namesize(), 6);
        assert!(!h.has_checksum());
    }

    #[test]
    fn rejects_short_bad_magic_and_bad_hex() {
        let bytes = header_bytes();
        assert_eq!(
            Header::new_checked(&bytes[..109], 4).unwrap_err(),
            CpioError::Truncated {
                offset: 4,
                what: "header"
            }
        );
        let mut bad = bytes;
        bad[5] = b'7';
        assert_eq!(
            Header::new_checked(&bad[..], 8).unwrap_err(),
            CpioError::BadMagic { offset: 8 }
        );
        let mut bad = bytes;
        bad[field::UID.start + 3] = b'g';
        assert_eq!(
            Header::new_checked(&bad[..], 0).unwrap_err(),
            CpioError::BadHexField {
                offset: field::UID.start,
                field: "uid"
            }
        );
    }

    #[test]
    fn hex_parser() {
        assert_eq!(parse_hex(b"FFFFFFFF"), Some(u32::MAX));
        assert_eq!(parse_hex(b"0000abCD"), Some(0xabcd));
        assert_eq!(parse_hex(b"0000abC"), None);
        assert_eq!(parse_hex(b"+0000abC"), None);
    }
}
