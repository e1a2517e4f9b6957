//! The one timestamp format on the wire: RFC 3339 in UTC with microseconds and
//! an explicit offset (`2026-11-23T21:01:13.123456+00:00`), because older
//! Python parsers reject `Z` and nanoseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Format a UTC instant the way every response and record carries it.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// `#[serde(with = "crate::timefmt::serde_utc")]` for `DateTime<Utc>` fields.
pub mod serde_utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// The same for `Option<DateTime<Utc>>` fields.
pub mod serde_utc_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::format(*at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn formats_with_micros_and_explicit_offset() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 21, 1, 13)
            .unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(super::format(at), "2026-11-23T21:01:13.123456+00:00");
    }
}
