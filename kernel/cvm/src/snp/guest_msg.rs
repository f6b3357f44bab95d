//! SNP guest messages (SEV-SNP firmware ABI #56860, section 8.26 "Guest
//! Messages" and table "Message Header Format"): requests to the AMD
//! secure processor (such as an attestation report) travel through the
//! hypervisor encrypted and authenticated with AES-256-GCM under a VM
//! platform communication key (VMPCK) from the secrets page, so the
//! hypervisor can neither read nor forge them.
//!
//! The 96-byte header: authentication tag (32 bytes, 16 used), message
//! sequence number, algorithm (1: AES-256-GCM), header version (1), header
//! size (96), message type and version, payload size, VMPCK number. The
//! additional authenticated data is the header from the algorithm byte
//! (0x30) to its end; the IV is the sequence number, little-endian, in
//! 12 bytes. A response must carry the request's sequence number plus one
//! and the request's type plus one; the guest's counter then advances by
//! two (a replayed or reordered response fails).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use alloc::vec::Vec;

/// Header bytes.
pub const HEADER_BYTES: usize = 0x60;
/// A message (header and payload) is one page.
pub const MESSAGE_BYTES: usize = 4096;
/// Largest payload.
pub const MAX_PAYLOAD: usize = MESSAGE_BYTES - HEADER_BYTES;
/// Where the authenticated header part starts.
const AAD_START: usize = 0x30;
/// `algo`: AES-256-GCM.
pub const ALGO_AES_256_GCM: u8 = 1;
/// `hdr_version`.
pub const HEADER_VERSION: u8 = 1;

/// Message types (ABI table "Message Type Encodings").
#[allow(missing_docs, reason = "names follow the specification")]
pub mod msg_type {
    pub const CPUID_REQ: u8 = 1;
    pub const CPUID_RSP: u8 = 2;
    pub const KEY_REQ: u8 = 3;
    pub const KEY_RSP: u8 = 4;
    pub const REPORT_REQ: u8 = 5;
    pub const REPORT_RSP: u8 = 6;
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgError {
    /// Payload too large for a page.
    TooLarge,
    /// The response is shorter than a header or its sizes are wrong.
    Malformed,
    /// Wrong algorithm, header version, type, version or VMPCK.
    Unexpected,
    /// The sequence number is not the one expected (replay or reorder).
    Sequence,
    /// The authentication tag does not verify.
    Authentication,
    /// The guest's sequence counter would wrap.
    Exhausted,
}

/// The guest's side of one VMPCK: the key and the message counter.
pub struct Channel {
    cipher: Aes256Gcm,
    vmpck: u8,
    /// Sequence number of the last response accepted (0: none yet).
    seqno: u64,
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel")
            .field("vmpck", &self.vmpck)
            .field("seqno", &self.seqno)
            .finish_non_exhaustive()
    }
}

fn nonce(seqno: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seqno.to_le_bytes());
    n
}

impl Channel {
    /// A channel with VMPCK number `vmpck` (0..=3) whose key is `key`.
    pub fn new(key: &[u8; 32], vmpck: u8) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            vmpck,
            seqno: 0,
        }
    }

    /// The sequence number the next request carries.
    pub fn next_request_seqno(&self) -> Option<u64> {
        self.seqno.checked_add(1)
    }

    /// An encrypted request of type `ty` (version 1) carrying `payload`.
    pub fn seal_request(&self, ty: u8, payload: &[u8]) -> Result<Vec<u8>, MsgError> {
        let seqno = self.next_request_seqno().ok_or(MsgError::Exhausted)?;
        seal(&self.cipher, seqno, ty, 1, self.vmpck, payload)
    }

    /// Opens the response to the request of type `request_ty` last sealed;
    /// on success the counter advances by two.
    pub fn open_response(&mut self, request_ty: u8, message: &[u8]) -> Result<Vec<u8>, MsgError> {
        let expected = self.seqno.checked_add(2).ok_or(MsgError::Exhausted)?;
        let (h, payload) = split(message)?;
        if h.seqno != expected {
            return Err(MsgError::Sequence);
        }
        if h.algo != ALGO_AES_256_GCM
            || h.hdr_version != HEADER_VERSION
            || h.msg_type != request_ty.wrapping_add(1)
            || h.msg_version != 1
            || h.vmpck != self.vmpck
        {
            return Err(MsgError::Unexpected);
        }
        let mut out = payload.to_vec();
        let aad = &message[AAD_START..HEADER_BYTES];
        let tag = Tag::from_slice(&message[..16]);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&nonce(h.seqno)), aad, &mut out, tag)
            .map_err(|_| MsgError::Authentication)?;
        self.seqno = expected;
        Ok(out)
    }
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `msg_seqno`.
    pub seqno: u64,
    /// `algo`.
    pub algo: u8,
    /// `hdr_version`.
    pub hdr_version: u8,
    /// `msg_type`.
    pub msg_type: u8,
    /// `msg_version`.
    pub msg_version: u8,
    /// `msg_vmpck`.
    pub vmpck: u8,
}

/// Splits a message into its header and payload (checking the sizes).
pub fn split(message: &[u8]) -> Result<(Header, &[u8]), MsgError> {
    if message.len() < HEADER_BYTES {
        return Err(MsgError::Malformed);
    }
    let u16_at = |at: usize| u16::from_le_bytes([message[at], message[at + 1]]);
    if usize::from(u16_at(0x32)) != HEADER_BYTES {
        return Err(MsgError::Malformed);
    }
    let size = usize::from(u16_at(0x36));
    let payload = message
        .get(HEADER_BYTES..HEADER_BYTES + size)
        .ok_or(MsgError::Malformed)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&message[0x20..0x28]);
    Ok((
        Header {
            seqno: u64::from_le_bytes(seq),
            algo: message[0x30],
            hdr_version: message[0x31],
            msg_type: message[0x34],
            msg_version: message[0x35],
            vmpck: message[0x3c],
        },
        payload,
    ))
}

/// Builds and encrypts a message (the secure processor's side too, for the
/// mock in tests).
pub fn seal(
    cipher: &Aes256Gcm,
    seqno: u64,
    ty: u8,
    version: u8,
    vmpck: u8,
    payload: &[u8],
) -> Result<Vec<u8>, MsgError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(MsgError::TooLarge);
    }
    let mut m = alloc::vec![0u8; HEADER_BYTES + payload.len()];
    m[0x20..0x28].copy_from_slice(&seqno.to_le_bytes());
    m[0x30] = ALGO_AES_256_GCM;
    m[0x31] = HEADER_VERSION;
    m[0x32..0x34].copy_from_slice(&(HEADER_BYTES as u16).to_le_bytes());
    m[0x34] = ty;
    m[0x35] = version;
    m[0x36..0x38].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    m[0x3c] = vmpck;
    let (head, body) = m.split_at_mut(HEADER_BYTES);
    body.copy_from_slice(payload);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce(seqno)), &head[AAD_START..], body)
        .map_err(|_| MsgError::TooLarge)?;
    head[..16].copy_from_slice(&tag);
    Ok(m)
}

/// The `MSG_REPORT_REQ` payload: 64 bytes of report data, the VMPL, and 28
/// reserved bytes (96 bytes).
pub fn report_request(report_data: &[u8; 64], vmpl: u32) -> [u8; 96] {
    let mut p = [0u8; 96];
    p[..64].copy_from_slice(report_data);
    p[64..68].copy_from_slice(&vmpl.to_le_bytes());
    p
}

/// The report inside a `MSG_REPORT_RSP` payload: status (0: success),
/// report size, 24 reserved bytes, then the report.
pub fn report_from_response(payload: &[u8]) -> Result<&[u8], MsgError> {
    let word = |at: usize| -> Result<u32, MsgError> {
        let b = payload.get(at..at + 4).ok_or(MsgError::Malformed)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if word(0)? != 0 {
        return Err(MsgError::Unexpected);
    }
    let size = word(4)? as usize;
    payload.get(0x20..0x20 + size).ok_or(MsgError::Malformed)
}

/// Offsets of the VMPCKs in the secrets page (ABI table "Secrets Page").
pub fn vmpck_offset(vmpck: u8) -> Option<usize> {
    (vmpck < 4).then(|| 0x20 + 32 * usize::from(vmpck))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    /// The secure processor's side: answers a report request.
    fn psp(request: &[u8], report: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(&KEY.into());
        let (h, body) = split(request).unwrap();
        let mut plain = body.to_vec();
        cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce(h.seqno)),
                &request[AAD_START..HEADER_BYTES],
                &mut plain,
                Tag::from_slice(&request[..16]),
            )
            .expect("the guest's request authenticates");
        assert_eq!(&plain[..64], &[0xab; 64], "report data travels");
        let mut rsp = alloc::vec![0u8; 0x20 + report.len()];
        rsp[4..8].copy_from_slice(&(report.len() as u32).to_le_bytes());
        rsp[0x20..].copy_from_slice(report);
        seal(&cipher, h.seqno + 1, h.msg_type + 1, 1, h.vmpck, &rsp).unwrap()
    }

    #[test]
    fn the_header_has_the_abis_layout() {
        let c = Channel::new(&KEY, 0);
        let m = c.seal_request(msg_type::REPORT_REQ, &[1, 2, 3]).unwrap();
        assert_eq!(m.len(), 0x63);
        assert_eq!(&m[0x20..0x28], &1u64.to_le_bytes(), "seqno 1");
        assert_eq!((m[0x30], m[0x31]), (1, 1), "AES-256-GCM, header v1");
        assert_eq!(&m[0x32..0x34], &[0x60, 0], "header size");
        assert_eq!((m[0x34], m[0x35]), (5, 1), "MSG_REPORT_REQ v1");
        assert_eq!(&m[0x36..0x38], &[3, 0], "payload size");
        assert_eq!(&m[0x10..0x20], &[0; 16], "tag is 16 of 32 bytes");
        assert_ne!(&m[0x60..], &[1, 2, 3], "payload encrypted");
        assert_eq!(vmpck_offset(0), Some(0x20));
        assert_eq!(vmpck_offset(3), Some(0x80));
        assert_eq!(vmpck_offset(4), None);
    }

    #[test]
    fn a_report_round_trips_and_the_counter_advances_by_two() {
        let mut c = Channel::new(&KEY, 0);
        let report = [0x5a; 0x4a0];
        for round in 0..3u64 {
            let req = c
                .seal_request(msg_type::REPORT_REQ, &report_request(&[0xab; 64], 0))
                .unwrap();
            assert_eq!(split(&req).unwrap().0.seqno, 2 * round + 1);
            let rsp = psp(&req, &report);
            let payload = c.open_response(msg_type::REPORT_REQ, &rsp).unwrap();
            assert_eq!(report_from_response(&payload).unwrap(), &report[..]);
        }
    }

    #[test]
    fn forged_replayed_and_misdirected_responses_are_refused() {
        let mut c = Channel::new(&KEY, 0);
        let req = c
            .seal_request(msg_type::REPORT_REQ, &report_request(&[0xab; 64], 0))
            .unwrap();
        let rsp = psp(&req, &[1; 32]);
        let mut forged = rsp.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(c.open_response(5, &forged), Err(MsgError::Authentication));
        let mut header_changed = rsp.clone();
        header_changed[0x3c] = 0; // same VMPCK: AAD unchanged, still fine
        header_changed[0x35] = 2;
        assert_eq!(
            c.open_response(5, &header_changed),
            Err(MsgError::Unexpected)
        );
        assert_eq!(
            c.open_response(3, &rsp),
            Err(MsgError::Unexpected),
            "wrong type"
        );
        assert!(c.open_response(5, &rsp).is_ok());
        assert_eq!(c.open_response(5, &rsp), Err(MsgError::Sequence), "replay");
        assert_eq!(c.open_response(5, &rsp[..0x50]), Err(MsgError::Malformed));
        // A response sealed under another key.
        let other = seal(&Aes256Gcm::new(&[8u8; 32].into()), 4, 6, 1, 0, &[0; 40]).unwrap();
        assert_eq!(c.open_response(5, &other), Err(MsgError::Authentication));
        assert_eq!(
            report_from_response(&[1, 0, 0, 0, 0, 0, 0, 0]),
            Err(MsgError::Unexpected)
        );
        assert_eq!(report_from_response(&[0; 8]), Err(MsgError::Malformed));
    }
}
