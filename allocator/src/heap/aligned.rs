//! Small requests aligned to more than 8 bytes
//! ([`Kind::Aligned`](crate::class::Kind::Aligned)): they take an object of
//! their class like any other, but only one aligned to the class's natural
//! alignment. Every slab object is; an object carved from the best-fit
//! region for the CPU lists is only 8-byte aligned (carving it at the
//! class's alignment left a gap in front of most carved objects, 0.2 % of
//! the arena at the first failure of the heap-efficiency benchmark; 16
//! bytes until the region's granule became 8 bytes, eighth session).

use super::{Env, SlabAllocator};
use crate::class::natural_align;

impl SlabAllocator {
    /// An object of `class` aligned to [`natural_align`]: the head of the
    /// CPU list if it is (the usual case), else one from the depot (slab
    /// objects, or objects carved at that alignment).
    pub(super) fn alloc_aligned(&self, env: &Env, class: usize, size: usize) -> usize {
        let align = natural_align(class);
        let object = match self.cache(env).claim(env.exclusive) {
            Some(claimed) => {
                let cache = claimed.cache();
                let list = &cache.lists[class];
                let object = match list.pop() {
                    Some(object) if object.is_multiple_of(align) => object,
                    popped => {
                        if let Some(unaligned) = popped {
                            list.push(unaligned);
                        }
                        self.take(env, class, 1, align).head
                    }
                };
                if object != 0 {
                    cache.add_live(&claimed, size);
                }
                object
            }
            None => self.alloc_from_depot(env, class, size, align),
        };
        if cfg!(debug_assertions) && object != 0 {
            self.debug_mark_allocated(object);
        }
        object
    }
}
