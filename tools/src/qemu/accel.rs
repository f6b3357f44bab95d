//! The accelerator: TCG (software emulation, the default and the reliable
//! one on these machines) or KVM (on request; see
//! `shared/notes/PLATFORM-FACTS.md` for the software hypervisor's limits).

use anyhow::{Result, bail};

/// Which QEMU accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// Software emulation (`-accel tcg -cpu max`).
    #[default]
    Tcg,
    /// Hardware virtualisation (`-accel kvm -cpu host,-arch-capabilities`).
    Kvm,
}

impl Accel {
    /// Parses `tcg` or `kvm`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcg" => Ok(Self::Tcg),
            "kvm" => Ok(Self::Kvm),
            other => bail!("unknown accelerator {other:?}: use `tcg` or `kvm`"),
        }
    }

    /// `CLOISTER_ACCEL`, or TCG when unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("CLOISTER_ACCEL") {
            Ok(v) if !v.is_empty() => Self::parse(&v),
            _ => Ok(Self::Tcg),
        }
    }

    /// The name QEMU uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcg => "tcg",
            Self::Kvm => "kvm",
        }
    }

    /// QEMU arguments selecting it. `-cpu max` under TCG gives NX, SMEP,
    /// SMAP and RDRAND; under KVM `host` minus the MSR QEMU cannot set here.
    pub fn qemu_args(self) -> Vec<String> {
        self.qemu_args_for(1)
    }

    /// [`Accel::qemu_args`] for a guest with `cpus` vCPUs: with more than
    /// one, TCG runs each on a host thread of its own (`thread=multi`).
    pub fn qemu_args_for(self, cpus: u32) -> Vec<String> {
        let (accel, cpu) = match self {
            Self::Tcg if cpus > 1 => ("tcg,thread=multi", "max"),
            Self::Tcg => ("tcg", "max"),
            Self::Kvm => ("kvm", "host,-arch-capabilities"),
        };
        ["-accel", accel, "-cpu", cpu].map(String::from).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!(Accel::parse("KVM").unwrap(), Accel::Kvm);
        assert_eq!(Accel::parse(" tcg ").unwrap(), Accel::Tcg);
        let err = Accel::parse("hvf").unwrap_err().to_string();
        assert!(err.contains("hvf") && err.contains("tcg"), "{err}");
    }

    #[test]
    fn kvm_avoids_the_msr_qemu_cannot_set() {
        assert!(
            Accel::Kvm
                .qemu_args()
                .contains(&"host,-arch-capabilities".to_string())
        );
        assert!(Accel::Tcg.qemu_args().contains(&"max".to_string()));
    }

    #[test]
    fn several_vcpus_get_multi_threaded_tcg() {
        assert_eq!(Accel::Tcg.qemu_args()[1], "tcg");
        assert_eq!(Accel::Tcg.qemu_args_for(4)[1], "tcg,thread=multi");
        assert_eq!(Accel::Kvm.qemu_args_for(4)[1], "kvm");
    }
}
