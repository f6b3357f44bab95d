//! SNP guest messages (SEV-SNP firmware ABI #56860, chapter "Guest
//! Messages", tables "Message Header Format" and "Message Type Encodings",
//! `MSG_REPORT_REQ`/`MSG_REPORT_RSP`; Linux
//! `drivers/virt/coco/sev-guest` and `include/uapi/linux/sev-guest.h`).
//!
//! A message is one 4 KiB page: a 0x60-byte header, then the payload
//! encrypted with AES-256-GCM under a VMPCK from the secrets page.
//!
//! Header: `0x00` auth tag (32 bytes; GCM uses the first 16), `0x20`
//! `msg_seqno` (u64), `0x30` `algo` (1 = AES-256-GCM), `0x31`
//! `hdr_version` (1), `0x32` `hdr_sz` (0x60), `0x34` `msg_type`, `0x35`
//! `msg_version`, `0x36` `msg_sz`, `0x3C` `msg_vmpck`. The additional
//! authenticated data is the header from `algo` to its end
//! (`0x30..0x60`); the 96-bit IV is the sequence number, little endian,
//! zero padded.
//!
//! Sequence numbers: the request carries the last number used plus one,
//! the PSP answers with that plus one, and the guest then counts both as
//! used. A response with another number, another type or a bad tag is a
//! replay or a forgery: [`GuestChannel`] refuses it and refuses all further
//! use, because whether the PSP consumed the request's IV is then unknown
//! and reusing an IV under GCM gives the key away (Linux wipes the VMPCK
//! for the same reason).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use alloc::boxed::Box;
use alloc::vec::Vec;

use super::report::{self, Report};
use super::secrets::{SecretsPage, VMPCK_BYTES};
use super::{Error, Result};

/// Bytes of a message page.
pub const MESSAGE_BYTES: usize = 4096;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 0x60;
/// Bytes of the GCM tag at the start of the header.
pub const AUTHTAG_BYTES: usize = 16;
/// The additional authenticated data: `algo` to the end of the header.
pub const AAD: core::ops::Range<usize> = 0x30..HEADER_BYTES;
/// The largest payload (the payload area minus a tag's worth, as Linux
/// checks it).
pub const MAX_PAYLOAD_BYTES: usize = MESSAGE_BYTES - HEADER_BYTES - AUTHTAG_BYTES;
/// `algo`: AES-256-GCM.
pub const ALGO_AES_256_GCM: u8 = 1;
/// `hdr_version` this guest writes and accepts.
pub const HEADER_VERSION: u8 = 1;
/// `msg_version` of the messages used here.
pub const MESSAGE_VERSION: u8 = 1;

/// Message types (table "Message Type Encodings").
pub mod msg_type {
    #![allow(missing_docs, reason = "names of the spec's table")]
    pub const CPUID_REQ: u8 = 1;
    pub const CPUID_RSP: u8 = 2;
    pub const KEY_REQ: u8 = 3;
    pub const KEY_RSP: u8 = 4;
    pub const REPORT_REQ: u8 = 5;
    pub const REPORT_RSP: u8 = 6;
    pub const EXPORT_REQ: u8 = 7;
    pub const EXPORT_RSP: u8 = 8;
    pub const IMPORT_REQ: u8 = 9;
    pub const IMPORT_RSP: u8 = 10;
    pub const ABSORB_REQ: u8 = 11;
    pub const ABSORB_RSP: u8 = 12;
    pub const VMRK_REQ: u8 = 13;
    pub const VMRK_RSP: u8 = 14;
}

/// A message header (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The GCM tag (first 16 bytes used).
    pub auth_tag: [u8; 32],
    /// The sequence number.
    pub msg_seqno: u64,
    /// The AEAD algorithm.
    pub algo: u8,
    /// The header format version.
    pub hdr_version: u8,
    /// The header size.
    pub hdr_sz: u16,
    /// The message type ([`msg_type`]).
    pub msg_type: u8,
    /// The message format version.
    pub msg_version: u8,
    /// The payload size.
    pub msg_sz: u16,
    /// Which VMPCK encrypts the message.
    pub msg_vmpck: u8,
}

impl Header {
    /// Writes the header into the first [`HEADER_BYTES`] of `page`,
    /// reserved bytes zero.
    pub fn write(&self, page: &mut [u8; MESSAGE_BYTES]) {
        let h = &mut page[..HEADER_BYTES];
        h.fill(0);
        h[0x00..0x20].copy_from_slice(&self.auth_tag);
        h[0x20..0x28].copy_from_slice(&self.msg_seqno.to_le_bytes());
        h[0x30] = self.algo;
        h[0x31] = self.hdr_version;
        h[0x32..0x34].copy_from_slice(&self.hdr_sz.to_le_bytes());
        h[0x34] = self.msg_type;
        h[0x35] = self.msg_version;
        h[0x36..0x38].copy_from_slice(&self.msg_sz.to_le_bytes());
        h[0x3c] = self.msg_vmpck;
    }

    /// Reads the header from `page`.
    pub fn read(page: &[u8; MESSAGE_BYTES]) -> Self {
        let mut auth_tag = [0u8; 32];
        auth_tag.copy_from_slice(&page[0..0x20]);
        let mut seqno = [0u8; 8];
        seqno.copy_from_slice(&page[0x20..0x28]);
        Self {
            auth_tag,
            msg_seqno: u64::from_le_bytes(seqno),
            algo: page[0x30],
            hdr_version: page[0x31],
            hdr_sz: u16::from_le_bytes([page[0x32], page[0x33]]),
            msg_type: page[0x34],
            msg_version: page[0x35],
            msg_sz: u16::from_le_bytes([page[0x36], page[0x37]]),
            msg_vmpck: page[0x3c],
        }
    }
}

/// The IV for sequence number `seqno`.
fn iv(seqno: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&seqno.to_le_bytes());
    iv.into()
}

/// An encrypted request/response channel to the PSP under one VMPCK.
pub struct GuestChannel {
    key: [u8; VMPCK_BYTES],
    vmpck_id: u8,
    /// The last sequence number used (sent or received).
    last_seqno: u64,
    /// The request in flight: its sequence number and type.
    pending: Option<(u64, u8)>,
    /// A response failed its checks: the channel is closed for good.
    closed: bool,
}

impl core::fmt::Debug for GuestChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestChannel")
            .field("vmpck_id", &self.vmpck_id)
            .field("last_seqno", &self.last_seqno)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Drop for GuestChannel {
    fn drop(&mut self) {
        // Best effort: the key does not outlive the channel in this copy.
        self.key.fill(0);
        core::hint::black_box(&self.key);
    }
}

impl GuestChannel {
    /// A channel under VMPCK`vmpck_id` of `secrets`, continuing from the
    /// sequence number the guest OS area records for it.
    pub fn new(secrets: &SecretsPage, vmpck_id: u8) -> Result<Self> {
        let key = *secrets
            .vmpck(vmpck_id)
            .ok_or(Error::Unsupported("the secrets page has no such VMPCK"))?;
        Ok(Self {
            key,
            vmpck_id,
            last_seqno: secrets.msg_seqnos[usize::from(vmpck_id)].into(),
            pending: None,
            closed: false,
        })
    }

    /// The last sequence number used (to store back in the OS area).
    pub fn last_seqno(&self) -> u64 {
        self.last_seqno
    }

    /// Whether a failed exchange closed the channel.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key))
    }

    /// Encrypts `payload` as a message of type `msg_type` with the next
    /// sequence number; the response to it is then expected.
    pub fn seal_request(
        &mut self,
        msg_type: u8,
        payload: &[u8],
    ) -> Result<Box<[u8; MESSAGE_BYTES]>> {
        if self.closed {
            return Err(Error::MessageRejected("the guest channel is closed"));
        }
        let msg_sz = u16::try_from(payload.len())
            .ok()
            .filter(|&n| usize::from(n) <= MAX_PAYLOAD_BYTES)
            .ok_or(Error::InvalidArgument)?;
        // Linux keeps sequence numbers within 32 bits; so does this.
        let seqno = self
            .last_seqno
            .checked_add(1)
            .filter(|&s| s.checked_add(1).is_some_and(|r| r <= u64::from(u32::MAX)))
            .ok_or(Error::Unsupported(
                "guest message sequence numbers exhausted",
            ))?;
        let mut page = Box::new([0u8; MESSAGE_BYTES]);
        Header {
            auth_tag: [0; 32],
            msg_seqno: seqno,
            algo: ALGO_AES_256_GCM,
            hdr_version: HEADER_VERSION,
            hdr_sz: HEADER_BYTES as u16,
            msg_type,
            msg_version: MESSAGE_VERSION,
            msg_sz,
            msg_vmpck: self.vmpck_id,
        }
        .write(&mut page);
        let (header, body) = page.split_at_mut(HEADER_BYTES);
        let body = &mut body[..payload.len()];
        body.copy_from_slice(payload);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(&iv(seqno), &header[AAD], body)
            .map_err(|_| Error::InvalidArgument)?;
        header[..AUTHTAG_BYTES].copy_from_slice(&tag);
        self.pending = Some((seqno, msg_type));
        // The request's number is spent whatever happens next.
        self.last_seqno = seqno;
        Ok(page)
    }

    /// Checks and decrypts the response to the request in flight. Any
    /// failure closes the channel (see the module docs).
    pub fn open_response(&mut self, page: &[u8; MESSAGE_BYTES]) -> Result<Vec<u8>> {
        let result = self.check_and_decrypt(page);
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Closes the channel for good and wipes this copy of the key.
    fn close(&mut self) {
        self.closed = true;
        self.pending = None;
        self.key.fill(0);
    }

    fn check_and_decrypt(&mut self, page: &[u8; MESSAGE_BYTES]) -> Result<Vec<u8>> {
        let (seqno, req_type) = self
            .pending
            .take()
            .ok_or(Error::MessageRejected("a response without a request"))?;
        if self.closed {
            return Err(Error::MessageRejected("the guest channel is closed"));
        }
        let h = Header::read(page);
        if h.msg_seqno != seqno + 1 {
            return Err(Error::MessageRejected(
                "response sequence number is not request + 1",
            ));
        }
        if h.msg_type != req_type.wrapping_add(1) || h.msg_version != MESSAGE_VERSION {
            return Err(Error::MessageRejected(
                "response of the wrong type or version",
            ));
        }
        if h.algo != ALGO_AES_256_GCM
            || h.hdr_version != HEADER_VERSION
            || usize::from(h.hdr_sz) != HEADER_BYTES
            || h.msg_vmpck != self.vmpck_id
        {
            return Err(Error::MessageRejected(
                "response header does not match the channel",
            ));
        }
        let len = usize::from(h.msg_sz);
        if len > MAX_PAYLOAD_BYTES {
            return Err(Error::MessageRejected("response payload too large"));
        }
        let mut body = page[HEADER_BYTES..HEADER_BYTES + len].to_vec();
        let tag = Tag::clone_from_slice(&h.auth_tag[..AUTHTAG_BYTES]);
        self.cipher()
            .decrypt_in_place_detached(&iv(h.msg_seqno), &page[AAD], &mut body, &tag)
            .map_err(|_| Error::MessageRejected("response failed authentication"))?;
        self.last_seqno = h.msg_seqno;
        Ok(body)
    }
}

/// Bytes of the `MSG_REPORT_REQ` payload: `REPORT_DATA` (64), `VMPL` (u32),
/// reserved (28).
pub const REPORT_REQ_BYTES: usize = 96;
/// Offset of the report in the `MSG_REPORT_RSP` payload, after `STATUS`
/// (u32), `REPORT_SIZE` (u32) and 24 reserved bytes.
pub const REPORT_RSP_REPORT_OFFSET: usize = 0x20;

/// The `MSG_REPORT_REQ` payload.
pub fn report_request(report_data: &[u8; 64], vmpl: u32) -> [u8; REPORT_REQ_BYTES] {
    let mut p = [0u8; REPORT_REQ_BYTES];
    p[..64].copy_from_slice(report_data);
    p[64..68].copy_from_slice(&vmpl.to_le_bytes());
    p
}

/// The report in a `MSG_REPORT_RSP` payload: `STATUS` must be 0 (else the
/// PSP's error) and `REPORT_SIZE` must fit the payload and hold a report.
pub fn report_response(payload: &[u8]) -> Result<Report> {
    let word = |at: usize| -> Result<u32> {
        let b: [u8; 4] = payload
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::Protocol("MSG_REPORT_RSP too short"))?;
        Ok(u32::from_le_bytes(b))
    };
    match word(0)? {
        0 => {}
        status => return Err(Error::HostError(status.into())),
    }
    let size = usize::try_from(word(4)?).map_err(|_| Error::Protocol("report size"))?;
    let end = REPORT_RSP_REPORT_OFFSET
        .checked_add(size)
        .filter(|&e| e <= payload.len() && size >= report::REPORT_BYTES)
        .ok_or(Error::Protocol("MSG_REPORT_RSP report size out of range"))?;
    report::parse(&payload[REPORT_RSP_REPORT_OFFSET..end])
}

/// Sends a guest request page and receives the response page (the kernel:
/// copy to the shared request page, [`super::calls::GhcbCaller::
/// guest_request`], copy the shared response page back).
pub trait GuestRequest {
    /// One exchange.
    fn guest_request(
        &mut self,
        request: &[u8; MESSAGE_BYTES],
        response: &mut [u8; MESSAGE_BYTES],
    ) -> Result<()>;
}

/// `SW_EXITINFO2` bits 63:32 when the hypervisor is busy (retry).
pub const VMM_ERR_BUSY: u64 = 2 << 32;
/// How often a busy hypervisor is retried (with the same request page, so
/// no sequence number is reused for new data).
pub const BUSY_RETRIES: u32 = 16;

/// Requests an attestation report binding `report_data` at VMPL `vmpl`.
pub fn request_report(
    channel: &mut GuestChannel,
    transport: &mut impl GuestRequest,
    report_data: &[u8; 64],
    vmpl: u32,
) -> Result<Report> {
    let request = channel.seal_request(msg_type::REPORT_REQ, &report_request(report_data, vmpl))?;
    let mut response = Box::new([0u8; MESSAGE_BYTES]);
    let mut tries = 0;
    loop {
        match transport.guest_request(&request, &mut response) {
            Ok(()) => break,
            Err(Error::HostError(code)) if code == VMM_ERR_BUSY && tries < BUSY_RETRIES => {
                tries += 1;
            }
            Err(e) => {
                // Whether the PSP consumed the request's IV is unknown.
                channel.close();
                return Err(e);
            }
        }
    }
    let payload = channel.open_response(&response)?;
    let report = report_response(&payload)?;
    if report.report_data() != report_data {
        return Err(Error::Protocol("the report binds other REPORT_DATA"));
    }
    Ok(report)
}

#[cfg(test)]
#[path = "guest_msg_tests.rs"]
mod tests;
