//! [`CpioReader`]: iterate the entries of a newc archive without copying.

use core::fmt;

use super::TRAILER_NAME;
use super::header::{Header, field};
use crate::error::{Errno, Error};

/// What went wrong reading an archive, and where (`offset` is a byte
/// position in the archive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpioError {
    /// The six magic bytes are neither `070701` nor `070702`.
    BadMagic {
        /// Offset of the header.
        offset: usize,
    },
    /// A header field is not eight hex digits.
    BadHexField {
        /// Offset of the field.
        offset: usize,
        /// Field name (`"mode"`, `"filesize"`, …).
        field: &'static str,
    },
    /// The archive ends inside a header, name or data.
    Truncated {
        /// Offset where the missing part starts.
        offset: usize,
        /// What is cut short (`"header"`, `"name"`, `"data"`).
        what: &'static str,
    },
    /// `namesize` is zero, or the name's last byte is not NUL, or it has a
    /// NUL before its end.
    NameNotNulTerminated {
        /// Offset of the name.
        offset: usize,
    },
    /// The name is empty.
    EmptyName {
        /// Offset of the header.
        offset: usize,
    },
    /// A `070702` entry whose data does not sum to its `check` field.
    ChecksumMismatch {
        /// Offset of the header.
        offset: usize,
    },
    /// The data ran out before a `TRAILER!!!` entry.
    MissingTrailer {
        /// Length of the archive.
        offset: usize,
    },
    /// A length or offset does not fit the address space.
    Overflow {
        /// Offset of the header.
        offset: usize,
    },
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic { offset } => write!(
                f,
                "cpio: bad magic at offset {offset} (expected newc 070701 or 070702)"
            ),
            Self::BadHexField { offset, field } => {
                write!(
                    f,
                    "cpio: field {field} at offset {offset} is not 8 hex digits"
                )
            }
            Self::Truncated { offset, what } => {
                write!(f, "cpio: archive truncated in {what} at offset {offset}")
            }
            Self::NameNotNulTerminated { offset } => {
                write!(f, "cpio: name at offset {offset} is not NUL-terminated")
            }
            Self::EmptyName { offset } => write!(f, "cpio: empty name at offset {offset}"),
            Self::ChecksumMismatch { offset } => {
                write!(
                    f,
                    "cpio: data checksum mismatch for entry at offset {offset}"
                )
            }
            Self::MissingTrailer { offset } => {
                write!(
                    f,
                    "cpio: archive ends at offset {offset} without TRAILER!!!"
                )
            }
            Self::Overflow { offset } => {
                write!(f, "cpio: size overflow in entry at offset {offset}")
            }
        }
    }
}

impl From<CpioError> for Error {
    fn from(e: CpioError) -> Self {
        let msg = match e {
            CpioError::BadMagic { .. } => "cpio: bad magic",
            CpioError::BadHexField { .. } => "cpio: header field is not hex",
            CpioError::Truncated { .. } => "cpio: archive truncated",
            CpioError::NameNotNulTerminated { .. } => "cpio: name not NUL-terminated",
            CpioError::EmptyName { .. } => "cpio: empty name",
            CpioError::ChecksumMismatch { .. } => "cpio: checksum mismatch",
            CpioError::MissingTrailer { .. } => "cpio: missing TRAILER!!!",
            CpioError::Overflow { .. } => "cpio: size overflow",
        };
        Error::with_message(Errno::EINVAL, msg)
    }
}

/// The kind of file an entry describes (from the `S_IFMT` bits of its mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// `S_IFREG`
    Regular,
    /// `S_IFDIR`
    Directory,
    /// `S_IFLNK`: the data is the link target.
    Symlink,
    /// `S_IFCHR`
    CharDevice,
    /// `S_IFBLK`
    BlockDevice,
    /// `S_IFIFO`
    Fifo,
    /// `S_IFSOCK`
    Socket,
    /// Any other value of the type bits.
    Unknown,
}

impl FileType {
    /// Classifies the `S_IFMT` bits of `mode`.
    pub const fn from_mode(mode: u32) -> Self {
        match mode & 0o170000 {
            0o100000 => Self::Regular,
            0o040000 => Self::Directory,
            0o120000 => Self::Symlink,
            0o020000 => Self::CharDevice,
            0o060000 => Self::BlockDevice,
            0o010000 => Self::Fifo,
            0o140000 => Self::Socket,
            _ => Self::Unknown,
        }
    }
}

/// One archive member, borrowing its name and data from the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path as stored (usually relative, e.g. `usr/bin/true`), without NUL.
    pub name: &'a [u8],
    /// Inode number as stored.
    pub ino: u32,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Link count as stored.
    pub nlink: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// `(major, minor)` of the device holding the file.
    pub dev: (u32, u32),
    /// `(major, minor)` of a device node.
    pub rdev: (u32, u32),
    /// The file contents (the target, for a symlink).
    pub data: &'a [u8],
    /// Offset of this entry's header in the archive.
    pub offset: usize,
}

impl Entry<'_> {
    /// The file type from the mode bits.
    pub const fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }

    /// The permission bits (`mode & 0o7777`).
    pub const fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// Iterator over the entries of a newc archive. Yields `Err` once and then
/// stops if the archive is malformed; ends without error at `TRAILER!!!`.
#[derive(Debug, Clone)]
pub struct CpioReader<'a> {
    archive: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> CpioReader<'a> {
    /// A reader over `archive`.
    pub const fn new(archive: &'a [u8]) -> Self {
        Self {
            archive,
            offset: 0,
            done: false,
        }
    }

    fn parse_at(&self, offset: usize) -> Result<(Entry<'a>, usize), CpioError> {
        let rest = self.archive.get(offset..).unwrap_or(&[]);
        let header = Header::new_checked(rest, offset)?;
        let overflow = CpioError::Overflow { offset };

        let name_start = offset.checked_add(field::HEADER_LEN).ok_or(overflow)?;
        let namesize = usize::try_from(header.namesize()).map_err(|_| overflow)?;
        let name_end = name_start.checked_add(namesize).ok_or(overflow)?;
        let name_with_nul = self
            .archive
            .get(name_start..name_end)
            .ok_or(CpioError::Truncated {
                offset: name_start,
                what: "name",
            })?;
        let name = match name_with_nul.split_last() {
            Some((0, name)) if !name.contains(&0) => name,
            _ => {
                return Err(CpioError::NameNotNulTerminated { offset: name_start });
            }
        };
        if name.is_empty() {
            return Err(CpioError::EmptyName { offset });
        }

        let data_start = align4(name_end).ok_or(overflow)?;
        let filesize = usize::try_from(header.filesize()).map_err(|_| overflow)?;
        let data_end = data_start.checked_add(filesize).ok_or(overflow)?;
        let data = self
            .archive
            .get(data_start..data_end)
            .ok_or(CpioError::Truncated {
                offset: data_start.min(self.archive.len()),
                what: "data",
            })?;
        if header.has_checksum() {
            let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
            if sum != header.check_field() {
                return Err(CpioError::ChecksumMismatch { offset });
            }
        }
        let next = align4(data_end).ok_or(overflow)?;
        let entry = Entry {
            name,
            ino: header.ino(),
            mode: header.mode(),
            uid: header.uid(),
            gid: header.gid(),
            nlink: header.nlink(),
            mtime: header.mtime(),
            dev: (header.dev_major(), header.dev_minor()),
            rdev: (header.rdev_major(), header.rdev_minor()),
            data,
            offset,
        };
        Ok((entry, next))
    }
}

impl<'a> Iterator for CpioReader<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.offset >= self.archive.len() {
            self.done = true;
            return Some(Err(CpioError::MissingTrailer {
                offset: self.archive.len(),
            }));
        }
        match self.parse_at(self.offset) {
            Ok((entry, next)) => {
                if entry.name == TRAILER_NAME {
                    self.done = true;
                    return None;
                }
                self.offset = next;
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for CpioReader<'_> {}

/// Rounds `n` up to a multiple of four, or `None` on overflow.
pub(crate) const fn align4(n: usize) -> Option<usize> {
    match n.checked_add(3) {
        Some(v) => Some(v & !3),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::{CpioWriter, EntryMeta};
    use alloc::vec::Vec;

    fn sample() -> Vec<u8> {
        let mut w = CpioWriter::new();
        w.add_dir(b"etc", 0o755).unwrap();
        w.add_file(b"etc/hostname", 0o644, b"cloister\n").unwrap();
        w.add_symlink(b"bin", b"usr/bin").unwrap();
        w.add_char_device(b"dev/null", 0o666, 1, 3).unwrap();
        w.finish()
    }

    #[test]
    fn round_trips_entries() {
        let archive = sample();
        let entries: Vec<_> = CpioReader::new(&archive).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].name, b"etc");
        assert_eq!(entries[0].file_type(), FileType::Directory);
        assert_eq!(entries[0].permissions(), 0o755);
        assert_eq!(entries[1].name, b"etc/hostname");
        assert_eq!(entries[1].data, b"cloister\n");
        assert_eq!(entries[1].mode, 0o100644);
        assert_eq!(entries[2].file_type(), FileType::Symlink);
        assert_eq!(entries[2].data, b"usr/bin");
        assert_eq!(entries[3].file_type(), FileType::CharDevice);
        assert_eq!(entries[3].rdev, (1, 3));
        for e in &entries {
            assert_eq!(e.offset % 4, 0);
        }
    }

    #[test]
    fn reads_archive_made_by_gnu_cpio_layout() {
        // Hand-assembled like `cpio -o -H newc` output: "a" with data "hi".
        let mut a = Vec::new();
        a.extend_from_slice(b"070701");
        for v in [1u32, 0o100644, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2, 0] {
            a.extend_from_slice(alloc::format!("{v:08x}").as_bytes());
        }
        a.extend_from_slice(b"a\0"); // 112 bytes
        a.extend_from_slice(b"hi\0\0");
        a.extend_from_slice(&CpioWriter::new().finish());
        let e: Vec<_> = CpioReader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].name, e[0].data), (&b"a"[..], &b"hi"[..]));
    }

    #[test]
    fn missing_trailer_is_an_error() {
        let archive = sample();
        // Cut the trailer entry off entirely (it is the last 124 bytes).
        let cut = archive.len() - 124;
        let mut r = CpioReader::new(&archive[..cut]);
        assert_eq!(r.by_ref().filter(Result::is_ok).count(), 4);
        let all: Vec<_> = CpioReader::new(&archive[..cut]).collect();
        assert_eq!(
            all.last().unwrap(),
            &Err(CpioError::MissingTrailer { offset: cut })
        );
    }

    #[test]
    fn truncated_data_names_offset() {
        let mut w = CpioWriter::new();
        w.add_file(b"f", 0o644, &[7u8; 100]).unwrap();
        let archive = w.finish();
        let cut = &archive[..150];
        let err = CpioReader::new(cut).next().unwrap().unwrap_err();
        assert_eq!(
            err,
            CpioError::Truncated {
                offset: 112,
                what: "data"
            }
        );
        assert_eq!(
            alloc::format!("{err}"),
            "cpio: archive truncated in data at offset 112"
        );
    }

    #[test]
    fn bad_magic_in_second_entry() {
        let mut archive = sample();
        let second = CpioReader::new(&archive).nth(1).unwrap().unwrap().offset;
        archive[second] = b'1';
        let results: Vec<_> = CpioReader::new(&archive).collect();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1], Err(CpioError::BadMagic { offset: second }));
        let e: Error = results[1].unwrap_err().into();
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    #[test]
    fn name_must_be_nul_terminated() {
        let mut archive = sample();
        // "etc\0" -> "etcX"
        archive[110 + 3] = b'X';
        assert_eq!(
            CpioReader::new(&archive).next().unwrap(),
            Err(CpioError::NameNotNulTerminated { offset: 110 })
        );
    }

    #[test]
    fn huge_sizes_do_not_panic() {
        let mut w = CpioWriter::new();
        w.add_file(b"f", 0o644, b"x").unwrap();
        let mut archive = w.finish();
        archive[field::FILESIZE].copy_from_slice(b"FFFFFFFF");
        assert!(matches!(
            CpioReader::new(&archive).next().unwrap(),
            Err(CpioError::Truncated { what: "data", .. })
        ));
        archive[field::NAMESIZE].copy_from_slice(b"FFFFFFFF");
        assert!(matches!(
            CpioReader::new(&archive).next().unwrap(),
            Err(CpioError::Truncated { what: "name", .. })
        ));
    }

    #[test]
    fn checksum_variant_is_verified() {
        let mut w = CpioWriter::new().with_checksums();
        w.push(b"f", &EntryMeta::regular(0o644), b"abc").unwrap();
        let mut archive = w.finish();
        assert!(CpioReader::new(&archive).all(|r| r.is_ok()));
        // Corrupt one data byte (data starts at 112 for a 1-byte name).
        archive[112] ^= 1;
        assert_eq!(
            CpioReader::new(&archive).next().unwrap(),
            Err(CpioError::ChecksumMismatch { offset: 0 })
        );
    }

    #[test]
    fn empty_archive() {
        assert_eq!(
            CpioReader::new(&[]).next().unwrap(),
            Err(CpioError::MissingTrailer { offset: 0 })
        );
        let only_trailer = CpioWriter::new().finish();
        assert_eq!(CpioReader::new(&only_trailer).count(), 0);
    }
}
