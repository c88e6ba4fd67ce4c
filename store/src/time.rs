//! Times are kept as Unix milliseconds (UTC) in the database and shown as
//! RFC 3339 UTC strings ("2026-03-29T01:30:00.250Z") in the HTTP API:
//! readable by people and by every JSON client, with no epoch to guess.
//! Use with `#[serde(serialize_with = "telerad_store::time::rfc3339")]`, or
//! [`rfc3339_opt`] for an optional time.

use serde::Serializer;

/// The RFC 3339 form of a time in Unix milliseconds.
pub fn to_rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at.to_string(),
        // Out of jiff's range (years beyond ±9999): no sensible date.
        Err(_) => format!("{ms} ms since 1970-01-01T00:00:00Z"),
    }
}

pub fn rfc3339<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_rfc3339(*ms))
}

pub fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&to_rfc3339(*ms)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::to_rfc3339;

    #[test]
    fn milliseconds_become_utc_rfc3339() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(to_rfc3339(1_774_747_800_250), "2026-03-29T01:30:00.25Z");
    }
}
