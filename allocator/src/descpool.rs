//! [`DescPool`]: slab descriptors, carved from descriptor pages that go back
//! to the page source as soon as none of their descriptors is in use.
//!
//! Each descriptor page is a tiny slab of its own: slot 0 is the page's
//! header (its free list, how many descriptors are in use, and links in
//! the pool's list of pages with a free descriptor), slots 1.. are
//! descriptors. A page whose last descriptor comes back is released at once
//! unless it is the only page with free descriptors (kept, so a class that
//! creates and releases one slab over and over does not take and return a
//! page each time); `trim` releases that one too. Without this, the
//! descriptors of slabs long released would pin pages scattered over the
//! heap after a fill and free-all, and break up the runs larger blocks need.
//!
//! ```text
//!  pool.partial ─► page ⇄ page ⇄ page        (pages with a free descriptor)
//!  page: [ header: free ─► desc ─► desc, in_use, next, prev | desc | desc | … ]
//! ```

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::class::PAGE_SIZE;
use crate::heap::Env;
use crate::raw;
use crate::slab::{DESC_BYTES, Desc};

/// Descriptors in a descriptor page (its first slot is the page's header).
const DESCS_PER_PAGE: usize = PAGE_SIZE / DESC_BYTES - 1;

// Word offsets in a page header.
const FREE: usize = 0;
const IN_USE: usize = 8;
const NEXT: usize = 16;
const PREV: usize = 24;

/// The descriptor pages and the list of those with a free descriptor.
#[derive(Debug)]
pub(crate) struct DescPool {
    /// First page with a free descriptor (0 = none).
    partial: spin::Mutex<usize>,
    pages: AtomicUsize,
}

fn header(desc: usize) -> usize {
    desc & !(PAGE_SIZE - 1)
}

impl DescPool {
    pub(crate) const fn new() -> Self {
        Self {
            partial: spin::Mutex::new(0),
            pages: AtomicUsize::new(0),
        }
    }

    /// Pages holding descriptors.
    pub(crate) fn pages(&self) -> usize {
        self.pages.load(Ordering::Relaxed)
    }

    fn push_page(head: &mut usize, page: usize) {
        raw::store(page + NEXT, *head);
        raw::store(page + PREV, 0);
        if *head != 0 {
            raw::store(*head + PREV, page);
        }
        *head = page;
    }

    fn unlink_page(head: &mut usize, page: usize) {
        let (next, prev) = (raw::load(page + NEXT), raw::load(page + PREV));
        if prev == 0 {
            *head = next;
        } else {
            raw::store(prev + NEXT, next);
        }
        if next != 0 {
            raw::store(next + PREV, prev);
        }
    }

    /// A descriptor; `None` when the page source is out of pages.
    pub(crate) fn alloc(&self, env: &Env) -> Option<Desc> {
        loop {
            let irq = env.cpu.irq_save();
            let mut head = self.partial.lock();
            let page = *head;
            if page != 0 {
                let desc = raw::load(page + FREE);
                raw::store(page + FREE, raw::load(desc));
                let in_use = raw::load(page + IN_USE) + 1;
                raw::store(page + IN_USE, in_use);
                if in_use == DESCS_PER_PAGE {
                    Self::unlink_page(&mut head, page);
                }
                drop(head);
                env.cpu.irq_restore(irq);
                return Some(Desc(desc));
            }
            drop(head);
            env.cpu.irq_restore(irq);
            let page = raw::expose(env.pages.alloc_pages(1)?);
            for i in 1..DESCS_PER_PAGE {
                raw::store(page + i * DESC_BYTES, page + (i + 1) * DESC_BYTES);
            }
            raw::store(page + DESCS_PER_PAGE * DESC_BYTES, 0);
            raw::store(page + FREE, page + DESC_BYTES);
            raw::store(page + IN_USE, 0);
            self.pages.fetch_add(1, Ordering::Relaxed);
            let irq = env.cpu.irq_save();
            Self::push_page(&mut self.partial.lock(), page);
            env.cpu.irq_restore(irq);
        }
    }

    /// Takes a descriptor back; its page goes back to the page source if
    /// it was its last one in use and another page has free descriptors.
    pub(crate) fn free(&self, env: &Env, desc: Desc) {
        let page = header(desc.0);
        let irq = env.cpu.irq_save();
        let mut head = self.partial.lock();
        raw::store(desc.0, raw::load(page + FREE));
        raw::store(page + FREE, desc.0);
        let in_use = raw::load(page + IN_USE) - 1;
        raw::store(page + IN_USE, in_use);
        if in_use + 1 == DESCS_PER_PAGE {
            Self::push_page(&mut head, page);
        }
        let only = *head == page && raw::load(page + NEXT) == 0;
        let release = in_use == 0 && !only;
        if release {
            Self::unlink_page(&mut head, page);
        }
        drop(head);
        env.cpu.irq_restore(irq);
        if release {
            self.release_page(env, page);
        }
    }

    fn release_page(&self, env: &Env, page: usize) {
        self.pages.fetch_sub(1, Ordering::Relaxed);
        raw::free_pages(env.pages, page, 1);
    }

    /// Returns every descriptor page with no descriptor in use (`trim`).
    pub(crate) fn release_free_pages(&self, env: &Env) {
        loop {
            let irq = env.cpu.irq_save();
            let mut head = self.partial.lock();
            let mut page = *head;
            while page != 0 && raw::load(page + IN_USE) != 0 {
                page = raw::load(page + NEXT);
            }
            if page != 0 {
                Self::unlink_page(&mut head, page);
            }
            drop(head);
            env.cpu.irq_restore(irq);
            if page == 0 {
                return;
            }
            self.release_page(env, page);
        }
    }
}
