//! Parser and planner tests: real binaries from this machine and crafted
//! bad inputs.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::header::{PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD};
use super::test_util::ElfBuilder;
use super::*;
use crate::error::{Errno, Error};

fn read(path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            // Only busybox is optional (the busybox-static package).
            assert!(path.contains("busybox"), "{path}: {e}");
            std::eprintln!("skipping {path}: {e} (apt-get install busybox-static)");
            None
        }
    }
}

/// Checks the invariants every real executable satisfies and returns its plan.
fn check_real<'a>(elf: &ElfFile<'a>, bias: u64) -> LoadPlan<'a> {
    let plan = LoadPlan::new(elf, bias).unwrap();
    assert_eq!(plan.mappings.len(), elf.segments.len());
    let exec: Vec<_> = plan.mappings.iter().filter(|m| m.perms.execute).collect();
    assert_eq!(exec.len(), 1, "one executable segment");
    assert!(
        exec[0].pages.contains(&plan.entry),
        "entry in the text segment"
    );
    assert!(plan.mappings.iter().all(|m| m.perms.read));
    assert!(
        plan.mappings
            .iter()
            .any(|m| m.perms.write && m.mem_end > m.file_vaddr + m.file_bytes)
    );
    for m in &plan.mappings {
        assert_eq!(m.pages.start % PAGE_SIZE, 0);
        assert_eq!(m.pages.end % PAGE_SIZE, 0);
        assert_eq!(m.file_vaddr % PAGE_SIZE, m.file_offset % PAGE_SIZE);
        assert!(m.pages.start <= m.file_vaddr && m.mem_end <= m.pages.end);
    }
    let protections = plan.page_protections();
    assert!(protections.windows(2).all(|w| w[0].0.end <= w[1].0.start));
    assert!(!elf.executable_stack);
    plan
}

#[test]
fn usr_bin_true_is_dynamic_pie() {
    let image = read("/usr/bin/true").unwrap();
    let elf = ElfFile::parse(&image).unwrap();
    assert_eq!(elf.kind, ElfKind::PositionIndependent);
    assert_eq!(elf.interpreter, Some(&b"/lib64/ld-linux-x86-64.so.2"[..]));
    assert_eq!(elf.segments[0].offset, 0);
    let plan = check_real(&elf, 0x5555_5555_4000);
    // PT_PHDR gives the table address; it is where e_phoff maps to.
    assert_eq!(elf.phdr_vaddr, elf.file_offset_to_vaddr(elf.phoff));
    assert_eq!(
        plan.phdr_addr,
        Some(0x5555_5555_4000 + elf.phdr_vaddr.unwrap())
    );
    assert_eq!(plan.entry, 0x5555_5555_4000 + elf.entry);
}

#[test]
fn bin_ls_is_dynamic_pie() {
    let image = read("/bin/ls").unwrap();
    let elf = ElfFile::parse(&image).unwrap();
    assert_eq!(elf.kind, ElfKind::PositionIndependent);
    assert!(elf.interpreter.is_some());
    assert!(elf.dynamic_vaddr.is_some());
    check_real(&elf, 0x5555_5555_4000);
}

#[test]
fn ld_so_is_loadable_interpreter() {
    let image = read("/lib64/ld-linux-x86-64.so.2").unwrap();
    let elf = ElfFile::parse(&image).unwrap();
    assert_eq!(elf.kind, ElfKind::PositionIndependent);
    assert_eq!(elf.interpreter, None);
    let plan = check_real(&elf, 0x7f00_0000_0000);
    assert!(plan.brk_start > plan.entry);
    assert_eq!(elf.load_span().start, 0);
}

#[test]
fn static_busybox() {
    let Some(image) = read("/bin/busybox") else {
        return;
    };
    let elf = ElfFile::parse(&image).unwrap();
    assert_eq!(elf.kind, ElfKind::Executable);
    assert_eq!(elf.interpreter, None);
    assert!(elf.tls.is_some());
    // No PT_PHDR: the table is found through the segment mapping e_phoff.
    let phdr = elf.phdr_vaddr.unwrap();
    assert_eq!(phdr, elf.segments[0].vaddr + elf.phoff);
    assert!(LoadPlan::new(&elf, 0x1000).is_err());
    let plan = check_real(&elf, 0);
    assert_eq!(
        plan.mappings[0].pages.start,
        elf.segments[0].vaddr & !(PAGE_SIZE - 1)
    );
}

#[test]
fn crafted_minimal_images() {
    let image = ElfBuilder::exec()
        .phdr(0x400040)
        .load(0, 0x400000, 0x200, 0x200, PF_R | PF_X)
        .tls(0x100, 0x400100, 0x10, 0x40)
        .build();
    let elf = ElfFile::parse(&image).unwrap();
    assert_eq!(elf.phdr_vaddr, Some(0x400040));
    assert_eq!(elf.tls.unwrap().mem_bytes, 0x40);

    let image = ElfBuilder::pie()
        .load(0, 0, 0x300, 0x300, PF_R | PF_X)
        .interp(0x200, b"/lib/ld.so\0")
        .build();
    assert_eq!(
        ElfFile::parse(&image).unwrap().interpreter,
        Some(&b"/lib/ld.so"[..])
    );
}

fn err(image: &[u8]) -> ElfError {
    ElfFile::parse(image).unwrap_err()
}

#[test]
fn truncations() {
    let image = read("/usr/bin/true").unwrap();
    assert_eq!(err(&[]), ElfError::NotElf);
    assert_eq!(err(b"#!/bin/sh\n"), ElfError::NotElf);
    assert_eq!(
        err(&image[..40]),
        ElfError::Truncated { what: "ELF header" }
    );
    assert_eq!(
        err(&image[..100]),
        ElfError::Truncated {
            what: "program header table"
        }
    );
    assert!(matches!(
        err(&image[..image.len() / 2]),
        ElfError::SegmentBeyondFile { .. }
    ));
    assert_eq!(
        err(&image[..100]).to_string(),
        "truncated ELF: program header table extends past end of file"
    );
}

#[test]
fn wrong_class_machine_type() {
    let good = ElfBuilder::exec().load(0, 0x400000, 0x100, 0x100, PF_R | PF_X);
    let mut b = good.clone();
    b.class = 1;
    assert_eq!(err(&b.build()).to_string(), "ELF32 file, expected ELF64");
    let mut b = good.clone();
    b.machine = 183;
    let e = err(&b.build());
    assert_eq!(e.to_string(), "ELF for aarch64, expected x86-64");
    let as_error: Error = e.into();
    assert_eq!(as_error.errno(), Errno::ENOEXEC);
    assert_eq!(as_error.message(), "ELF for aarch64, expected x86-64");
    let mut b = good.clone();
    b.elf_type = 1;
    assert_eq!(
        err(&b.build()).to_string(),
        "ELF relocatable object, not an executable"
    );
    let mut img = good.build();
    img[5] = 2;
    assert_eq!(err(&img), ElfError::WrongEndianness(2));
    let mut img = good.build();
    img[54] = 32;
    assert_eq!(err(&img), ElfError::BadPhentsize(32));
    let mut img = good.build();
    img[56] = 0;
    assert_eq!(err(&img), ElfError::BadPhnum(0));
}

#[test]
fn bad_segments() {
    let b = ElfBuilder::exec();
    let e = err(&b.clone().load(0, 0x400000, 0x200, 0x100, PF_R).build());
    assert_eq!(e, ElfError::FileszExceedsMemsz { index: 0 });
    assert_eq!(e.to_string(), "program header 0: p_filesz > p_memsz");
    let overlapping = b
        .clone()
        .load(0, 0x400000, 0x2000, 0x2000, PF_R)
        .load(0x1000, 0x401000, 0x100, 0x100, PF_R | PF_W)
        .build();
    assert_eq!(
        err(&overlapping),
        ElfError::OverlappingSegments { index: 1 }
    );
    let descending = b
        .clone()
        .load(0x1000, 0x501000, 0x100, 0x100, PF_R)
        .load(0, 0x400000, 0x100, 0x100, PF_R)
        .build();
    assert_eq!(err(&descending), ElfError::OverlappingSegments { index: 1 });
    let unaligned = b.clone().load(0x1000, 0x401001, 0x100, 0x100, PF_R).build();
    assert_eq!(err(&unaligned), ElfError::UnalignedSegment { index: 0 });
    let overflow = b.clone().load(0, !0xfff, 0x100, 0x2000, PF_R).build();
    assert_eq!(err(&overflow), ElfError::AddressOverflow { index: 0 });
    let kernel_half = b
        .clone()
        .load(0, 0xffff_8000_0000_0000, 0x100, 0x100, PF_R)
        .build();
    assert_eq!(err(&kernel_half), ElfError::AddressOverflow { index: 0 });
    let huge_offset = b
        .clone()
        .raw_phdr([
            PT_LOAD.into(),
            4,
            u64::MAX - 5,
            0x400000 + (u64::MAX - 5) % 4096,
            10,
            10,
            0x1000,
        ])
        .build();
    assert_eq!(err(&huge_offset), ElfError::SegmentBeyondFile { index: 0 });
    assert_eq!(
        err(&b.clone().tls(0, 0, 0, 0).build()),
        ElfError::NoLoadSegment
    );
}

#[test]
fn bad_interpreter() {
    let b = ElfBuilder::pie().load(0, 0, 0x300, 0x300, PF_R | PF_X);
    let e = err(&b.clone().interp(0x200, b"/lib/ld.so").build());
    assert_eq!(e, ElfError::BadInterpreterPath);
    assert_eq!(
        err(&b.clone().interp(0x200, b"\0").build()),
        ElfError::BadInterpreterPath
    );
    assert_eq!(
        err(&b.clone().interp(0x200, b"/a\0b\0").build()),
        ElfError::BadInterpreterPath
    );
    let two = b
        .clone()
        .interp(0x200, b"/a\0")
        .interp(0x210, b"/b\0")
        .build();
    assert_eq!(err(&two), ElfError::MultipleInterpreters);
    let beyond = b
        .clone()
        .raw_phdr([PT_INTERP.into(), 4, 0x10_0000, 0, 8, 8, 1])
        .build();
    assert_eq!(
        err(&beyond),
        ElfError::Truncated {
            what: "PT_INTERP path"
        }
    );
}

#[test]
fn process_image_end_to_end() {
    // Plan /usr/bin/true and its interpreter, then build its stack.
    let exe_image = read("/usr/bin/true").unwrap();
    let ld_image = read("/lib64/ld-linux-x86-64.so.2").unwrap();
    let exe = ElfFile::parse(&exe_image).unwrap();
    let ld = ElfFile::parse(&ld_image).unwrap();
    let exe_plan = LoadPlan::new(&exe, 0x5555_5555_4000).unwrap();
    let ld_plan = LoadPlan::new(&ld, 0x7fff_f7fc_0000).unwrap();
    let aux = AuxvInfo::new(&exe_plan, Some(&ld_plan), b"/usr/bin/true", [7; 16]);
    let stack = build_initial_stack(
        0x7fff_ffff_f000,
        &[b"/usr/bin/true"],
        &[b"HOME=/"],
        &aux,
        1 << 17,
    )
    .unwrap();
    let get = |key| stack.auxv.iter().find(|(k, _)| *k == key).unwrap().1;
    assert_eq!(get(stack::at::AT_BASE), 0x7fff_f7fc_0000);
    assert_eq!(get(stack::at::AT_ENTRY), exe_plan.entry);
    assert_eq!(get(stack::at::AT_PHDR), exe_plan.phdr_addr.unwrap());
    assert_eq!(get(stack::at::AT_PHNUM), u64::from(exe.phnum));
    assert_eq!(stack.rsp % 16, 0);
}
