//! Building a process image from the VFS: what `execve` does before the
//! kernel touches page tables.
//!
//! [`prepare_exec`] reads the executable (and its `PT_INTERP` interpreter)
//! from the [`Vfs`], parses and plans both at the biases of an
//! [`AddressLayout`], and builds the initial stack. The result, a
//! [`ProcessImage`], lists every [`ImageSegment`] to materialise (copy
//! `file_bytes` from the named image at `file_offset` to `file_vaddr`,
//! zero the rest of `pages`), the page permissions, the entry point to
//! jump to (the interpreter's, when there is one) and the stack bytes.

use alloc::vec::Vec;
use core::ops::Range;

use crate::elf::{
    AuxvInfo, ElfFile, ElfKind, InitialStack, LoadPlan, Mapping, PAGE_SIZE, Perms,
    build_initial_stack,
};
use crate::error::{Errno, Error, Result};
use crate::fs::{InodeRef, InodeType, Vfs};
use crate::random::Csprng;
use crate::return_errno_with_message;

/// Where things go in the address space. The defaults match Linux without
/// address-space randomisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLayout {
    /// Bias for a position-independent executable.
    pub exe_bias: u64,
    /// Bias for the interpreter (`ld-linux-x86-64.so.2`).
    pub interp_bias: u64,
    /// Top of the initial stack (exclusive).
    pub stack_top: u64,
    /// Largest initial stack contents (argv, envp, auxv), in bytes.
    pub max_args_bytes: usize,
    /// Where the vDSO goes (`AT_SYSINFO_EHDR`), if the process has one.
    pub vdso: Option<u64>,
}

impl AddressLayout {
    /// The default layout, with `process`'s vDSO if it has one.
    pub fn for_process(process: &crate::process::Process) -> Self {
        Self {
            vdso: process.vdso.as_ref().map(|_| crate::vdso::BASE),
            ..Self::default()
        }
    }
}

impl Default for AddressLayout {
    fn default() -> Self {
        Self {
            exe_bias: 0x5555_5555_4000,
            interp_bias: 0x7fff_f7fc_3000 & !(PAGE_SIZE - 1),
            stack_top: 0x7fff_ffff_f000,
            max_args_bytes: 128 * 1024,
            vdso: None,
        }
    }
}

/// Which file a segment's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// [`ProcessImage::exe_image`]
    Executable,
    /// [`ProcessImage::interp_image`]
    Interpreter,
}

/// One segment to materialise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSegment {
    /// The file the bytes come from.
    pub source: ImageSource,
    /// Where and what to copy.
    pub mapping: Mapping,
}

/// A ready-to-map process image.
#[derive(Debug, Clone)]
pub struct ProcessImage {
    /// The executable's bytes: its first [`HEAD_BYTES`] (the headers) when
    /// its file is known ([`Self::exe_inode`]), else all of them.
    pub exe_image: Vec<u8>,
    /// The interpreter's bytes, for a dynamic executable, likewise.
    pub interp_image: Option<Vec<u8>>,
    /// The executable's file: its whole pages are mapped from it on first
    /// touch ([`crate::mm::load_image`]); `None` copies them at exec.
    pub exe_inode: Option<InodeRef>,
    /// The interpreter's file, likewise.
    pub interp_inode: Option<InodeRef>,
    /// Segments of both images.
    pub segments: Vec<ImageSegment>,
    /// Final page permissions (shared pages merged), both images.
    pub protections: Vec<(Range<u64>, Perms)>,
    /// Where to start executing: the interpreter's entry, else the
    /// executable's.
    pub entry: u64,
    /// Where `brk` starts (after the executable's last segment).
    pub brk_start: u64,
    /// The initial stack: copy `bytes` to `rsp`, map enough pages below.
    pub stack: InitialStack,
    /// Whether `PT_GNU_STACK` asked for an executable stack.
    pub executable_stack: bool,
    /// The path the executable was run as (names its areas in
    /// `/proc/self/maps`).
    pub exe_path: Vec<u8>,
    /// The interpreter's path from `PT_INTERP`.
    pub interp_path: Option<Vec<u8>>,
    /// The arguments the image starts with, each followed by NUL
    /// (`/proc/<pid>/cmdline`).
    pub cmdline: Vec<u8>,
    /// Where the vDSO's image goes ([`crate::vdso::BASE`]), if it is
    /// mapped (the process has one and no segment is in its way).
    pub vdso: Option<u64>,
}

/// The whole contents of a file (`EFBIG` if its size does not fit the
/// address space, `ENOMEM` if the buffer cannot be had).
pub fn read_whole(inode: &InodeRef) -> Result<Vec<u8>> {
    let size = usize::try_from(inode.metadata().size).map_err(|_| Errno::EFBIG)?;
    read_head(inode, size)
}

/// How much of an executable is read at `execve` to parse it: its headers
/// and `PT_INTERP` path lie there in every usual binary (else the whole
/// file is read); the segments are read from the file as they are mapped.
pub const HEAD_BYTES: usize = 16 * 1024;

/// An executable's file, its size, and its first bytes (or all of them).
struct Executable {
    inode: InodeRef,
    size: u64,
    bytes: Vec<u8>,
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn read_head(inode: &InodeRef, n: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
    bytes.resize(n, 0);
    let got = inode.read_at(0, &mut bytes)?;
    bytes.truncate(got);
    Ok(bytes)
}

/// Opens an executable file: must be a regular file with an execute bit.
fn open_executable(vfs: &Vfs, cwd: &InodeRef, path: &[u8]) -> Result<Executable> {
    open_inode(vfs.resolve(cwd, path, true)?)
}

/// [`open_executable`] of a file already resolved.
fn open_inode(inode: InodeRef) -> Result<Executable> {
    if inode.file_type() != InodeType::Regular {
        return_errno_with_message!(Errno::EACCES, "not a regular file");
    }
    if inode.metadata().mode & 0o111 == 0 {
        return_errno_with_message!(Errno::EACCES, "no execute permission");
    }
    let size = inode.metadata().size;
    let mut bytes = read_head(&inode, HEAD_BYTES)?;
    // Headers past the head (or a malformed file, whose error the whole
    // file then reports): read it all.
    if (bytes.len() as u64) < size
        && !bytes.starts_with(b"#!")
        && ElfFile::parse_head(&bytes, size).is_err()
    {
        bytes = read_whole(&inode)?;
    }
    Ok(Executable { inode, size, bytes })
}

/// Reads and plans `path` (resolved from `cwd`) and its interpreter, and
/// builds the stack for `argv`/`envp`. `AT_RANDOM` bytes come from `rng`.
///
/// Errors: `ENOENT` (missing file or interpreter — the message says
/// which), `EACCES`, `ENOEXEC` with the ELF problem named, `E2BIG`,
/// `ELOOP` past four nested `#!` interpreters.
///
/// A `#!` script runs its interpreter as Linux does: `argv` becomes the
/// interpreter, its one optional argument, `path`, then `argv[1..]`.
pub fn prepare_exec(
    vfs: &Vfs,
    cwd: &InodeRef,
    path: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    rng: &dyn Csprng,
    layout: &AddressLayout,
) -> Result<ProcessImage> {
    prepare_nested(vfs, cwd, path, None, argv, envp, rng, layout, 0)
}

/// [`prepare_exec`] of a file already resolved (`execveat`): `inode` is
/// the program, `path` the name it runs under (`AT_EXECFN`, a script's
/// argument to its interpreter, `/proc/<pid>/exe`).
#[allow(clippy::too_many_arguments, reason = "prepare_exec's, plus the inode")]
pub fn prepare_exec_inode(
    vfs: &Vfs,
    cwd: &InodeRef,
    inode: InodeRef,
    path: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    rng: &dyn Csprng,
    layout: &AddressLayout,
) -> Result<ProcessImage> {
    prepare_nested(vfs, cwd, path, Some(inode), argv, envp, rng, layout, 0)
}

/// Linux's `BINPRM_BUF_SIZE`: how much of a `#!` line is read.
const SHEBANG_BYTES: usize = 256;
/// Nested `#!` interpreters allowed (Linux's `BINPRM_MAX_RECURSION`).
const MAX_SCRIPT_DEPTH: u32 = 4;

/// The interpreter and its optional argument from a `#!` line (`ENOEXEC`
/// for a line that names none, or whose interpreter is cut off).
pub fn parse_shebang(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>)> {
    let head = &bytes[..bytes.len().min(SHEBANG_BYTES)];
    let rest = head.strip_prefix(b"#!").ok_or(Errno::ENOEXEC)?;
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => &rest[..end],
        None if bytes.len() > SHEBANG_BYTES => {
            return_errno_with_message!(Errno::ENOEXEC, "#! line too long")
        }
        None => rest,
    };
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let trimmed = line.trim_ascii();
    let interp_end = trimmed.iter().position(is_blank).unwrap_or(trimmed.len());
    let (interp, arg) = trimmed.split_at(interp_end);
    if interp.is_empty() {
        return_errno_with_message!(Errno::ENOEXEC, "#! names no interpreter");
    }
    let arg = arg.trim_ascii();
    Ok((interp, (!arg.is_empty()).then_some(arg)))
}

#[allow(
    clippy::too_many_arguments,
    reason = "prepare_exec's, plus the inode and the depth"
)]
fn prepare_nested(
    vfs: &Vfs,
    cwd: &InodeRef,
    path: &[u8],
    resolved: Option<InodeRef>,
    argv: &[&[u8]],
    envp: &[&[u8]],
    rng: &dyn Csprng,
    layout: &AddressLayout,
    depth: u32,
) -> Result<ProcessImage> {
    let exe = match resolved {
        Some(inode) => open_inode(inode)?,
        None => open_executable(vfs, cwd, path)?,
    };
    let exe_image = exe.bytes;
    if exe_image.starts_with(b"#!") {
        if depth >= MAX_SCRIPT_DEPTH {
            return_errno_with_message!(Errno::ELOOP, "too many nested #! interpreters");
        }
        let (interp, arg) = parse_shebang(&exe_image)?;
        let mut args: Vec<&[u8]> = Vec::with_capacity(argv.len() + 2);
        args.push(interp);
        args.extend(arg);
        args.push(path);
        args.extend(argv.iter().skip(1));
        return prepare_nested(vfs, cwd, interp, None, &args, envp, rng, layout, depth + 1);
    }
    let exe_elf = ElfFile::parse_head(&exe_image, exe.size)?;
    let interp_path = exe_elf.interpreter.map(<[u8]>::to_vec);
    let interp = match &interp_path {
        Some(interp_path) => Some(open_executable(vfs, cwd, interp_path).map_err(|e| {
            if e.errno() == Errno::ENOENT {
                Error::with_message(Errno::ENOENT, "ELF interpreter not found")
            } else {
                e
            }
        })?),
        None => None,
    };
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let interp_elf = interp
        .as_ref()
        .map(|i| ElfFile::parse_head(&i.bytes, i.size))
        .transpose()?;
    let planned = plan_images(
        &exe_elf,
        interp_elf.as_ref(),
        path,
        argv,
        envp,
        random,
        layout,
    )?;
    let (interp_inode, interp_image) = interp.map(|i| (i.inode, i.bytes)).unzip();
    Ok(ProcessImage {
        exe_image,
        interp_image,
        exe_inode: Some(exe.inode),
        interp_inode,
        exe_path: path.to_vec(),
        interp_path,
        cmdline: argv
            .iter()
            .flat_map(|a| a.iter().copied().chain([0]))
            .collect(),
        ..planned
    })
}

/// Plans both images from their parsed heads; the returned image fields
/// are empty.
fn plan_images(
    exe: &ElfFile<'_>,
    interp: Option<&ElfFile<'_>>,
    path: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    random: [u8; 16],
    layout: &AddressLayout,
) -> Result<ProcessImage> {
    let exe_bias = match exe.kind {
        ElfKind::Executable => 0,
        ElfKind::PositionIndependent => layout.exe_bias,
    };
    let exe_plan = LoadPlan::new(exe, exe_bias)?;
    if exe_plan.phdr_addr.is_none() {
        return_errno_with_message!(
            Errno::ENOEXEC,
            "program headers are not in a loaded segment"
        );
    }
    if interp.is_some_and(|i| i.interpreter.is_some()) {
        return_errno_with_message!(Errno::ELIBBAD, "the interpreter has an interpreter");
    }
    let interp_plan = interp
        .map(|i| LoadPlan::new(i, layout.interp_bias))
        .transpose()?;
    // A program whose segments sit where the vDSO goes runs without one.
    let vdso = layout.vdso.filter(|&base| {
        let (start, end) = (base - PAGE_SIZE, base + crate::vdso::IMAGE_BYTES);
        let plans = core::iter::once(&exe_plan).chain(interp_plan.as_ref());
        !plans
            .flat_map(|p| p.mappings.iter())
            .any(|m| m.pages.start < end && start < m.pages.end)
    });
    let aux = AuxvInfo {
        vdso_base: vdso,
        ..AuxvInfo::new(&exe_plan, interp_plan.as_ref(), path, random)
    };
    let stack = build_initial_stack(layout.stack_top, argv, envp, &aux, layout.max_args_bytes)?;

    let mut segments = Vec::new();
    let mut protections = exe_plan.page_protections();
    for m in &exe_plan.mappings {
        segments.push(ImageSegment {
            source: ImageSource::Executable,
            mapping: m.clone(),
        });
    }
    if let Some(plan) = &interp_plan {
        let overlaps = plan.mappings.iter().any(|i| {
            exe_plan
                .mappings
                .iter()
                .any(|e| i.pages.start < e.pages.end && e.pages.start < i.pages.end)
        });
        if overlaps
            || plan
                .mappings
                .last()
                .is_some_and(|m| m.pages.end > stack.rsp)
        {
            return_errno_with_message!(
                Errno::ENOMEM,
                "interpreter overlaps the executable or stack"
            );
        }
        protections.extend(plan.page_protections());
        for m in &plan.mappings {
            segments.push(ImageSegment {
                source: ImageSource::Interpreter,
                mapping: m.clone(),
            });
        }
    }
    Ok(ProcessImage {
        exe_image: Vec::new(),
        interp_image: None,
        exe_inode: None,
        interp_inode: None,
        entry: interp_plan.as_ref().map_or(exe_plan.entry, |p| p.entry),
        brk_start: exe_plan.brk_start,
        executable_stack: exe.executable_stack,
        exe_path: Vec::new(),
        interp_path: None,
        cmdline: Vec::new(),
        segments,
        protections,
        stack,
        vdso,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::CpioWriter;
    use crate::elf::stack::at;
    use crate::fs::DeviceRegistry;
    use crate::platform::mock::MockPlatform;
    use alloc::sync::Arc;

    fn vfs_with(files: &[(&str, &str, u32)]) -> (Arc<MockPlatform>, Vfs) {
        let p = Arc::new(MockPlatform::new());
        let vfs = Vfs::new(p.clone(), DeviceRegistry::standard(p.clone(), p.clone()));
        let mut w = CpioWriter::new();
        for (host, guest, perm) in files {
            w.add_file(guest.as_bytes(), *perm, &std::fs::read(host).unwrap())
                .unwrap();
        }
        vfs.unpack_cpio(&w.finish()).unwrap();
        (p, vfs)
    }

    #[test]
    fn dynamic_executable_with_interpreter() {
        let (p, vfs) = vfs_with(&[
            ("/usr/bin/true", "usr/bin/true", 0o755),
            (
                "/lib64/ld-linux-x86-64.so.2",
                "lib64/ld-linux-x86-64.so.2",
                0o755,
            ),
        ]);
        let root = vfs.root().clone();
        let layout = AddressLayout::default();
        let img = prepare_exec(
            &vfs,
            &root,
            b"/usr/bin/true",
            &[b"true"],
            &[b"A=1"],
            &*p,
            &layout,
        )
        .unwrap();
        let interp_size = img.interp_inode.as_ref().unwrap().metadata().size;
        let interp =
            ElfFile::parse_head(img.interp_image.as_deref().unwrap(), interp_size).unwrap();
        assert_eq!(img.entry, layout.interp_bias + interp.entry);
        let exe_size = img.exe_inode.as_ref().unwrap().metadata().size;
        let exe = ElfFile::parse_head(&img.exe_image, exe_size).unwrap();
        let get = |k| img.stack.auxv.iter().find(|(key, _)| *key == k).unwrap().1;
        assert_eq!(get(at::AT_ENTRY), layout.exe_bias + exe.entry);
        assert_eq!(get(at::AT_BASE), layout.interp_bias);
        assert_eq!(
            img.segments.len(),
            exe.segments.len() + interp.segments.len()
        );
        assert!(
            img.segments
                .iter()
                .any(|s| s.source == ImageSource::Interpreter)
        );
        assert!(
            img.protections
                .windows(2)
                .all(|w| w[0].0.end <= w[1].0.start)
        );
        assert!(img.brk_start > layout.exe_bias);
        assert!(!img.executable_stack);
        // Every segment's file bytes are inside its file; only the heads
        // of the files were read.
        for s in &img.segments {
            let inode = match s.source {
                ImageSource::Executable => &img.exe_inode,
                ImageSource::Interpreter => &img.interp_inode,
            };
            let len = inode.as_ref().unwrap().metadata().size;
            assert!(s.mapping.file_offset + s.mapping.file_bytes <= len);
        }
        assert!(img.exe_image.len() <= HEAD_BYTES);
        assert!(img.interp_image.as_ref().unwrap().len() <= HEAD_BYTES);
    }

    #[test]
    fn shebang_lines_parse_as_linux_reads_them() {
        assert_eq!(
            parse_shebang(b"#!/bin/sh\n").unwrap(),
            (&b"/bin/sh"[..], None)
        );
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 -u \nx").unwrap(),
            (&b"/usr/bin/env"[..], Some(&b"python3 -u"[..]))
        );
        assert_eq!(parse_shebang(b"#!/bin/true").unwrap().0, b"/bin/true");
        assert_eq!(parse_shebang(b"#!\n").unwrap_err().errno(), Errno::ENOEXEC);
        let long = [b"#!/".as_slice(), &[b'x'; 300]].concat();
        assert_eq!(parse_shebang(&long).unwrap_err().errno(), Errno::ENOEXEC);
    }

    #[test]
    fn a_script_runs_its_interpreter_with_the_script_as_argument() {
        let (p, vfs) = vfs_with(&[("/bin/busybox", "bin/busybox", 0o755)]);
        let root = vfs.root().clone();
        let f = vfs.create_file(&root, b"/s.sh", 0o755).unwrap();
        f.write_at(0, b"#!/bin/busybox sh\necho hi\n", 0).unwrap();
        let layout = AddressLayout::default();
        let img =
            prepare_exec(&vfs, &root, b"/s.sh", &[b"s.sh", b"one"], &[], &*p, &layout).unwrap();
        assert_eq!(img.exe_path, b"/bin/busybox");
        // Read argv back from the stack image: pointers from `argv_addr`,
        // NUL-terminated strings, all relative to `rsp`.
        let st = &img.stack;
        let at = |addr: u64| (addr - st.rsp) as usize;
        let mut argv = Vec::new();
        for i in 0.. {
            let slot = at(st.argv_addr) + 8 * i;
            let ptr = u64::from_le_bytes(st.bytes[slot..slot + 8].try_into().unwrap());
            if ptr == 0 {
                break;
            }
            let s = &st.bytes[at(ptr)..];
            argv.push(s[..s.iter().position(|&b| b == 0).unwrap()].to_vec());
        }
        assert_eq!(
            argv,
            [&b"/bin/busybox"[..], b"sh", b"/s.sh", b"one"].map(<[u8]>::to_vec)
        );
    }

    #[test]
    fn missing_interpreter_and_bad_files() {
        let (p, vfs) = vfs_with(&[
            ("/usr/bin/true", "usr/bin/true", 0o755),
            ("/usr/bin/true", "usr/bin/noexec", 0o644),
        ]);
        let root = vfs.root().clone();
        let layout = AddressLayout::default();
        let run =
            |path: &[u8]| prepare_exec(&vfs, &root, path, &[b"x"], &[], &*p, &layout).unwrap_err();
        let e = run(b"/usr/bin/true");
        assert_eq!(
            (e.errno(), e.message()),
            (Errno::ENOENT, "ELF interpreter not found")
        );
        assert_eq!(run(b"/usr/bin/noexec").errno(), Errno::EACCES);
        assert_eq!(run(b"/usr/bin/missing").errno(), Errno::ENOENT);
        assert_eq!(run(b"/usr/bin").errno(), Errno::EACCES);
        let f = vfs.create_file(&root, b"/script", 0o755).unwrap();
        f.write_at(0, b"#!/bin/sh\necho hi\n", 0).unwrap();
        assert_eq!(run(b"/script").errno(), Errno::ENOENT, "no /bin/sh here");
        let f = vfs.create_file(&root, b"/empty-shebang", 0o755).unwrap();
        f.write_at(0, b"#!  \necho hi\n", 0).unwrap();
        assert_eq!(run(b"/empty-shebang").errno(), Errno::ENOEXEC);
        let f = vfs.create_file(&root, b"/loop", 0o755).unwrap();
        f.write_at(0, b"#!/loop\n", 0).unwrap();
        assert_eq!(run(b"/loop").errno(), Errno::ELOOP);
        let f = vfs.create_file(&root, b"/arm", 0o755).unwrap();
        let mut arm = std::fs::read("/usr/bin/true").unwrap();
        arm[18] = 183;
        f.write_at(0, &arm, 0).unwrap();
        let e = run(b"/arm");
        assert_eq!(
            (e.errno(), e.message()),
            (Errno::ENOEXEC, "ELF for aarch64, expected x86-64")
        );
        let f = vfs.create_file(&root, b"/short", 0o755).unwrap();
        arm[18] = 62;
        f.write_at(0, &arm[..100], 0).unwrap();
        assert_eq!(run(b"/short").message(), "truncated ELF");
    }

    #[test]
    fn static_executable_has_no_interpreter() {
        if !std::path::Path::new("/bin/busybox").exists() {
            std::eprintln!("skipping: /bin/busybox missing (apt-get install busybox-static)");
            return;
        }
        let (p, vfs) = vfs_with(&[("/bin/busybox", "bin/busybox", 0o755)]);
        let root = vfs.root().clone();
        let img = prepare_exec(
            &vfs,
            &root,
            b"/bin/busybox",
            &[b"busybox", b"echo"],
            &[],
            &*p,
            &AddressLayout::default(),
        )
        .unwrap();
        assert!(img.interp_image.is_none());
        let exe_size = img.exe_inode.as_ref().unwrap().metadata().size;
        let exe = ElfFile::parse_head(&img.exe_image, exe_size).unwrap();
        assert_eq!(img.entry, exe.entry);
        assert!(
            img.segments
                .iter()
                .all(|s| s.source == ImageSource::Executable)
        );
        let get = |k| img.stack.auxv.iter().find(|(key, _)| *key == k).unwrap().1;
        assert_eq!(get(at::AT_BASE), 0);
    }
}
