//! The `/proc` and `/sys` entries glibc and common programs read, as
//! synthetic files in the VFS.
//!
//! [`install`] creates them once at boot, some reading through a
//! [`ProcessInfo`] the kernel implements. The per-process entries
//! (`/proc/<pid>/…`, `/proc/self`) are [`super::procpid`]'s; here only
//! `/proc/1/environ` (the first program's environment), a `/proc/self`
//! link to `/proc/1` for relative lookups, and [`set_exe`], which points
//! `/proc/1/exe` at the first program.
//!
//! | path | contents |
//! |------|----------|
//! | `/proc/1/environ` | NUL-separated, from [`ProcessInfo`] |
//! | `/proc/1/exe` | symlink to the program |
//! | `/proc/meminfo` | `MemTotal`, `MemFree`, `MemAvailable` |
//! | `/proc/cpuinfo` | one `processor` stanza |
//! | `/proc/sys/kernel/{ostype,osrelease,hostname,pid_max}` | as `uname` |
//! | `/proc/sys/vm/overcommit_memory` | `0` |
//! | `/proc/sys/net/core/somaxconn` | `4096`, the listen backlog cap |
//! | `/proc/sys/kernel/random/{boot_id,uuid}` | random UUIDs |
//! | `/sys/devices/system/cpu/{online,possible}` | `0` (one vCPU) |

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::SyntheticFile;
use super::vfs::Vfs;
use crate::error::Result;
use crate::random::Csprng;

/// What `/proc/1/environ` and `/proc/meminfo` report, provided by the
/// kernel.
pub trait ProcessInfo: Send + Sync {
    /// The first program's environment, each `KEY=value` followed by NUL.
    fn environ(&self) -> Vec<u8>;
    /// `(total, free)` memory in bytes.
    fn memory_bytes(&self) -> (u64, u64);
}

/// A synthetic file from a closure.
struct Generated<F>(F);

impl<F: Fn() -> Vec<u8> + Send + Sync> SyntheticFile for Generated<F> {
    fn contents(&self) -> Vec<u8> {
        (self.0)()
    }
}

fn file(vfs: &Vfs, path: &str, f: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> Result<()> {
    let root = vfs.root().clone();
    vfs.add_synthetic(&root, path.as_bytes(), 0o444, Arc::new(Generated(f)))?;
    Ok(())
}

fn uuid(rng: &dyn Csprng) -> Vec<u8> {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: Vec<u8> = b
        .iter()
        .flat_map(|v| format!("{v:02x}").into_bytes())
        .collect();
    let mut out = Vec::with_capacity(37);
    for (i, chunk) in [0..8, 8..12, 12..16, 16..20, 20..32]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&hex[chunk]);
    }
    out.push(b'\n');
    out
}

/// Creates `/proc` and `/sys` entries. `info` answers for the process,
/// `rng` makes the UUIDs.
pub fn install(vfs: &Vfs, info: Arc<dyn ProcessInfo>, rng: Arc<dyn Csprng>) -> Result<()> {
    let root = vfs.root().clone();
    for dir in [
        "/proc/1",
        "/proc/sys/kernel/random",
        "/proc/sys/vm",
        "/proc/sys/net/core",
        "/sys/devices/system/cpu/cpu0",
    ] {
        vfs.mkdir_all(dir.as_bytes(), 0o555)?;
    }
    vfs.symlink(&root, b"1", b"/proc/self")?;
    let i = info.clone();
    file(vfs, "/proc/1/environ", move || i.environ())?;
    let i = info;
    file(vfs, "/proc/meminfo", move || {
        let (total, free) = i.memory_bytes();
        format!(
            "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\n",
            total / 1024,
            free / 1024,
            free / 1024
        )
        .into_bytes()
    })?;
    file(vfs, "/proc/cpuinfo", || {
        b"processor\t: 0\nvendor_id\t: Cloister\nmodel name\t: Cloister vCPU\ncpu cores\t: 1\n\n"
            .to_vec()
    })?;
    let [_, _, release, _, _, _] = crate::syscall::system::UTSNAME;
    file(vfs, "/proc/sys/kernel/ostype", || b"Linux\n".to_vec())?;
    file(vfs, "/proc/sys/kernel/osrelease", move || {
        format!("{release}\n").into_bytes()
    })?;
    file(vfs, "/proc/sys/kernel/hostname", || b"cloister\n".to_vec())?;
    file(vfs, "/proc/sys/kernel/pid_max", || b"4194304\n".to_vec())?;
    file(vfs, "/proc/sys/vm/overcommit_memory", || b"0\n".to_vec())?;
    file(vfs, "/proc/sys/net/core/somaxconn", || b"4096\n".to_vec())?;
    let boot_id = uuid(&*rng);
    file(vfs, "/proc/sys/kernel/random/boot_id", move || {
        boot_id.clone()
    })?;
    file(vfs, "/proc/sys/kernel/random/uuid", move || uuid(&*rng))?;
    file(vfs, "/sys/devices/system/cpu/online", || b"0\n".to_vec())?;
    file(vfs, "/sys/devices/system/cpu/possible", || b"0\n".to_vec())?;
    Ok(())
}

/// Points `/proc/1/exe` at `path` (call at `execve`).
pub fn set_exe(vfs: &Vfs, path: &[u8]) -> Result<()> {
    let root = vfs.root().clone();
    let _ = vfs.unlink(&root, b"/proc/1/exe");
    vfs.symlink(&root, path, b"/proc/1/exe")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::DeviceRegistry;
    use crate::platform::mock::MockPlatform;

    struct Info;

    impl ProcessInfo for Info {
        fn environ(&self) -> Vec<u8> {
            b"HOME=/\0".to_vec()
        }
        fn memory_bytes(&self) -> (u64, u64) {
            (512 << 20, 256 << 20)
        }
    }

    fn read(vfs: &Vfs, path: &str) -> Vec<u8> {
        let root = vfs.root().clone();
        let inode = vfs.resolve(&root, path.as_bytes(), true).unwrap();
        let mut buf = alloc::vec![0u8; 4096];
        let n = inode.read_at(0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn proc_entries() {
        let p = Arc::new(MockPlatform::new());
        let vfs = Vfs::new(p.clone(), DeviceRegistry::standard(p.clone(), p.clone()));
        install(&vfs, Arc::new(Info), p.clone()).unwrap();
        set_exe(&vfs, b"/usr/bin/python3").unwrap();
        set_exe(&vfs, b"/usr/bin/python3.11").unwrap();
        let root = vfs.root().clone();
        let exe = vfs.resolve(&root, b"/proc/self/exe", false).unwrap();
        assert_eq!(exe.read_link().unwrap(), b"/usr/bin/python3.11");
        assert_eq!(read(&vfs, "/proc/self/environ"), b"HOME=/\0");
        assert_eq!(
            read(&vfs, "/proc/meminfo")[..34],
            *b"MemTotal:         524288 kB\nMemFre"
        );
        assert_eq!(
            read(&vfs, "/proc/sys/kernel/osrelease"),
            b"6.1.0-cloister\n"
        );
        assert_eq!(read(&vfs, "/sys/devices/system/cpu/online"), b"0\n");
        let boot_id = read(&vfs, "/proc/sys/kernel/random/boot_id");
        assert_eq!(boot_id.len(), 37);
        assert_eq!(boot_id[14], b'4');
        assert_eq!(read(&vfs, "/proc/sys/kernel/random/boot_id"), boot_id);
        assert_ne!(
            read(&vfs, "/proc/sys/kernel/random/uuid"),
            read(&vfs, "/proc/sys/kernel/random/uuid")
        );
        // Read-only, size 0, readable from an offset.
        let env = vfs.resolve(&root, b"/proc/1/environ", true).unwrap();
        assert_eq!(env.metadata().size, 0);
        assert_eq!(env.metadata().mode, 0o100444);
        assert_eq!(
            env.write_at(0, b"x", 0).unwrap_err().errno(),
            crate::error::Errno::EACCES
        );
        let mut buf = [0u8; 8];
        assert_eq!(env.read_at(2, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"ME=/\0");
        assert_eq!(env.read_at(1000, &mut buf).unwrap(), 0);
    }
}
