//! In-guest tests of address spaces: a forked space holds its own copy of
//! every page with a frame (writes in one are not seen in the other), lazy
//! entries stay lazy, and destroying the copy gives every frame back.

use libos::elf::Perms;

use super::{frames, space, user};
use crate::arch::uaccess::{copy_from_user, copy_to_user};
use crate::ktest;

const BASE: u64 = 0x2000_0000;
const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};

ktest!(
    fn a_forked_space_is_a_private_copy_and_destroy_frees_it() {
        space::init();
        let own = space::current();
        user::map_lazy(BASE, 8 * 4096, RW).expect("map");
        copy_to_user(BASE + 16, b"parent").expect("write");
        let before = frames::free_frames();
        let child = space::fork_current().expect("fork");
        assert_ne!(child, own);
        // A PML4, the tables down to the page, and the one page.
        assert!(before - frames::free_frames() >= 5);
        space::activate(child);
        let mut buf = [0u8; 6];
        copy_from_user(BASE + 16, &mut buf).expect("read in the child");
        assert_eq!(&buf, b"parent");
        copy_to_user(BASE + 16, b"child!").expect("write in the child");
        assert_eq!(user::query(BASE + 4096), Some((RW, false)), "still lazy");
        space::activate(own);
        copy_from_user(BASE + 16, &mut buf).expect("read in the parent");
        assert_eq!(&buf, b"parent");
        space::destroy(child);
        assert_eq!(frames::free_frames(), before, "every frame came back");
        user::unmap(BASE, 8 * 4096).expect("unmap");
    }
);
