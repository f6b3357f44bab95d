//! Boot-time logic that needs no hardware: the kernel command line and the
//! physical memory map arithmetic. The kernel feeds these from PVH boot info.
