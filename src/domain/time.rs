//! Timestamps: stored as microseconds since the Unix epoch (an integer sorts and
//! compares the same way on SQLite, PostgreSQL and MySQL), shown as RFC 3339 UTC with
//! microseconds, as DESIGN.md §3 requires.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// A point in time with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch (the stored form).
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch (the stored form).
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant moved by `micros` (negative moves back).
    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// This instant moved forward by whole minutes.
    pub fn plus_minutes(self, minutes: i64) -> Self {
        self.plus_micros(minutes.saturating_mul(60_000_000))
    }

    /// Parses RFC 3339 (`2024-01-01T10:00:00Z`, any offset) or a plain date
    /// (`2024-01-01`, midnight UTC), the forms accepted in list filters.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(Self(dt.with_timezone(&Utc).timestamp_micros()));
        }
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        let midnight = date.and_hms_opt(0, 0, 0)?;
        Some(Self(Utc.from_utc_datetime(&midnight).timestamp_micros()))
    }

    /// The instant as a chrono value, for formatting in other shapes (the legacy API).
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// RFC 3339, UTC, microseconds, `Z` suffix.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_shown_in_utc_with_microseconds() {
        let ts = Timestamp::parse("2024-01-01T11:00:00.5+01:00").unwrap();
        assert_eq!(ts.to_rfc3339(), "2024-01-01T10:00:00.500000Z");
    }

    #[test]
    fn a_plain_date_means_midnight_utc() {
        let ts = Timestamp::parse("2024-02-03").unwrap();
        assert_eq!(ts.to_rfc3339(), "2024-02-03T00:00:00.000000Z");
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2024-13-01").is_none());
    }
}
