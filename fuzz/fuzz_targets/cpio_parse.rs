//! Fuzz the cpio newc reader and the initramfs unpacker: any input must
//! give entries or a clean `CpioError`, never a panic, and whatever
//! parses must re-encode to an archive that parses the same way.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use libos::cpio::{CpioReader, CpioWriter, EntryMeta};
use libos::fs::{DeviceRegistry, Vfs};
use libos::platform::mock::MockPlatform;

fuzz_target!(|data: &[u8]| {
    let mut writer = CpioWriter::new();
    let mut names = Vec::new();
    for entry in CpioReader::new(data) {
        let Ok(entry) = entry else { break };
        let meta = EntryMeta {
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            nlink: entry.nlink,
            mtime: entry.mtime,
            rdev: entry.rdev,
        };
        writer.push(entry.name, &meta, entry.data).expect("parsed entries re-encode");
        names.push((entry.name.to_vec(), entry.data.to_vec()));
    }
    let again = writer.finish();
    let reparsed: Vec<_> = CpioReader::new(&again)
        .map(|e| e.map(|e| (e.name.to_vec(), e.data.to_vec())))
        .collect::<Result<_, _>>()
        .expect("re-encoded archive parses");
    assert_eq!(reparsed, names);

    let platform = Arc::new(MockPlatform::new());
    let devices = DeviceRegistry::standard(platform.clone(), platform.clone());
    let vfs = Vfs::new(platform, devices);
    let _ = vfs.unpack_cpio(data);
});
