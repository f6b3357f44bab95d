//! The learning pass: which host files a program needs beyond what the
//! resolver finds (its interpreter and libraries), found by running it.
//!
//! Before the real run, `cloister run` boots the program with `learn` on
//! the kernel command line, no input, no published ports and its output
//! discarded. The kernel reports every lookup that failed with `ENOENT`
//! (`CLOISTER_MISSING=<path>`, `libos::syscall::missing`). A path that
//! exists on the host is packed — inside a language's library tree
//! (`/usr/lib/python3.11`, Perl's and Ruby's trees, `/usr/share/zoneinfo`,
//! …) the whole tree, as the program is searching it — and the pass
//! repeats until a run finds nothing new (at most [`MAX_ROUNDS`]). A round
//! ends when the program exits, [`ROUND_GRACE`] after it first looked for
//! something the host has, or after [`ROUND_IDLE`] without output (a
//! server that is up).
//!
//! The result is cached per program and arguments in
//! `$XDG_CACHE_HOME/cloister/learned` (or `~/.cache/…`), so the next run
//! starts at once; an entry whose files have gone is learnt again.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::options::{FileMapping, RunOptions};

/// Learning runs at most this many times.
pub const MAX_ROUNDS: usize = 16;
/// A round goes on this long after the first path the host has, to
/// collect the lookups that follow it.
pub const ROUND_GRACE: Duration = Duration::from_secs(1);
/// A round with no output for this long is over.
pub const ROUND_IDLE: Duration = Duration::from_secs(5);
/// A round is over after this long in any case.
pub const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// Trees a program searches as a whole: a missing path inside one packs
/// the tree (the prefix plus this many more components, for version
/// folders). A `python3` prefix also takes a version suffix (`python3.11`).
const TREES: &[(&str, usize)] = &[
    ("/usr/lib/python3/dist-packages", 0),
    ("/usr/lib/python3", 0),
    ("/usr/local/lib/python3", 0),
    ("/usr/share/perl", 1),
    ("/usr/share/perl5", 0),
    ("/usr/lib/x86_64-linux-gnu/perl", 1),
    ("/usr/lib/x86_64-linux-gnu/perl5", 1),
    ("/usr/lib/x86_64-linux-gnu/perl-base", 0),
    ("/usr/lib/ruby", 1),
    ("/usr/lib/x86_64-linux-gnu/ruby", 1),
    ("/usr/share/zoneinfo", 0),
    ("/usr/lib/ssl", 0),
    ("/etc/ssl", 0),
    ("/usr/share/ca-certificates", 0),
    ("/usr/lib/locale", 1),
    ("/usr/share/terminfo", 0),
    ("/usr/lib/x86_64-linux-gnu/gconv", 0),
];

/// What to pack for a missing `path` that exists on the host: the tree it
/// lies in, or the path itself.
pub fn pack_root(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    for &(prefix, more) in TREES {
        let Some(rest) = text.strip_prefix(prefix) else {
            continue;
        };
        let (base, rest) = if rest.is_empty() || rest.starts_with('/') {
            (prefix.to_string(), rest)
        } else if prefix.ends_with("python3") && rest.starts_with('.') {
            let end = rest.find('/').unwrap_or(rest.len());
            (format!("{prefix}{}", &rest[..end]), &rest[end..])
        } else {
            continue;
        };
        let mut root = PathBuf::from(base);
        for c in rest.split('/').filter(|c| !c.is_empty()).take(more) {
            root.push(c);
        }
        return root;
    }
    path.to_path_buf()
}

/// Whether a path a program looked for can be packed: it exists on the
/// host as a file, directory or symlink, outside the trees the guest
/// makes itself (`/dev`, `/proc`, `/sys`: a program looking for
/// `/dev/tty` wants the guest's, and a device node cannot be packed).
fn packable(path: &Path) -> bool {
    const GUEST_TREES: [&str; 3] = ["/dev", "/proc", "/sys"];
    if GUEST_TREES.iter().any(|t| path.starts_with(t)) {
        return false;
    }
    path.symlink_metadata().is_ok_and(|m| {
        let t = m.file_type();
        t.is_file() || t.is_dir() || t.is_symlink()
    })
}

/// Where learnt lists are kept: `$XDG_CACHE_HOME/cloister/learned`, else
/// `~/.cache/cloister/learned`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("cloister/learned"))
}

/// The cache file for `opts`'s program, arguments and files in `dir`.
fn cache_file(opts: &RunOptions, dir: &Path) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    opts.program.hash(&mut h);
    opts.args.hash(&mut h);
    for f in &opts.files {
        f.host.hash(&mut h);
        f.guest.hash(&mut h);
    }
    dir.join(format!("{:016x}.txt", h.finish()))
}

/// The cached list for `opts`, if every path in it still exists.
fn cached(opts: &RunOptions, dir: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(cache_file(opts, dir)).ok()?;
    let paths: Vec<PathBuf> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    paths
        .iter()
        .all(|p| p.symlink_metadata().is_ok())
        .then_some(paths)
}

fn store(opts: &RunOptions, dir: &Path, paths: &[PathBuf]) {
    let file = cache_file(opts, dir);
    let _ = std::fs::create_dir_all(dir);
    let text: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    let _ = std::fs::write(file, text);
}

/// The host paths to pack for `opts` (cached in `cache`, or learnt by
/// running it with `run_round`, which returns the missing paths one
/// learning run reported). `say` gets a line per packed path and why.
pub fn learn(
    opts: &RunOptions,
    cache: Option<&Path>,
    mut run_round: impl FnMut(&RunOptions) -> Result<Vec<PathBuf>>,
    mut say: impl FnMut(String),
) -> Result<Vec<PathBuf>> {
    if let Some(paths) = cache.and_then(|dir| cached(opts, dir)) {
        for p in &paths {
            say(format!("packing {} (learnt earlier, cached)", p.display()));
        }
        return Ok(paths);
    }
    let mut packed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut round_opts = opts.clone();
    for _ in 0..MAX_ROUNDS {
        let missing = run_round(&round_opts)?;
        let mut new = false;
        for path in missing {
            if !packable(&path) {
                continue;
            }
            let root = pack_root(&path);
            // A directory outside the known trees could be anything (a
            // lookup of `/usr/lib` itself): never pack one whole.
            if root == path && path.is_dir() {
                continue;
            }
            if packed.iter().any(|p| root.starts_with(p)) {
                continue;
            }
            say(format!(
                "packing {} (the program looked for {})",
                root.display(),
                path.display()
            ));
            round_opts.files.push(FileMapping {
                host: root.clone(),
                guest: None,
            });
            packed.insert(root);
            new = true;
        }
        if !new {
            break;
        }
    }
    let paths: Vec<PathBuf> = packed.into_iter().collect();
    if let Some(dir) = cache {
        store(opts, dir, &paths);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_trees_are_packed_whole() {
        let r = |p: &str| pack_root(Path::new(p)).display().to_string();
        assert_eq!(
            r("/usr/lib/python3.11/encodings/__init__.py"),
            "/usr/lib/python3.11"
        );
        assert_eq!(r("/usr/lib/python3.11"), "/usr/lib/python3.11");
        assert_eq!(
            r("/usr/lib/python3/dist-packages/yaml/x.py"),
            "/usr/lib/python3/dist-packages"
        );
        assert_eq!(r("/usr/share/perl/5.36/POSIX.pm"), "/usr/share/perl/5.36");
        assert_eq!(
            r("/usr/lib/x86_64-linux-gnu/perl/5.36/Digest/SHA.pm"),
            "/usr/lib/x86_64-linux-gnu/perl/5.36"
        );
        assert_eq!(r("/usr/share/zoneinfo/Europe/Paris"), "/usr/share/zoneinfo");
        assert_eq!(r("/etc/ssl/certs/ca.pem"), "/etc/ssl");
        assert_eq!(r("/etc/hosts"), "/etc/hosts");
        assert_eq!(r("/usr/lib/pythonista/x"), "/usr/lib/pythonista/x");
    }

    #[test]
    fn rounds_repeat_until_nothing_new_and_the_result_is_cached() {
        let dir = crate::run::fixture::Scratch::new("learn");
        let cache = dir.0.join("cache");
        let opts = RunOptions::new("/usr/bin/env", ["x"]);
        let here = dir.0.join("data.txt");
        std::fs::write(&here, b"x").unwrap();
        let mut rounds = 0;
        let mut said = Vec::new();
        let paths = learn(
            &opts,
            Some(&cache),
            |o| {
                rounds += 1;
                Ok(match rounds {
                    // Round 1 finds a host file, and one the host lacks too.
                    1 => vec![
                        here.clone(),
                        PathBuf::from("/nonexistent/cloister"),
                        PathBuf::from("/usr/lib"),
                        // Devices are the guest's own, never packed.
                        PathBuf::from("/dev/null"),
                        PathBuf::from("/proc/self/status"),
                    ],
                    // Round 2 has it packed and asks again: nothing new.
                    _ => {
                        assert!(o.files.iter().any(|f| f.host == here));
                        vec![here.clone()]
                    }
                })
            },
            |s| said.push(s),
        )
        .unwrap();
        assert_eq!(rounds, 2);
        assert!(
            !paths.iter().any(|p| p.is_dir()),
            "no directory outside a tree"
        );
        assert_eq!(paths, vec![here.clone()]);
        assert!(said[0].contains("data.txt"), "{said:?}");
        // The second time comes from the cache: no round at all.
        let again = learn(&opts, Some(&cache), |_| panic!("ran again"), |_| {}).unwrap();
        assert_eq!(again, paths);
        // A cached file that went away is learnt again.
        std::fs::remove_file(&here).unwrap();
        let mut ran = false;
        learn(
            &opts,
            Some(&cache),
            |_| {
                ran = true;
                Ok(Vec::new())
            },
            |_| {},
        )
        .unwrap();
        assert!(ran);
    }
}
