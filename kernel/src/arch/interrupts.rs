//! Interrupt masking for the kernel above the hardware layer: the CPU's
//! interrupt flag (`cli`/`sti`), which every backend of the platform seam
//! leaves to the guest. Waiting for an interrupt (`hlt`, which a
//! confidential guest must ask its platform for) is
//! [`crate::platform::Platform::wait_for_interrupt`] and
//! [`crate::platform::Platform::halt`].

/// Masks maskable interrupts on this CPU.
pub fn disable() {
    x86_64::instructions::interrupts::disable();
}

/// Unmasks maskable interrupts on this CPU.
pub fn enable() {
    x86_64::instructions::interrupts::enable();
}

/// Whether maskable interrupts are enabled on this CPU.
pub fn are_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Runs `f` with interrupts masked, restoring the flag as it was.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(f)
}
