//! Decoding the instruction that accessed device memory, for MMIO
//! emulation (`#VC`, `#VE` and the native emulated-MMIO mode).
