//! Parsing of the master key and of exported checkpoints.

use std::path::Path;

use anyhow::{Context, Result, bail};
use audit::{CHECKPOINT_BYTES, Checkpoint};

/// Decodes hex digits (whitespace around them ignored).
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_from_hex(s: &str) -> Result<[u8; 32]> {
    match hex_decode(s).map(<[u8; 32]>::try_from) {
        Some(Ok(k)) => Ok(k),
        _ => bail!("the key must be exactly 64 hex digits (32 bytes)"),
    }
}

/// The key from `--key` or `--key-file`, if either was given.
pub(crate) fn load(hex_key: Option<&str>, file: Option<&Path>) -> Result<Option<[u8; 32]>> {
    if let Some(h) = hex_key {
        return key_from_hex(h).map(Some);
    }
    let Some(path) = file else { return Ok(None) };
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    if let Ok(k) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(Some(k));
    }
    let text = std::str::from_utf8(&bytes).ok().with_context(|| {
        format!(
            "key file {} must hold 32 raw bytes or 64 hex digits",
            path.display()
        )
    })?;
    key_from_hex(text)
        .with_context(|| format!("key file {}", path.display()))
        .map(Some)
}

/// A checkpoint from its hex encoding.
pub(crate) fn parse_checkpoint(s: &str) -> Result<Checkpoint> {
    let bytes = hex_decode(s).filter(|b| b.len() == CHECKPOINT_BYTES);
    match bytes.and_then(|b| Checkpoint::from_bytes(&b)) {
        Some(c) => Ok(c),
        None => bail!(
            "--checkpoint must be {} hex digits of a checkpoint exported by the guest (magic CLSTCKP1)",
            2 * CHECKPOINT_BYTES
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(hex_decode(" 00ff10 "), Some(vec![0, 255, 16]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex(&[1, 171]), "01ab");
        assert!(key_from_hex(&"ab".repeat(32)).is_ok());
        assert!(key_from_hex("abcd").is_err());
        assert!(parse_checkpoint("00").is_err());
    }
}
