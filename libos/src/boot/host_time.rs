//! The wall clock from the host (the runner answers a request on the
//! kernel's console line; see `tools/src/qemu/time_sync.rs`): parsing the
//! answer and turning a timed round trip into the offset between the
//! host's Unix time and the kernel's monotonic clock.
//!
//! The host reads its clock somewhere between the guest's send (`t0`) and
//! its receipt of the answer (`t1`); taking the midpoint bounds the error
//! by half the round trip, and of several tries the shortest round trip
//! gives the tightest bound (NTP's rule).

/// `T<decimal nanoseconds since the Unix epoch>`, without the newline.
pub fn parse_reply(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(b"T")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One timed exchange: sent at monotonic `t0`, answered with `host_ns`,
/// received at monotonic `t1` (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Monotonic time just after the request was written.
    pub t0: u64,
    /// The host's Unix time in the answer.
    pub host_ns: u64,
    /// Monotonic time when the answer had been read.
    pub t1: u64,
}

impl Exchange {
    /// The round trip.
    pub fn rtt(&self) -> u64 {
        self.t1.saturating_sub(self.t0)
    }

    /// The Unix time at monotonic 0: `realtime = base + monotonic`. `None`
    /// for an answer that makes no sense (time running backwards, or a host
    /// time before the guest's own uptime).
    pub fn base(&self) -> Option<u64> {
        if self.t1 < self.t0 {
            return None;
        }
        let at_midpoint = self.t0 + self.rtt() / 2;
        self.host_ns.checked_sub(at_midpoint)
    }
}

/// The exchange with the shortest round trip, if any makes sense.
pub fn best(exchanges: &[Exchange]) -> Option<Exchange> {
    exchanges
        .iter()
        .filter(|e| e.base().is_some())
        .min_by_key(|e| e.rtt())
        .copied()
}

/// The wall clock kept to the host's. Each exchange bounds the host's time
/// within half its round trip; between exchanges the bound grows with the
/// kernel clock's possible drift. An exchange is taken only if it narrows
/// the bound (a slow answer, from a loaded host, would make the clock
/// worse, not better). Two exchanges far enough apart measure how fast the
/// kernel's clock runs against the host's (its TSC frequency is calibrated
/// against the PIT at boot, to a few hundred parts per million under TCG),
/// which corrects the time between exchanges. The discipline gives the
/// line the clock follows ([`Discipline::line`]); keeping the answers
/// monotonic across a step back is the reader's part (the kernel's wall
/// clock holds still, the vDSO slews: [`crate::vdso::VdsoData::rebased`]).
#[derive(Debug, Clone, Default)]
pub struct Discipline {
    /// The exchange the rate is measured from: (monotonic, host, error).
    anchor: Option<(u64, u64, u64)>,
    /// The latest exchange taken.
    last: Option<(u64, u64, u64)>,
    /// Host nanoseconds per 2^32 monotonic nanoseconds, once measured.
    rate: Option<u64>,
}

/// Monotonic nanoseconds between the exchanges that measure the rate.
const RATE_SPAN_NS: u64 = 2_000_000_000;
/// The rate is measured only when the two exchanges' errors are below
/// this share of the span (parts per million).
const RATE_QUALITY_PPM: u64 = 100;
/// How fast the kernel's clock may drift, in ppm: before the rate is
/// measured (the TSC calibration against the PIT, which a loaded host can
/// throw off by a percent), and after (the measurement's own error bound is
/// 100 ppm).
const DRIFT_PPM_UNMEASURED: u64 = 10_000;
const DRIFT_PPM_MEASURED: u64 = 500;

impl Discipline {
    /// How far the clock may be off at monotonic `mono` (0 before any
    /// exchange: nothing to keep).
    pub fn uncertainty(&self, mono: u64) -> Option<u64> {
        let (at, _, err) = self.last?;
        let drift = if self.rate.is_some() {
            DRIFT_PPM_MEASURED
        } else {
            DRIFT_PPM_UNMEASURED
        };
        Some(err.saturating_add(mono.saturating_sub(at) / 1_000_000 * drift))
    }

    /// Takes an exchange in if it narrows the bound; returns whether it
    /// did (an exchange that makes no sense never does).
    pub fn update(&mut self, e: &Exchange) -> bool {
        let Some(base) = e.base() else {
            return false;
        };
        let mono = e.t0 + e.rtt() / 2;
        let host = base + mono;
        let err = e.rtt() / 2;
        if self.uncertainty(mono).is_some_and(|u| err >= u) {
            return false;
        }
        let sample = (mono, host, err);
        let anchor = *self.anchor.get_or_insert(sample);
        let span = mono.saturating_sub(anchor.0);
        if span >= RATE_SPAN_NS && (anchor.2 + err) * (1_000_000 / RATE_QUALITY_PPM) <= span {
            let host_span = host.saturating_sub(anchor.1);
            // host_span / span in 32.32 fixed point, kept within ±1 %.
            let rate = ((u128::from(host_span) << 32) / u128::from(span)) as u64;
            let one = 1u64 << 32;
            self.rate = Some(rate.clamp(one - one / 100, one + one / 100));
        } else if err < anchor.2 && self.rate.is_none() {
            // A better anchor for the measurement to come.
            self.anchor = Some(sample);
        }
        self.last = Some(sample);
        true
    }

    /// Takes the kernel clock's rate as the host's from the start: the
    /// kernel runs its TSC at the frequency the host gave
    /// (`super::tsc::TscSource::Host`), the counter the host's own clock
    /// runs on under QEMU. The bound then grows at the measured rate's
    /// 500 ppm (room for the host's NTP slewing its clock against the
    /// counter) instead of 1 %, so a slow answer from a loaded host, whose
    /// midpoint can be off by half its round trip, no longer passes for an
    /// improvement a quarter of a second later. Two good exchanges still
    /// measure the rate and replace this one.
    pub fn assume_host_rate(&mut self) {
        self.rate = Some(1 << 32);
    }

    /// Whether the kernel clock's rate against the host's is measured
    /// (until then it may be off by the TSC calibration's error, up to a
    /// percent under TCG).
    pub fn rate_measured(&self) -> bool {
        self.rate.is_some()
    }

    /// Whether any exchange has been taken.
    pub fn synced(&self) -> bool {
        self.last.is_some()
    }

    /// The line the clock follows from the latest exchange:
    /// `(monotonic, Unix time there, host ns per 2^32 monotonic ns)`
    /// (the rate is 1 until measured); `None` before the first exchange.
    /// [`crate::vdso::VdsoData::rebased`] takes it.
    pub fn line(&self) -> Option<(u64, u64, u64)> {
        let (at, host, _) = self.last?;
        Some((at, host, self.rate.unwrap_or(1 << 32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Unix time at monotonic `mono` on `d`'s line.
    fn time_at(d: &Discipline, mono: u64) -> Option<u64> {
        let (at, host, rate) = d.line()?;
        let since = mono.saturating_sub(at);
        Some(host + ((u128::from(since) * u128::from(rate)) >> 32) as u64)
    }

    #[test]
    fn replies_parse_strictly() {
        assert_eq!(
            parse_reply(b"T1700000000123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(parse_reply(b"T0"), Some(0));
        for bad in [
            &b""[..],
            b"T",
            b"1700",
            b"T17x0",
            b"T-1",
            b"T99999999999999999999",
            b"T123456789012345678901",
        ] {
            assert_eq!(parse_reply(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_base_takes_the_midpoint_and_the_shortest_round_trip_wins() {
        let e = Exchange {
            t0: 1_000,
            host_ns: 1_000_000,
            t1: 3_000,
        };
        assert_eq!(e.rtt(), 2_000);
        // At monotonic 2000 the host said 1_000_000.
        assert_eq!(e.base(), Some(998_000));
        let slow = Exchange {
            t0: 10_000,
            host_ns: 1_500_000,
            t1: 90_000,
        };
        assert_eq!(best(&[slow, e]), Some(e));
        let backwards = Exchange {
            t0: 5,
            host_ns: 10,
            t1: 4,
        };
        let before_boot = Exchange {
            t0: 100,
            host_ns: 10,
            t1: 100,
        };
        assert_eq!(backwards.base(), None);
        assert_eq!(before_boot.base(), None);
        assert_eq!(best(&[backwards, before_boot]), None);
    }

    #[test]
    fn the_discipline_learns_the_rate() {
        // The kernel's clock runs 550 ppm fast (as measured under TCG):
        // monotonic m corresponds to host time 1e18 + m / 1.00055.
        let host_at = |m: u64| 1_000_000_000_000_000_000 + (m as f64 / 1.00055) as u64;
        let exchange = |m: u64, rtt: u64| Exchange {
            t0: m - rtt / 2,
            host_ns: host_at(m),
            t1: m + rtt / 2,
        };
        let mut d = Discipline::default();
        assert_eq!(time_at(&d, 5), None);
        assert!(d.update(&exchange(1_000_000_000, 100_000)));
        // Before the rate is known the error grows with time since the sync.
        let err = |d: &Discipline, m: u64| time_at(d, m).unwrap() as i64 - host_at(m) as i64;
        assert!(err(&d, 1_000_000_000).abs() < 1_000);
        assert!(
            err(&d, 2_000_000_000) > 500_000,
            "550 us fast after a second"
        );
        assert!(d.update(&exchange(3_500_000_000, 100_000)));
        // Rate known: ten seconds on, still within 10 us.
        let e = err(&d, 13_500_000_000);
        assert!(e.abs() < 10_000, "{e}");
        // Nonsense is ignored.
        assert!(!d.update(&Exchange {
            t0: 9,
            host_ns: 1,
            t1: 5
        }));
        assert!(d.synced());
    }

    #[test]
    fn with_the_hosts_rate_a_slow_answer_a_moment_later_is_not_taken() {
        let host_at = |m: u64| 1_000_000_000_000_000_000 + m;
        let good = Exchange {
            t0: 1_000_000_000 - 50_000,
            host_ns: host_at(1_000_000_000),
            t1: 1_000_000_000 + 50_000,
        };
        // Half a second later a loaded host answers in 8 ms, the request
        // having waited: its time is 4 ms later than the midpoint assumes.
        let m = 1_500_000_000;
        let late = Exchange {
            t0: m - 4_000_000,
            host_ns: host_at(m + 4_000_000),
            t1: m + 4_000_000,
        };
        let mut unmeasured = Discipline::default();
        unmeasured.update(&good);
        assert!(unmeasured.update(&late), "1 % drift: 5 ms of bound by then");
        let off = time_at(&unmeasured, m).unwrap() as i64 - host_at(m) as i64;
        assert_eq!(off, 4_000_000, "the clock now runs 4 ms ahead");
        let mut known = Discipline::default();
        known.assume_host_rate();
        assert!(known.rate_measured());
        known.update(&good);
        assert!(!known.update(&late), "500 ppm: 0.3 ms of bound by then");
        let off = time_at(&known, m).unwrap() as i64 - host_at(m) as i64;
        assert!(off.abs() < 100_000, "{off}");
        // A good answer later still counts.
        let m = 3_500_000_000;
        assert!(known.update(&Exchange {
            t0: m - 40_000,
            host_ns: host_at(m),
            t1: m + 40_000,
        }));
    }

    #[test]
    fn a_slow_answer_is_taken_only_when_it_narrows_the_bound() {
        let host_at = |m: u64| 1_000_000_000_000_000_000 + m;
        // A loaded host answers 40 ms late, on one side: the midpoint is
        // 20 ms off.
        let late = |m: u64| Exchange {
            t0: m,
            host_ns: host_at(m),
            t1: m + 40_000_000,
        };
        let good = |m: u64| Exchange {
            t0: m - 50_000,
            host_ns: host_at(m),
            t1: m + 50_000,
        };
        let mut d = Discipline::default();
        assert!(d.update(&good(1_000_000_000)));
        assert!(
            !d.update(&late(1_250_000_000)),
            "would make the clock worse"
        );
        let off = time_at(&d, 1_300_000_000).unwrap() as i64 - host_at(1_300_000_000) as i64;
        assert!(off.abs() < 100_000, "{off}");
        // Five seconds without an answer widen the bound to 50 ms: a 40 ms
        // round trip narrows it.
        assert!(d.uncertainty(6_000_000_000).unwrap() > 40_000_000);
        assert!(d.update(&late(6_000_000_000)));
    }
}
