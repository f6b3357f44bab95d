//! Intel TDX guest protocols (TDX Module ABI specification and the
//! Guest-Host Communication Interface, GHCI):
//!
//! - [`tdcall`]: `TDCALL` leaves (`TDG.VP.INFO`, `TDG.MEM.PAGE.ACCEPT`,
//!   `TDG.MR.REPORT`, `TDG.VP.VEINFO.GET`), status codes, page acceptance;
//! - [`tdvmcall`]: `TDG.VP.VMCALL` requests to the host (CPUID, HLT, I/O,
//!   MSRs, MMIO, `MapGPA`, `ReportFatalError`);
//! - [`memory`]: converting a range private ↔ shared (`MapGPA` until
//!   done, then acceptance on the way back to private);
//! - [`ve`]: `#VE` information and its dispatch;
//! - [`report`]: the `TDREPORT_STRUCT`.

pub mod memory;
pub mod report;
pub mod tdcall;
pub mod tdvmcall;
pub mod ve;
