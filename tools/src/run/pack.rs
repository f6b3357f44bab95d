//! Putting together the image for one run: the program and what it needs
//! ([`resolve`](super::resolve)), the `--file` trees (and the libraries
//! their shared objects need), `/.cloister/argv` and `/.cloister/envp`, a
//! minimal `/etc/passwd` and `/etc/group` unless given, and `/tmp`.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::image::Image;
use super::options::{RunOptions, env_entry, environment, guest_path_of};
use super::protocol::{ARGV_PATH, ENVP_PATH, encode_nul_terminated};
use super::resolve::{
    LibrarySearch, Resolution, Role, add_libraries_of, find_program, resolve_program,
};

/// The guest directory the protocol files live in (reserved).
const CONTROL_DIR: &str = "/.cloister";
/// Written unless the image already has one: root, and `nobody`, which
/// servers that drop privileges (nginx's default `user`) look up.
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
/// Written unless the image already has one.
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// An assembled image and how it came about.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The tree to write.
    pub image: Image,
    /// The program, interpreter and libraries found.
    pub resolution: Resolution,
    /// The program's arguments, `argv[0]` first.
    pub argv: Vec<OsString>,
    /// Its environment, `K=V`.
    pub envp: Vec<OsString>,
    /// Problems that do not stop the run (a library an extension module
    /// needs but the host lacks; special files left out).
    pub warnings: Vec<String>,
}

/// Where to look things up on the host.
#[derive(Debug, Clone)]
pub struct HostContext {
    /// Relative `PROG` and `--file` paths are relative to this.
    pub cwd: PathBuf,
    /// The `PATH` to find `PROG` in.
    pub path_var: Option<OsString>,
    /// How libraries are searched.
    pub search: LibrarySearch,
}

impl HostContext {
    /// This process's working directory and `PATH`, and the host's
    /// `ld.so` configuration.
    pub fn current() -> Result<Self> {
        Ok(Self {
            cwd: std::env::current_dir()?,
            path_var: std::env::var_os("PATH"),
            search: LibrarySearch::host(),
        })
    }
}

/// Builds the image for `opts`.
pub fn pack(opts: &RunOptions, host: &HostContext) -> Result<Packed> {
    // A linked application (`--app`) is the kernel itself: the image holds
    // only its files.
    let mut resolution = if opts.app.is_some() {
        Resolution::none()
    } else {
        let program = find_program(&opts.program, host.path_var.as_deref(), &host.cwd)?;
        resolve_program(&program, &host.search)?
    };
    let mut image = Image::new();
    for file in &resolution.files {
        let perm = match file.role {
            Role::Program | Role::Interpreter => Some(0o755),
            Role::Library { .. } => None,
        };
        image.add_host_file(&file.path, &file.path, perm)?;
    }

    let mut extra_objects = Vec::new();
    for mapping in &opts.files {
        let guest = guest_path_of(mapping, &host.cwd);
        if guest.starts_with(CONTROL_DIR) {
            bail!(
                "--file {}: {CONTROL_DIR} is reserved for Cloister",
                guest.display()
            );
        }
        let added = image.add_host_path(&host.cwd.join(&mapping.host), &guest)?;
        extra_objects.extend(added.into_iter().filter(|p| is_elf(p)));
    }
    let mut warnings =
        pack_libraries_of(&mut image, &mut resolution, &extra_objects, &host.search)?;
    warnings.extend(image.skipped.iter().map(|p| {
        format!(
            "left out {}: not a regular file, directory or symlink",
            p.display()
        )
    }));

    let argv0 = match &opts.app {
        Some(_) => opts.program.clone(),
        None => resolution.program().as_os_str().to_owned(),
    };
    let mut argv = vec![argv0];
    argv.extend(opts.args.iter().cloned());
    let mut env = environment(&opts.env);
    if !resolution.extra_library_dirs.is_empty() && !env.iter().any(|(k, _)| k == "LD_LIBRARY_PATH")
    {
        let dirs = std::env::join_paths(&resolution.extra_library_dirs)?;
        env.push(("LD_LIBRARY_PATH".into(), dirs));
    }
    let envp: Vec<OsString> = env.iter().map(|(k, v)| env_entry(k, v)).collect();
    let argv_bytes = encode_nul_terminated(&argv).map_err(|e| anyhow::anyhow!("argument {e}"))?;
    let envp_bytes =
        encode_nul_terminated(&envp).map_err(|e| anyhow::anyhow!("environment entry {e}"))?;
    image.add_file(Path::new(ARGV_PATH), argv_bytes, 0o444)?;
    image.add_file(Path::new(ENVP_PATH), envp_bytes, 0o444)?;
    for (path, contents) in [("/etc/passwd", PASSWD), ("/etc/group", GROUP)] {
        if image.get(path).is_none() {
            image.add_file(Path::new(path), contents.as_bytes().to_vec(), 0o644)?;
        }
    }
    if image.get("/tmp").is_none() {
        image.add_dir(Path::new("/tmp"), 0o1777)?;
    }
    Ok(Packed {
        image,
        resolution,
        argv,
        envp,
        warnings,
    })
}

/// Adds to `image`, at their host paths, the interpreter and libraries
/// that the host ELF files `objects` need (see [`add_libraries_of`]) and
/// that `image` does not hold yet, recording them in `resolution`. Returns
/// the warnings for what could not be found.
pub fn pack_libraries_of(
    image: &mut Image,
    resolution: &mut Resolution,
    objects: &[PathBuf],
    search: &LibrarySearch,
) -> Result<Vec<String>> {
    let already = resolution.files.len();
    let warnings = add_libraries_of(resolution, objects, search);
    for file in &resolution.files[already..] {
        if image.get(&file.path).is_none() {
            image.add_host_file(&file.path, &file.path, None)?;
        }
    }
    Ok(warnings)
}

/// Whether `path` starts with the ELF magic.
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\x7fELF")
}

/// `argv` as text for messages.
pub fn describe_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixture::{FixtureElf, Scratch};
    use crate::run::options::FileMapping;
    use crate::run::protocol::decode_nul_terminated;
    use libos::cpio::{CpioReader, FileType};
    use std::collections::BTreeMap;

    fn host_at(cwd: &Path) -> HostContext {
        HostContext {
            cwd: cwd.to_path_buf(),
            path_var: Some("/usr/bin:/bin".into()),
            search: LibrarySearch::host(),
        }
    }

    /// name -> (type, permissions, data), read back with libos's reader,
    /// checking that every entry's parent came before it.
    fn entries(packed: &Packed) -> BTreeMap<String, (FileType, u32, Vec<u8>)> {
        let archive = packed.image.to_cpio().unwrap();
        let mut seen = BTreeMap::new();
        for e in CpioReader::new(&archive) {
            let e = e.unwrap();
            let name = String::from_utf8(e.name.to_vec()).unwrap();
            if let Some((parent, _)) = name.rsplit_once('/') {
                assert!(
                    matches!(seen.get(parent), Some((FileType::Directory, _, _))),
                    "{name} before its directory"
                );
            }
            seen.insert(name, (e.file_type(), e.permissions(), e.data.to_vec()));
        }
        seen
    }

    #[test]
    fn the_image_for_true_has_the_program_its_libraries_and_the_control_files() {
        let mut opts = RunOptions::new("true", ["--version"]);
        opts.env = vec![("HOME".into(), "/root".into()), ("X".into(), "1".into())];
        let packed = pack(&opts, &host_at(Path::new("/"))).unwrap();
        let e = entries(&packed);
        let program = &e["usr/bin/true"];
        assert_eq!((program.0, program.1), (FileType::Regular, 0o755));
        assert_eq!(program.2, std::fs::read("/usr/bin/true").unwrap());
        let interp = &e["lib64/ld-linux-x86-64.so.2"];
        assert_eq!(interp.1, 0o755);
        assert_eq!(
            interp.2,
            std::fs::read("/lib64/ld-linux-x86-64.so.2").unwrap()
        );
        assert_eq!(
            e["lib64"].0,
            FileType::Directory,
            "a real directory, not the host's symlink"
        );
        assert_eq!(
            e["lib/x86_64-linux-gnu/libc.so.6"].2,
            std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap()
        );
        let argv = decode_nul_terminated(&e[".cloister/argv"].2).unwrap();
        assert_eq!(argv, ["/usr/bin/true", "--version"]);
        assert_eq!(packed.argv, argv);
        let envp = decode_nul_terminated(&e[".cloister/envp"].2).unwrap();
        assert_eq!(
            envp,
            ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "X=1"]
        );
        assert_eq!(e["etc/passwd"].2, PASSWD.as_bytes());
        assert_eq!(e["etc/group"].2, GROUP.as_bytes());
        assert_eq!((e["tmp"].0, e["tmp"].1), (FileType::Directory, 0o1777));
        assert!(packed.warnings.is_empty(), "{:?}", packed.warnings);
    }

    #[test]
    fn file_trees_are_added_with_their_libraries_and_user_files_win() {
        let s = Scratch::new("pack-files");
        s.write(
            "app/mods/ext.so",
            &FixtureElf::library("ext.so").needed("libz.so.1").build(),
            0o644,
        );
        s.write(
            "app/mods/broken.so",
            &FixtureElf::library("broken.so")
                .needed("libnope.so.7")
                .build(),
            0o644,
        );
        s.write("app/passwd", b"me:x:1000:1000::/:/bin/sh\n", 0o644);
        let mut opts = RunOptions::new("/usr/bin/true", Vec::<OsString>::new());
        opts.files = vec![
            FileMapping::parse("app/mods:/opt/mods").unwrap(),
            FileMapping::parse("app/passwd:/etc/passwd").unwrap(),
        ];
        let packed = pack(&opts, &host_at(&s.0)).unwrap();
        let e = entries(&packed);
        assert!(e.contains_key("opt/mods/ext.so"));
        assert!(
            e.contains_key("lib/x86_64-linux-gnu/libz.so.1"),
            "{:?}",
            e.keys()
        );
        assert_eq!(e["etc/passwd"].2, b"me:x:1000:1000::/:/bin/sh\n");
        assert_eq!(packed.warnings.len(), 1);
        assert!(
            packed.warnings[0].contains("libnope.so.7"),
            "{:?}",
            packed.warnings
        );
    }

    #[test]
    fn the_control_directory_is_reserved() {
        let s = Scratch::new("pack-reserved");
        s.write("f", b"x", 0o644);
        let mut opts = RunOptions::new("/usr/bin/true", Vec::<OsString>::new());
        opts.files = vec![FileMapping::parse("f:/.cloister/argv").unwrap()];
        let err = pack(&opts, &host_at(&s.0)).unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn a_static_program_gets_no_interpreter() {
        let s = Scratch::new("pack-static");
        s.write("bin/prog", &FixtureElf::static_executable().build(), 0o755);
        let opts = RunOptions::new("./bin/prog", ["a"]);
        let packed = pack(&opts, &host_at(&s.0)).unwrap();
        assert_eq!(packed.resolution.interpreter(), None);
        assert_eq!(packed.argv[0], s.0.join("bin/prog").as_os_str());
        let e = entries(&packed);
        assert!(!e.keys().any(|k| k.starts_with("lib")), "{:?}", e.keys());
    }
}
