//! Tests of page-state-change descriptors, batching, the exchange loop
//! against mock hypervisors (well-behaved and not) and the `PVALIDATE`
//! loop.

use super::*;
use alloc::vec;

#[test]
fn entry_layout() {
    // Linux's struct psc_entry: cur_page 11:0, gfn 51:12, operation
    // 55:52, pagesize 56.
    let e = Entry::new(0x12345, PageState::Shared, PageSize::Size2M).unwrap();
    assert_eq!(e.0, 0x0120_0000_1234_5000);
    assert_eq!(e.gfn(), 0x12345);
    assert_eq!(e.operation(), 2);
    assert_eq!(e.size(), PageSize::Size2M);
    assert_eq!(e.cur_page(), 0);
    let e = Entry(0x0010_0000_0000_1007);
    assert_eq!(
        (e.gfn(), e.operation(), e.size(), e.cur_page()),
        (1, 1, PageSize::Size4K, 7)
    );
    assert_eq!(
        Entry::new(1 << 40, PageState::Private, PageSize::Size4K),
        None
    );
}

#[test]
fn descriptor_bytes() {
    let d = Descriptor {
        cur_entry: 1,
        end_entry: 2,
        entries: vec![Entry(0x11), Entry(0x22), Entry(0x33)],
    };
    let mut buf = [0xffu8; SHARED_BUFFER_BYTES];
    d.write(&mut buf).unwrap();
    assert_eq!(buf[..8], [1, 0, 2, 0, 0, 0, 0, 0]);
    assert_eq!(buf[8], 0x11);
    assert_eq!(buf[24], 0x33);
    assert!(buf[32..].iter().all(|&b| b == 0));
    assert_eq!(Descriptor::read_header(&buf), Ok((1, 2, 0)));
    assert_eq!(Descriptor::read_entry(&buf, 1), Ok(Entry(0x22)));
    assert!(Descriptor::read_entry(&buf, MAX_ENTRIES).is_err());
    let too_many = Descriptor {
        cur_entry: 0,
        end_entry: 253,
        entries: vec![Entry(0); 254],
    };
    assert_eq!(too_many.write(&mut buf), Err(Error::InvalidArgument));
}

#[test]
fn batching_uses_2m_pages_where_they_fit_and_splits_at_253() {
    // 4 KiB below 2 MiB, one 2 MiB block, 4 KiB after.
    let d = batches(
        PAGE_2M - 2 * PAGE_4K,
        PAGE_2M + 3 * PAGE_4K,
        PageState::Private,
    )
    .unwrap();
    assert_eq!(d.len(), 1);
    let sizes: Vec<_> = d[0].entries.iter().map(|e| e.size()).collect();
    assert_eq!(
        sizes,
        [
            PageSize::Size4K,
            PageSize::Size4K,
            PageSize::Size2M,
            PageSize::Size4K
        ]
    );
    assert_eq!(d[0].entries[2].gfn(), PAGE_2M / PAGE_4K);
    assert_eq!(d[0].entries[3].gfn(), 2 * PAGE_2M / PAGE_4K);
    assert_eq!((d[0].cur_entry, d[0].end_entry), (0, 3));
    // 300 pages of 4 KiB (unaligned start): 253 + 47.
    let d = batches(PAGE_4K, 300 * PAGE_4K, PageState::Shared).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].entries.len(), d[0].end_entry), (253, 252));
    assert_eq!((d[1].entries.len(), d[1].end_entry), (47, 46));
    assert_eq!(d[1].entries[0].gfn(), 254);
    assert!(
        d.iter()
            .flat_map(|d| &d.entries)
            .all(|e| e.operation() == 2)
    );
    assert!(batches(0, 0, PageState::Shared).unwrap().is_empty());
    assert_eq!(
        batches(1, PAGE_4K, PageState::Shared),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        batches(0, 100, PageState::Shared),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        batches(u64::MAX - PAGE_4K + 1, PAGE_4K, PageState::Shared),
        Err(Error::InvalidArgument)
    );
}

/// How the mock hypervisor behaves.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Processes up to `n` entries per exit.
    Good(usize),
    /// Returns without doing anything.
    Stall,
    /// Reports an error in `SW_EXITINFO2`.
    Fail,
    /// Moves `cur_entry` back on its second exit.
    Backwards,
    /// Sets the reserved header word.
    Reserved,
}

struct MockHypervisor {
    behaviour: Behaviour,
    gpa: u64,
    /// (gfn, operation, size) of every processed entry.
    done: Vec<(u64, u8, PageSize)>,
    exits: usize,
}

impl GhcbProtocol for MockHypervisor {
    fn ghcb_exchange(&mut self, ghcb: &mut Ghcb) {
        self.exits += 1;
        assert_eq!(ghcb.get(Field::SwExitCode), Some(exit_code::PSC));
        assert_eq!(ghcb.get(Field::SwScratch), Some(self.gpa + 0x800));
        ghcb.set(Field::SwExitInfo1, 0);
        ghcb.set(Field::SwExitInfo2, 0);
        let buf = ghcb.shared_buffer_mut();
        let (mut cur, end, _) = Descriptor::read_header(buf).unwrap();
        match self.behaviour {
            Behaviour::Good(n) => {
                for _ in 0..n {
                    if cur > end {
                        break;
                    }
                    let e = Descriptor::read_entry(buf, cur.into()).unwrap();
                    self.done.push((e.gfn(), e.operation(), e.size()));
                    cur += 1;
                }
                buf[0..2].copy_from_slice(&cur.to_le_bytes());
            }
            Behaviour::Stall => {}
            Behaviour::Fail => ghcb.set(Field::SwExitInfo2, 0x1_0000_0000),
            Behaviour::Backwards => {
                // Advances by two on the first exit, back to 0 on the next.
                let next: u16 = if self.exits == 1 { cur + 2 } else { 0 };
                buf[0..2].copy_from_slice(&next.to_le_bytes());
            }
            Behaviour::Reserved => buf[4] = 1,
        }
    }

    fn ghcb_gpa(&self) -> u64 {
        self.gpa
    }
}

fn hypervisor(behaviour: Behaviour) -> MockHypervisor {
    MockHypervisor {
        behaviour,
        gpa: 0x7000,
        done: Vec::new(),
        exits: 0,
    }
}

#[test]
fn a_good_hypervisor_processes_every_entry_across_exits() {
    let mut hv = hypervisor(Behaviour::Good(100));
    let mut ghcb = Ghcb::new();
    // Frames 1..=1200: 511 pages of 4 KiB, the 2 MiB block at frame 512,
    // 177 pages of 4 KiB from frame 1024: 689 entries.
    let bytes = 1200 * PAGE_4K;
    change_state(&mut hv, &mut ghcb, 2, PAGE_4K, bytes, PageState::Shared).unwrap();
    let pages: u64 = hv.done.iter().map(|(_, _, s)| s.bytes() / PAGE_4K).sum();
    assert_eq!(pages, 1200);
    assert_eq!(hv.done.len(), 511 + 1 + 177);
    assert_eq!(hv.done[0], (1, 2, PageSize::Size4K));
    assert_eq!(hv.done[511], (512, 2, PageSize::Size2M));
    assert_eq!(hv.done[512], (1024, 2, PageSize::Size4K));
    // Descriptors of 253, 253 and 183 entries at 100 per exit: 3 + 3 + 2.
    assert_eq!(hv.exits, 8);
}

#[test]
fn a_hypervisor_that_stalls_is_detected() {
    let mut hv = hypervisor(Behaviour::Stall);
    let mut ghcb = Ghcb::new();
    let r = change_state(&mut hv, &mut ghcb, 2, 0, PAGE_4K, PageState::Private);
    assert!(matches!(r, Err(Error::Protocol(_))));
    assert_eq!(hv.exits, MAX_STALLED_EXITS as usize);
}

#[test]
fn host_errors_backwards_moves_and_reserved_bits_are_errors() {
    let mut ghcb = Ghcb::new();
    let mut hv = hypervisor(Behaviour::Fail);
    assert_eq!(
        change_state(&mut hv, &mut ghcb, 2, 0, PAGE_4K, PageState::Private),
        Err(Error::HostError(0x1_0000_0000))
    );
    let mut hv = hypervisor(Behaviour::Backwards);
    let r = change_state(&mut hv, &mut ghcb, 2, 0, 10 * PAGE_4K, PageState::Private);
    assert!(matches!(r, Err(Error::Protocol(_))));
    assert_eq!(hv.exits, 2);
    let mut hv = hypervisor(Behaviour::Reserved);
    let r = change_state(&mut hv, &mut ghcb, 2, 0, PAGE_4K, PageState::Private);
    assert!(matches!(r, Err(Error::Protocol(_))));
}

/// A CPU whose RMP holds some 2 MiB blocks as 4 KiB pages and remembers
/// what is validated.
struct MockCpu {
    split_2m: Vec<u64>,
    validated: Vec<u64>,
    calls: Vec<(u64, PageSize, bool)>,
}

impl Pvalidate for MockCpu {
    fn pvalidate(&mut self, paddr: u64, size: PageSize, validate: bool) -> PvalidateOutcome {
        self.calls.push((paddr, size, validate));
        if size == PageSize::Size2M && self.split_2m.contains(&paddr) {
            return PvalidateOutcome {
                code: PVALIDATE_FAIL_SIZEMISMATCH,
                unchanged: false,
            };
        }
        let pages: Vec<u64> = (paddr..paddr + size.bytes()).step_by(4096).collect();
        let was = pages.iter().all(|p| self.validated.contains(p));
        if validate {
            self.validated.extend(pages);
        } else {
            self.validated.retain(|p| !pages.contains(p));
        }
        PvalidateOutcome {
            code: 0,
            unchanged: was == validate,
        }
    }
}

#[test]
fn pvalidate_falls_back_to_4k_on_size_mismatch() {
    let mut cpu = MockCpu {
        split_2m: vec![PAGE_2M],
        validated: Vec::new(),
        calls: Vec::new(),
    };
    validate_range(&mut cpu, 0, 2 * PAGE_2M, true).unwrap();
    assert_eq!(cpu.validated.len(), 1024);
    // One 2 MiB call at 0, one failing at 2 MiB, then 512 4 KiB ones.
    assert_eq!(cpu.calls.len(), 2 + 512);
    assert_eq!(cpu.calls[2], (PAGE_2M, PageSize::Size4K, true));
    // Validating again: the RMP did not change, which is an error.
    assert!(validate_range(&mut cpu, 0, PAGE_4K, true).is_err());
    // Rescinding works and empties the set.
    validate_range(&mut cpu, 0, 2 * PAGE_2M, false).unwrap();
    assert!(cpu.validated.is_empty());
}

#[test]
fn pvalidate_errors_are_reported() {
    struct Failing;
    impl Pvalidate for Failing {
        fn pvalidate(&mut self, _: u64, _: PageSize, _: bool) -> PvalidateOutcome {
            PvalidateOutcome {
                code: PVALIDATE_FAIL_INPUT,
                unchanged: false,
            }
        }
    }
    assert_eq!(
        validate_range(&mut Failing, 0, PAGE_4K, true),
        Err(Error::HostError(1))
    );
    assert_eq!(
        validate_range(&mut Failing, 3, PAGE_4K, true),
        Err(Error::InvalidArgument)
    );
}
