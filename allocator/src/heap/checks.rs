//! Debug builds' checks of the pointers [`SlabAllocator`] is handed back
//! (double frees, foreign or interior pointers, wrong layouts), through
//! the page map, and the panic that names what went wrong.

use super::{CHUNK, Env, LARGE, SlabAllocator};
use crate::bestfit::Region;
use crate::class::{CLASS_BYTES, Kind, can_lend};
use crate::slab::Desc;

impl SlabAllocator {
    /// Debug builds: panics unless `run` is a live large run of `pages`.
    pub(super) fn check_large(&self, env: &Env, run: usize, pages: usize) {
        let entry = self.map.get_checked(env, run);
        if entry != (pages << 1 | LARGE) {
            self.foreign(run, entry, "a large block");
        }
    }

    /// Debug builds: checks that `object` is a live object of `class`,
    /// and marks it free.
    pub(super) fn debug_check_free(&self, env: &Env, object: usize, class: usize) {
        if self.is_carved(env, object, class) {
            if !Region::park(object) {
                panic!(
                    "slab allocator: double free of {object:#x} ({} B class, carved from the best-fit region)",
                    CLASS_BYTES[class]
                );
            }
            return;
        }
        let (desc, index) = self.object_index(env, object, class);
        if !desc.mark_free(index) {
            panic!(
                "slab allocator: double free of {object:#x} ({} B class)",
                CLASS_BYTES[class]
            );
        }
    }

    /// Debug builds: checks a block `realloc` keeps in place is live.
    pub(super) fn check_live(&self, env: &Env, object: usize, kind: Kind) {
        match kind {
            Kind::Small(class) | Kind::Aligned(class) if self.is_carved(env, object, class) => {
                if Region::is_parked(object) {
                    panic!("slab allocator: realloc of freed block {object:#x}");
                }
            }
            Kind::Small(class) | Kind::Aligned(class) => {
                let (desc, index) = self.object_index(env, object, class);
                if !desc.mark_allocated(index) {
                    panic!("slab allocator: realloc of freed block {object:#x}");
                }
            }
            Kind::Mid => {
                self.check_in_chunk(env, object);
                if !Region::is_used(object) {
                    panic!("slab allocator: realloc of freed block {object:#x}");
                }
            }
            Kind::Large(pages) => self.check_large(env, object, pages),
            Kind::Unsupported => {}
        }
    }

    /// The slab of `object` and its index there, panicking if it is not
    /// the start of an object of `class` in a slab this allocator holds.
    pub(super) fn object_index(&self, env: &Env, object: usize, class: usize) -> (Desc, usize) {
        let entry = self.map.get_checked(env, object);
        if entry == 0 || entry & (LARGE | CHUNK) != 0 {
            self.foreign(object, entry, "an object");
        }
        let desc = Desc(entry);
        let lender = desc.class();
        if lender != class && !can_lend(lender, class) {
            panic!(
                "slab allocator: dealloc of {object:#x} as a {} B object, but it lies in a {} B slab (wrong layout or foreign pointer)",
                CLASS_BYTES[class], CLASS_BYTES[lender]
            );
        }
        let size = CLASS_BYTES[lender];
        let offset = object - desc.base();
        if !offset.is_multiple_of(size) {
            panic!(
                "slab allocator: dealloc of {object:#x}, which is not the start of a {size} B object (foreign or offset pointer)"
            );
        }
        (desc, offset / size)
    }

    pub(super) fn debug_mark_allocated(&self, object: usize) {
        let desc = Desc(self.map.get(object));
        if desc.0 & CHUNK != 0 {
            assert!(
                Region::unpark(object),
                "slab allocator: free lists corrupted, {object:#x} handed out twice (a write after free?)"
            );
            return;
        }
        let index = (object - desc.base()) / CLASS_BYTES[desc.class()];
        assert!(
            !desc.mark_allocated(index),
            "slab allocator: free lists corrupted, {object:#x} handed out twice (a write after free?)"
        );
    }

    #[cold]
    pub(super) fn foreign(&self, object: usize, entry: usize, what: &str) -> ! {
        if entry == 0 {
            panic!(
                "slab allocator: dealloc of {object:#x}, which is not {what} of this allocator (foreign pointer, or double free)"
            );
        }
        panic!(
            "slab allocator: dealloc of {object:#x} with a layout that does not match its allocation (double free, or wrong layout)"
        );
    }
}
