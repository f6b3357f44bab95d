//! Manifests and images: `cloister run --manifest` and `cloister build`,
//! whose `run.sh` boots the image with plain QEMU (no `cloister` in the
//! loop): the program's output on stdout, its exit status as run.sh's,
//! and — with an `[audit]` section — a log in the RAM file that verifies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vm_tests::cloister_cli;

const MANIFEST: &str = r#"
[program]
path = "/bin/busybox"
args = ["sh", "-c", "echo manifest says $GREETING; exit 3"]
env = { GREETING = "hello" }

[vm]
memory = "128M"

[audit]
file = "run.audit"
size = "1M"
"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloister-image-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn cloister(args: &[&str], dir: &Path) -> Output {
    Command::new(cloister_cli())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run cloister")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_manifest_runs_with_its_arguments_environment_and_audit_log() {
    let dir = scratch("run");
    std::fs::write(dir.join("cloister.toml"), MANIFEST).unwrap();
    let out = cloister(&["run", "--manifest", "cloister.toml"], &dir);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "manifest says hello\n");
    // The audit file is relative to the manifest's folder.
    let o = cloister(
        &[
            "audit",
            "verify",
            "run.audit",
            "--key-file",
            "run.audit.key",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    // A wrong manifest names the key and the line.
    std::fs::write(
        dir.join("bad.toml"),
        "[program]\npath = \"ls\"\n[vm]\nmemry = 1\n",
    )
    .unwrap();
    let out = cloister(&["run", "--manifest", "bad.toml"], &dir);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("line 4") && err.contains("memry"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_built_image_boots_with_its_run_script_and_plain_qemu() {
    let run_sh = build_and_boot("build", MANIFEST);
    assert!(run_sh.contains("microvm"), "{run_sh}");
}

/// The same image on `q35` (`[vm] machine`): SeaBIOS, then PVH, the card
/// a `virtio-net-pci` function; the audit log in the RAM file verifies
/// there too.
#[test]
fn a_built_q35_image_boots_with_its_run_script_and_plain_qemu() {
    let manifest = MANIFEST.replace("[vm]\n", "[vm]\nmachine = \"q35\"\n");
    let run_sh = build_and_boot("build-q35", &manifest);
    assert!(
        run_sh.contains("'q35'") && run_sh.contains("virtio-net-pci"),
        "{run_sh}"
    );
}

/// Builds `manifest`'s image, boots its `run.sh` with plain QEMU, checks
/// the output, status and audit log; returns `run.sh`.
fn build_and_boot(name: &str, manifest: &str) -> String {
    let dir = scratch(name);
    std::fs::write(dir.join("cloister.toml"), manifest).unwrap();
    let out = cloister(&["build", "cloister.toml", "-o", "image"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let image = dir.join("image");
    for f in ["kernel.elf", "initramfs.cpio", "run.sh", "audit.key"] {
        assert!(image.join(f).is_file(), "{f} missing");
    }
    // Boot it from elsewhere, as a user would, with nothing but sh and QEMU.
    let run = Command::new("timeout")
        .args(["-k", "5", "300", "sh"])
        .arg(image.join("run.sh"))
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("sh run.sh");
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "manifest says hello\n");
    assert!(text(&std::fs::read(image.join("console.log")).unwrap()).contains("CLOISTER_EXIT=3"));
    let o = cloister(
        &[
            "audit",
            "verify",
            "image/audit.ram",
            "--scan",
            "--key-file",
            "image/audit.key",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("0 unsealed"),
        "{}",
        text(&o.stdout)
    );
    let run_sh = std::fs::read_to_string(image.join("run.sh")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    run_sh
}
