//! The local APIC (xAPIC, memory-mapped) and its timer, which drives the
//! periodic tick.
//!
//! The timer's input clock is unknown, so it is measured against the TSC
//! (itself measured against the PIT) and then programmed in periodic mode.

use core::sync::atomic::{AtomicU64, Ordering};

use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::platform::mmio::{self, DeviceRegisters, MapRegistersError};
use crate::platform::platform;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: usize = 0x20;
const REG_TPR: usize = 0x80;
const REG_EOI: usize = 0xb0;
const REG_SVR: usize = 0xf0;
const REG_LVT_TIMER: usize = 0x320;
const REG_TIMER_INIT: usize = 0x380;
const REG_TIMER_CURRENT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;
/// LINT1: where the VMM delivers an NMI (QEMU's `inject-nmi`, the host's
/// stop request; see `crate::exit::host_stop`).
const REG_LVT_LINT1: usize = 0x360;
/// LVT delivery mode NMI (bits 8..=10 = 0b100).
const LVT_DELIVERY_NMI: u32 = 0b100 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration value for "divide by 16".
const DIVIDE_BY_16: u32 = 0b0011;

/// The APIC's registers (set by [`init`]).
static REGS: spin::Once<DeviceRegisters> = spin::Once::new();
/// APIC timer input ticks (after the divider) per second.
static TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// The APIC's physical register base from `IA32_APIC_BASE`.
pub fn physical_base() -> u64 {
    // IA32_APIC_BASE exists on every x86-64 CPU; reading it has no side
    // effects. A platform that cannot read it leaves the architectural
    // default.
    platform()
        .read_msr(IA32_APIC_BASE)
        .map_or(0xfee0_0000, |v| v & 0xffff_f000)
}

fn regs() -> &'static DeviceRegisters {
    REGS.get().expect("local APIC used before init")
}

fn read(offset: usize) -> u32 {
    // APIC registers are per-CPU 32-bit registers at 16-byte-aligned
    // offsets inside the 4 KiB page.
    regs().read32(offset as u64)
}

fn write(offset: usize, value: u32) {
    regs().write32(offset as u64, value);
}

/// Maps the local APIC's registers through the platform, enables it, and
/// measures its timer against the TSC.
pub fn init() -> Result<(), MapRegistersError> {
    let regs = mmio::map_registers(physical_base(), crate::mm::PAGE_BYTES)?;
    REGS.call_once(|| regs);
    let base = platform().read_msr(IA32_APIC_BASE).unwrap_or(0xfee0_0000);
    // SAFETY: sets the global-enable bit in IA32_APIC_BASE, keeping the base
    // (the registers just mapped stay where they are).
    if unsafe { platform().write_msr(IA32_APIC_BASE, base | (1 << 11)) }.is_err() {
        log::warn!("the platform refused to enable the local APIC");
    }
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_TPR, 0);
    // As Linux does on the boot CPU: LINT1 unmasked, delivering NMIs.
    write(REG_LVT_LINT1, LVT_DELIVERY_NMI);
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    // Count down from the maximum for 10 ms of TSC time.
    write(REG_TIMER_INIT, u32::MAX);
    let start = crate::time::now_ns();
    crate::time::spin_ns(10_000_000);
    let current = read(REG_TIMER_CURRENT);
    let elapsed_ns = crate::time::now_ns() - start;
    write(REG_TIMER_INIT, 0);
    let counted = u64::from(u32::MAX - current);
    TIMER_HZ.store(
        counted * 1_000_000_000 / elapsed_ns.max(1),
        Ordering::Relaxed,
    );
    Ok(())
}

/// The APIC timer's measured input rate (after the divider), in Hz.
pub fn timer_hz() -> u64 {
    TIMER_HZ.load(Ordering::Relaxed)
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// The tick rate the boot CPU's timer was started with (APs use it too).
static TICK_HZ: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The tick rate of [`start_periodic`] (0 before).
pub fn tick_hz() -> u32 {
    TICK_HZ.load(Ordering::Relaxed)
}

/// Starts this CPU's periodic timer at `hz` interrupts per second.
pub fn start_periodic(hz: u32) {
    TICK_HZ.store(hz, Ordering::Relaxed);
    let count = (timer_hz() / u64::from(hz.max(1))).clamp(1, u64::from(u32::MAX));
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INIT, count as u32);
}

/// Stops the timer.
pub fn stop_timer() {
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INIT, 0);
}

/// Signals end of interrupt.
pub fn end_of_interrupt() {
    if REGS.get().is_some() {
        write(REG_EOI, 0);
    }
}

/// Interrupt command register, low and high halves (xAPIC).
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
/// ICR delivery modes and flags.
const ICR_FIXED: u32 = 0b000 << 8;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;

/// Why an inter-processor interrupt was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpiError {
    /// The destination does not fit the xAPIC's 8-bit destination field.
    DestinationOutOfRange(u32),
    /// The previous IPI was never accepted (delivery status stuck).
    Stuck,
}

/// Sends `command` to the CPU with local APIC id `apic_id`, after the
/// previous IPI left the APIC.
fn send_ipi(apic_id: u32, command: u32) -> Result<(), IpiError> {
    let dest = u8::try_from(apic_id).map_err(|_| IpiError::DestinationOutOfRange(apic_id))?;
    // Interrupts off: an interrupt handler sending an IPI between the two
    // writes would change the destination under us.
    super::interrupts::without_interrupts(|| {
        wait_idle()?;
        write(REG_ICR_HIGH, u32::from(dest) << 24);
        write(REG_ICR_LOW, command);
        wait_idle()
    })
}

/// Waits (bounded) until the ICR's delivery status is idle.
fn wait_idle() -> Result<(), IpiError> {
    for _ in 0..1_000_000 {
        if read(REG_ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(IpiError::Stuck)
}

/// INIT-SIPI-SIPI (Intel SDM vol. 3, 9.4.4.1; the MP spec's B.4): resets
/// the CPU with local APIC id `apic_id` and starts it in real mode at
/// `vector << 12`, the page of its start-up code below 1 MiB.
pub fn start_ap(apic_id: u32, vector: u8) -> Result<(), IpiError> {
    send_ipi(apic_id, ICR_INIT | ICR_LEVEL_ASSERT)?;
    crate::time::spin_ns(10_000_000);
    for _ in 0..2 {
        send_ipi(apic_id, ICR_STARTUP | u32::from(vector))?;
        crate::time::spin_ns(200_000);
    }
    Ok(())
}

/// Sends a fixed interrupt with `vector` to the CPU `apic_id`.
pub fn send_fixed(apic_id: u32, vector: u8) -> Result<(), IpiError> {
    send_ipi(apic_id, ICR_FIXED | ICR_LEVEL_ASSERT | u32::from(vector))
}

/// Enables this application processor's local APIC (the boot CPU's is set
/// up by [`init`], which also mapped the registers every CPU shares the
/// address of): software enable with the spurious vector, all priorities
/// accepted, the timer and LINT1 masked (the host's NMI goes to the boot
/// CPU only).
pub fn init_ap() {
    let base = platform().read_msr(IA32_APIC_BASE).unwrap_or(0xfee0_0000);
    // SAFETY: sets the global-enable bit in IA32_APIC_BASE, keeping the base
    // the boot CPU mapped (the same for every CPU).
    if unsafe { platform().write_msr(IA32_APIC_BASE, base | (1 << 11)) }.is_err() {
        log::warn!("the platform refused to enable an AP's local APIC");
    }
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_TPR, 0);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
}
