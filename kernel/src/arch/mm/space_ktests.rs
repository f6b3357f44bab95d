//! In-guest tests of address spaces: a forked space shares the caller's
//! frames copy-on-write (a fork costs page tables only), a write in either
//! makes a private copy (not seen by the other), lazy entries stay lazy,
//! and destroying the copy gives every frame back.

use libos::elf::Perms;

use super::{cow, frames, space, user};
use crate::arch::uaccess::{copy_from_user, copy_to_user};
use crate::ktest;

const BASE: u64 = 0x2000_0000;
const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};

ktest!(
    fn a_forked_space_is_copy_on_write_and_destroy_frees_it() {
        space::init();
        let own = space::current();
        user::map_lazy(BASE, 8 * 4096, RW).expect("map");
        copy_to_user(BASE + 16, b"parent").expect("write");
        // Warm the sharing table up (its first node comes from the heap,
        // which takes frames once): a count up and down, freeing nothing.
        cow::share(0x1000);
        cow::release(0x1000);
        let before = frames::free_frames();
        let child = space::fork_current(&[]).expect("fork");
        assert_ne!(child, own);
        // A PML4 and the tables down to the page; the page is shared.
        let after_fork = frames::free_frames();
        assert_eq!(before - after_fork, 4, "page tables only");
        assert_eq!(cow::shared_frames(), 1);
        space::activate(child);
        let mut buf = [0u8; 6];
        copy_from_user(BASE + 16, &mut buf).expect("read in the child");
        assert_eq!(&buf, b"parent");
        assert_eq!(frames::free_frames(), after_fork, "reading copies nothing");
        copy_to_user(BASE + 16, b"child!").expect("write in the child");
        assert_eq!(frames::free_frames(), after_fork - 1, "the write copied");
        assert_eq!(cow::shared_frames(), 0);
        assert_eq!(user::query(BASE + 4096), Some((RW, false)), "still lazy");
        space::activate(own);
        copy_from_user(BASE + 16, &mut buf).expect("read in the parent");
        assert_eq!(&buf, b"parent");
        space::destroy(child);
        assert_eq!(frames::free_frames(), before, "every frame came back");
        // The parent, the last mapping now, writes without a copy.
        copy_to_user(BASE + 16, b"again!").expect("write in the parent");
        assert_eq!(frames::free_frames(), before);
        user::unmap(BASE, 8 * 4096).expect("unmap");
    }
);
