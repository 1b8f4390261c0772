//! Reading settings, the one way every Careline process does: through a
//! lookup (the process environment in production, a list in tests, so a
//! test never touches the environment), each bad value an error naming its
//! variable.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The database of a local deployment, shared by every read service.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/careline";

/// A setting that cannot be used, naming the variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(pub String);

/// Where a setting's value comes from.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Settings read through a lookup.
pub struct Settings {
    lookup: Lookup,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settings(..)")
    }
}

impl Settings {
    /// The process environment.
    pub fn from_env() -> Self {
        Self::new(|key| std::env::var(key).ok())
    }

    /// Any lookup (tests).
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// A fixed list of `(variable, value)` (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::new(move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    /// The value of `key`, if set (an empty value counts as set).
    pub fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
    }

    /// The value of `key`, or `default`.
    pub fn text(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    /// `key` as a whole number, or `default`.
    pub fn number(&self, key: &str, default: u64) -> Result<u64, BadSetting> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| BadSetting(format!("{key}={v:?} is not a non-negative whole number"))),
        }
    }

    /// `key` as a whole number within `range`, or `default`.
    pub fn number_in(
        &self,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, BadSetting> {
        let n = self.number(key, default)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(BadSetting(format!(
                "{key} must be {} to {}, got {n}",
                range.start(),
                range.end()
            )))
        }
    }

    /// `key` in milliseconds, or `default_ms`.
    pub fn millis(&self, key: &str, default_ms: u64) -> Result<Duration, BadSetting> {
        Ok(Duration::from_millis(self.number(key, default_ms)?))
    }

    /// `key` in seconds, or `default_secs`.
    pub fn secs(&self, key: &str, default_secs: u64) -> Result<Duration, BadSetting> {
        Ok(Duration::from_secs(self.number(key, default_secs)?))
    }

    /// `key` as a socket address to listen on, or `default`.
    pub fn address(&self, key: &str, default: &str) -> Result<SocketAddr, BadSetting> {
        let value = self.text(key, default);
        value
            .trim()
            .parse()
            .map_err(|_| BadSetting(format!("{key}={value:?} is not an address like {default}")))
    }

    /// `key` as a socket address to listen on, or `None` when unset (a
    /// listener that is off unless asked for).
    pub fn optional_address(&self, key: &str) -> Result<Option<SocketAddr>, BadSetting> {
        self.get(key)
            .filter(|v| !v.trim().is_empty())
            .map(|value| {
                value.trim().parse().map_err(|_| {
                    BadSetting(format!(
                        "{key}={value:?} is not an address like 127.0.0.1:9151"
                    ))
                })
            })
            .transpose()
    }

    /// Two settings that go together: both or neither.
    pub fn pair(&self, first: &str, second: &str) -> Result<Option<(String, String)>, BadSetting> {
        match (self.get(first), self.get(second)) {
            (Some(a), Some(b)) => Ok(Some((a, b))),
            (None, None) => Ok(None),
            _ => Err(BadSetting(format!(
                "set {first} and {second} together, or neither"
            ))),
        }
    }

    /// `DATABASE_URL`, or the local default.
    pub fn database_url(&self) -> String {
        self.text("DATABASE_URL", DEFAULT_DATABASE_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_defaults_and_bad_values_named() {
        let s = Settings::from_pairs(&[
            ("N", "42"),
            ("BAD", "forty"),
            ("ADDR", "0.0.0.0:9000"),
            ("HALF", "x"),
            ("BIG", "60000"),
        ]);
        assert_eq!(s.number("N", 1).unwrap(), 42);
        assert_eq!(s.number("UNSET", 7).unwrap(), 7);
        assert!(s.number("BAD", 1).unwrap_err().0.contains("BAD"));
        assert_eq!(s.address("ADDR", "127.0.0.1:1").unwrap().port(), 9000);
        assert!(
            s.address("HALF", "127.0.0.1:1")
                .unwrap_err()
                .0
                .contains("HALF")
        );
        assert_eq!(s.address("UNSET", "127.0.0.1:50051").unwrap().port(), 50051);
        assert!(s.pair("HALF", "UNSET").unwrap_err().0.contains("together"));
        assert_eq!(s.pair("UNSET", "ALSO").unwrap(), None);
        assert!(
            s.number_in("BIG", 1, 1..=50_000)
                .unwrap_err()
                .0
                .contains("BIG")
        );
        assert_eq!(s.millis("N", 0).unwrap(), Duration::from_millis(42));
        assert_eq!(s.database_url(), DEFAULT_DATABASE_URL);
    }
}
