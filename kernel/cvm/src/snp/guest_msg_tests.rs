//! Tests of guest messages against a mock PSP that decrypts requests and
//! encrypts responses with the same VMPCK, and against PSPs (or hosts)
//! that replay, forge, mislabel or stall.

use super::*;
use alloc::vec;

const KEY: [u8; 32] = [0x5a; 32];

fn secrets(seqno: u32) -> SecretsPage {
    let mut page = vec![0u8; 4096];
    page[0] = 3;
    page[0x20..0x40].copy_from_slice(&KEY);
    page[0xa0..0xa4].copy_from_slice(&seqno.to_le_bytes());
    SecretsPage::parse(&page).unwrap()
}

/// How the mock PSP (or the host carrying its messages) misbehaves.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Fault {
    None,
    /// Answers with the request's own sequence number.
    SameSeqno,
    /// Answers `MSG_REPORT_RSP` + 1.
    WrongType,
    /// Flips a ciphertext bit.
    Tamper,
    /// Flips a bit of the AAD (`msg_sz` high byte stays, `msg_vmpck`
    /// untouched: the reserved byte at 0x38).
    TamperAad,
    /// Busy for the first `n` exchanges.
    Busy(u32),
    /// Returns a report binding other data.
    OtherData,
    /// Status 0x16 (invalid parameters) in the report response.
    Status,
}

struct MockPsp {
    fault: Fault,
    last_response: Option<Box<[u8; MESSAGE_BYTES]>>,
    requests: u32,
}

fn cipher() -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&KEY))
}

impl MockPsp {
    fn new(fault: Fault) -> Self {
        Self {
            fault,
            last_response: None,
            requests: 0,
        }
    }

    /// Decrypts a request, checking header and tag like the PSP does.
    fn open(request: &[u8; MESSAGE_BYTES]) -> (Header, Vec<u8>) {
        let h = Header::read(request);
        assert_eq!(
            (h.algo, h.hdr_version, h.hdr_sz, h.msg_vmpck),
            (1, 1, 0x60, 0)
        );
        assert!(
            request[0x38..0x3c]
                .iter()
                .chain(&request[0x3d..0x60])
                .all(|&b| b == 0)
        );
        let mut body = request[0x60..0x60 + usize::from(h.msg_sz)].to_vec();
        let tag = Tag::clone_from_slice(&h.auth_tag[..16]);
        cipher()
            .decrypt_in_place_detached(&iv(h.msg_seqno), &request[0x30..0x60], &mut body, &tag)
            .expect("the guest's request authenticates");
        (h, body)
    }

    fn seal(h: Header, payload: &[u8]) -> Box<[u8; MESSAGE_BYTES]> {
        let mut page = Box::new([0u8; MESSAGE_BYTES]);
        h.write(&mut page);
        let (header, body) = page.split_at_mut(0x60);
        body[..payload.len()].copy_from_slice(payload);
        let tag = cipher()
            .encrypt_in_place_detached(
                &iv(h.msg_seqno),
                &header[0x30..0x60],
                &mut body[..payload.len()],
            )
            .unwrap();
        header[..16].copy_from_slice(&tag);
        page
    }
}

fn report_bytes(report_data: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; report::REPORT_BYTES];
    r[0] = 3;
    r[0x34] = 1;
    r[0x50..0x90].copy_from_slice(report_data);
    r[0x90..0xc0].fill(0x4d);
    r
}

impl GuestRequest for MockPsp {
    fn guest_request(
        &mut self,
        request: &[u8; MESSAGE_BYTES],
        response: &mut [u8; MESSAGE_BYTES],
    ) -> Result<()> {
        self.requests += 1;
        if let Fault::Busy(n) = self.fault
            && self.requests <= n
        {
            return Err(Error::HostError(VMM_ERR_BUSY));
        }
        let (h, body) = Self::open(request);
        assert_eq!(
            (h.msg_type, h.msg_version, h.msg_sz),
            (msg_type::REPORT_REQ, 1, 96)
        );
        assert!(body[68..].iter().all(|&b| b == 0));
        let mut data = body[..64].to_vec();
        if self.fault == Fault::OtherData {
            data[0] ^= 1;
        }
        let mut payload = vec![0u8; 0x20];
        let status: u32 = if self.fault == Fault::Status { 0x16 } else { 0 };
        payload[0..4].copy_from_slice(&status.to_le_bytes());
        payload[4..8].copy_from_slice(&(report::REPORT_BYTES as u32).to_le_bytes());
        payload.extend(report_bytes(&data));
        let mut rh = h;
        rh.msg_seqno = if self.fault == Fault::SameSeqno {
            h.msg_seqno
        } else {
            h.msg_seqno + 1
        };
        rh.msg_type = msg_type::REPORT_RSP + u8::from(self.fault == Fault::WrongType);
        rh.msg_sz = payload.len() as u16;
        let mut page = Self::seal(rh, &payload);
        match self.fault {
            Fault::Tamper => page[0x70] ^= 1,
            Fault::TamperAad => page[0x38] ^= 1,
            _ => {}
        }
        response.copy_from_slice(&page[..]);
        self.last_response = Some(page);
        Ok(())
    }
}

#[test]
fn header_layout() {
    let h = Header {
        auth_tag: [0xaa; 32],
        msg_seqno: 0x0102_0304_0506_0708,
        algo: 1,
        hdr_version: 1,
        hdr_sz: 0x60,
        msg_type: 5,
        msg_version: 1,
        msg_sz: 96,
        msg_vmpck: 2,
    };
    let mut page = [0xffu8; MESSAGE_BYTES];
    h.write(&mut page);
    assert_eq!(page[0x1f], 0xaa);
    assert_eq!(page[0x20..0x28], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(page[0x28..0x30], [0; 8]);
    assert_eq!(page[0x30..0x38], [1, 1, 0x60, 0, 5, 1, 96, 0]);
    assert_eq!(page[0x38..0x3c], [0; 4]);
    assert_eq!(page[0x3c], 2);
    assert!(page[0x3d..0x60].iter().all(|&b| b == 0));
    assert_eq!(page[0x60], 0xff);
    assert_eq!(Header::read(&page), h);
    assert_eq!(AAD, 0x30..0x60);
    assert_eq!(
        iv(0x0102_0304_0506_0708).as_slice(),
        [8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0]
    );
}

#[test]
fn report_round_trip_and_sequence_numbers() {
    let mut channel = GuestChannel::new(&secrets(40), 0).unwrap();
    let mut psp = MockPsp::new(Fault::None);
    let data = [0x77u8; 64];
    let report = request_report(&mut channel, &mut psp, &data, 0).unwrap();
    assert_eq!(report.report_data(), &data);
    assert_eq!(report.measurement(), &[0x4d; 48]);
    // Request 41, response 42.
    let h = Header::read(psp.last_response.as_ref().unwrap());
    assert_eq!(h.msg_seqno, 42);
    assert_eq!(channel.last_seqno(), 42);
    let again = request_report(&mut channel, &mut psp, &[1; 64], 1).unwrap();
    assert_eq!(again.report_data(), &[1; 64]);
    assert_eq!(channel.last_seqno(), 44);
}

#[test]
fn a_replayed_response_is_refused_and_closes_the_channel() {
    let mut channel = GuestChannel::new(&secrets(0), 0).unwrap();
    let mut psp = MockPsp::new(Fault::None);
    request_report(&mut channel, &mut psp, &[2; 64], 0).unwrap();
    let old = psp.last_response.take().unwrap();
    // The host answers the next request with the previous response.
    channel
        .seal_request(msg_type::REPORT_REQ, &report_request(&[3; 64], 0))
        .unwrap();
    assert!(matches!(
        channel.open_response(&old),
        Err(Error::MessageRejected(_))
    ));
    assert!(channel.is_closed());
    assert!(
        channel
            .seal_request(msg_type::REPORT_REQ, &[0; 96])
            .is_err()
    );
    // A response with no request in flight.
    let mut fresh = GuestChannel::new(&secrets(0), 0).unwrap();
    assert!(fresh.open_response(&old).is_err());
}

#[test]
fn misbehaving_psps_are_refused() {
    for fault in [
        Fault::SameSeqno,
        Fault::WrongType,
        Fault::Tamper,
        Fault::TamperAad,
    ] {
        let mut channel = GuestChannel::new(&secrets(0), 0).unwrap();
        let r = request_report(&mut channel, &mut MockPsp::new(fault), &[4; 64], 0);
        assert!(
            matches!(r, Err(Error::MessageRejected(_))),
            "{fault:?}: {r:?}"
        );
        assert!(channel.is_closed(), "{fault:?}");
    }
    let mut channel = GuestChannel::new(&secrets(0), 0).unwrap();
    let r = request_report(
        &mut channel,
        &mut MockPsp::new(Fault::OtherData),
        &[4; 64],
        0,
    );
    assert!(matches!(r, Err(Error::Protocol(_))));
    let mut channel = GuestChannel::new(&secrets(0), 0).unwrap();
    let r = request_report(&mut channel, &mut MockPsp::new(Fault::Status), &[4; 64], 0);
    assert_eq!(r.unwrap_err(), Error::HostError(0x16));
}

#[test]
fn a_busy_host_is_retried_with_the_same_request_then_given_up() {
    let mut channel = GuestChannel::new(&secrets(0), 0).unwrap();
    let mut psp = MockPsp::new(Fault::Busy(3));
    assert!(request_report(&mut channel, &mut psp, &[5; 64], 0).is_ok());
    assert_eq!(psp.requests, 4);
    assert_eq!(channel.last_seqno(), 2);
    let mut psp = MockPsp::new(Fault::Busy(u32::MAX));
    let r = request_report(&mut channel, &mut psp, &[5; 64], 0);
    assert_eq!(r.unwrap_err(), Error::HostError(VMM_ERR_BUSY));
    assert_eq!(psp.requests, BUSY_RETRIES + 1);
    assert!(channel.is_closed());
}

#[test]
fn channel_limits() {
    let mut page = vec![0u8; 4096];
    page[0x40..0x60].fill(1);
    let s = SecretsPage::parse(&page).unwrap();
    // VMPCK0 is all zeros: no key.
    assert!(GuestChannel::new(&s, 0).is_err());
    assert!(GuestChannel::new(&s, 1).is_ok());
    assert!(GuestChannel::new(&s, 4).is_err());
    let mut c = GuestChannel::new(&secrets(u32::MAX - 1), 0).unwrap();
    assert!(matches!(
        c.seal_request(5, &[0; 96]),
        Err(Error::Unsupported(_))
    ));
    let mut c = GuestChannel::new(&secrets(0), 0).unwrap();
    assert_eq!(
        c.seal_request(5, &vec![0; MAX_PAYLOAD_BYTES + 1]),
        Err(Error::InvalidArgument)
    );
    assert!(c.seal_request(5, &vec![0; MAX_PAYLOAD_BYTES]).is_ok());
}

#[test]
fn report_response_checks() {
    let mut payload = vec![0u8; 0x20];
    payload[4..8].copy_from_slice(&0x4a0u32.to_le_bytes());
    payload.extend(report_bytes(&[9; 64]));
    assert!(report_response(&payload).is_ok());
    assert!(report_response(&payload[..0x20 + 0x49f]).is_err());
    let mut small = payload.clone();
    small[4..8].copy_from_slice(&0x100u32.to_le_bytes());
    assert!(report_response(&small).is_err());
    let mut huge = payload;
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(report_response(&huge).is_err());
    assert!(report_response(&[0; 3]).is_err());
}
