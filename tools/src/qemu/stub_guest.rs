//! A stand-in guest for the runner's own tests: a tiny PVH ELF, generated
//! here from its machine code, that writes fixed bytes to I/O ports (COM1
//! at 0x3f8, COM2 at 0x2f8) and then exits through `isa-debug-exit` or
//! halts. It lets the host side of a protocol be tested against QEMU without
//! the real kernel (the `tools` unit tests and `tools/tests/run_cli.rs` use
//! it; nothing else should).
//!
//! The code runs in the 32-bit protected mode PVH enters in (flat segments,
//! paging off). Each write sends its bytes one at a time, waiting for the
//! UART's "transmit holding register empty" bit (LSR bit 5) before each, as
//! a real driver does: QEMU's 16550 clears that bit while its chardev is
//! busy, and a byte written then replaces the one still waiting (a stub
//! that did not poll lost most of a 100 kB burst).

/// Where the single `PT_LOAD` segment (the whole file) is loaded.
const LOAD_ADDR: u32 = 0x0010_0000;
/// ELF header plus two program headers.
const HEADERS_LEN: usize = 64 + 2 * 56;
/// The PVH note: namesz, descsz, type, "Xen\0", a 32-bit entry address.
const NOTE_LEN: usize = 12 + 4 + 4;
/// Bytes of code per write (see [`build`]).
const WRITE_CODE_LEN: usize = 5 + 5 + 17;

/// How the stub guest ends after its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Writes this value to the debug-exit port (QEMU exits `(v << 1) | 1`).
    DebugExit(u8),
    /// `cli; hlt` forever.
    Hang,
}

/// Builds the ELF: the writes `(port, bytes)` in order, then `end`.
pub fn build(writes: &[(u16, &[u8])], end: End) -> Vec<u8> {
    let code_addr = LOAD_ADDR + (HEADERS_LEN + NOTE_LEN) as u32;
    // The code is assembled first with the data right after it.
    let code_len = 1
        + writes.len() * WRITE_CODE_LEN
        + match end {
            End::DebugExit(_) => 7 + 4,
            End::Hang => 4,
        };
    let mut code = vec![0xfc]; // cld: lodsb walks forwards
    let mut data = Vec::new();
    for (port, bytes) in writes {
        assert!(!bytes.is_empty(), "`loop` needs a count of at least 1");
        let msg_addr = code_addr + (code_len + data.len()) as u32;
        code.push(0xbe); // mov esi, msg
        code.extend_from_slice(&msg_addr.to_le_bytes());
        code.push(0xb9); // mov ecx, len
        code.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        code.extend_from_slice(&[0x66, 0xba]); // next: mov dx, port + 5 (LSR)
        code.extend_from_slice(&(port + 5).to_le_bytes());
        code.push(0xec); // wait: in al, dx
        code.extend_from_slice(&[0xa8, 0x20]); // test al, THRE
        code.extend_from_slice(&[0x74, 0xfb]); // jz wait
        code.extend_from_slice(&[0x66, 0xba]); // mov dx, port (THR)
        code.extend_from_slice(&port.to_le_bytes());
        code.push(0xac); // lodsb
        code.push(0xee); // out dx, al
        code.extend_from_slice(&[0xe2, 0xef]); // loop next
        data.extend_from_slice(bytes);
    }
    if let End::DebugExit(v) = end {
        code.extend_from_slice(&[0x66, 0xba, 0xf4, 0x00]); // mov dx, 0xf4
        code.extend_from_slice(&[0xb0, v, 0xee]); // mov al, v; out dx, al
    }
    code.extend_from_slice(&[0xfa, 0xf4, 0xeb, 0xfd]); // cli; hlt; jmp hlt
    assert_eq!(code.len(), code_len, "stub guest code length");

    let file_len = HEADERS_LEN + NOTE_LEN + code.len() + data.len();
    let mut elf = Vec::with_capacity(file_len);
    // ELF header: ELF64, little-endian, version 1, ET_EXEC, EM_X86_64.
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01");
    elf.resize(16, 0);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type
    elf.extend_from_slice(&62u16.to_le_bytes()); // e_machine
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&u64::from(code_addr).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 2, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        elf.extend_from_slice(&v.to_le_bytes());
    }
    // PT_LOAD, RWX, the whole file.
    program_header(
        &mut elf,
        1,
        7,
        0,
        u64::from(LOAD_ADDR),
        file_len as u64,
        0x1000,
    );
    // PT_NOTE, aligned to 4 (QEMU rounds the name to the segment alignment).
    program_header(
        &mut elf,
        4,
        4,
        HEADERS_LEN as u64,
        u64::from(LOAD_ADDR) + HEADERS_LEN as u64,
        NOTE_LEN as u64,
        4,
    );
    elf.extend_from_slice(&4u32.to_le_bytes()); // namesz
    elf.extend_from_slice(&4u32.to_le_bytes()); // descsz
    elf.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
    elf.extend_from_slice(b"Xen\0");
    elf.extend_from_slice(&code_addr.to_le_bytes());
    elf.extend_from_slice(&code);
    elf.extend_from_slice(&data);
    assert_eq!(elf.len(), file_len);
    elf
}

fn program_header(
    elf: &mut Vec<u8>,
    p_type: u32,
    flags: u32,
    offset: u64,
    addr: u64,
    len: u64,
    align: u64,
) {
    elf.extend_from_slice(&p_type.to_le_bytes());
    elf.extend_from_slice(&flags.to_le_bytes());
    for v in [offset, addr, addr, len, len, align] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
}
