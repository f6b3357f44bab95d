//! Materialising a [`ProcessImage`] in the user half of the address space.
//!
//! Every page of every segment is reserved first (so two segments sharing a
//! page do not wipe each other), then the file bytes are copied in, then
//! the final page permissions are applied; the stack is an 8 MiB lazy
//! region below `stack_top` holding the initial argv/envp/auxv.

use libos::elf::Perms;
use libos::error::{Errno, Error, Result};
use libos::exec::{AddressLayout, ImageSource, ProcessImage};
use libos::process::Process;

use crate::mm::PAGE_BYTES;
use crate::mm::user::{self, Prot, UserMapError};

/// Size of the main thread's stack region.
pub const STACK_BYTES: u64 = 8 << 20;

fn prot(p: Perms) -> Prot {
    Prot {
        read: p.read,
        write: p.write,
        exec: p.execute,
    }
}

fn map_err(e: UserMapError) -> Error {
    match e {
        UserMapError::OutOfMemory => {
            Error::with_message(Errno::ENOMEM, "out of memory loading the program")
        }
        UserMapError::NotMapped(_) | UserMapError::BadRange => {
            Error::with_message(Errno::ENOEXEC, "a segment lies outside user space")
        }
    }
}

/// Maps `image`; returns the initial stack pointer.
pub fn load(_process: &Process, image: &ProcessImage) -> Result<u64> {
    let rw = Prot {
        read: true,
        write: true,
        exec: false,
    };
    for seg in &image.segments {
        let pages = &seg.mapping.pages;
        user::map_lazy(pages.start, pages.end - pages.start, rw).map_err(map_err)?;
    }
    for seg in &image.segments {
        let m = &seg.mapping;
        let bytes = match seg.source {
            ImageSource::Executable => &image.exe_image[..],
            ImageSource::Interpreter => image
                .interp_image
                .as_deref()
                .ok_or(Error::with_message(Errno::ENOEXEC, "no interpreter image"))?,
        };
        let start = usize::try_from(m.file_offset).map_err(|_| Errno::ENOEXEC)?;
        let len = usize::try_from(m.file_bytes).map_err(|_| Errno::ENOEXEC)?;
        let data = bytes
            .get(start..start.saturating_add(len))
            .ok_or(Error::with_message(
                Errno::ENOEXEC,
                "segment beyond the end of the file",
            ))?;
        user::fill(m.file_vaddr, data).map_err(map_err)?;
    }
    for (range, perms) in &image.protections {
        user::protect(range.start, range.end - range.start, prot(*perms)).map_err(map_err)?;
    }
    let top = AddressLayout::default().stack_top;
    let stack = Prot {
        read: true,
        write: true,
        exec: image.executable_stack,
    };
    user::map_lazy(top - STACK_BYTES, STACK_BYTES, stack).map_err(map_err)?;
    user::fill(image.stack.rsp, &image.stack.bytes).map_err(map_err)?;
    debug_assert!(image.stack.rsp.is_multiple_of(16) && top.is_multiple_of(PAGE_BYTES));
    Ok(image.stack.rsp)
}
