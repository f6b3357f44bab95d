//! Deterministic inputs for the file-heavy figures, generated on the host
//! (the same bytes for both guests and every machine): pseudo-random bytes
//! from SplitMix64 and a text corpus of pseudo-random words, which gzip
//! compresses the way it compresses prose.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// SplitMix64: a fixed, tiny generator, so the inputs never change.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `len` pseudo-random bytes from `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut g = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&g.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "cloister",
    "kernel",
    "guest",
    "memory",
    "page",
    "syscall",
    "library",
    "confidential",
    "machine",
    "virtual",
    "benchmark",
    "median",
    "ratio",
    "console",
    "archive",
    "compress",
];

/// `len` bytes of text: pseudo-random words in lines of about 70
/// characters.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut g = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(len + 80);
    let mut line = 0usize;
    while out.len() < len {
        let w = WORDS[(g.next_u64() % WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        line += w.len() + 1;
        if line > 70 {
            out.push(b'\n');
            line = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

/// Writes `make()`'s bytes to `path` unless a file of `len` bytes is
/// already there (inputs are deterministic, so the size is enough).
pub fn cached(path: &Path, len: usize, make: impl FnOnce() -> Vec<u8>) -> Result<PathBuf> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == len as u64) {
        return Ok(path.to_path_buf());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, make()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// The SHA-256 of a host file, from the host's `sha256sum`.
pub fn host_sha256(path: &Path) -> Result<String> {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .context("cannot run sha256sum on the host (Debian: coreutils)")?;
    let lines = vec![String::from_utf8_lossy(&out.stdout).into_owned()];
    super::parse::sha256sum(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_deterministic() {
        // SplitMix64's published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(random_bytes(7, 13), random_bytes(7, 13));
        assert_eq!(random_bytes(7, 13).len(), 13);
        assert_ne!(random_bytes(7, 16), random_bytes(8, 16));
        let t = text(1, 1000);
        assert_eq!(t.len(), 1000);
        assert!(
            t.iter()
                .all(|b| b.is_ascii_lowercase() || *b == b' ' || *b == b'\n')
        );
        assert!(t.contains(&b'\n'));
    }
}
