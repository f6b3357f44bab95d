//! The wall clock from the host: with `time.host` on the command line
//! (`cloister run` adds it and answers), the kernel asks the runner for
//! its Unix time on COM1 and times the round trip with its own clock
//! (`libos::boot::host_time` does the arithmetic; the runner's side is
//! `tools/src/qemu/time_sync.rs`). Without it, or without an answer, the
//! CMOS clock's whole seconds are used.
//!
//! The clock is kept to the host's afterwards: reading the wall clock more
//! than [`RESYNC_NS`] after the last exchange does another (a stall of
//! about a tenth of a millisecond under TCG), which also measures how fast
//! the kernel's clock runs ([`Discipline`]). Programs read the wall clock
//! through the vDSO without entering the kernel, so an idle CPU also
//! resyncs when one is due (the idle hook `super::start` sets). Each line taken
//! is published to the vDSO (`super::platform`).

use libos::boot::host_time::{Discipline, Exchange, best, parse_reply};

use crate::platform::port;

/// COM1's data and line-status registers.
const COM1_DATA: u16 = 0x3f8;
const COM1_LSR: u16 = 0x3fd;
/// LSR bit 0: a received byte is waiting.
const LSR_DATA_READY: u8 = 1;

/// Exchanges tried at boot; the one with the shortest round trip counts.
const TRIES: usize = 5;
/// How long the first answer may take before the host is taken not to
/// answer (the runner may be slow to start reading).
const FIRST_WAIT_NS: u64 = 2_000_000_000;
/// How long a later answer may take.
const RESYNC_WAIT_NS: u64 = 20_000_000;
/// Exchanges are redone when the wall clock is read this long after the
/// last one.
pub const RESYNC_NS: u64 = 250_000_000;
/// Exchanges in one resync at most (fewer when one is quick).
const RESYNC_BURST: usize = 3;
/// A round trip this short ends the burst.
const GOOD_RTT_NS: u64 = 200_000;
/// After this many unanswered exchanges in a row the host is not asked
/// again (the clock runs on from the last answer).
const MAX_FAILURES: u32 = 3;

/// The wall clock kept to the host's.
#[derive(Debug)]
pub struct HostClock {
    discipline: Discipline,
    last_try: u64,
    failures: u32,
}

impl HostClock {
    /// Asks the host at boot; `None` if it does not answer sensibly.
    pub fn start() -> Option<(Self, u64)> {
        let mut done = [None; TRIES];
        for (i, slot) in done.iter_mut().enumerate() {
            let wait = if i == 0 {
                FIRST_WAIT_NS
            } else {
                RESYNC_WAIT_NS
            };
            *slot = exchange(wait);
            if slot.is_none() {
                break;
            }
        }
        let exchanges: alloc::vec::Vec<Exchange> = done.iter().flatten().copied().collect();
        let e = best(&exchanges)?;
        let mut discipline = Discipline::default();
        if crate::time::tsc_from_host() {
            discipline.assume_host_rate();
        }
        discipline.update(&e);
        Some((
            Self {
                discipline,
                last_try: crate::time::now_ns(),
                failures: 0,
            },
            e.rtt(),
        ))
    }

    /// The line the clock follows (see [`Discipline::line`]).
    pub fn line(&self) -> Option<(u64, u64, u64)> {
        self.discipline.line()
    }

    /// Whether the clock's rate against the host's is measured.
    pub fn rate_measured(&self) -> bool {
        self.discipline.rate_measured()
    }

    /// At monotonic `mono`: a new exchange if the last is old; returns the
    /// line to steer onto whenever one was due (taken or not: the clock is
    /// steered at every resync, see `VdsoData::rebased`).
    pub fn resync_if_due(&mut self, mono: u64) -> Option<(u64, u64, u64)> {
        if self.failures < MAX_FAILURES && mono.saturating_sub(self.last_try) >= RESYNC_NS {
            self.last_try = mono;
            // The best of a short burst: one slow answer (a loaded host)
            // need not cost the round.
            let mut best: Option<Exchange> = None;
            for _ in 0..RESYNC_BURST {
                match exchange(RESYNC_WAIT_NS) {
                    Some(e) => {
                        if best.is_none_or(|b| e.rtt() < b.rtt()) {
                            best = Some(e);
                        }
                        if e.rtt() <= GOOD_RTT_NS {
                            break;
                        }
                    }
                    None => break,
                }
            }
            match best {
                Some(e) => {
                    self.failures = 0;
                    // Taken only if it narrows the clock's error bound.
                    let bound = self.discipline.uncertainty(e.t0);
                    let taken = self.discipline.update(&e);
                    log::debug!(
                        "wall clock: exchange at {} ns, round trip {} ns, bound before {bound:?} ns: {}",
                        e.t0,
                        e.rtt(),
                        if taken { "taken" } else { "not taken" }
                    );
                }
                None => self.failures += 1,
            }
            return self.discipline.line();
        }
        None
    }
}

/// One request and its answer.
fn exchange(wait_ns: u64) -> Option<Exchange> {
    // Stale input (an answer that came too late) must not be taken for
    // this one's.
    while port::read_u8(COM1_LSR) & LSR_DATA_READY != 0 {
        let _ = port::read_u8(COM1_DATA);
    }
    crate::kprintln!("CLOISTER_TIME?");
    let t0 = crate::time::now_ns();
    let deadline = t0 + wait_ns;
    let mut line = [0u8; 32];
    let mut len = 0;
    loop {
        if port::read_u8(COM1_LSR) & LSR_DATA_READY == 0 {
            if crate::time::now_ns() > deadline {
                return None;
            }
            core::hint::spin_loop();
            continue;
        }
        match port::read_u8(COM1_DATA) {
            b'\n' => break,
            b if len < line.len() => {
                line[len] = b;
                len += 1;
            }
            _ => return None,
        }
    }
    let t1 = crate::time::now_ns();
    Some(Exchange {
        t0,
        host_ns: parse_reply(&line[..len])?,
        t1,
    })
}
