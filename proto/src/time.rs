//! The one conversion between the contract's `google.protobuf.Timestamp`
//! and the times the services keep: a point in time, or microseconds since
//! the Unix epoch (PostgreSQL's `timestamptz` precision). A timestamp a
//! client sent may be anything: each conversion from one is checked.

use std::time::SystemTime;

use prost_types::Timestamp;

/// Whether `t`'s nanoseconds are in range (0 to 999,999,999).
fn valid(t: &Timestamp) -> bool {
    (0..1_000_000_000).contains(&t.nanos)
}

/// `t` as a point in time; `None` if it is not a valid timestamp.
pub fn to_system(t: &Timestamp) -> Option<SystemTime> {
    valid(t).then(|| SystemTime::try_from(*t).ok()).flatten()
}

/// A point in time as a timestamp.
pub fn from_system(t: SystemTime) -> Timestamp {
    t.into()
}

/// `t` in microseconds since the Unix epoch (sub-microseconds dropped);
/// `None` if it is not a valid timestamp or out of range.
pub fn to_micros(t: &Timestamp) -> Option<i64> {
    if !valid(t) {
        return None;
    }
    t.seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(t.nanos) / 1000))
}

/// A point in time in microseconds since the Unix epoch (0 before it,
/// `i64::MAX` past what fits).
pub fn system_micros(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Microseconds since the Unix epoch as a timestamp.
pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        // Below 1,000,000 × 1,000: always an i32.
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn every_conversion_goes_there_and_back() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000);
        assert_eq!(to_system(&from_system(t)), Some(t));
        let micros = to_micros(&from_system(t)).unwrap();
        assert_eq!(micros, 1_700_000_000_123_456);
        assert_eq!(from_micros(micros), from_system(t));
        assert_eq!(system_micros(t), micros);
        assert_eq!(system_micros(UNIX_EPOCH - Duration::from_secs(1)), 0);
        // Before the epoch too.
        assert_eq!(to_micros(&from_micros(-1_500_000)), Some(-1_500_000));
    }

    #[test]
    fn a_timestamp_out_of_range_converts_to_nothing() {
        let bad = Timestamp {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        assert_eq!(to_system(&bad), None);
        assert_eq!(to_micros(&bad), None);
        let huge = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(to_micros(&huge), None);
    }
}
