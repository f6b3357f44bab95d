//! In-guest tests of the user half: lazy mappings get frames on first
//! touch, permissions hold for kernel user-copies, `fill` ignores them,
//! `move_pages` keeps contents, and unmapping frees every frame; the
//! memory programs can hold (the commit limit) counts user frames as theirs;
//! a file's frame copies straight to and from user memory, stopping at a
//! fault.

use super::frames;
use libos::elf::Perms;

use super::user;
use crate::arch::uaccess::{copy_from_user, copy_to_user};
use crate::ktest;

const BASE: u64 = 0x1000_0000;
const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};
const RO: Perms = Perms {
    read: true,
    write: false,
    execute: false,
};
const NONE: Perms = Perms {
    read: false,
    write: false,
    execute: false,
};

ktest!(
    fn lazy_pages_take_frames_only_when_touched() {
        let before = frames::free_frames();
        // 64 MiB reserved: only page tables may be allocated.
        user::map_lazy(BASE, 64 << 20, NONE).expect("reserve");
        let after_reserve = frames::free_frames();
        assert!(
            before - after_reserve < 40,
            "reservation cost {} frames",
            before - after_reserve
        );
        user::protect(BASE, 4 * 4096, RW).expect("protect");
        assert_eq!(user::query(BASE), Some((RW, false)));
        copy_to_user(BASE + 4096 + 8, b"hello").expect("write through a lazy page");
        assert_eq!(user::query(BASE + 4096), Some((RW, true)));
        assert_eq!(frames::free_frames(), after_reserve - 1);
        let mut buf = [0u8; 5];
        copy_from_user(BASE + 4096 + 8, &mut buf).expect("read back");
        assert_eq!(&buf, b"hello");
        user::unmap(BASE, 64 << 20).expect("unmap");
        assert_eq!(
            frames::free_frames(),
            after_reserve,
            "the touched frame came back"
        );
        assert_eq!(user::query(BASE + 4096), None);
    }
);

ktest!(
    fn user_copies_fail_cleanly_on_bad_addresses() {
        user::map_lazy(BASE, 4096, RO).expect("map");
        let mut buf = [0u8; 16];
        // Reading a read-only lazy page works and sees zeros.
        copy_from_user(BASE, &mut buf).expect("read");
        assert_eq!(buf, [0; 16]);
        // Writing it faults and is fixed up into an error.
        assert!(copy_to_user(BASE, b"x").is_err());
        // Unmapped, straddling the end, kernel addresses, overflow.
        assert!(copy_from_user(BASE + 4096, &mut buf).is_err());
        assert!(copy_from_user(BASE + 4096 - 8, &mut buf).is_err());
        assert!(copy_from_user(0xffff_8000_0000_0000, &mut buf).is_err());
        assert!(copy_from_user(u64::MAX - 4, &mut buf).is_err());
        // `fill` ignores the protection (loading code into read-only pages).
        user::fill(BASE + 100, b"loaded").expect("fill");
        copy_from_user(BASE + 100, &mut buf[..6]).expect("read");
        assert_eq!(&buf[..6], b"loaded");
        user::protect(BASE, 4096, NONE).expect("protect none");
        assert!(copy_from_user(BASE + 100, &mut buf[..6]).is_err());
        user::protect(BASE, 4096, RO).expect("protect ro");
        copy_from_user(BASE + 100, &mut buf[..6]).expect("contents kept across PROT_NONE");
        assert_eq!(&buf[..6], b"loaded");
        user::unmap(BASE, 4096).expect("unmap");
    }
);

ktest!(
    fn user_compare_exchange_is_exact_and_faults_cleanly() {
        use crate::arch::uaccess::cmpxchg_user_u32;
        user::map_lazy(BASE, 4096, RW).expect("map");
        copy_to_user(BASE + 8, &7u32.to_le_bytes()).expect("write");
        // Equal: stored; the old value comes back.
        assert_eq!(cmpxchg_user_u32(BASE + 8, 7, 9), Ok(7));
        // Not equal: left alone; the value it holds comes back.
        assert_eq!(cmpxchg_user_u32(BASE + 8, 7, 11), Ok(9));
        let mut b = [0u8; 4];
        crate::arch::uaccess::copy_from_user(BASE + 8, &mut b).expect("read");
        assert_eq!(u32::from_le_bytes(b), 9);
        // Read-only, unmapped, misaligned, kernel: errors, no crash.
        user::protect(BASE, 4096, RO).expect("protect ro");
        assert!(cmpxchg_user_u32(BASE + 8, 9, 1).is_err());
        assert!(cmpxchg_user_u32(BASE + 4096, 0, 1).is_err());
        assert!(cmpxchg_user_u32(BASE + 2, 0, 1).is_err());
        assert!(cmpxchg_user_u32(0xffff_8000_0000_0000, 0, 1).is_err());
        user::unmap(BASE, 4096).expect("unmap");
    }
);

ktest!(
    fn moved_pages_keep_contents() {
        let before = frames::free_frames();
        user::map_lazy(BASE, 2 * 4096, RW).expect("map");
        copy_to_user(BASE + 4096, b"moving").expect("write");
        user::move_pages(BASE, BASE + 0x10_0000, 2 * 4096).expect("move");
        assert_eq!(user::query(BASE + 4096), None);
        let mut buf = [0u8; 6];
        copy_from_user(BASE + 0x10_0000 + 4096, &mut buf).expect("read moved");
        assert_eq!(&buf, b"moving");
        user::unmap(BASE + 0x10_0000, 2 * 4096).expect("unmap");
        // Page tables stay; every data frame is back.
        assert!(before - frames::free_frames() < 8);
    }
);

ktest!(
    fn user_frames_count_towards_what_programs_can_hold() {
        // A frame given to a user page moves from "free for programs" to
        // "held by programs": the capacity stays, and so it does when the
        // frame comes back.
        let capacity = frames::user_capacity_bytes();
        user::map_lazy(BASE, 16 * 4096, RW).expect("map");
        let available = frames::user_available_bytes();
        user::fill(BASE, &[7u8; 16 * 4096]).expect("touch every page");
        assert_eq!(frames::user_available_bytes(), available - 16 * 4096);
        assert_eq!(frames::user_capacity_bytes(), capacity);
        user::unmap(BASE, 16 * 4096).expect("unmap");
        assert_eq!(frames::user_available_bytes(), available);
        assert_eq!(frames::user_capacity_bytes(), capacity);
    }
);

ktest!(
    fn a_privately_mapped_file_frame_is_copied_at_the_first_store() {
        user::map_lazy(BASE, 2 * 4096, NONE).expect("tables");
        user::unmap(BASE, 2 * 4096).expect("unmap");
        let before = frames::user_frames();
        let frame = user::frame_alloc().expect("frame");
        user::frame_write(frame, 16, b"file bytes");
        // Two private mappings (two execs of one program) share the page.
        user::map_frame_private(BASE, frame, RW).expect("map");
        user::map_frame_private(BASE + 4096, frame, RO).expect("map again");
        assert_eq!(frames::user_frames(), before + 1, "one frame, mapped twice");
        let mut buf = [0u8; 10];
        copy_from_user(BASE + 16, &mut buf).expect("read");
        assert_eq!(&buf, b"file bytes");
        // A store copies: the writer sees it, the file and the other
        // mapping do not.
        copy_to_user(BASE + 16, b"user store").expect("store");
        copy_from_user(BASE + 16, &mut buf).expect("read back");
        assert_eq!(&buf, b"user store");
        user::frame_read(frame, 16, &mut buf);
        assert_eq!(&buf, b"file bytes", "the file's page is unchanged");
        copy_from_user(BASE + 4096 + 16, &mut buf).expect("other mapping");
        assert_eq!(&buf, b"file bytes");
        assert_eq!(frames::user_frames(), before + 2, "the copy");
        assert!(
            copy_to_user(BASE + 4096, b"x").is_err(),
            "read-only mapping"
        );
        user::unmap(BASE, 2 * 4096).expect("unmap");
        user::frame_release(frame);
        assert_eq!(frames::user_frames(), before, "all frames came back");
    }
);

ktest!(
    fn a_file_frame_mapped_twice_is_one_page_and_lives_until_its_last_reference() {
        // The page tables first (unmapping keeps them), so that only the
        // frame is counted.
        user::map_lazy(BASE, 2 * 4096, NONE).expect("tables");
        user::unmap(BASE, 2 * 4096).expect("unmap");
        let before = frames::user_frames();
        let frame = user::frame_alloc().expect("frame");
        user::frame_write(frame, 16, b"file bytes");
        user::map_frame(BASE, frame, RW).expect("map");
        user::map_frame(BASE + 4096, frame, RO).expect("map again");
        let mut buf = [0u8; 10];
        copy_from_user(BASE + 4096 + 16, &mut buf).expect("read the second mapping");
        assert_eq!(&buf, b"file bytes");
        copy_to_user(BASE + 16, b"user store").expect("store through the first");
        user::frame_read(frame, 16, &mut buf);
        assert_eq!(&buf, b"user store", "the owner sees the store at once");
        assert!(
            copy_to_user(BASE + 4096, b"x").is_err(),
            "read-only mapping"
        );
        // The owner lets go: the mappings keep the frame.
        user::frame_release(frame);
        copy_from_user(BASE + 4096 + 16, &mut buf).expect("still mapped");
        assert_eq!(&buf, b"user store");
        user::unmap(BASE, 4096).expect("unmap one");
        assert_eq!(
            frames::user_frames(),
            before + 1,
            "one mapping still holds it"
        );
        user::unmap(BASE + 4096, 4096).expect("unmap the last");
        assert_eq!(
            frames::user_frames(),
            before,
            "the frame came back with its last mapping"
        );
    }
);

ktest!(
    fn a_file_frame_copies_straight_to_and_from_user_memory_and_stops_at_a_fault() {
        let frame = user::frame_alloc().expect("frame");
        user::frame_write(frame, 100, b"frame bytes");
        // A lazy page, then nothing: the copy takes the lazy page's frame
        // and stops where the mapping ends.
        user::map_lazy(BASE, 4096, RW).expect("map");
        user::frame_to_user(frame, 100, BASE + 8, 11).expect("to user");
        let mut buf = [0u8; 11];
        copy_from_user(BASE + 8, &mut buf).expect("read");
        assert_eq!(&buf, b"frame bytes");
        let err = user::frame_to_user(frame, 0, BASE + 4096 - 16, 64).expect_err("runs off");
        assert_eq!(err.0, BASE + 4096, "the first byte not copied");
        copy_to_user(BASE + 200, b"from user").expect("write");
        user::frame_from_user(frame, 3000, BASE + 200, 9).expect("from user");
        let mut back = [0u8; 9];
        user::frame_read(frame, 3000, &mut back);
        assert_eq!(&back, b"from user");
        // A read-only page cannot be copied into; ranges outside the frame
        // or the user half copy nothing.
        user::protect(BASE, 4096, RO).expect("protect ro");
        assert!(user::frame_to_user(frame, 0, BASE, 4).is_err());
        assert!(user::frame_to_user(frame, 4090, BASE, 16).is_err());
        assert!(user::frame_from_user(frame, 0, 0xffff_8000_0000_0000, 4).is_err());
        // The same frame mapped at the user address: a copy onto itself.
        user::map_frame(BASE + 4096, frame, RW).expect("map the frame");
        user::frame_from_user(frame, 100, BASE + 4096 + 100, 11).expect("onto itself");
        user::frame_read(frame, 100, &mut buf);
        assert_eq!(&buf, b"frame bytes");
        user::frame_release(frame);
        user::unmap(BASE, 2 * 4096).expect("unmap");
    }
);
