//! The `TDREPORT_STRUCT` (Intel TDX Module ABI, "TDREPORT_STRUCT"): 1024
//! bytes that `TDG.MR.REPORT` writes — `REPORTMACSTRUCT` (256 bytes, with
//! the guest's 64 bytes of report data at 128 and a MAC only the CPU can
//! check), `TEE_TCB_INFO` (239 bytes at 256) and `TDINFO_STRUCT` (512
//! bytes at 512: attributes, XFAM, MRTD, MRCONFIGID, MROWNER,
//! MROWNERCONFIG, RTMR0–3). A remote verifier needs it turned into a quote
//! by the quoting enclave (GetQuote), which Cloister does not do.

/// Report bytes.
pub const REPORT_BYTES: usize = 1024;

/// Field offsets.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod offset {
    pub const REPORT_TYPE: usize = 0;
    pub const CPUSVN: usize = 16;
    pub const TEE_TCB_INFO_HASH: usize = 32;
    pub const TEE_INFO_HASH: usize = 80;
    pub const REPORT_DATA: usize = 128;
    pub const MAC: usize = 224;
    pub const TEE_TCB_INFO: usize = 256;
    pub const TD_INFO: usize = 512;
    pub const ATTRIBUTES: usize = 512;
    pub const XFAM: usize = 520;
    pub const MRTD: usize = 528;
    pub const MRCONFIGID: usize = 576;
    pub const MROWNER: usize = 624;
    pub const MROWNERCONFIG: usize = 672;
    pub const RTMR0: usize = 720;
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportError {
    /// Not 1024 bytes.
    Length(usize),
    /// The report type is not TDX (type 0x81).
    Type(u8),
}

/// A parsed TDREPORT (borrowing the bytes).
#[derive(Debug, Clone, Copy)]
pub struct TdReport<'a> {
    bytes: &'a [u8; REPORT_BYTES],
}

/// Parses a TDREPORT.
pub fn parse(bytes: &[u8]) -> Result<TdReport<'_>, ReportError> {
    let bytes: &[u8; REPORT_BYTES] = bytes
        .try_into()
        .map_err(|_| ReportError::Length(bytes.len()))?;
    // REPORTTYPE: type 0x81 (TDX), sub-type, version.
    if bytes[offset::REPORT_TYPE] != 0x81 {
        return Err(ReportError::Type(bytes[offset::REPORT_TYPE]));
    }
    Ok(TdReport { bytes })
}

impl<'a> TdReport<'a> {
    fn field(&self, at: usize, len: usize) -> &'a [u8] {
        &self.bytes[at..at + len]
    }
    /// The 64 bytes the guest bound into the report.
    pub fn report_data(&self) -> &'a [u8] {
        self.field(offset::REPORT_DATA, 64)
    }
    /// The build-time measurement of the TD (SHA-384).
    pub fn mrtd(&self) -> &'a [u8] {
        self.field(offset::MRTD, 48)
    }
    /// Runtime measurement register `i` (0..4).
    pub fn rtmr(&self, i: usize) -> Option<&'a [u8]> {
        (i < 4).then(|| self.field(offset::RTMR0 + 48 * i, 48))
    }
    /// TD attributes.
    pub fn attributes(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.field(offset::ATTRIBUTES, 8));
        u64::from_le_bytes(b)
    }
    /// The MAC over `REPORTMACSTRUCT` (checked by the CPU, not here).
    pub fn mac(&self) -> &'a [u8] {
        self.field(offset::MAC, 32)
    }
    /// MRCONFIGID, MROWNER, MROWNERCONFIG.
    pub fn config_owner(&self) -> [&'a [u8]; 3] {
        [
            self.field(offset::MRCONFIGID, 48),
            self.field(offset::MROWNER, 48),
            self.field(offset::MROWNERCONFIG, 48),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_read_from_its_offset() {
        let mut b = [0u8; REPORT_BYTES];
        b[0] = 0x81;
        for (i, x) in b[128..192].iter_mut().enumerate() {
            *x = i as u8;
        }
        b[224..256].fill(0xaa);
        b[512..520].copy_from_slice(&0x1000_0000u64.to_le_bytes());
        b[528..576].fill(0x11);
        b[576..624].fill(0x12);
        b[624..672].fill(0x13);
        b[672..720].fill(0x14);
        for i in 0..4 {
            b[720 + 48 * i..768 + 48 * i].fill(0x20 + i as u8);
        }
        let r = parse(&b).unwrap();
        assert_eq!(r.report_data()[0], 0);
        assert_eq!(r.report_data()[63], 63);
        assert_eq!(r.mac(), &[0xaa; 32]);
        assert_eq!(r.attributes(), 0x1000_0000);
        assert_eq!(r.mrtd(), &[0x11; 48]);
        assert_eq!(
            r.config_owner(),
            [&[0x12; 48][..], &[0x13; 48], &[0x14; 48]]
        );
        assert_eq!(r.rtmr(3), Some(&[0x23; 48][..]));
        assert_eq!(r.rtmr(4), None);
        // RTMR3 ends where SERVTD_HASH begins (912).
        assert_eq!(offset::RTMR0 + 4 * 48, 912);
    }

    #[test]
    fn wrong_lengths_and_types_are_refused() {
        assert_eq!(parse(&[0; 10]).unwrap_err(), ReportError::Length(10));
        assert_eq!(parse(&[0; 1024]).unwrap_err(), ReportError::Type(0));
    }
}
