//! The initial process stack of the x86-64 SysV ABI.
//!
//! From the stack top downwards: an 8-byte zero end marker, the `AT_EXECFN`
//! string, the environment strings, the argument strings, the
//! `AT_PLATFORM` string, the 16 `AT_RANDOM` bytes, padding to 16 bytes,
//! then (at the initial `rsp`, 16-byte aligned) `argc`, the `argv`
//! pointers and a NULL, the `envp` pointers and a NULL, and the auxiliary
//! vector ending with `AT_NULL`. This is the layout of Linux's
//! `create_elf_tables`.

use alloc::vec;
use alloc::vec::Vec;

use super::PAGE_SIZE;
use super::load::LoadPlan;
use crate::error::{Errno, Result};
use crate::{return_errno, return_errno_with_message};

/// Auxiliary vector keys (`include/uapi/linux/auxvec.h`).
#[allow(missing_docs, reason = "the names are Linux's; see getauxval(3)")]
pub mod at {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_SYSINFO_EHDR: u64 = 33;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

/// The values that go into the auxiliary vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxvInfo<'a> {
    /// `AT_PHDR`: the executable's program headers in memory.
    pub phdr: u64,
    /// `AT_PHNUM`
    pub phnum: u64,
    /// `AT_BASE`: the interpreter's load bias (0 without one).
    pub interp_base: u64,
    /// `AT_ENTRY`: the executable's entry point (not the interpreter's).
    pub entry: u64,
    /// `AT_UID`
    pub uid: u32,
    /// `AT_EUID`
    pub euid: u32,
    /// `AT_GID`
    pub gid: u32,
    /// `AT_EGID`
    pub egid: u32,
    /// `AT_SECURE`
    pub secure: bool,
    /// The 16 bytes `AT_RANDOM` points at (glibc's stack protector and
    /// pointer guard seeds): fill them from the CSPRNG.
    pub random: [u8; 16],
    /// `AT_HWCAP` (CPUID.1:EDX on x86-64).
    pub hwcap: u64,
    /// `AT_HWCAP2`
    pub hwcap2: u64,
    /// `AT_CLKTCK` (100 on Linux).
    pub clock_ticks_per_sec: u64,
    /// `AT_EXECFN`: the path the program was executed as.
    pub execfn: &'a [u8],
    /// `AT_PLATFORM` (`b"x86_64"`).
    pub platform: &'a [u8],
    /// `AT_MINSIGSTKSZ`: minimum signal stack size in bytes.
    pub min_signal_stack_bytes: u64,
    /// `AT_SYSINFO_EHDR`: the vDSO, if one is mapped.
    pub vdso_base: Option<u64>,
}

impl<'a> AuxvInfo<'a> {
    /// Values for running `exe` (and `interp`, its loaded interpreter), as
    /// root, with Linux's defaults for the rest.
    pub fn new(
        exe: &LoadPlan<'_>,
        interp: Option<&LoadPlan<'_>>,
        execfn: &'a [u8],
        random: [u8; 16],
    ) -> Self {
        Self {
            phdr: exe.phdr_addr.unwrap_or(0),
            phnum: u64::from(exe.phnum),
            interp_base: interp.map_or(0, |i| i.bias),
            entry: exe.entry,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            secure: false,
            random,
            hwcap: 0,
            hwcap2: 0,
            clock_ticks_per_sec: 100,
            execfn,
            platform: b"x86_64",
            min_signal_stack_bytes: 2048,
            vdso_base: None,
        }
    }
}

/// The bytes of the initial stack and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// The initial `rsp` (16-byte aligned; points at `argc`).
    pub rsp: u64,
    /// The bytes to copy to `rsp .. stack_top`.
    pub bytes: Vec<u8>,
    /// Address of `argv[0]`'s pointer.
    pub argv_addr: u64,
    /// Address of `envp[0]`'s pointer.
    pub envp_addr: u64,
    /// The auxiliary vector written, without the final `AT_NULL`.
    pub auxv: Vec<(u64, u64)>,
}

/// Writes into a buffer that will live at `base .. base + len` in user space.
struct StackImage {
    base: u64,
    bytes: Vec<u8>,
}

impl StackImage {
    fn put(&mut self, addr: u64, data: &[u8]) {
        // Every address is computed inside [base, top) by construction.
        let at = (addr - self.base) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    fn put_u64(&mut self, addr: u64, value: u64) {
        self.put(addr, &value.to_le_bytes());
    }
}

/// Builds the initial stack ending at `stack_top` (rounded down to 16).
/// Fails with `E2BIG` when it would exceed `max_bytes`, and `EINVAL` when
/// a string contains NUL.
pub fn build_initial_stack(
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    aux: &AuxvInfo<'_>,
    max_bytes: usize,
) -> Result<InitialStack> {
    for s in argv.iter().chain(envp).chain([&aux.execfn, &aux.platform]) {
        if s.contains(&0) {
            return_errno_with_message!(
                Errno::EINVAL,
                "argument or environment string contains NUL"
            );
        }
    }
    let top = stack_top & !15;
    // Sizes of the string area and the pointer vector.
    let strings_bytes = [aux.execfn, aux.platform]
        .iter()
        .chain(argv)
        .chain(envp)
        .try_fold(8usize + 16, |acc, s| acc.checked_add(s.len() + 1));
    let auxv = auxv_entries(aux, 0, 0, 0);
    let vector_words = argv
        .len()
        .checked_add(envp.len())
        .and_then(|n| n.checked_add(3 + 2 * (auxv.len() + 1)));
    let total = strings_bytes
        .zip(vector_words)
        .and_then(|(s, w)| s.checked_add(w.checked_mul(8)?))
        .and_then(|t| t.checked_add(32));
    let Some(total) = total.filter(|&t| t <= max_bytes) else {
        return_errno_with_message!(Errno::E2BIG, "argument list too long");
    };
    let total = total as u64;
    if top < total + PAGE_SIZE {
        return_errno!(Errno::EFAULT);
    }

    // Lay out the strings from the top down, recording their addresses.
    let mut cursor = top - 8; // end marker
    let mut place = |s: &[u8]| {
        cursor -= s.len() as u64 + 1;
        cursor
    };
    let execfn_addr = place(aux.execfn);
    let env_addrs: Vec<u64> = envp.iter().map(|s| place(s)).collect();
    let arg_addrs: Vec<u64> = argv.iter().map(|s| place(s)).collect();
    let platform_addr = place(aux.platform);
    let random_addr = (cursor - 16) & !15;
    let auxv = auxv_entries(aux, execfn_addr, platform_addr, random_addr);
    let vector_bytes = 8 * (3 + argv.len() + envp.len() + 2 * (auxv.len() + 1)) as u64;
    let rsp = (random_addr - vector_bytes) & !15;

    let mut img = StackImage {
        base: rsp,
        bytes: vec![0; (top - rsp) as usize],
    };
    img.put(execfn_addr, aux.execfn);
    for (addr, s) in env_addrs.iter().zip(envp).chain(arg_addrs.iter().zip(argv)) {
        img.put(*addr, s);
    }
    img.put(platform_addr, aux.platform);
    img.put(random_addr, &aux.random);

    let mut words: Vec<u64> = Vec::with_capacity(vector_bytes as usize / 8);
    words.push(argv.len() as u64);
    words.extend(&arg_addrs);
    words.push(0);
    words.extend(&env_addrs);
    words.push(0);
    for &(k, v) in &auxv {
        words.extend([k, v]);
    }
    words.extend([at::AT_NULL, 0]);
    for (i, w) in words.iter().enumerate() {
        img.put_u64(rsp + 8 * i as u64, *w);
    }
    let argv_addr = rsp + 8;
    let envp_addr = argv_addr + 8 * (argv.len() as u64 + 1);

    Ok(InitialStack {
        rsp,
        bytes: img.bytes,
        argv_addr,
        envp_addr,
        auxv,
    })
}

fn auxv_entries(aux: &AuxvInfo<'_>, execfn: u64, platform: u64, random: u64) -> Vec<(u64, u64)> {
    use at::*;
    let mut v = vec![
        (AT_PHDR, aux.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, aux.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, aux.interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, u64::from(aux.uid)),
        (AT_EUID, u64::from(aux.euid)),
        (AT_GID, u64::from(aux.gid)),
        (AT_EGID, u64::from(aux.egid)),
        (AT_SECURE, u64::from(aux.secure)),
        (AT_RANDOM, random),
        (AT_HWCAP, aux.hwcap),
        (AT_HWCAP2, aux.hwcap2),
        (AT_CLKTCK, aux.clock_ticks_per_sec),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
        (AT_MINSIGSTKSZ, aux.min_signal_stack_bytes),
    ];
    if let Some(vdso) = aux.vdso_base {
        v.push((AT_SYSINFO_EHDR, vdso));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::at::*;
    use super::*;

    fn aux() -> AuxvInfo<'static> {
        AuxvInfo {
            phdr: 0x400040,
            phnum: 7,
            interp_base: 0x7f00_0000_0000,
            entry: 0x401000,
            uid: 1000,
            euid: 1000,
            gid: 100,
            egid: 100,
            secure: false,
            random: [0xab; 16],
            hwcap: 0x178bfbff,
            hwcap2: 2,
            clock_ticks_per_sec: 100,
            execfn: b"/bin/ls",
            platform: b"x86_64",
            min_signal_stack_bytes: 2048,
            vdso_base: None,
        }
    }

    /// Reads user memory from the built image.
    fn word(s: &InitialStack, addr: u64) -> u64 {
        let at = (addr - s.rsp) as usize;
        u64::from_le_bytes(s.bytes[at..at + 8].try_into().unwrap())
    }

    fn cstr(s: &InitialStack, addr: u64) -> Vec<u8> {
        let at = (addr - s.rsp) as usize;
        s.bytes[at..]
            .iter()
            .take_while(|&&b| b != 0)
            .copied()
            .collect()
    }

    #[test]
    fn layout_matches_sysv_abi() {
        let top = 0x7fff_ffff_f000;
        let argv: [&[u8]; 2] = [b"/bin/ls", b"-la"];
        let envp: [&[u8]; 1] = [b"PATH=/bin"];
        let s = build_initial_stack(top, &argv, &envp, &aux(), 1 << 20).unwrap();
        assert_eq!(s.rsp % 16, 0);
        assert_eq!(s.rsp + s.bytes.len() as u64, top);
        assert_eq!(word(&s, s.rsp), 2);
        assert_eq!(s.argv_addr, s.rsp + 8);
        assert_eq!(cstr(&s, word(&s, s.argv_addr)), b"/bin/ls");
        assert_eq!(cstr(&s, word(&s, s.argv_addr + 8)), b"-la");
        assert_eq!(word(&s, s.argv_addr + 16), 0);
        assert_eq!(s.envp_addr, s.argv_addr + 24);
        assert_eq!(cstr(&s, word(&s, s.envp_addr)), b"PATH=/bin");
        assert_eq!(word(&s, s.envp_addr + 8), 0);
        // The auxv as written in memory.
        let mut a = s.envp_addr + 16;
        let mut found = Vec::new();
        loop {
            let (k, v) = (word(&s, a), word(&s, a + 8));
            a += 16;
            if k == AT_NULL {
                break;
            }
            found.push((k, v));
        }
        assert_eq!(found, s.auxv);
        let get = |key| found.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert_eq!(get(AT_PHDR), Some(0x400040));
        assert_eq!(get(AT_PHENT), Some(56));
        assert_eq!(get(AT_PAGESZ), Some(4096));
        assert_eq!(get(AT_BASE), Some(0x7f00_0000_0000));
        assert_eq!(get(AT_ENTRY), Some(0x401000));
        assert_eq!(get(AT_UID), Some(1000));
        assert_eq!(get(AT_EGID), Some(100));
        assert_eq!(get(AT_HWCAP), Some(0x178bfbff));
        assert_eq!(get(AT_SYSINFO_EHDR), None);
        let random = get(AT_RANDOM).unwrap();
        assert_eq!(random % 16, 0);
        let at = (random - s.rsp) as usize;
        assert_eq!(&s.bytes[at..at + 16], &[0xab; 16]);
        assert_eq!(cstr(&s, get(AT_EXECFN).unwrap()), b"/bin/ls");
        assert_eq!(cstr(&s, get(AT_PLATFORM).unwrap()), b"x86_64");
        // End marker.
        assert_eq!(word(&s, top - 8), 0);
    }

    #[test]
    fn alignment_holds_for_every_parity() {
        for n in 0..6usize {
            let args: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a'; i + 1]).collect();
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut a = aux();
            a.vdso_base = (n % 2 == 0).then_some(0x7fff_0000_0000);
            let s = build_initial_stack(0x7fff_0000_1008, &argv, &[], &a, 1 << 20).unwrap();
            assert_eq!(s.rsp % 16, 0, "n={n}");
            assert_eq!(word(&s, s.rsp), n as u64);
            assert_eq!(
                s.auxv.iter().any(|(k, _)| *k == AT_SYSINFO_EHDR),
                n % 2 == 0
            );
        }
    }

    #[test]
    fn too_big_and_bad_strings_are_errors() {
        let big = vec![b'x'; 5000];
        let e = build_initial_stack(0x7fff_0000_0000, &[&big], &[], &aux(), 4096).unwrap_err();
        assert_eq!(e.errno(), Errno::E2BIG);
        let e = build_initial_stack(0x7fff_0000_0000, &[b"a\0b"], &[], &aux(), 4096).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        let e = build_initial_stack(0x100, &[b"a"], &[], &aux(), 4096).unwrap_err();
        assert_eq!(e.errno(), Errno::EFAULT);
    }
}
