//! The files of the image for a linked application: the initramfs the boot
//! loader passed (`cloister run --app … --file HOST:GUEST`, QEMU `-initrd`),
//! read in place, without copies: [`read`] gives the file's bytes as a
//! `&'static [u8]`.
//!
//! The image is read-only here (a program that needs a writable file
//! system keeps its data on the heap). Paths are absolute or relative to
//! the root; symbolic links are not followed.

use libos::cpio::{CpioReader, FileType};

use super::{Errno, Result};

/// The archive's name for `path` (`/www/index.html`, `./www/index.html`
/// and `www/index.html` are the same file).
fn normalize(path: &[u8]) -> &[u8] {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            return p;
        }
    }
}

/// The contents of the regular file at `path` in the image. `ENOENT` if
/// there is none (or no image), `EISDIR` for a directory, `EINVAL` for
/// another kind of entry, `EIO` for a malformed archive.
pub fn read(path: &str) -> Result<&'static [u8]> {
    let archive = crate::initramfs().ok_or(Errno::ENOENT)?;
    let want = normalize(path.as_bytes());
    let mut found = None;
    // A later entry of the same name replaces an earlier one, as when the
    // archive is unpacked.
    for entry in CpioReader::new(archive) {
        let entry = entry.map_err(|_| Errno::EIO)?;
        if normalize(entry.name) == want {
            found = Some(entry);
        }
    }
    let entry = found.ok_or(Errno::ENOENT)?;
    match entry.file_type() {
        FileType::Regular => Ok(entry.data),
        FileType::Directory => Err(Errno::EISDIR.into()),
        _ => Err(Errno::EINVAL.into()),
    }
}

/// The names of the regular files in the image (as stored, without a
/// leading `/`), or nothing without an image.
pub fn files() -> impl Iterator<Item = &'static [u8]> {
    CpioReader::new(crate::initramfs().unwrap_or(&[]))
        .map_while(core::result::Result::ok)
        .filter(|e| e.file_type() == FileType::Regular)
        .map(|e| normalize(e.name))
}
