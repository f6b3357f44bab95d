//! Reading an ELF's dynamic section: the libraries it needs (`DT_NEEDED`),
//! where it asks for them to be searched (`DT_RPATH`, `DT_RUNPATH`) and its
//! own name (`DT_SONAME`). Built on libos's validated [`ElfFile`]; every
//! offset taken from the file is checked.

use libos::elf::ElfFile;

/// `d_tag` values read here.
mod tag {
    pub const NULL: u64 = 0;
    pub const NEEDED: u64 = 1;
    pub const STRTAB: u64 = 5;
    pub const STRSZ: u64 = 10;
    pub const SONAME: u64 = 14;
    pub const RPATH: u64 = 15;
    pub const RUNPATH: u64 = 29;
}

/// Bytes in one `Elf64_Dyn` entry (`d_tag`, `d_val`).
const DYN_ENTRY_LEN: usize = 16;

/// What the dynamic section says about loading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicInfo {
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH`, split at `:` (used only when there is no `DT_RUNPATH`).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH`, split at `:`.
    pub runpath: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
}

/// Reads the dynamic section of `elf`; an image without `PT_DYNAMIC`
/// (a static executable) needs nothing.
pub fn read_dynamic(elf: &ElfFile<'_>) -> Result<DynamicInfo, String> {
    let Some(dyn_vaddr) = elf.dynamic_vaddr else {
        return Ok(DynamicInfo::default());
    };
    let (dyn_offset, dyn_len) = file_span(elf, dyn_vaddr)
        .ok_or("PT_DYNAMIC does not lie in the file part of a PT_LOAD segment")?;
    let table = elf
        .image
        .get(dyn_offset..dyn_offset + dyn_len)
        .ok_or("the dynamic section extends past the end of the file")?;
    let mut entries = Vec::new();
    let (mut strtab, mut strsz) = (None, None);
    for entry in table.chunks_exact(DYN_ENTRY_LEN) {
        let (t, v) = entry.split_at(8);
        let (t, v) = (le64(t), le64(v));
        match t {
            tag::NULL => break,
            tag::STRTAB => strtab = Some(v),
            tag::STRSZ => strsz = Some(v),
            tag::NEEDED | tag::SONAME | tag::RPATH | tag::RUNPATH => entries.push((t, v)),
            _ => {}
        }
    }
    if entries.is_empty() {
        return Ok(DynamicInfo::default());
    }
    let strtab = strtab.ok_or("the dynamic section has names but no DT_STRTAB")?;
    let (str_offset, str_span) = file_span(elf, strtab)
        .ok_or("DT_STRTAB does not lie in the file part of a PT_LOAD segment")?;
    let str_len = strsz
        .and_then(|s| usize::try_from(s).ok())
        .map_or(str_span, |s| s.min(str_span));
    let strings = elf
        .image
        .get(str_offset..str_offset + str_len)
        .ok_or("the string table extends past the end of the file")?;
    let string = |v: u64| -> Result<String, String> {
        let start = usize::try_from(v)
            .ok()
            .filter(|&s| s < strings.len())
            .ok_or_else(|| format!("string offset {v} lies outside the string table"))?;
        let len = strings[start..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("string at offset {v} is not NUL-terminated"))?;
        String::from_utf8(strings[start..start + len].to_vec())
            .map_err(|_| format!("string at offset {v} is not UTF-8"))
    };
    let mut info = DynamicInfo::default();
    for (t, v) in entries {
        let s = string(v)?;
        match t {
            tag::NEEDED => info.needed.push(s),
            tag::SONAME => info.soname = Some(s),
            tag::RPATH => info.rpath.extend(split_path_list(&s)),
            _ => info.runpath.extend(split_path_list(&s)),
        }
    }
    Ok(info)
}

/// The file offset of `vaddr` and the bytes from there to the end of the
/// file part of the `PT_LOAD` segment holding it.
fn file_span(elf: &ElfFile<'_>, vaddr: u64) -> Option<(usize, usize)> {
    let seg = elf
        .segments
        .iter()
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.file_bytes)?;
    let into = vaddr - seg.vaddr;
    let offset = seg.offset.checked_add(into)?;
    Some((
        usize::try_from(offset).ok()?,
        usize::try_from(seg.file_bytes - into).ok()?,
    ))
}

fn split_path_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(':').filter(|p| !p.is_empty()).map(str::to_string)
}

fn le64(b: &[u8]) -> u64 {
    b.try_into().map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixture::FixtureElf;

    #[test]
    fn reads_needed_runpath_and_soname() {
        let image = FixtureElf::library("libx.so.1")
            .needed("liby.so.2")
            .needed("libc.so.6")
            .runpath("$ORIGIN/lib:/opt/z")
            .build();
        let elf = ElfFile::parse(&image).unwrap();
        let info = read_dynamic(&elf).unwrap();
        assert_eq!(info.needed, ["liby.so.2", "libc.so.6"]);
        assert_eq!(info.runpath, ["$ORIGIN/lib", "/opt/z"]);
        assert!(info.rpath.is_empty());
        assert_eq!(info.soname.as_deref(), Some("libx.so.1"));
    }

    #[test]
    fn reads_this_hosts_ls() {
        let image = std::fs::read("/usr/bin/ls").unwrap();
        let info = read_dynamic(&ElfFile::parse(&image).unwrap()).unwrap();
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
    }

    #[test]
    fn a_string_offset_outside_the_table_is_an_error() {
        let image = FixtureElf::executable().needed_at_offset(1 << 20).build();
        let err = read_dynamic(&ElfFile::parse(&image).unwrap()).unwrap_err();
        assert!(err.contains("outside the string table"), "{err}");
    }
}
