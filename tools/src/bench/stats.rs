//! Small statistics over repeated measurements.

use std::time::Duration;

/// Median, minimum and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: Duration,
    /// The smallest value.
    pub min: Duration,
    /// The largest value.
    pub max: Duration,
    /// How many values.
    pub count: usize,
}

/// The spread of `samples`, or `None` for an empty sample.
pub fn spread(samples: &[Duration]) -> Option<Spread> {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let n = s.len();
    let median = match n {
        0 => return None,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2,
    };
    Some(Spread {
        median,
        min: s[0],
        max: s[n - 1],
        count: n,
    })
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        let d = Duration::from_millis;
        let s = spread(&[d(5), d(1), d(3)]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (d(3), d(1), d(5), 3));
        assert_eq!(
            spread(&[d(4), d(1), d(2), d(3)]).unwrap().median,
            Duration::from_micros(2500)
        );
        assert_eq!(spread(&[]), None);
    }
}
