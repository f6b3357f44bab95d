//! Hand-made ELF files for the resolver's tests: a header, one `PT_LOAD`
//! covering the whole file, and optionally `PT_INTERP` and a dynamic
//! section with `DT_NEEDED`, `DT_SONAME`, `DT_RPATH`/`DT_RUNPATH`. They are
//! never run, only parsed.

/// Where the single segment is mapped.
const BASE: u64 = 0x40_0000;

/// A description of a fixture ELF; [`FixtureElf::build`] makes the bytes.
#[derive(Debug, Clone)]
pub(crate) struct FixtureElf {
    elf_type: u16,
    machine: u16,
    interp: Option<String>,
    /// `(d_tag, string)`, or a raw string-table offset when `string` is None.
    dynamic: Vec<(u64, Option<String>, u64)>,
}

impl FixtureElf {
    /// A dynamically linked executable using this host's interpreter.
    pub(crate) fn executable() -> Self {
        Self {
            elf_type: 2,
            machine: 62,
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
            dynamic: Vec::new(),
        }
    }

    /// A static executable: no interpreter, no dynamic section.
    pub(crate) fn static_executable() -> Self {
        Self {
            interp: None,
            ..Self::executable()
        }
    }

    /// A shared library called `soname`.
    pub(crate) fn library(soname: &str) -> Self {
        Self {
            elf_type: 3,
            interp: None,
            ..Self::executable()
        }
        .string(14, soname)
    }

    /// Sets `e_machine`.
    pub(crate) fn machine(mut self, machine: u16) -> Self {
        self.machine = machine;
        self
    }

    /// Sets `PT_INTERP`.
    pub(crate) fn interp(mut self, path: &str) -> Self {
        self.interp = Some(path.into());
        self
    }

    /// Adds a `DT_NEEDED`.
    pub(crate) fn needed(self, name: &str) -> Self {
        self.string(1, name)
    }

    /// Adds a `DT_RUNPATH`.
    pub(crate) fn runpath(self, path: &str) -> Self {
        self.string(29, path)
    }

    /// Adds a `DT_RPATH`.
    pub(crate) fn rpath(self, path: &str) -> Self {
        self.string(15, path)
    }

    /// Adds a `DT_NEEDED` whose string offset is `offset` (for corruption).
    pub(crate) fn needed_at_offset(mut self, offset: u64) -> Self {
        self.dynamic.push((1, None, offset));
        self
    }

    fn string(mut self, tag: u64, s: &str) -> Self {
        self.dynamic.push((tag, Some(s.into()), 0));
        self
    }

    /// The file's bytes.
    pub(crate) fn build(&self) -> Vec<u8> {
        let has_dynamic = !self.dynamic.is_empty();
        let phnum = 1 + u64::from(self.interp.is_some()) + u64::from(has_dynamic);
        let mut tail = Vec::new(); // everything after the program headers
        let tail_start = 64 + 56 * phnum;
        let interp = self.interp.as_ref().map(|path| {
            let offset = tail_start + tail.len() as u64;
            tail.extend_from_slice(path.as_bytes());
            tail.push(0);
            (offset, path.len() as u64 + 1)
        });
        // The string table: a leading NUL, then each string.
        let strtab_offset = tail_start + tail.len() as u64;
        tail.push(0);
        let mut entries = Vec::new();
        for (tag, s, raw) in &self.dynamic {
            let value = match s {
                Some(s) => {
                    let at = tail.len() as u64 - (strtab_offset - tail_start);
                    tail.extend_from_slice(s.as_bytes());
                    tail.push(0);
                    at
                }
                None => *raw,
            };
            entries.push((*tag, value));
        }
        let strsz = tail_start + tail.len() as u64 - strtab_offset;
        while !tail.len().is_multiple_of(8) {
            tail.push(0);
        }
        let dynamic_offset = tail_start + tail.len() as u64;
        entries.extend([(5, BASE + strtab_offset), (10, strsz), (0, 0)]);
        if has_dynamic {
            for (tag, value) in &entries {
                tail.extend_from_slice(&tag.to_le_bytes());
                tail.extend_from_slice(&value.to_le_bytes());
            }
        }
        let file_len = tail_start + tail.len() as u64;

        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(16, 0);
        elf.extend_from_slice(&self.elf_type.to_le_bytes());
        elf.extend_from_slice(&self.machine.to_le_bytes());
        elf.extend_from_slice(&1u32.to_le_bytes());
        elf.extend_from_slice(&BASE.to_le_bytes()); // e_entry
        elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        for v in [64u16, 56, phnum as u16, 64, 0, 0] {
            elf.extend_from_slice(&v.to_le_bytes());
        }
        let mut phdr = |p_type: u32, flags: u32, offset: u64, len: u64, align: u64| {
            elf.extend_from_slice(&p_type.to_le_bytes());
            elf.extend_from_slice(&flags.to_le_bytes());
            for v in [offset, BASE + offset, BASE + offset, len, len, align] {
                elf.extend_from_slice(&v.to_le_bytes());
            }
        };
        phdr(1, 5, 0, file_len, 0x1000); // PT_LOAD, R+X
        if let Some((offset, len)) = interp {
            phdr(3, 4, offset, len, 1); // PT_INTERP
        }
        if has_dynamic {
            phdr(2, 6, dynamic_offset, file_len - dynamic_offset, 8); // PT_DYNAMIC
        }
        elf.extend_from_slice(&tail);
        elf
    }
}

/// A fresh scratch directory for one test (under the system temp dir,
/// named after the test and this process), removed when dropped.
#[derive(Debug)]
pub(crate) struct Scratch(pub(crate) std::path::PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cloister-run-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    /// Writes `data` at `rel` (creating parents) with permissions `mode`.
    pub(crate) fn write(&self, rel: &str, data: &[u8], mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, data).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
