//! Attested key release: the owner's broker sends the audit master key `K`
//! to a guest whose report it checked, encrypted to the guest's ephemeral
//! X25519 key, which only the guest holds.
//!
//! Guest: [`GuestKey::from_random`] (32 bytes from RDRAND), its
//! [`GuestKey::public`] goes into `REPORT_DATA` ([`super::report_data`]).
//! Broker: verifies the report and its binding, then [`seal_key`] with a
//! fresh ephemeral key of its own. Guest: [`GuestKey::open`].
//!
//! Envelope (88 bytes): magic `CLKR` @0, version u16 = 1 @4, reserved u16
//! @6, broker public key @8 (32), AES-256-GCM ciphertext of `K` @40 (32),
//! tag @72 (16). The AEAD key is `HKDF-SHA-256(salt = REPORT_DATA, ikm =
//! X25519(broker, guest), info = "cloister-attest/v1/key-release" ‖
//! guest public key ‖ broker public key)`; the nonce is zero (each key
//! encrypts one message: the broker's key is fresh); the associated data
//! is bytes 0..40. So an envelope opens only with the guest's secret and
//! only for the report it answers.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::binding::REPORT_DATA_BYTES;

/// Length of an X25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Length of a key-release envelope.
pub const ENVELOPE_BYTES: usize = 88;
const MAGIC: &[u8; 4] = b"CLKR";
const VERSION: u16 = 1;
const DOMAIN_RELEASE: &[u8] = b"cloister-attest/v1/key-release";

/// Why an envelope was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseError {
    /// Not [`ENVELOPE_BYTES`] long.
    BadLength,
    /// Wrong magic or version.
    BadHeader,
    /// The key exchange gave a non-contributory (low-order) result.
    WeakKey,
    /// The tag did not verify: another guest key, another report, or
    /// altered bytes.
    Rejected,
}

impl core::fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ReleaseError::BadLength => "key-release envelope has the wrong length",
            ReleaseError::BadHeader => "key-release envelope has a bad magic or version",
            ReleaseError::WeakKey => "key-release public key is of low order",
            ReleaseError::Rejected => {
                "key-release envelope does not open (other key, other report, or altered)"
            }
        })
    }
}

fn aead(
    shared: &[u8; 32],
    report_data: &[u8; REPORT_DATA_BYTES],
    guest: &[u8; 32],
    broker: &[u8; 32],
) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(report_data), shared);
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's limit of 255 × 32.
    let _ = hk.expand_multi_info(&[DOMAIN_RELEASE, guest, broker], key.as_mut());
    Aes256Gcm::new(key.as_ref().into())
}

/// The guest's ephemeral key pair (one per boot; never leaves the guest).
pub struct GuestKey {
    secret: StaticSecret,
    public: [u8; PUBLIC_KEY_BYTES],
}

impl core::fmt::Debug for GuestKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl GuestKey {
    /// A key pair from 32 random bytes (clamped as X25519 requires).
    pub fn from_random(random: [u8; 32]) -> Self {
        let secret = StaticSecret::from(random);
        let public = PublicKey::from(&secret).to_bytes();
        GuestKey { secret, public }
    }

    /// The public key, for `REPORT_DATA` and the broker.
    pub fn public(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.public
    }

    /// Opens an envelope answering the report whose `REPORT_DATA` is
    /// `report_data`, returning the released key.
    pub fn open(
        &self,
        report_data: &[u8; REPORT_DATA_BYTES],
        envelope: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, ReleaseError> {
        if envelope.len() != ENVELOPE_BYTES {
            return Err(ReleaseError::BadLength);
        }
        if &envelope[0..4] != MAGIC
            || envelope[4..6] != VERSION.to_le_bytes()
            || envelope[6..8] != [0, 0]
        {
            return Err(ReleaseError::BadHeader);
        }
        let mut broker = [0u8; 32];
        broker.copy_from_slice(&envelope[8..40]);
        let shared = self.secret.diffie_hellman(&PublicKey::from(broker));
        if !shared.was_contributory() {
            return Err(ReleaseError::WeakKey);
        }
        let cipher = aead(shared.as_bytes(), report_data, &self.public, &broker);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&envelope[40..72]);
        cipher
            .decrypt_in_place_detached(
                &Nonce::default(),
                &envelope[0..40],
                key.as_mut(),
                Tag::from_slice(&envelope[72..88]),
            )
            .map_err(|_| ReleaseError::Rejected)?;
        Ok(key)
    }
}

/// The broker's side: encrypts `audit_key` to `guest_public` for the
/// report whose `REPORT_DATA` is `report_data`, using `broker_random` (32
/// fresh random bytes) as its ephemeral secret. Call only after checking
/// the report and that `report_data` binds `guest_public`.
pub fn seal_key(
    guest_public: &[u8; PUBLIC_KEY_BYTES],
    report_data: &[u8; REPORT_DATA_BYTES],
    audit_key: &[u8; 32],
    broker_random: [u8; 32],
) -> Result<[u8; ENVELOPE_BYTES], ReleaseError> {
    let secret = StaticSecret::from(broker_random);
    let broker = PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(*guest_public));
    if !shared.was_contributory() {
        return Err(ReleaseError::WeakKey);
    }
    let mut env = [0u8; ENVELOPE_BYTES];
    env[0..4].copy_from_slice(MAGIC);
    env[4..6].copy_from_slice(&VERSION.to_le_bytes());
    env[8..40].copy_from_slice(&broker);
    env[40..72].copy_from_slice(audit_key);
    let cipher = aead(shared.as_bytes(), report_data, guest_public, &broker);
    let (head, body) = env.split_at_mut(40);
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::default(), head, &mut body[0..32])
        .map_err(|_| ReleaseError::Rejected)?;
    body[32..48].copy_from_slice(&tag);
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RD: [u8; 64] = [0x5a; 64];

    #[test]
    fn the_guest_opens_what_the_broker_sealed_to_it() {
        let guest = GuestKey::from_random([1; 32]);
        let env = seal_key(&guest.public(), &RD, &[0x42; 32], [2; 32]).unwrap();
        assert_eq!(*guest.open(&RD, &env).unwrap(), [0x42; 32]);
        // The key is not in the clear.
        assert!(env.windows(32).all(|w| w != [0x42; 32]));
    }

    #[test]
    fn another_guest_another_report_or_a_flipped_bit_is_refused() {
        let guest = GuestKey::from_random([1; 32]);
        let env = seal_key(&guest.public(), &RD, &[0x42; 32], [2; 32]).unwrap();
        let other = GuestKey::from_random([3; 32]);
        assert_eq!(other.open(&RD, &env).err(), Some(ReleaseError::Rejected));
        assert_eq!(
            guest.open(&[0; 64], &env).err(),
            Some(ReleaseError::Rejected)
        );
        for i in 8..ENVELOPE_BYTES {
            let mut bad = env;
            bad[i] ^= 0x10;
            assert!(guest.open(&RD, &bad).is_err(), "flip at {i} accepted");
        }
        let mut bad = env;
        bad[0] = b'X';
        assert_eq!(guest.open(&RD, &bad).err(), Some(ReleaseError::BadHeader));
        assert_eq!(
            guest.open(&RD, &env[..87]).err(),
            Some(ReleaseError::BadLength)
        );
    }

    #[test]
    fn a_low_order_broker_key_is_refused() {
        let guest = GuestKey::from_random([1; 32]);
        let mut env = seal_key(&guest.public(), &RD, &[0x42; 32], [2; 32]).unwrap();
        env[8..40].fill(0); // the identity point
        assert_eq!(guest.open(&RD, &env).err(), Some(ReleaseError::WeakKey));
        assert_eq!(
            seal_key(&[0; 32], &RD, &[0x42; 32], [2; 32]).err(),
            Some(ReleaseError::WeakKey)
        );
    }
}
