//! VFS tests over the mock platform.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::cpio::{CpioWriter, EntryMeta};
use crate::error::Errno;
use crate::platform::mock::MockPlatform;

fn setup() -> (Arc<MockPlatform>, Vfs) {
    let p = Arc::new(MockPlatform::new());
    let devices = DeviceRegistry::standard(p.clone(), p.clone());
    (p.clone(), Vfs::new(p, devices))
}

fn errno<T: core::fmt::Debug>(r: crate::error::Result<T>) -> Errno {
    r.unwrap_err().errno()
}

#[test]
fn unpacked_directories_keep_the_archives_times_after_their_entries() {
    // Creating `d/f` after `d` changes `d`'s time; the archive's comes
    // back once everything is in (what `ls -la` of a `--file` directory
    // shows, as Linux's initramfs does).
    let (_, vfs) = setup();
    let dir_at = |mtime| EntryMeta {
        mtime,
        ..EntryMeta::directory(0o755)
    };
    let mut w = CpioWriter::new();
    w.push(b".", &dir_at(1_600_000_000), b"").unwrap();
    w.push(b"d", &dir_at(1_700_000_000), b"").unwrap();
    w.push(b"d/e", &dir_at(1_700_000_100), b"").unwrap();
    w.push(
        b"d/e/f",
        &EntryMeta {
            mtime: 1_700_000_200,
            ..EntryMeta::regular(0o644)
        },
        b"x",
    )
    .unwrap();
    vfs.unpack_cpio(&w.finish()).unwrap();
    let root = vfs.root().clone();
    let time =
        |path: &[u8]| vfs.resolve(&root, path, true).unwrap().metadata().mtime_ns / 1_000_000_000;
    assert_eq!(time(b"/"), 1_600_000_000);
    assert_eq!(time(b"/d"), 1_700_000_000);
    assert_eq!(time(b"/d/e"), 1_700_000_100);
    assert_eq!(time(b"/d/e/f"), 1_700_000_200);
}

#[test]
fn create_write_read_truncate() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    let f = vfs.create_file(&root, b"/hello.txt", 0o644).unwrap();
    assert_eq!(f.write_at(0, b"hello", 1).unwrap(), 5);
    assert_eq!(f.write_at(8, b"!", 2).unwrap(), 1);
    let mut buf = [0xffu8; 16];
    assert_eq!(f.read_at(0, &mut buf).unwrap(), 9);
    assert_eq!(&buf[..9], b"hello\0\0\0!");
    assert_eq!(f.read_at(9, &mut buf).unwrap(), 0);
    assert_eq!(f.read_at(u64::MAX, &mut buf).unwrap(), 0);
    let md = f.metadata();
    assert_eq!(
        (md.size, md.mode, md.nlink, md.mtime_ns),
        (9, 0o100644, 1, 2)
    );
    f.truncate(2, 3).unwrap();
    assert_eq!(f.metadata().size, 2);
    assert_eq!(errno(f.write_at(u64::MAX - 1, b"ab", 4)), Errno::EINVAL);
    assert_eq!(
        errno(vfs.create_file(&root, b"/hello.txt", 0o644)),
        Errno::EEXIST
    );
    assert!(Arc::ptr_eq(
        &vfs.resolve(&root, b"hello.txt", true).unwrap(),
        &f
    ));
}

#[test]
fn resolution_errors() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    vfs.mkdir(&root, b"/a", 0o755).unwrap();
    vfs.mkdir(&root, b"/a/b", 0o755).unwrap();
    vfs.create_file(&root, b"/a/f", 0o644).unwrap();
    let a = vfs.resolve(&root, b"/a", true).unwrap();
    assert_eq!(
        vfs.resolve(&a, b"b/../f", true).unwrap().ino(),
        vfs.resolve(&root, b"/a/f", true).unwrap().ino()
    );
    assert!(Arc::ptr_eq(
        &vfs.resolve(&a, b"../../..", true).unwrap(),
        &root
    ));
    assert!(Arc::ptr_eq(
        &vfs.resolve(&a, b"./b/.", true).unwrap().parent().unwrap(),
        &a
    ));
    assert_eq!(errno(vfs.resolve(&root, b"/nope", true)), Errno::ENOENT);
    assert_eq!(errno(vfs.resolve(&root, b"", true)), Errno::ENOENT);
    assert_eq!(errno(vfs.resolve(&root, b"/a/f/x", true)), Errno::ENOTDIR);
    assert_eq!(errno(vfs.resolve(&root, b"/a/f/", true)), Errno::ENOTDIR);
    let long = vec![b'x'; 256];
    assert_eq!(errno(vfs.resolve(&root, &long, true)), Errno::ENAMETOOLONG);
    let very_long = vec![b'/'; 5000];
    assert_eq!(
        errno(vfs.resolve(&root, &very_long, true)),
        Errno::ENAMETOOLONG
    );
    assert_eq!(
        vfs.path_of(&vfs.resolve(&root, b"/a/b", true).unwrap())
            .unwrap(),
        b"/a/b"
    );
    assert_eq!(vfs.path_of(&root).unwrap(), b"/");
}

#[test]
fn symlinks_and_loops() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    vfs.mkdir(&root, b"/usr", 0o755).unwrap();
    vfs.mkdir(&root, b"/usr/bin", 0o755).unwrap();
    let t = vfs.create_file(&root, b"/usr/bin/true", 0o755).unwrap();
    vfs.symlink(&root, b"usr/bin", b"/bin").unwrap();
    vfs.symlink(&root, b"/usr/bin/true", b"/usr/bin/alias")
        .unwrap();
    assert!(Arc::ptr_eq(
        &vfs.resolve(&root, b"/bin/true", true).unwrap(),
        &t
    ));
    assert!(Arc::ptr_eq(
        &vfs.resolve(&root, b"/bin/alias", true).unwrap(),
        &t
    ));
    let link = vfs.resolve(&root, b"/bin/alias", false).unwrap();
    assert_eq!(link.file_type(), InodeType::Symlink);
    assert_eq!(link.read_link().unwrap(), b"/usr/bin/true");
    assert_eq!(link.metadata().mode, 0o120777);
    // A trailing slash follows the link.
    assert!(vfs.resolve(&root, b"/bin/", false).unwrap().is_dir());
    vfs.symlink(&root, b"loop2", b"/loop1").unwrap();
    vfs.symlink(&root, b"loop1", b"/loop2").unwrap();
    assert_eq!(errno(vfs.resolve(&root, b"/loop1", true)), Errno::ELOOP);
    assert_eq!(
        vfs.resolve(&root, b"/loop1", false).unwrap().file_type(),
        InodeType::Symlink
    );
    vfs.symlink(&root, b"/missing", b"/dangling").unwrap();
    assert_eq!(errno(vfs.resolve(&root, b"/dangling", true)), Errno::ENOENT);
    // A chain of exactly 40 links resolves; 41 does not.
    vfs.create_file(&root, b"/l0", 0o644).unwrap();
    for i in 1..=41 {
        let target = alloc::format!("l{}", i - 1);
        let name = alloc::format!("/l{i}");
        vfs.symlink(&root, target.as_bytes(), name.as_bytes())
            .unwrap();
    }
    assert!(vfs.resolve(&root, b"/l40", true).is_ok());
    assert_eq!(errno(vfs.resolve(&root, b"/l41", true)), Errno::ELOOP);
}

#[test]
fn mkdir_rmdir_unlink_nlink() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    let root_links = root.metadata().nlink;
    let d = vfs.mkdir(&root, b"/d", 0o700).unwrap();
    assert_eq!(root.metadata().nlink, root_links + 1);
    assert_eq!(d.metadata().mode, 0o040700);
    assert_eq!(d.metadata().nlink, 2);
    assert_eq!(errno(vfs.mkdir(&root, b"/d", 0o755)), Errno::EEXIST);
    assert_eq!(errno(vfs.mkdir(&root, b"/", 0o755)), Errno::EEXIST);
    assert_eq!(errno(vfs.mkdir(&root, b"/x/y", 0o755)), Errno::ENOENT);
    vfs.mkdir(&root, b"/d/sub/", 0o755).unwrap();
    assert_eq!(d.metadata().nlink, 3);
    let f = vfs.create_file(&root, b"/d/f", 0o644).unwrap();
    assert_eq!(errno(vfs.rmdir(&root, b"/d")), Errno::ENOTEMPTY);
    assert_eq!(errno(vfs.rmdir(&root, b"/d/f")), Errno::ENOTDIR);
    assert_eq!(errno(vfs.unlink(&root, b"/d/sub")), Errno::EISDIR);
    assert_eq!(errno(vfs.rmdir(&root, b"/")), Errno::EBUSY);
    assert_eq!(errno(vfs.rmdir(&root, b"/d/.")), Errno::EINVAL);
    vfs.unlink(&root, b"/d/f").unwrap();
    // The open inode survives its unlinking.
    assert_eq!(f.metadata().nlink, 0);
    assert_eq!(f.write_at(0, b"x", 0).unwrap(), 1);
    vfs.rmdir(&root, b"/d/sub").unwrap();
    assert_eq!(d.metadata().nlink, 2);
    vfs.rmdir(&root, b"/d").unwrap();
    assert_eq!(root.metadata().nlink, root_links);
    assert_eq!(errno(vfs.unlink(&root, b"/d/f")), Errno::ENOENT);
}

#[test]
fn rename_rules() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    let a = vfs.create_file(&root, b"/a", 0o644).unwrap();
    let b = vfs.create_file(&root, b"/b", 0o644).unwrap();
    vfs.mkdir(&root, b"/dir", 0o755).unwrap();
    vfs.mkdir(&root, b"/dir/inner", 0o755).unwrap();
    vfs.mkdir(&root, b"/empty", 0o755).unwrap();
    vfs.rename(&root, b"/a", &root, b"/b").unwrap();
    assert!(Arc::ptr_eq(&vfs.resolve(&root, b"/b", true).unwrap(), &a));
    assert_eq!(b.metadata().nlink, 0);
    assert_eq!(errno(vfs.resolve(&root, b"/a", true)), Errno::ENOENT);
    assert_eq!(
        errno(vfs.rename(&root, b"/b", &root, b"/dir")),
        Errno::EISDIR
    );
    assert_eq!(
        errno(vfs.rename(&root, b"/dir", &root, b"/b")),
        Errno::ENOTDIR
    );
    assert_eq!(
        errno(vfs.rename(&root, b"/empty", &root, b"/dir")),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        errno(vfs.rename(&root, b"/dir", &root, b"/dir/inner/x")),
        Errno::EINVAL
    );
    vfs.rename(&root, b"/b", &root, b"/b").unwrap();
    // Move a directory under another and check `..` and link counts.
    let root_links = root.metadata().nlink;
    vfs.rename(&root, b"/dir", &root, b"/empty/moved").unwrap();
    let moved = vfs.resolve(&root, b"/empty/moved", true).unwrap();
    assert_eq!(
        vfs.path_of(&moved.lookup(b"inner").unwrap()).unwrap(),
        b"/empty/moved/inner"
    );
    assert_eq!(root.metadata().nlink, root_links - 1);
    assert_eq!(
        vfs.resolve(&root, b"/empty", true)
            .unwrap()
            .metadata()
            .nlink,
        3
    );
    assert_eq!(moved.metadata().nlink, 3);
    assert_eq!(
        errno(vfs.rename(&root, b"/nope", &root, b"/x")),
        Errno::ENOENT
    );
}

#[test]
fn read_dir_lists_dots_then_sorted_names() {
    let (_, vfs) = setup();
    let root = vfs.root().clone();
    vfs.mkdir(&root, b"/etc", 0o755).unwrap();
    vfs.create_file(&root, b"/etc/passwd", 0o644).unwrap();
    vfs.symlink(&root, b"x", b"/etc/alink").unwrap();
    let etc = vfs.resolve(&root, b"/etc", true).unwrap();
    let names: Vec<(Vec<u8>, InodeType)> = etc
        .read_dir(0)
        .unwrap()
        .into_iter()
        .map(|(n, _, t)| (n, t))
        .collect();
    assert_eq!(
        names,
        vec![
            (b".".to_vec(), InodeType::Directory),
            (b"..".to_vec(), InodeType::Directory),
            (b"alink".to_vec(), InodeType::Symlink),
            (b"passwd".to_vec(), InodeType::Regular),
        ]
    );
    assert_eq!(etc.read_dir(1).unwrap()[0].1, root.ino());
    assert_eq!(etc.read_dir(4).unwrap().len(), 0);
}

#[test]
fn devices() {
    let (p, vfs) = setup();
    let root = vfs.root().clone();
    let mut buf = [0xaau8; 32];
    let null = vfs.resolve(&root, b"/dev/null", true).unwrap();
    assert_eq!(null.read_at(0, &mut buf).unwrap(), 0);
    assert_eq!(null.write_at(0, b"gone", 0).unwrap(), 4);
    assert_eq!(null.metadata().mode, 0o020666);
    assert_eq!(null.metadata().rdev, (1, 3));
    let zero = vfs.resolve(&root, b"/dev/zero", true).unwrap();
    assert_eq!(zero.read_at(0, &mut buf).unwrap(), 32);
    assert_eq!(buf, [0; 32]);
    let urandom = vfs.resolve(&root, b"/dev/urandom", true).unwrap();
    let mut r1 = [0u8; 32];
    let mut r2 = [0u8; 32];
    urandom.read_at(0, &mut r1).unwrap();
    urandom.read_at(0, &mut r2).unwrap();
    assert_ne!(r1, r2);
    assert_ne!(r1, [0; 32]);
    let console = vfs.resolve(&root, b"/dev/console", true).unwrap();
    console.write_at(0, b"hi there\n", 0).unwrap();
    assert_eq!(p.console_output(), b"hi there\n");
    assert!(console.device().unwrap().is_tty());
    assert!(!null.device().unwrap().is_tty());
    // A number no device has: the node exists, opening it is ENXIO.
    let sda = vfs.mknod_char(&root, b"/dev/sda", 0o600, (8, 0)).unwrap();
    assert_eq!(sda.metadata().rdev, (8, 0));
    assert_eq!(
        sda.device().unwrap().open().unwrap_err().errno(),
        Errno::ENXIO
    );
}

#[test]
fn unpacks_initramfs() {
    let (p, vfs) = setup();
    let mut w = CpioWriter::new();
    w.add_dir(b".", 0o755).unwrap();
    w.add_file(b"./usr/bin/hello", 0o755, b"\x7fELF...")
        .unwrap();
    w.add_symlink(b"bin", b"usr/bin").unwrap();
    w.push(
        b"etc/passwd",
        &EntryMeta {
            uid: 0,
            gid: 42,
            mtime: 1_700_000_000,
            ..EntryMeta::regular(0o600)
        },
        b"root:x:0:0::/root:/bin/sh\n",
    )
    .unwrap();
    w.add_char_device(b"dev/console", 0o600, 5, 1).unwrap();
    w.add_char_device(b"dev/sda", 0o600, 8, 0).unwrap();
    w.push(
        b"run/fifo",
        &EntryMeta {
            mode: 0o010644,
            ..EntryMeta::regular(0)
        },
        b"",
    )
    .unwrap();
    let report = vfs.unpack_cpio(&w.finish()).unwrap();
    assert_eq!(report.entries, 5);
    assert_eq!(report.skipped, 2);
    let root = vfs.root().clone();
    let hello = vfs.resolve(&root, b"/bin/hello", true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(hello.read_at(0, &mut buf).unwrap(), 7);
    assert_eq!(hello.metadata().mode, 0o100755);
    assert!(vfs.resolve(&root, b"/usr", true).unwrap().is_dir());
    let passwd = vfs.resolve(&root, b"/etc/passwd", true).unwrap().metadata();
    assert_eq!((passwd.mode, passwd.gid), (0o100600, 42));
    assert_eq!(passwd.mtime_ns, 1_700_000_000 * 1_000_000_000);
    let console = vfs.resolve(&root, b"/dev/console", true).unwrap();
    assert_eq!(console.metadata().mode, 0o020600);
    console.write_at(0, b"x", 0).unwrap();
    assert_eq!(p.console_output(), b"x");
    assert_eq!(errno(vfs.resolve(&root, b"/dev/sda", true)), Errno::ENOENT);

    let mut bad = CpioWriter::new().finish();
    bad[0] = b'X';
    let e = vfs.unpack_cpio(&bad).unwrap_err();
    assert_eq!((e.errno(), e.message()), (Errno::EINVAL, "cpio: bad magic"));
}

#[test]
fn hard_links_from_cpio_and_link() {
    let (_, vfs) = setup();
    let mut w = CpioWriter::new();
    let linked = EntryMeta {
        nlink: 2,
        ..EntryMeta::regular(0o755)
    };
    // newc style: the data travels with the last link only. The writer
    // numbers inodes itself, so patch the second header's ino to match.
    w.push(b"bin/a", &linked, b"").unwrap();
    w.push(b"bin/b", &linked, b"shared").unwrap();
    let mut archive = w.finish();
    let second = crate::cpio::CpioReader::new(&archive)
        .nth(1)
        .unwrap()
        .unwrap()
        .offset;
    archive[second + 6..second + 14].copy_from_slice(b"00000001");
    let report = vfs.unpack_cpio(&archive).unwrap();
    assert_eq!(report.entries, 2);
    let root = vfs.root().clone();
    let a = vfs.resolve(&root, b"/bin/a", true).unwrap();
    let b = vfs.resolve(&root, b"/bin/b", true).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.metadata().nlink, 2);
    let mut buf = [0u8; 8];
    assert_eq!(a.read_at(0, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"shared");

    vfs.link(&root, b"/bin/a", &root, b"/bin/c", false).unwrap();
    assert_eq!(b.metadata().nlink, 3);
    assert_eq!(
        errno(vfs.link(&root, b"/bin/a", &root, b"/bin/c", false)),
        Errno::EEXIST
    );
    assert_eq!(
        errno(vfs.link(&root, b"/bin", &root, b"/d2", false)),
        Errno::EPERM
    );
    assert_eq!(
        errno(vfs.link(&root, b"/nope", &root, b"/x", false)),
        Errno::ENOENT
    );
    vfs.unlink(&root, b"/bin/a").unwrap();
    vfs.rename(&root, b"/bin/b", &root, b"/b2").unwrap();
    assert_eq!(a.metadata().nlink, 2);
    vfs.symlink(&root, b"/b2", b"/sl").unwrap();
    vfs.link(&root, b"/sl", &root, b"/hard_to_link", false)
        .unwrap();
    assert_eq!(
        vfs.resolve(&root, b"/hard_to_link", false)
            .unwrap()
            .file_type(),
        InodeType::Symlink
    );
    vfs.link(&root, b"/sl", &root, b"/hard_to_target", true)
        .unwrap();
    assert_eq!(a.metadata().nlink, 3);
}
