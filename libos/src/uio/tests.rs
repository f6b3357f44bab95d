//! The user cursors stop exactly at the first page that faults, across
//! `iovec` pieces, and a source's check finds an unmapped page.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::error::Errno;
use crate::platform::mock::MockPlatform;

/// Two mapped pages at 0x10000, then a hole at 0x12000.
fn two_pages() -> MockPlatform {
    let m = MockPlatform::new();
    m.map(0x10000, 0x2000);
    m
}

#[test]
fn a_sink_stops_at_the_first_page_that_faults() {
    let m = two_pages();
    // 100 bytes before the hole, then the hole.
    let pieces = [(0x12000 - 100, 300)];
    let mut sink = UserSink::new(&m, &pieces).unwrap();
    assert_eq!(sink.room(), 300);
    let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    assert_eq!(sink.put(&data), 100);
    assert!(sink.faulted());
    assert_eq!(sink.room(), 0);
    assert_eq!(sink.written(), 100);
    assert_eq!(sink.put(&data), 0);
    let mut got = vec![0u8; 100];
    m.read_user(0x12000 - 100, &mut got).unwrap();
    assert_eq!(got, data[..100]);
}

#[test]
fn a_sink_fills_its_pieces_in_order() {
    let m = two_pages();
    let pieces = [(0x10010, 3), (0x10100, 0), (0x11ffe, 5)];
    let mut sink = UserSink::new(&m, &pieces).unwrap();
    assert_eq!(sink.put(b"ab"), 2);
    assert!(!sink.faulted());
    // "c" ends the first piece, the empty one is skipped, and the last
    // runs into the hole after "de": "f" lands nowhere.
    assert_eq!(sink.put(b"cdef"), 3);
    assert!(sink.faulted());
    let mut a = [0u8; 3];
    m.read_user(0x10010, &mut a).unwrap();
    assert_eq!(&a, b"abc");
    let mut b = [0u8; 2];
    m.read_user(0x11ffe, &mut b).unwrap();
    assert_eq!(&b, b"de");
    assert_eq!(sink.written(), 5);
}

#[test]
fn a_source_reads_up_to_the_fault_and_its_check_finds_it() {
    let m = two_pages();
    m.write_user(0x11ff0, &[7u8; 16]).unwrap();
    let pieces = [(0x11ff0, 40)];
    let src = UserSource::new(&m, &pieces).unwrap();
    assert_eq!(src.check().unwrap_err().errno(), Errno::EFAULT);
    let mut src = src;
    let mut buf = [0u8; 64];
    assert_eq!(src.take(&mut buf), 16);
    assert!(src.faulted());
    assert_eq!(src.left(), 0);
    assert_eq!(&buf[..16], &[7u8; 16]);
    let ok = [(0x10000, 0x2000)];
    assert!(UserSource::new(&m, &ok).unwrap().check().is_ok());
}

#[test]
fn buffers_outside_user_space_are_refused_up_front() {
    let m = two_pages();
    let e = UserSink::new(&m, &[(u64::MAX - 4, 10)]).unwrap_err();
    assert_eq!(e.errno(), Errno::EFAULT);
    let e = UserSource::new(&m, &[(0, 1)]).unwrap_err();
    assert_eq!(e.errno(), Errno::EFAULT);
}

#[test]
fn kernel_slices_are_sinks_and_sources() {
    let mut buf = [0u8; 4];
    let mut sink = SliceSink::new(&mut buf);
    assert_eq!(sink.put(b"xyz"), 3);
    assert_eq!(sink.put(b"12"), 1);
    assert_eq!(sink.room(), 0);
    assert_eq!(&buf, b"xyz1");
    let mut src = SliceSource::new(b"hello");
    let mut out = [0u8; 3];
    assert_eq!(src.take(&mut out), 3);
    assert_eq!(src.left(), 2);
    assert_eq!(src.take(&mut out), 2);
    assert_eq!(&out[..2], b"lo");
}
