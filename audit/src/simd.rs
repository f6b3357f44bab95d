//! Where BLAKE3 and the block MAC's POLYVAL may use the SIMD registers.
//!
//! On the host, `blake3` picks SSE4.1, AVX2 or AVX-512 at run time and the
//! operating system keeps every thread's registers. In the kernel the same
//! registers belong to the user thread that happened to be running (the
//! kernel itself is built soft-float and never touches them), so the kernel
//! registers a [`SimdScope`] that saves them before a hash and restores them
//! after. Every BLAKE3 call of this crate goes through `scope`; with no
//! scope registered (the host) it calls straight through.
//!
//! The kernel build lets `blake3` use SSE2, SSE4.1 and AVX2, never AVX-512
//! (`audit/Cargo.toml`), so a scope has to keep the XMM and YMM registers
//! and MXCSR (what `xsave64` saves for the SSE and AVX components; where
//! AVX is off, `fxsave64` and `blake3` stays at SSE4.1); see
//! `audit/vendor/README.md` for why `blake3` detects SIMD in a
//! freestanding build at all.

use crate::crypto::Tag;

/// Saves and restores the SIMD state around BLAKE3 (implemented by the
/// kernel; see the module docs).
pub trait SimdScope: Sync {
    /// Runs `f` once, with the XMM and YMM registers and MXCSR as they were
    /// before the call once it returns. Must nest: a scope may be entered from an
    /// interrupt or exception handler that interrupted another.
    fn run(&self, f: &mut dyn FnMut());
}

static SCOPE: spin::Once<&'static dyn SimdScope> = spin::Once::new();

/// Registers the scope every later BLAKE3 call runs in. The first call
/// wins; later ones are ignored. The kernel calls it at boot, after
/// enabling SSE and before formatting the audit region.
pub fn set_scope(scope: &'static dyn SimdScope) {
    SCOPE.call_once(|| scope);
}

/// Whether a scope is registered.
pub fn has_scope() -> bool {
    SCOPE.get().is_some()
}

/// The BLAKE3 implementation this machine runs (`"SSE4.1"`, `"SSE2"`,
/// `"portable"`, …), for logs and tests. From `blake3::platform`, which
/// that crate marks as unstable: a diagnostic, nothing depends on it.
pub fn implementation() -> &'static str {
    use blake3::platform::Platform;
    match Platform::detect() {
        Platform::Portable => "portable",
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Platform::SSE2 => "SSE2",
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Platform::SSE41 => "SSE4.1",
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Platform::AVX2 => "AVX2",
        // AVX-512 (host builds only) or another architecture's.
        #[allow(unreachable_patterns, reason = "the variants depend on the build")]
        _ => "wider SIMD",
    }
}

/// The official BLAKE3 test vectors' key.
const KAT_KEY: &[u8; 32] = b"whats the Elvish word for friend";
/// The first 16 bytes of the keyed hash of the test vectors' 4,096-byte
/// input (byte `i` is `i % 251`): four chunks, which SSE4.1 hashes side
/// by side. From BLAKE3's `test_vectors.json` (`befc660aea2f1718…`).
const KAT_4096: [u8; 16] = [
    0xbe, 0xfc, 0x66, 0x0a, 0xea, 0x2f, 0x17, 0x18, 0x88, 0x4c, 0xd8, 0xde, 0xb9, 0x90, 0x28, 0x11,
];
/// The same for the 8,192-byte input: eight chunks, which AVX2 hashes
/// side by side (`dc9637c8845a770b…`).
const KAT_8192: [u8; 16] = [
    0xdc, 0x96, 0x37, 0xc8, 0x84, 0x5a, 0x77, 0x0b, 0x4c, 0xbf, 0x76, 0xb8, 0xda, 0xec, 0x0e, 0xeb,
];

/// What the block MACs' POLYVAL runs on this machine (`"CLMUL (AVX)"`,
/// `"CLMUL (SSE)"` or `"portable"`), for logs and tests.
pub fn mac_implementation() -> &'static str {
    crate::clmul::implementation()
}

/// Whether this machine's BLAKE3 (through the scope) gives the known
/// answers for keyed hashes of 4 and 8 KiB, and its POLYVAL (the block
/// MAC's, through the scope) RFC 8452's and the portable code's. The
/// kernel's in-guest test runs it on the assembly the seals use.
pub fn known_answer_ok() -> bool {
    let mut input = [0u8; 8192];
    for (i, b) in input.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let t4 = crate::crypto::mac_oneshot(KAT_KEY, &input[..4096]);
    let t8 = crate::crypto::mac_oneshot(KAT_KEY, &input);
    t4[..16] == KAT_4096 && t8[..16] == KAT_8192 && crate::mac::known_answer_ok()
}

/// Computes `hash()` (a BLAKE3 computation, which may be run more than
/// once) inside the registered scope, or directly without one.
pub(crate) fn scope(hash: impl Fn() -> Tag) -> Tag {
    let Some(s) = SCOPE.get() else {
        return hash();
    };
    let mut out = None;
    s.run(&mut || {
        if out.is_none() {
            out = Some(hash());
        }
    });
    // A scope that did not run the closure breaks its contract; the tag is
    // still right when computed here.
    out.unwrap_or_else(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    std::thread_local! {
        static RUNS: Cell<u32> = const { Cell::new(0) };
        static INSIDE: Cell<bool> = const { Cell::new(false) };
    }

    struct Counting;

    impl SimdScope for Counting {
        fn run(&self, f: &mut dyn FnMut()) {
            RUNS.with(|r| r.set(r.get() + 1));
            INSIDE.with(|i| i.set(true));
            f();
            INSIDE.with(|i| i.set(false));
        }
    }

    static COUNTING: Counting = Counting;

    fn runs() -> u32 {
        RUNS.with(Cell::get)
    }

    #[test]
    fn every_blake3_and_polyval_use_runs_inside_the_scope() {
        set_scope(&COUNTING);
        assert!(has_scope());
        let key = [7u8; 32];
        let cases: [(&str, &dyn Fn() -> Tag); 5] = [
            ("mac_parts", &|| {
                crate::crypto::mac_parts(&key, &[b"a", b"b"])
            }),
            ("mac_oneshot", &|| {
                crate::crypto::mac_oneshot(&key, &[1; 4096])
            }),
            ("ratchet step", &|| crate::crypto::step_for_tests(&key, 3)),
            ("block MAC", &|| {
                crate::mac::block_mac(&key, &[2; crate::mac::HEAD_BYTES], &[3; 200])
            }),
            ("boot tag", &|| {
                let mut t = [0; 32];
                t[..8].copy_from_slice(&crate::crypto::boot_tag(&[1; 16]));
                t
            }),
        ];
        for (name, f) in cases {
            let before = runs();
            let inside_before = INSIDE.with(Cell::get);
            let t = f();
            assert!(runs() > before, "{name} ran BLAKE3 outside the scope");
            assert!(!inside_before && !INSIDE.with(Cell::get));
            assert_ne!(t, [0; 32], "{name}");
        }
    }

    #[test]
    fn the_scope_does_not_change_the_result() {
        let key = [9u8; 32];
        let direct: Tag = blake3::keyed_hash(&key, &[5; 3000]).into();
        assert_eq!(
            scope(|| blake3::keyed_hash(&key, &[5; 3000]).into()),
            direct
        );
    }

    #[test]
    fn gives_the_known_answer() {
        assert!(known_answer_ok());
    }

    #[test]
    fn names_an_implementation() {
        assert!(!implementation().is_empty());
    }
}
