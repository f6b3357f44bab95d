//! Debian's Linux kernel as a PVH-bootable `vmlinux`, for the Linux guest.
//!
//! [`fetch`] asks apt which versioned package `linux-image-amd64` depends on
//! (`linux-image-6.1.0-N-amd64`), downloads it with `apt-get download` into
//! a cache directory (nothing is installed on the host), unpacks it with
//! `dpkg -x`, and extracts the uncompressed kernel ELF from the bzImage:
//! the boot-protocol header says where the compressed payload is
//! ([`payload`]), its magic says how it is compressed, and the host's
//! `xz`/`zstd`/`gzip` inflates it. The ELF carries the PVH note (Xen note 18),
//! so QEMU boots it with `-kernel` on `-M microvm` exactly as it boots
//! Cloister. The unpacked package stays in the cache: its
//! `lib/modules/<version>/` holds the virtio drivers a networked figure
//! will need (see `shared/notes/PLATFORM-FACTS.md` for their load order).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The kernel the Linux guest boots.
#[derive(Debug, Clone)]
pub struct LinuxKernel {
    /// The versioned package, e.g. `linux-image-6.1.0-56-amd64`.
    pub package: String,
    /// The package version, e.g. `6.1.192-2`.
    pub version: String,
    /// The extracted ELF.
    pub vmlinux: PathBuf,
    /// Where the package is unpacked (modules are under `lib/modules`).
    pub unpacked: PathBuf,
}

/// Fetches and extracts the kernel into `cache`, reusing earlier work.
pub fn fetch(cache: &Path) -> Result<LinuxKernel> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let package = versioned_package()?;
    let deb = find_deb(cache, &package).map_or_else(|| download(cache, &package), Ok)?;
    let version = deb_field(&deb, "Version")?;
    let unpacked = cache.join(&package);
    let vmlinux = cache.join(format!("vmlinux-{package}_{version}"));
    if vmlinux.is_file() {
        return Ok(LinuxKernel {
            package,
            version,
            vmlinux,
            unpacked,
        });
    }
    eprintln!("bench: unpacking {}", deb.display());
    let _ = std::fs::remove_dir_all(&unpacked);
    run_tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    let bzimage = std::fs::read_dir(unpacked.join("boot"))
        .context("the kernel package has no boot/ directory")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .context("the kernel package has no boot/vmlinuz-*")?;
    let image =
        std::fs::read(&bzimage).with_context(|| format!("cannot read {}", bzimage.display()))?;
    let elf = extract_vmlinux(&image)
        .with_context(|| format!("extracting the ELF kernel from {}", bzimage.display()))?;
    let partial = vmlinux.with_extension("partial");
    std::fs::write(&partial, &elf)?;
    std::fs::rename(&partial, &vmlinux)?;
    Ok(LinuxKernel {
        package,
        version,
        vmlinux,
        unpacked,
    })
}

/// `linux-image-amd64`'s kernel package, from `apt-cache depends`.
fn versioned_package() -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .context("cannot run apt-cache: the Linux guest needs a Debian host (or apt)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    kernel_dependency(&text).context(
        "apt-cache knows no linux-image-amd64 dependency: run `apt-get update` (Debian's main archive must be a source)",
    )
}

/// The first `Depends: linux-image-…` in `apt-cache depends` output.
fn kernel_dependency(apt_cache_output: &str) -> Option<String> {
    apt_cache_output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
}

fn find_deb(cache: &Path, package: &str) -> Option<PathBuf> {
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
            })
        })
}

fn download(cache: &Path, package: &str) -> Result<PathBuf> {
    eprintln!("bench: downloading {package} (apt-get download; not installed)");
    run_tool(
        Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(cache),
    )?;
    find_deb(cache, package).with_context(|| format!("apt-get download left no {package}_*.deb"))
}

fn deb_field(deb: &Path, field: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .context("cannot run dpkg-deb")?;
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || value.is_empty() {
        bail!("{} has no {field} field", deb.display());
    }
    Ok(value)
}

fn run_tool(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// How a bzImage payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// XZ (Debian's choice).
    Xz,
    /// Zstandard.
    Zstd,
    /// gzip.
    Gzip,
}

impl Compression {
    fn from_magic(data: &[u8]) -> Option<Self> {
        if data.starts_with(b"\xfd7zXZ\0") {
            Some(Self::Xz)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Self::Zstd)
        } else if data.starts_with(&[0x1f, 0x8b]) {
            Some(Self::Gzip)
        } else {
            None
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Self::Xz => "xz",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }
}

/// The compressed kernel inside a bzImage: its bytes (without the 4-byte
/// decompressed-size trailer the kernel build appends), the compression,
/// and that decompressed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// The compressed stream.
    pub data: &'a [u8],
    /// How it is compressed.
    pub compression: Compression,
    /// The decompressed size the trailer announces.
    pub size: u32,
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Locates the payload through the x86 boot protocol header (`HdrS` at
/// 0x202, protocol ≥ 2.08 for `payload_offset`/`payload_length` at
/// 0x248/0x24c, counted from the end of the `setup_sects` real-mode sectors).
pub fn payload(image: &[u8]) -> Result<Payload<'_>> {
    if le_u32(image, 0x202) != Some(u32::from_le_bytes(*b"HdrS")) {
        bail!("not a bzImage: no `HdrS` boot header at 0x202");
    }
    let protocol = le_u16(image, 0x206).context("truncated boot header")?;
    if protocol < 0x208 {
        bail!("boot protocol {protocol:#x} has no payload fields (needs 2.08)");
    }
    let setup_sects = match image.get(0x1f1).copied() {
        Some(0) => 4,
        Some(n) => usize::from(n),
        None => bail!("truncated boot header"),
    };
    let offset = le_u32(image, 0x248).context("truncated boot header")?;
    let length = le_u32(image, 0x24c).context("truncated boot header")?;
    let start = (setup_sects + 1)
        .checked_mul(512)
        .and_then(|s| s.checked_add(usize::try_from(offset).ok()?))
        .context("payload offset overflows")?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= image.len())
        .context("payload runs past the end of the image")?;
    let whole = &image[start..end];
    if whole.len() < 4 {
        bail!("payload too short");
    }
    let (data, trailer) = whole.split_at(whole.len() - 4);
    let size = le_u32(trailer, 0).context("payload trailer")?;
    let compression = Compression::from_magic(data)
        .context("unknown payload compression (expected XZ, ZSTD or gzip)")?;
    Ok(Payload {
        data,
        compression,
        size,
    })
}

/// The uncompressed kernel ELF inside `image`, checked for the PVH note.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>> {
    let p = payload(image)?;
    let tool = p.compression.tool();
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {tool}: install it (Debian: xz-utils, zstd, gzip)"))?;
    let mut stdin = child.stdin.take().context("decompressor stdin")?;
    let data = p.data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        bail!(
            "{tool} -dc failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let elf = out.stdout;
    if u32::try_from(elf.len()).ok() != Some(p.size) {
        bail!(
            "decompressed {} bytes, the trailer says {}",
            elf.len(),
            p.size
        );
    }
    if !has_pvh_note(&elf)? {
        bail!("the kernel ELF has no PVH entry note: QEMU cannot boot it with -kernel");
    }
    Ok(elf)
}

/// Whether an ELF64 has a `PT_NOTE` segment with the Xen note type 18
/// (`XEN_ELFNOTE_PHYS32_ENTRY`), the PVH entry point.
pub fn has_pvh_note(elf: &[u8]) -> Result<bool> {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        bail!("not a little-endian ELF64 file");
    }
    let bad = || anyhow::anyhow!("truncated or corrupt ELF header");
    let phoff = usize::try_from(le_u64(elf, 0x20).ok_or_else(bad)?)?;
    let phentsize = usize::from(le_u16(elf, 0x36).ok_or_else(bad)?);
    let phnum = usize::from(le_u16(elf, 0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        let ph = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(bad)?;
        if le_u32(elf, ph).ok_or_else(bad)? != PT_NOTE {
            continue;
        }
        let off = usize::try_from(le_u64(elf, ph + 8).ok_or_else(bad)?)?;
        let size = usize::try_from(le_u64(elf, ph + 32).ok_or_else(bad)?)?;
        let end = off.checked_add(size).ok_or_else(bad)?;
        let notes = elf.get(off..end).ok_or_else(bad)?;
        let mut at = 0usize;
        while at + 12 <= notes.len() {
            let namesz = usize::try_from(le_u32(notes, at).ok_or_else(bad)?)?;
            let descsz = usize::try_from(le_u32(notes, at + 4).ok_or_else(bad)?)?;
            let kind = le_u32(notes, at + 8).ok_or_else(bad)?;
            let name = notes.get(at + 12..at + 12 + namesz).ok_or_else(bad)?;
            if kind == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" {
                return Ok(true);
            }
            let next = namesz
                .checked_add(3)
                .map(|n| n & !3)
                .and_then(|n| n.checked_add(descsz.checked_add(3)? & !3))
                .and_then(|n| n.checked_add(at + 12))
                .ok_or_else(bad)?;
            at = next;
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage: 2 setup sectors after the boot sector, then the
    /// payload `data` + its size trailer at `payload_offset` 16.
    fn bzimage(data: &[u8], size: u32) -> Vec<u8> {
        let mut img = vec![0u8; 3 * 512 + 16];
        img[0x1f1] = 2;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        let len = u32::try_from(data.len() + 4).unwrap();
        img[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
        img.extend_from_slice(data);
        img.extend_from_slice(&size.to_le_bytes());
        img.extend_from_slice(b"junk after the payload");
        img
    }

    #[test]
    fn finds_the_payload_and_its_size_trailer() {
        let data = b"\xfd7zXZ\0rest-of-stream";
        let img = bzimage(data, 12345);
        let p = payload(&img).unwrap();
        assert_eq!(p.data, data);
        assert_eq!(p.compression, Compression::Xz);
        assert_eq!(p.size, 12345);
    }

    #[test]
    fn rejects_other_files_and_bad_offsets() {
        assert!(payload(b"\x7fELF").is_err());
        let mut img = bzimage(b"\x28\xb5\x2f\xfdzstd", 1);
        assert_eq!(payload(&img).unwrap().compression, Compression::Zstd);
        img[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            payload(&img)
                .unwrap_err()
                .to_string()
                .contains("past the end")
        );
        let img = bzimage(b"LZMA?", 1);
        assert!(
            payload(&img)
                .unwrap_err()
                .to_string()
                .contains("compression")
        );
    }

    /// A minimal ELF64 with one PT_NOTE segment holding `notes`.
    fn elf_with_notes(notes: &[u8]) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&4u32.to_le_bytes());
        elf[72..80].copy_from_slice(&120u64.to_le_bytes());
        elf[96..104].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        elf.extend_from_slice(notes);
        elf
    }

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend_from_slice(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    #[test]
    fn finds_the_pvh_note_after_other_notes() {
        let mut notes = note(b"GNU\0", 3, &[1; 20]);
        notes.extend(note(b"Xen\0", 6, b"linux\0"));
        assert!(!has_pvh_note(&elf_with_notes(&notes)).unwrap());
        notes.extend(note(b"Xen\0", 18, &0x100_0000u64.to_le_bytes()));
        assert!(has_pvh_note(&elf_with_notes(&notes)).unwrap());
        assert!(has_pvh_note(b"MZ").is_err());
    }

    #[test]
    fn the_kernel_package_comes_from_apt_cache_depends() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            kernel_dependency(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(kernel_dependency("linux-image-amd64\n"), None);
    }
}
