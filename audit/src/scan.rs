//! Finding a region inside a larger image: a dump of guest memory, or the
//! file behind the guest's whole RAM (`cloister run --audit` backs RAM with
//! a file and reserves the region with `audit=SIZE`). A region starts on a
//! 4 KiB boundary with the magic and a header that [`RegionView`] accepts.

use core::ops::Range;

use crate::reader::RegionView;
use crate::wire::{REGION_HEADER_BYTES, REGION_MAGIC};

/// Regions start page-aligned in guest memory.
const ALIGN: usize = 4096;

/// The byte range of the first valid region in `image` (its header and
/// ring), looking at every 4 KiB boundary. `None` if there is none.
pub fn find_region(image: &[u8]) -> Option<Range<usize>> {
    (0..image.len())
        .step_by(ALIGN)
        .filter(|&off| image[off..].starts_with(&REGION_MAGIC))
        .find_map(|off| {
            let view = RegionView::new_checked(&image[off..]).ok()?;
            let h = view.header();
            let len = (h.block_count as usize)
                .checked_mul(h.block_bytes)?
                .checked_add(REGION_HEADER_BYTES)?;
            Some(off..off.checked_add(len)?)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, Config, OverflowPolicy, TextKind};

    fn region() -> Vec<u8> {
        let mut img = vec![0u8; REGION_HEADER_BYTES + 4 * 1024];
        let config = Config {
            block_bytes: 1024,
            policy: OverflowPolicy::DropNewest,
            key: [7; 32],
            boot_id: [1; 16],
        };
        let mut log = AuditLog::format(&mut img, &config).unwrap();
        log.append_fmt(TextKind::Text, format_args!("hello"), 1, 0)
            .unwrap();
        log.seal();
        drop(log);
        img
    }

    #[test]
    fn finds_a_region_at_a_page_boundary_inside_noise() {
        let r = region();
        let mut image = vec![0x5au8; 3 * ALIGN];
        // A lone magic that is not a valid header is skipped.
        image[ALIGN..ALIGN + 8].copy_from_slice(&REGION_MAGIC);
        image.extend_from_slice(&r);
        image.extend_from_slice(&[0u8; 100]);
        let found = find_region(&image).unwrap();
        assert_eq!(found, 3 * ALIGN..3 * ALIGN + r.len());
        assert_eq!(&image[found], &r[..]);
    }

    #[test]
    fn nothing_found_in_noise_or_a_truncated_region() {
        assert_eq!(find_region(&[0u8; 3 * ALIGN]), None);
        let r = region();
        assert_eq!(find_region(&r[..r.len() - 1]), None);
        assert_eq!(find_region(&[]), None);
    }
}
