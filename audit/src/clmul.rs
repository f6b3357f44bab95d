//! POLYVAL's multiply-accumulate with the carry-less multiply instruction:
//! the crate's one module with `unsafe` code (the assembly and its call).
//!
//! [`accumulate`] folds whole 16-byte blocks into a POLYVAL accumulator
//! (RFC 8452, section 3): `acc = (acc ⊕ X) • H` per block, where `a • b`
//! is the product in GF(2^128) modulo `x^128 + x^127 + x^126 + x^121 + 1`
//! times `x^-128`. Eight blocks at a time it multiplies by the precomputed
//! powers `H^8 … H^1` and reduces once (the same result, one reduction per
//! 128 bytes); what is left goes one block at a time.
//!
//! Two versions of the same code: with VEX encodings where the CPU has AVX
//! (three operands, so no register copies), and with the legacy SSE
//! encodings where it has only PCLMULQDQ. Without PCLMULQDQ [`accumulate`]
//! returns `false` and the caller uses the portable `polyval` crate. The
//! kernel is built soft-float and never touches the vector registers
//! itself: like BLAKE3, every call runs inside [`crate::simd`]'s scope,
//! which saves the user's registers around it. The routines clear the
//! registers they used before returning.
//!
//! Checked on the host against the `polyval` crate and RFC 8452's test
//! vector (this module's tests), and in the guest by
//! [`crate::simd::known_answer_ok`].

#![allow(unsafe_code, reason = "the module exists to hold the assembly")]

/// The eight powers `H^1 … H^8` (in that order), 16-byte aligned for the
/// SSE version's memory operands; zeroed when dropped.
#[repr(C, align(16))]
pub(crate) struct Powers(pub(crate) [[u8; 16]; 8]);

impl core::fmt::Debug for Powers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Powers(..)")
    }
}

impl Drop for Powers {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

cpufeatures::new!(has_avx_clmul, "pclmulqdq", "avx");
cpufeatures::new!(has_sse_clmul, "pclmulqdq", "sse2");

/// Which version this CPU runs, for logs and tests.
pub(crate) fn implementation() -> &'static str {
    if has_avx_clmul::get() {
        "CLMUL (AVX)"
    } else if has_sse_clmul::get() {
        "CLMUL (SSE)"
    } else {
        "portable"
    }
}

/// Folds the whole 16-byte blocks of `blocks` into `acc` under the key
/// whose powers are `powers` (only `H^1` is read for fewer than eight
/// blocks). Returns `false`, touching nothing, when the CPU has no
/// PCLMULQDQ or `blocks` is not whole blocks.
pub(crate) fn accumulate(powers: &Powers, acc: &mut [u8; 16], blocks: &[u8]) -> bool {
    let version = if has_avx_clmul::get() {
        Version::Avx
    } else if has_sse_clmul::get() {
        Version::Sse
    } else {
        return false;
    };
    accumulate_with(version, powers, acc, blocks)
}

/// The two versions of the routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Avx,
    Sse,
}

/// [`accumulate`] with the version chosen by the caller, which has checked
/// that the CPU runs it.
fn accumulate_with(version: Version, powers: &Powers, acc: &mut [u8; 16], blocks: &[u8]) -> bool {
    if !blocks.len().is_multiple_of(16) {
        return false;
    }
    let n = blocks.len() / 16;
    if version == Version::Avx {
        // SAFETY: (1) the caller checked that the CPU has PCLMULQDQ and
        // AVX, the only instruction sets the routine uses, and the operating system (or the kernel's
        // SIMD scope) saves the AVX state; (2) `powers` is 128 readable
        // bytes, `acc` 16 writable ones and `blocks` `16 * n` readable
        // ones, none of which the routine reads past; (3) it follows the
        // SysV calling convention and clobbers only registers that
        // convention lets a callee clobber (rax, flags, xmm0–xmm6).
        unsafe { polyval_avx(powers, acc, blocks.as_ptr(), n) };
    } else {
        // SAFETY: as above, with SSE2 and PCLMULQDQ; `powers` is 16-byte
        // aligned (`repr(align(16))`), as its legacy-SSE memory operands
        // require.
        unsafe { polyval_sse(powers, acc, blocks.as_ptr(), n) };
    }
    true
}

/// Computes `powers` from `H^1` (already in `powers.0[0]`): `H^(k+1) =
/// H^k • H`, one block of [`accumulate`] each. False without PCLMULQDQ.
pub(crate) fn fill_powers(powers: &mut Powers) -> bool {
    for k in 1..8 {
        let mut acc = [0; 16];
        let prev = powers.0[k - 1];
        if !accumulate(powers, &mut acc, &prev) {
            return false;
        }
        powers.0[k] = acc;
    }
    true
}

/// The AVX version's first block of a run: `acc ⊕ [rdx]` (accumulator in
/// xmm0) times the power at `[rdi + $h]`, the 256-bit product's low half
/// in xmm2, high half in xmm3 and middle terms in xmm4.
macro_rules! avx_first_block {
    ($h:literal) => {
        concat!(
            "vmovdqu xmm1, xmmword ptr [rdx]\n",
            "vpxor xmm1, xmm1, xmm0\n",
            "vpclmulqdq xmm2, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x00\n",
            "vpclmulqdq xmm3, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x11\n",
            "vpclmulqdq xmm4, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x01\n",
            "vpclmulqdq xmm5, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x10\n",
            "vpxor xmm4, xmm4, xmm5\n",
        )
    };
}

/// The AVX version's next block of a run: `[rdx + $x]` times the power at
/// `[rdi + $h]`, added to xmm2–xmm4.
macro_rules! avx_next_block {
    ($x:literal, $h:literal) => {
        concat!(
            "vmovdqu xmm1, xmmword ptr [rdx + ",
            $x,
            "]\n",
            "vpclmulqdq xmm5, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x00\n",
            "vpxor xmm2, xmm2, xmm5\n",
            "vpclmulqdq xmm5, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x11\n",
            "vpxor xmm3, xmm3, xmm5\n",
            "vpclmulqdq xmm5, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x01\n",
            "vpxor xmm4, xmm4, xmm5\n",
            "vpclmulqdq xmm5, xmm1, xmmword ptr [rdi + ",
            $h,
            "], 0x10\n",
            "vpxor xmm4, xmm4, xmm5\n",
        )
    };
}

/// The reduction of the 256-bit product in xmm2–xmm4 by x^128 modulo
/// POLYVAL's polynomial into the accumulator xmm0, with xmm6's high half
/// = 0xc200000000000000 (RFC 8452's Montgomery reduction in two folds, as
/// in Gueron's AES-GCM-SIV code).
macro_rules! avx_reduce {
    () => {
        concat!(
            "vpslldq xmm5, xmm4, 8\n",
            "vpsrldq xmm4, xmm4, 8\n",
            "vpxor xmm2, xmm2, xmm5\n",
            "vpxor xmm3, xmm3, xmm4\n",
            "vpclmulqdq xmm5, xmm2, xmm6, 0x10\n",
            "vpshufd xmm2, xmm2, 0x4e\n",
            "vpxor xmm2, xmm2, xmm5\n",
            "vpclmulqdq xmm5, xmm2, xmm6, 0x10\n",
            "vpshufd xmm2, xmm2, 0x4e\n",
            "vpxor xmm2, xmm2, xmm5\n",
            "vpxor xmm0, xmm2, xmm3\n",
        )
    };
}

/// # Safety
/// The CPU supports PCLMULQDQ and AVX with the AVX state enabled;
/// `powers` points to 128 readable bytes, `acc` to 16 readable and
/// writable ones, `data` to `16 * n` readable ones.
#[unsafe(naked)]
unsafe extern "sysv64" fn polyval_avx(
    powers: *const Powers,
    acc: *mut [u8; 16],
    data: *const u8,
    n: usize,
) {
    core::arch::naked_asm!(
        "vmovdqu xmm0, xmmword ptr [rsi]",
        "mov rax, 0xc200000000000000",
        "vmovq xmm6, rax",
        "vpslldq xmm6, xmm6, 8",
        "cmp rcx, 8",
        "jb 3f",
        // Eight blocks, one reduction: block j is multiplied by H^(8-j),
        // at offset 16 * (7 - j) in `powers`.
        "2:",
        avx_first_block!("112"),
        avx_next_block!("16", "96"),
        avx_next_block!("32", "80"),
        avx_next_block!("48", "64"),
        avx_next_block!("64", "48"),
        avx_next_block!("80", "32"),
        avx_next_block!("96", "16"),
        avx_next_block!("112", "0"),
        avx_reduce!(),
        "add rdx, 128",
        "sub rcx, 8",
        "cmp rcx, 8",
        "jae 2b",
        // The rest one block at a time, by H.
        "3:",
        "test rcx, rcx",
        "jz 4f",
        "5:",
        avx_first_block!("0"),
        avx_reduce!(),
        "add rdx, 16",
        "dec rcx",
        "jnz 5b",
        "4:",
        "vmovdqu xmmword ptr [rsi], xmm0",
        "vpxor xmm0, xmm0, xmm0",
        "vpxor xmm1, xmm1, xmm1",
        "vpxor xmm2, xmm2, xmm2",
        "vpxor xmm3, xmm3, xmm3",
        "vpxor xmm4, xmm4, xmm4",
        "vpxor xmm5, xmm5, xmm5",
        "ret",
    )
}

/// [`polyval_avx`] in legacy SSE encodings (two operands: each product
/// first copies the block).
///
/// # Safety
/// The CPU supports PCLMULQDQ and SSE2; `powers` is 16-byte aligned and
/// points to 128 readable bytes, `acc` to 16 readable and writable ones,
/// `data` to `16 * n` readable ones.
#[unsafe(naked)]
unsafe extern "sysv64" fn polyval_sse(
    powers: *const Powers,
    acc: *mut [u8; 16],
    data: *const u8,
    n: usize,
) {
    core::arch::naked_asm!(
        "movdqu xmm0, xmmword ptr [rsi]",
        "mov rax, 0xc200000000000000",
        "movq xmm6, rax",
        "pslldq xmm6, 8",
        "test rcx, rcx",
        "jz 4f",
        // One block at a time (the SSE version does not aggregate: the
        // CPUs that take it have no AVX and are not what the log is tuned
        // for).
        "5:",
        "movdqu xmm1, xmmword ptr [rdx]",
        "pxor xmm1, xmm0",
        "movdqa xmm2, xmm1",
        "pclmulqdq xmm2, xmmword ptr [rdi], 0x00",
        "movdqa xmm3, xmm1",
        "pclmulqdq xmm3, xmmword ptr [rdi], 0x11",
        "movdqa xmm4, xmm1",
        "pclmulqdq xmm4, xmmword ptr [rdi], 0x01",
        "movdqa xmm5, xmm1",
        "pclmulqdq xmm5, xmmword ptr [rdi], 0x10",
        "pxor xmm4, xmm5",
        "movdqa xmm5, xmm4",
        "pslldq xmm5, 8",
        "psrldq xmm4, 8",
        "pxor xmm2, xmm5",
        "pxor xmm3, xmm4",
        "movdqa xmm5, xmm2",
        "pclmulqdq xmm5, xmm6, 0x10",
        "pshufd xmm2, xmm2, 0x4e",
        "pxor xmm2, xmm5",
        "movdqa xmm5, xmm2",
        "pclmulqdq xmm5, xmm6, 0x10",
        "pshufd xmm2, xmm2, 0x4e",
        "pxor xmm2, xmm5",
        "pxor xmm2, xmm3",
        "movdqa xmm0, xmm2",
        "add rdx, 16",
        "dec rcx",
        "jnz 5b",
        "4:",
        "movdqu xmmword ptr [rsi], xmm0",
        "pxor xmm0, xmm0",
        "pxor xmm1, xmm1",
        "pxor xmm2, xmm2",
        "pxor xmm3, xmm3",
        "pxor xmm4, xmm4",
        "pxor xmm5, xmm5",
        "ret",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use polyval::universal_hash::{KeyInit, UniversalHash};

    fn reference(h: &[u8; 16], data: &[u8]) -> [u8; 16] {
        let mut p = polyval::Polyval::new(h.into());
        p.update_padded(data);
        p.finalize().into()
    }

    fn ours(h: &[u8; 16], data: &[u8]) -> Option<[u8; 16]> {
        let mut powers = Powers([[0; 16]; 8]);
        powers.0[0] = *h;
        if !fill_powers(&mut powers) {
            return None;
        }
        let mut acc = [0; 16];
        if !accumulate(&powers, &mut acc, data) {
            return None;
        }
        // The SSE version too, on a host that has AVX.
        if has_sse_clmul::get() {
            let mut sse = [0; 16];
            assert!(accumulate_with(Version::Sse, &powers, &mut sse, data));
            assert_eq!(sse, acc, "the SSE version, {} bytes", data.len());
        }
        Some(acc)
    }

    #[test]
    fn rfc8452_polyval_vector() {
        // RFC 8452, appendix A.
        let h = hex16("25629347589242761d31f826ba4b757b");
        let mut x = [0u8; 32];
        x[..16].copy_from_slice(&hex16("4f4f95668c83dfb6401762bb2d01a262"));
        x[16..].copy_from_slice(&hex16("d1a24ddd2721d006bbe45f20d3c9f362"));
        let want = hex16("f7a3b47b846119fae5b7866cf5e5b77e");
        assert_eq!(reference(&h, &x), want);
        if let Some(got) = ours(&h, &x) {
            assert_eq!(got, want, "{}", implementation());
        }
    }

    #[test]
    fn matches_the_polyval_crate_at_every_length() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for blocks in (0..40).chain([511, 512, 513]) {
            let mut h = [0u8; 16];
            h.iter_mut().for_each(|b| *b = next() as u8);
            let data: Vec<u8> = (0..blocks * 16).map(|_| next() as u8).collect();
            match ours(&h, &data) {
                Some(got) => assert_eq!(got, reference(&h, &data), "{blocks} blocks"),
                None => assert_eq!(implementation(), "portable"),
            }
        }
    }

    #[test]
    fn refuses_partial_blocks() {
        let powers = Powers([[1; 16]; 8]);
        let mut acc = [0; 16];
        assert!(!accumulate(&powers, &mut acc, &[0; 17]));
        assert_eq!(acc, [0; 16]);
    }

    fn hex16(s: &str) -> [u8; 16] {
        let mut out = [0; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
