//! Finding what a program needs, as `ldd` would but without running
//! anything: the program itself (a path, or a name looked up in `PATH`),
//! its `PT_INTERP` interpreter, and every `DT_NEEDED` library, recursively.
//!
//! A needed name is searched, like glibc's `ld.so` does, in the requesting
//! object's `DT_RPATH` (only when it has no `DT_RUNPATH`) followed by the
//! program's, then its `DT_RUNPATH`, then the directories `/etc/ld.so.conf`
//! lists (standing in for `ld.so.cache`), then Debian's default directories.
//! `$ORIGIN`, `$LIB` and `$PLATFORM` are expanded. A candidate that is not
//! an x86-64 ELF64 file is skipped, as `ld.so` skips it. Each library goes
//! in the image where it was found (the directory plus the needed name), so
//! the guest's `ld.so`, which has no cache, finds it on its default path;
//! directories only `ld.so.conf` names are reported in
//! [`Resolution::extra_library_dirs`] for `LD_LIBRARY_PATH`.
//!
//! Not modelled: `glibc-hwcaps` subdirectories (the guest `ld.so` falls
//! back to the plain directory, which is what is packed), `DT_RPATH` of
//! intermediate loaders other than the program, and `LD_PRELOAD`.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use libos::elf::ElfFile;

use super::dynamic::{DynamicInfo, read_dynamic};

/// The directories Debian's x86-64 `ld.so` searches after its cache
/// (`ld.so --help` lists them).
pub const DEFAULT_LIBRARY_DIRS: [&str; 4] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// What `$LIB` and `$PLATFORM` expand to on Debian x86-64.
const DST_LIB: &str = "lib/x86_64-linux-gnu";
const DST_PLATFORM: &str = "x86_64";

/// Why a file is in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The program to run.
    Program,
    /// Its `PT_INTERP`.
    Interpreter,
    /// A `DT_NEEDED` library, with the object that first asked for it.
    Library {
        /// The guest path of the requesting object.
        needed_by: PathBuf,
    },
}

/// A file the program needs: where it goes in the guest and where its
/// contents come from on the host (the same path; symlinks are followed
/// when the file is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededFile {
    /// Absolute path in the guest (and on the host).
    pub path: PathBuf,
    /// Why it is needed.
    pub role: Role,
}

/// Everything needed to start a program.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The program, interpreter and libraries, in load order.
    pub files: Vec<NeededFile>,
    /// Library directories that only `/etc/ld.so.conf` names (the guest has
    /// no `ld.so.cache`): the runner puts them in `LD_LIBRARY_PATH`.
    pub extra_library_dirs: Vec<PathBuf>,
    /// The program's expanded `DT_RPATH` (when it has no `DT_RUNPATH`).
    program_rpath: Vec<PathBuf>,
}

impl Resolution {
    /// Nothing to load (a linked application boots as the kernel).
    pub(crate) fn none() -> Self {
        Self {
            files: Vec::new(),
            extra_library_dirs: Vec::new(),
            program_rpath: Vec::new(),
        }
    }

    /// The program's guest path.
    pub fn program(&self) -> &Path {
        &self.files[0].path
    }

    /// The interpreter, if the program is dynamically linked.
    pub fn interpreter(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.role == Role::Interpreter)
            .map(|f| f.path.as_path())
    }
}

/// Where libraries are searched after the objects' own paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibrarySearch {
    /// From `/etc/ld.so.conf` (searched first, as the cache would be).
    pub conf_dirs: Vec<PathBuf>,
    /// The built-in directories.
    pub default_dirs: Vec<PathBuf>,
}

impl LibrarySearch {
    /// This host's configuration: `/etc/ld.so.conf` and its includes, then
    /// [`DEFAULT_LIBRARY_DIRS`].
    pub fn host() -> Self {
        let mut conf_dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut conf_dirs, 0);
        Self {
            conf_dirs,
            default_dirs: DEFAULT_LIBRARY_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

/// Appends the directories `conf` lists, following `include` globs of the
/// form `dir/*.conf` (all Debian uses). Missing files are ignored.
fn read_ld_so_conf(conf: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            if depth < 4 {
                for file in expand_include(conf, pattern) {
                    read_ld_so_conf(&file, out, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let dir = PathBuf::from(line);
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// The files an `include` line names: a path, or `dir/*suffix`, sorted.
fn expand_include(conf: &Path, pattern: &str) -> Vec<PathBuf> {
    let base = conf.parent().unwrap_or(Path::new("/"));
    let pattern = base.join(pattern);
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some(suffix) = name.strip_prefix('*') else {
        return vec![pattern.clone()];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Finds `program` as a shell would: a name with a `/` is a path (relative
/// to `cwd`); otherwise the first executable regular file in `path_var`'s
/// directories. Returns an absolute, lexically normalised path.
pub fn find_program(program: &OsStr, path_var: Option<&OsStr>, cwd: &Path) -> Result<PathBuf> {
    if program.is_empty() {
        bail!("no program given: usage is `cloister run [OPTIONS] -- PROG ARGS…`");
    }
    if program.as_bytes().contains(&b'/') {
        let path = normalize(&cwd.join(program));
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("cannot run {}: it does not exist", path.display()))?;
        if !meta.is_file() {
            bail!("cannot run {}: it is not a regular file", path.display());
        }
        return Ok(path);
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(path_var) {
        let candidate = normalize(&cwd.join(dir).join(program));
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
    }
    bail!(
        "{} not found in PATH ({}): give its path instead",
        program.to_string_lossy(),
        path_var.to_string_lossy()
    )
}

/// Removes `.` and resolves `..` without touching the file system (the
/// guest has no symlinks on these paths, so this is what it will see).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A parsed object waiting for its needs to be resolved.
#[derive(Debug)]
struct Pending {
    path: PathBuf,
    dynamic: DynamicInfo,
}

/// Resolves `program` (an absolute path from [`find_program`]): its
/// interpreter and all libraries. Any missing or unusable file is an error
/// naming it and who needs it.
pub fn resolve_program(program: &Path, search: &LibrarySearch) -> Result<Resolution> {
    let image =
        std::fs::read(program).with_context(|| format!("cannot read {}", program.display()))?;
    if image.starts_with(b"#!") {
        let line = image.split(|&b| b == b'\n').next().unwrap_or(&[]);
        bail!(
            "{} is a script ({}): run its interpreter with the script as an argument, e.g. `cloister run --file {0} -- /bin/sh {0}`",
            program.display(),
            String::from_utf8_lossy(line).trim()
        );
    }
    let elf = ElfFile::parse(&image)
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", program.display()))?;
    let dynamic =
        read_dynamic(&elf).map_err(|e| anyhow::anyhow!("cannot run {}: {e}", program.display()))?;
    let mut files = vec![NeededFile {
        path: program.to_path_buf(),
        role: Role::Program,
    }];
    let mut skip_names = BTreeSet::new();
    if let Some(interp) = elf.interpreter {
        let interp = PathBuf::from(OsStr::from_bytes(interp));
        let bytes = std::fs::read(&interp).with_context(|| {
            format!(
                "the interpreter {} (PT_INTERP of {}) does not exist on this host: install it or use a static build",
                interp.display(),
                program.display()
            )
        })?;
        let interp_elf = ElfFile::parse(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the interpreter {} of {} is unusable: {e}",
                interp.display(),
                program.display()
            )
        })?;
        // libc names ld.so in its DT_NEEDED; ld.so is already loaded then.
        if let Some(name) = interp.file_name() {
            skip_names.insert(name.to_string_lossy().into_owned());
        }
        if let Ok(info) = read_dynamic(&interp_elf)
            && let Some(soname) = info.soname
        {
            skip_names.insert(soname);
        }
        files.push(NeededFile {
            path: normalize(&interp),
            role: Role::Interpreter,
        });
    }
    let mut resolver = Resolver {
        search,
        program_rpath: if dynamic.runpath.is_empty() {
            expand_all(&dynamic.rpath, program)
        } else {
            Vec::new()
        },
        loaded: skip_names,
        files,
        extra_dirs: Vec::new(),
        warnings: None,
    };
    resolver.resolve_all(Pending {
        path: program.to_path_buf(),
        dynamic,
    })?;
    resolver.add_unwinder(&[]);
    Ok(Resolution {
        files: resolver.files,
        extra_library_dirs: resolver.extra_dirs,
        program_rpath: resolver.program_rpath,
    })
}

/// Adds the libraries that shared objects packed with `--file` need
/// (Python's extension modules, for instance) to `resolution`, and the
/// `PT_INTERP` interpreter of a dynamic executable among them (a program
/// the packed program runs, e.g. nginx started by a busybox script).
/// `objects` are host paths; files that are not x86-64 ELF objects are
/// ignored. A library or interpreter that cannot be found is returned as
/// a warning, not an error: the program may never load the object that
/// needs it.
pub fn add_libraries_of(
    resolution: &mut Resolution,
    objects: &[PathBuf],
    search: &LibrarySearch,
) -> Vec<String> {
    let mut loaded = BTreeSet::new();
    for file in &resolution.files {
        if file.role != Role::Program
            && let Some(name) = file.path.file_name()
        {
            loaded.insert(name.to_string_lossy().into_owned());
        }
    }
    let mut resolver = Resolver {
        search,
        program_rpath: resolution.program_rpath.clone(),
        loaded,
        files: Vec::new(),
        extra_dirs: std::mem::take(&mut resolution.extra_library_dirs),
        warnings: Some(Vec::new()),
    };
    for object in objects {
        if let Some(interp) = interpreter_of(object) {
            let mut known = resolution.files.iter().chain(&resolver.files);
            if !known.any(|f| f.path == interp) {
                if interp.is_file() {
                    if let Some(name) = interp.file_name() {
                        // libc's DT_NEEDED on ld.so is this file.
                        resolver.loaded.insert(name.to_string_lossy().into_owned());
                    }
                    resolver.files.push(NeededFile {
                        path: interp,
                        role: Role::Library {
                            needed_by: object.clone(),
                        },
                    });
                } else if let Some(w) = &mut resolver.warnings {
                    w.push(format!(
                        "the interpreter {} of {} does not exist on this host",
                        interp.display(),
                        object.display()
                    ));
                }
            }
        }
        let Ok(dynamic) = load_library(object) else {
            continue;
        };
        // Warnings were collected instead of errors.
        let _ = resolver.resolve_all(Pending {
            path: object.clone(),
            dynamic,
        });
    }
    resolver.add_unwinder(&resolution.files);
    resolution.files.append(&mut resolver.files);
    resolution.extra_library_dirs = resolver.extra_dirs;
    resolver.warnings.unwrap_or_default()
}

/// What glibc loads with `dlopen` when a thread exits or is cancelled
/// (the unwinder): no `DT_NEEDED` names it, so it is packed with libc.
const UNWINDER: &str = "libgcc_s.so.1";

/// The state of one resolution.
#[derive(Debug)]
struct Resolver<'a> {
    search: &'a LibrarySearch,
    /// The program's `DT_RPATH`, expanded (searched for every object that
    /// has no `DT_RUNPATH`).
    program_rpath: Vec<PathBuf>,
    /// Names already loaded (or the interpreter's).
    loaded: BTreeSet<String>,
    files: Vec<NeededFile>,
    extra_dirs: Vec<PathBuf>,
    /// `Some`: a missing library is recorded here and skipped, not an error.
    warnings: Option<Vec<String>>,
}

impl Resolver<'_> {
    /// Adds [`UNWINDER`] (and what it needs) when glibc's `libc.so.6` is
    /// among `earlier` or this resolution's files and the host has it:
    /// without it `pthread_exit` aborts the program. Best effort: a host
    /// without it adds nothing and warns of nothing.
    fn add_unwinder(&mut self, earlier: &[NeededFile]) {
        let libc = earlier
            .iter()
            .chain(&self.files)
            .find(|f| f.path.file_name() == Some(OsStr::new("libc.so.6")))
            .map(|f| f.path.clone());
        let Some(libc) = libc else { return };
        if earlier
            .iter()
            .chain(&self.files)
            .any(|f| f.path.file_name() == Some(OsStr::new(UNWINDER)))
        {
            return;
        }
        let saved = self.warnings.replace(Vec::new());
        let _ = self.resolve_all(Pending {
            path: libc,
            dynamic: DynamicInfo {
                needed: vec![UNWINDER.to_string()],
                ..DynamicInfo::default()
            },
        });
        self.warnings = saved;
    }

    /// Breadth-first over the needs, in `ld.so`'s load order.
    fn resolve_all(&mut self, first: Pending) -> Result<()> {
        let mut queue = VecDeque::from([first]);
        while let Some(object) = queue.pop_front() {
            for name in &object.dynamic.needed {
                if !self.loaded.insert(name.clone()) {
                    continue;
                }
                let (path, dynamic) = match self.find_library(name, &object) {
                    Ok(found) => found,
                    Err(e) => match &mut self.warnings {
                        Some(warnings) => {
                            warnings.push(format!("{e:#}"));
                            continue;
                        }
                        None => return Err(e),
                    },
                };
                self.files.push(NeededFile {
                    path: path.clone(),
                    role: Role::Library {
                        needed_by: object.path.clone(),
                    },
                });
                queue.push_back(Pending { path, dynamic });
            }
        }
        Ok(())
    }

    /// The directories to search for `object`'s needs, in order, with
    /// whether each came from `ld.so.conf` only.
    fn search_dirs(&self, object: &Pending) -> Vec<(PathBuf, bool)> {
        let mut dirs = Vec::new();
        if object.dynamic.runpath.is_empty() {
            dirs.extend(expand_all(&object.dynamic.rpath, &object.path));
            dirs.extend(self.program_rpath.iter().cloned());
        } else {
            dirs.extend(expand_all(&object.dynamic.runpath, &object.path));
        }
        let mut out: Vec<(PathBuf, bool)> = dirs.into_iter().map(|d| (d, false)).collect();
        for dir in &self.search.conf_dirs {
            let only_conf = !self.search.default_dirs.contains(dir);
            out.push((dir.clone(), only_conf));
        }
        out.extend(self.search.default_dirs.iter().map(|d| (d.clone(), false)));
        out
    }

    fn find_library(&mut self, name: &str, object: &Pending) -> Result<(PathBuf, DynamicInfo)> {
        let who = object.path.display();
        if name.contains('/') {
            let path = normalize(Path::new(name));
            let dynamic = load_library(&path)
                .map_err(|e| anyhow::anyhow!("{name} (needed by {who}): {e}"))?;
            return Ok((path, dynamic));
        }
        let dirs = self.search_dirs(object);
        let mut rejected = Vec::new();
        for (dir, only_conf) in &dirs {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            match load_library(&path) {
                Ok(dynamic) => {
                    if *only_conf && !self.extra_dirs.contains(dir) {
                        self.extra_dirs.push(dir.clone());
                    }
                    return Ok((path, dynamic));
                }
                Err(e) => rejected.push(format!("{}: {e}", path.display())),
            }
        }
        let mut searched: Vec<String> = Vec::new();
        for (d, _) in &dirs {
            let d = d.display().to_string();
            if !searched.contains(&d) {
                searched.push(d);
            }
        }
        let mut msg = format!(
            "cannot find library {name} (needed by {who}) in {}",
            searched.join(", ")
        );
        if !rejected.is_empty() {
            msg.push_str(&format!("; skipped {}", rejected.join("; ")));
        }
        msg.push_str(": install the package that provides it");
        bail!(msg)
    }
}

/// Parses a candidate library: it must be an x86-64 ELF64 object.
/// The `PT_INTERP` of the ELF file at `path` (normalized), if it is one
/// and has one.
fn interpreter_of(path: &Path) -> Option<PathBuf> {
    let image = std::fs::read(path).ok()?;
    let elf = ElfFile::parse(&image).ok()?;
    let interp = elf.interpreter?;
    Some(normalize(Path::new(OsStr::from_bytes(interp))))
}

fn load_library(path: &Path) -> Result<DynamicInfo, String> {
    let image = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let elf = ElfFile::parse(&image).map_err(|e| e.to_string())?;
    read_dynamic(&elf)
}

/// Expands `$ORIGIN` (the directory of `object`), `$LIB` and `$PLATFORM`
/// in search-path entries; relative entries are relative to `/` (the
/// guest's working directory).
fn expand_all(entries: &[String], object: &Path) -> Vec<PathBuf> {
    let origin = object.parent().unwrap_or(Path::new("/"));
    let origin = origin.to_string_lossy();
    entries
        .iter()
        .map(|e| {
            let expanded = e
                .replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin)
                .replace("${LIB}", DST_LIB)
                .replace("$LIB", DST_LIB)
                .replace("${PLATFORM}", DST_PLATFORM)
                .replace("$PLATFORM", DST_PLATFORM);
            normalize(&Path::new("/").join(expanded))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixture::{FixtureElf, Scratch};

    fn host_search() -> LibrarySearch {
        LibrarySearch::host()
    }

    fn library_named<'a>(r: &'a Resolution, name: &str) -> Option<&'a NeededFile> {
        r.files
            .iter()
            .find(|f| matches!(f.role, Role::Library { .. }) && f.path.ends_with(name))
    }

    fn err_of(r: Result<Resolution>) -> String {
        format!("{:#}", r.expect_err("should fail"))
    }

    #[test]
    fn a_program_with_glibc_gets_the_unwinder_glibc_loads_at_thread_exit() {
        let r = resolve_program(Path::new("/usr/bin/true"), &host_search()).unwrap();
        let host_has_it = Path::new("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1").is_file()
            || Path::new("/lib/x86_64-linux-gnu/libgcc_s.so.1").is_file();
        assert_eq!(library_named(&r, UNWINDER).is_some(), host_has_it);
        // Once, however many objects ask.
        let mut r2 = r;
        let before = r2.files.len();
        let _ = add_libraries_of(&mut r2, &[PathBuf::from("/usr/bin/true")], &host_search());
        assert_eq!(r2.files.len(), before);
    }

    #[test]
    fn resolves_this_hosts_true_with_libc_and_the_interpreter() {
        let path = find_program(
            OsStr::new("true"),
            Some(OsStr::new("/usr/bin:/bin")),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(path, Path::new("/usr/bin/true"));
        let r = resolve_program(&path, &host_search()).unwrap();
        assert_eq!(r.program(), Path::new("/usr/bin/true"));
        assert_eq!(r.files[0].role, Role::Program);
        assert_eq!(
            r.interpreter(),
            Some(Path::new("/lib64/ld-linux-x86-64.so.2"))
        );
        let libc = library_named(&r, "libc.so.6").expect("libc.so.6 packed");
        assert_eq!(libc.path, Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(
            libc.role,
            Role::Library {
                needed_by: "/usr/bin/true".into()
            }
        );
        // libc's own DT_NEEDED on ld.so is the interpreter, not a second copy.
        assert!(library_named(&r, "ld-linux-x86-64.so.2").is_none(), "{r:?}");
        assert!(r.extra_library_dirs.is_empty());
    }

    #[test]
    fn ls_pulls_in_its_libraries_recursively() {
        let r = resolve_program(Path::new("/usr/bin/ls"), &host_search()).unwrap();
        let selinux = library_named(&r, "libselinux.so.1").expect("libselinux");
        assert_eq!(
            selinux.role,
            Role::Library {
                needed_by: "/usr/bin/ls".into()
            }
        );
        let pcre = library_named(&r, "libpcre2-8.so.0").expect("libpcre2 via libselinux");
        assert_eq!(
            pcre.role,
            Role::Library {
                needed_by: selinux.path.clone()
            }
        );
        let names: Vec<_> = r.files.iter().map(|f| f.path.clone()).collect();
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "each file once: {names:?}");
    }

    #[test]
    fn a_static_program_needs_only_itself() {
        let s = Scratch::new("static");
        let prog = s.write("prog", &FixtureElf::static_executable().build(), 0o755);
        let r = resolve_program(&prog, &host_search()).unwrap();
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.interpreter(), None);
    }

    #[test]
    fn a_missing_library_is_an_error_naming_it_and_who_needs_it() {
        let s = Scratch::new("missing");
        let prog = s.write(
            "prog",
            &FixtureElf::executable()
                .needed("libc.so.6")
                .needed("libcloister-missing.so.9")
                .build(),
            0o755,
        );
        let err = err_of(resolve_program(&prog, &host_search()));
        assert!(err.contains("libcloister-missing.so.9"), "{err}");
        assert!(
            err.contains(&format!("needed by {}", prog.display())),
            "{err}"
        );
        assert!(err.contains("/usr/lib/x86_64-linux-gnu"), "{err}");
    }

    #[test]
    fn runpath_with_origin_is_searched_and_wrong_arch_candidates_are_skipped() {
        let s = Scratch::new("origin");
        let prog = s.write(
            "app/bin/prog",
            &FixtureElf::executable()
                .needed("libfix.so.1")
                .runpath("$ORIGIN/../lib")
                .build(),
            0o755,
        );
        s.write(
            "app/lib/libfix.so.1",
            &FixtureElf::library("libfix.so.1")
                .needed("libc.so.6")
                .build(),
            0o644,
        );
        let r = resolve_program(&prog, &host_search()).unwrap();
        let fix = library_named(&r, "libfix.so.1").unwrap();
        assert_eq!(fix.path, s.0.join("app/lib/libfix.so.1"));
        assert!(library_named(&r, "libc.so.6").is_some());

        s.write(
            "app/lib/libfix.so.1",
            &FixtureElf::library("libfix.so.1").machine(183).build(),
            0o644,
        );
        let err = err_of(resolve_program(&prog, &host_search()));
        assert!(err.contains("cannot find library libfix.so.1"), "{err}");
        assert!(err.contains("ELF for aarch64, expected x86-64"), "{err}");
    }

    #[test]
    fn rpath_is_ignored_when_runpath_is_present() {
        let s = Scratch::new("rpath");
        s.write(
            "r/libfix.so.1",
            &FixtureElf::library("libfix.so.1").build(),
            0o644,
        );
        let with_rpath = FixtureElf::executable()
            .needed("libfix.so.1")
            .rpath(&s.0.join("r").to_string_lossy());
        let prog = s.write("prog", &with_rpath.clone().build(), 0o755);
        assert!(resolve_program(&prog, &host_search()).is_ok());
        let prog = s.write("prog", &with_rpath.runpath("/nonexistent").build(), 0o755);
        assert!(err_of(resolve_program(&prog, &host_search())).contains("libfix.so.1"));
    }

    #[test]
    fn non_elf_scripts_and_foreign_programs_are_refused_clearly() {
        let s = Scratch::new("bad");
        let text = s.write("notes.txt", b"hello\n", 0o755);
        assert!(err_of(resolve_program(&text, &host_search())).contains("not an ELF file"));
        let script = s.write("run.sh", b"#!/bin/sh\necho hi\n", 0o755);
        let err = err_of(resolve_program(&script, &host_search()));
        assert!(err.contains("is a script (#!/bin/sh)"), "{err}");
        let arm = s.write("arm", &FixtureElf::executable().machine(183).build(), 0o755);
        let err = err_of(resolve_program(&arm, &host_search()));
        assert!(err.contains("ELF for aarch64, expected x86-64"), "{err}");
        let mut elf32 = FixtureElf::static_executable().build();
        elf32[4] = 1; // EI_CLASS = ELFCLASS32
        let elf32 = s.write("elf32", &elf32, 0o755);
        assert!(err_of(resolve_program(&elf32, &host_search())).contains("ELF32"));
        let no_interp = s.write(
            "noint",
            &FixtureElf::executable()
                .interp("/nonexistent/ld.so")
                .build(),
            0o755,
        );
        let err = err_of(resolve_program(&no_interp, &host_search()));
        assert!(
            err.contains("interpreter /nonexistent/ld.so") && err.contains("does not exist"),
            "{err}"
        );
    }

    #[test]
    fn programs_are_found_by_path_or_in_path_like_a_shell() {
        let s = Scratch::new("find");
        s.write("bin/tool", b"x", 0o755);
        s.write("data/tool", b"x", 0o644);
        let path = std::env::join_paths([s.0.join("data"), s.0.join("bin")]).unwrap();
        // A non-executable match is skipped, as the shell does.
        assert_eq!(
            find_program(OsStr::new("tool"), Some(&path), Path::new("/")).unwrap(),
            s.0.join("bin/tool")
        );
        assert_eq!(
            find_program(OsStr::new("./bin/../bin/tool"), None, &s.0).unwrap(),
            s.0.join("bin/tool")
        );
        let err = format!(
            "{:#}",
            find_program(OsStr::new("no-such-tool"), Some(&path), Path::new("/")).unwrap_err()
        );
        assert!(err.contains("no-such-tool not found in PATH"), "{err}");
        let err = format!(
            "{:#}",
            find_program(OsStr::new("./nope"), None, &s.0).unwrap_err()
        );
        assert!(err.contains("does not exist"), "{err}");
        let err = format!(
            "{:#}",
            find_program(OsStr::new("./bin"), None, &s.0).unwrap_err()
        );
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn ld_so_conf_includes_are_followed() {
        let s = Scratch::new("conf");
        s.write("conf.d/b.conf", b"/opt/b\n# comment\n", 0o644);
        s.write("conf.d/a.conf", b"/opt/a # trailing\n/opt/b\n", 0o644);
        s.write("conf.d/skip.txt", b"/opt/skip\n", 0o644);
        let conf = s.write("ld.so.conf", b"include conf.d/*.conf\n/opt/c\n", 0o644);
        let mut dirs = Vec::new();
        read_ld_so_conf(&conf, &mut dirs, 0);
        assert_eq!(
            dirs,
            [PathBuf::from("/opt/a"), "/opt/b".into(), "/opt/c".into()]
        );
    }

    #[test]
    fn libraries_only_ld_so_conf_names_are_reported_for_ld_library_path() {
        let s = Scratch::new("confdir");
        s.write(
            "extra/libfix.so.1",
            &FixtureElf::library("libfix.so.1").build(),
            0o644,
        );
        let prog = s.write(
            "prog",
            &FixtureElf::executable().needed("libfix.so.1").build(),
            0o755,
        );
        let mut search = host_search();
        search.conf_dirs.push(s.0.join("extra"));
        let r = resolve_program(&prog, &search).unwrap();
        assert_eq!(r.extra_library_dirs, [s.0.join("extra")]);
    }

    #[test]
    fn libraries_of_extra_objects_are_added_and_missing_ones_are_warnings() {
        let s = Scratch::new("extra");
        let prog = s.write("prog", &FixtureElf::static_executable().build(), 0o755);
        let ok = s.write(
            "mods/ok.so",
            &FixtureElf::library("ok.so").needed("libz.so.1").build(),
            0o644,
        );
        let bad = s.write(
            "mods/bad.so",
            &FixtureElf::library("bad.so").needed("libnope.so.1").build(),
            0o644,
        );
        let text = s.write("mods/readme", b"text", 0o644);
        let mut r = resolve_program(&prog, &host_search()).unwrap();
        let warnings = add_libraries_of(&mut r, &[ok, bad, text], &host_search());
        assert!(library_named(&r, "libz.so.1").is_some(), "{r:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("libnope.so.1"), "{warnings:?}");
        // A dynamic executable packed beside a static program brings its
        // interpreter, once; a missing one is a warning.
        let tool = s.write("bin/tool", &FixtureElf::executable().build(), 0o755);
        let twin = s.write("bin/twin", &FixtureElf::executable().build(), 0o755);
        let warnings = add_libraries_of(&mut r, &[tool, twin], &host_search());
        assert!(warnings.is_empty(), "{warnings:?}");
        let interp = interpreter_of(&s.0.join("bin/tool")).expect("an interpreter");
        assert_eq!(
            r.files.iter().filter(|f| f.path == interp).count(),
            1,
            "{r:?}"
        );
        let lost = s.write(
            "bin/lost",
            &FixtureElf::executable()
                .interp("/nonexistent/ld.so")
                .build(),
            0o755,
        );
        let warnings = add_libraries_of(&mut r, &[lost], &host_search());
        assert!(warnings[0].contains("/nonexistent/ld.so"), "{warnings:?}");
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("/")), Path::new("/"));
    }
}
