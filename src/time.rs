//! Instants as integer nanoseconds since the Unix epoch, parsed from RFC 3339.

use std::fmt;
use std::str::FromStr;

/// An instant, compared exactly whatever offset it was written with.
///
/// Kept as one `i64` of nanoseconds so that ticket rows and the
/// creation-time indexes of ticket limits stay small; that covers the years
/// 1678 to 2261, and anything outside is rejected when parsed. Serialised
/// as the bare `i64` (transparent), so an image holds no text to parse.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// 365 days of 24 hours: the rolling window of ticket limits.
pub const LIMIT_WINDOW: i64 = 365 * 24 * 3600 * 1_000_000_000;

/// Why a timestamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("`{0}` is not an RFC 3339 timestamp (for example 2026-01-31T09:00:00Z)")]
    Syntax(String),
    #[error("`{0}` is outside the supported years 1678 to 2261")]
    Range(String),
}

impl Timestamp {
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(1_000_000_000))
    }

    /// The current wall-clock time. Only the edges (CLI, service) call this;
    /// the decision core is handed its clock.
    pub fn now() -> Self {
        let nanos = jiff::Timestamp::now().as_nanosecond();
        Self(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// The start of the ticket-limit window that ends at `self`.
    pub fn minus_limit_window(self) -> Self {
        Self(self.0.saturating_sub(LIMIT_WINDOW))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // jiff also accepts a few ISO 8601 spellings RFC 3339 does not
        // (lower-case `t`, a space separator); we insist on the RFC's `T`.
        if text.len() < 20 || text.as_bytes().get(10) != Some(&b'T') {
            return Err(TimestampError::Syntax(text.to_owned()));
        }
        let parsed: jiff::Timestamp = text
            .parse()
            .map_err(|_| TimestampError::Syntax(text.to_owned()))?;
        i64::try_from(parsed.as_nanosecond())
            .map(Self)
            .map_err(|_| TimestampError::Range(text.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "{}ns", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn offsets_compare_as_instants() {
        let a: Timestamp = "2026-01-01T01:00:00+01:00".parse().unwrap();
        let b: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_non_rfc3339_and_out_of_range() {
        assert!(matches!(
            "2026-01-01".parse::<Timestamp>(),
            Err(TimestampError::Syntax(_))
        ));
        assert!(matches!(
            "2026-01-01 00:00:00Z".parse::<Timestamp>(),
            Err(TimestampError::Syntax(_))
        ));
        assert!(matches!(
            "2026-13-01T00:00:00Z".parse::<Timestamp>(),
            Err(TimestampError::Syntax(_))
        ));
        assert!(matches!(
            "9999-01-01T00:00:00Z".parse::<Timestamp>(),
            Err(TimestampError::Range(_))
        ));
    }

    #[test]
    fn displays_as_rfc3339() {
        let a: Timestamp = "2026-02-01T00:00:00+02:00".parse().unwrap();
        assert_eq!(a.to_string(), "2026-01-31T22:00:00Z");
    }
}
