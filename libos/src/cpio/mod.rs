//! The cpio "newc" archive format (magic `070701`, and `070702` with a
//! checksum) that Linux uses for initramfs images.
//!
//! - [`header`]: the 110-byte ASCII-hex header in smoltcp's wire style
//!   (`field` byte ranges, [`Header::new_checked`]).
//! - [`reader`]: [`CpioReader`], an iterator of [`Entry`] borrowing from the
//!   archive, stopping at `TRAILER!!!`; every problem is a [`CpioError`] that
//!   names it and the byte offset where it was found.
//! - [`writer`]: [`CpioWriter`], which builds an archive in a `Vec<u8>`; it
//!   only needs `alloc`, so the host image builder in `tools/` uses it too.
//!
//! The VFS (`crate::fs`) is populated from a [`CpioReader`].

pub mod header;
pub mod reader;
pub mod writer;

pub use header::Header;
pub use reader::{CpioError, CpioReader, Entry, FileType};
pub use writer::{CpioWriter, EntryMeta};

/// The name of the entry that ends an archive.
pub const TRAILER_NAME: &[u8] = b"TRAILER!!!";
