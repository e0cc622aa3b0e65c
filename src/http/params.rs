//! Query strings: `application/x-www-form-urlencoded` pairs, percent
//! decoding, and typed lookups whose errors name the parameter.
//!
//! Rules: unknown parameters are ignored; a parameter given twice is an
//! error (which one would the client mean?); an empty value (`start=`)
//! counts as absent, so `?start=&end=` templates work.
//!
//! A `+` in a query value means a space in form encoding, but clients often
//! leave the `+` of a timestamp's offset (`+02:00`) unencoded. A timestamp
//! never legitimately contains a space where an offset goes, so timestamps
//! are parsed with `+` as a space first and, failing that, with `+` kept.

use std::borrow::Cow;

use crate::model::{ShipId, BUCKET_SECONDS};
use crate::wire::{self, FieldError};

/// A parsed query string, borrowing from the request URI.
pub(crate) struct Query<'a> {
    /// Decoded names with their still-encoded values.
    pairs: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> Query<'a> {
    pub(crate) fn parse(query: Option<&'a str>) -> Query<'a> {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                // A name that does not decode is no parameter we know.
                decode(name, true).ok().map(|name| (name, value))
            })
            .collect();
        Query { pairs }
    }

    /// The raw (still encoded) value of `name`; `None` when absent or empty.
    fn raw(&self, name: &str) -> Result<Option<&'a str>, FieldError> {
        let mut found = None;
        for (key, value) in &self.pairs {
            if key == name {
                if found.is_some() {
                    return Err(FieldError::new(name, "is given more than once"));
                }
                found = Some(*value);
            }
        }
        Ok(found.filter(|value| !value.is_empty()))
    }

    pub(crate) fn text(&self, name: &str) -> Result<Option<Cow<'a, str>>, FieldError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(raw) => decode(raw, true)
                .map(Some)
                .map_err(|why| FieldError::new(name, why)),
        }
    }

    /// A required ship id: ASCII digits only, within `u64`.
    pub(crate) fn ship_id(&self, name: &str) -> Result<ShipId, FieldError> {
        self.optional_ship_id(name)?
            .ok_or_else(|| FieldError::new(name, "is required"))
    }

    /// An optional ship id, by [`Query::ship_id`]'s rules.
    pub(crate) fn optional_ship_id(&self, name: &str) -> Result<Option<ShipId>, FieldError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        // `u64::from_str` would also take a leading `+`.
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                name,
                format!("{text:?} is not a non-negative integer"),
            ));
        }
        text.parse()
            .map(Some)
            .map_err(|_| FieldError::new(name, format!("{text} is too large for a ship id")))
    }

    /// An optional whole number in `1..=max`.
    pub(crate) fn count(&self, name: &str, max: usize) -> Result<Option<usize>, FieldError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(FieldError::new(
                name,
                format!("{text:?} is not a whole number from 1 to {max}"),
            )),
        }
    }

    /// An optional step, `15m`, `1h` or `1d`, as a number of buckets.
    pub(crate) fn step(&self, name: &str) -> Result<Option<i64>, FieldError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match &*text {
            "15m" => Ok(Some(1)),
            "1h" => Ok(Some(crate::model::BUCKETS_PER_HOUR)),
            "1d" => Ok(Some(crate::model::BUCKETS_PER_DAY)),
            _ => Err(FieldError::new(
                name,
                format!("{text:?} is not a step; expected \"15m\", \"1h\" or \"1d\""),
            )),
        }
    }

    /// An optional timestamp in either spelling, as seconds since the epoch.
    pub(crate) fn timestamp(&self, name: &str) -> Result<Option<i64>, FieldError> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        let as_form = decode(raw, true).map_err(|why| FieldError::new(name, why))?;
        wire::parse_timestamp(&as_form).map(Some).or_else(|why| {
            let with_literal_plus = raw
                .contains('+')
                .then(|| decode(raw, false).ok())
                .flatten()
                .and_then(|text| wire::parse_timestamp(&text).ok());
            with_literal_plus
                .map(Some)
                .ok_or_else(|| FieldError::new(name, why))
        })
    }
}

/// The first bucket starting at or after `t_s`, kept within the range whose
/// start seconds fit an `i64`: a window `[start, end)` holds the buckets
/// that start inside it.
pub(crate) fn ceil_bucket(t_s: i64) -> i64 {
    let ceil = t_s.div_euclid(BUCKET_SECONDS) + i64::from(t_s.rem_euclid(BUCKET_SECONDS) != 0);
    ceil.clamp(i64::MIN / BUCKET_SECONDS, i64::MAX / BUCKET_SECONDS)
}

/// The error for a window whose `start` is not before its `end`:
/// `<rule> (<start> <relation> <end>)`, naming `start`.
pub(crate) fn window_order_error(
    rule: &str,
    start_s: i64,
    relation: &str,
    end_s: i64,
) -> FieldError {
    let mut text = format!("{rule} (").into_bytes();
    wire::write_timestamp(&mut text, start_s);
    text.extend_from_slice(format!(" {relation} ").as_bytes());
    wire::write_timestamp(&mut text, end_s);
    text.push(b')');
    FieldError::new("start", String::from_utf8_lossy(&text))
}

/// Percent-decodes `raw` (and `+` to a space when `plus_is_space`). The
/// result must be UTF-8. Borrows when there is nothing to decode.
pub(crate) fn decode(raw: &str, plus_is_space: bool) -> Result<Cow<'_, str>, String> {
    if !raw
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let high = bytes.get(index + 1).and_then(|b| hex_value(*b));
                let low = bytes.get(index + 2).and_then(|b| hex_value(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(format!("{raw:?} has a malformed %-escape"));
                };
                out.push(high << 4 | low);
                index += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                index += 1;
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| format!("{raw:?} does not decode to UTF-8"))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_and_plus() {
        assert_eq!(decode("00%3A00%3a00Z", true).unwrap(), "00:00:00Z");
        assert_eq!(decode("a+b", true).unwrap(), "a b");
        assert_eq!(decode("a+b", false).unwrap(), "a+b");
        assert_eq!(decode("%2B02%3A00", true).unwrap(), "+02:00");
        assert!(matches!(decode("plain", true).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn rejects_broken_escapes() {
        assert!(decode("%", true).is_err());
        assert!(decode("%4", true).is_err());
        assert!(decode("%zz", true).is_err());
        assert!(decode("%ff", true).is_err(), "not UTF-8");
    }

    #[test]
    fn ship_id_accepts_digits_only() {
        let query = Query::parse(Some("spaceship_id=42&other=x"));
        assert_eq!(query.ship_id("spaceship_id"), Ok(42));
        for bad in ["-1", "%2B1", "1.5", "abc", "99999999999999999999"] {
            let query = format!("spaceship_id={bad}");
            let error = Query::parse(Some(&query))
                .ship_id("spaceship_id")
                .unwrap_err();
            assert_eq!(error.field, "spaceship_id", "{bad}");
        }
    }

    #[test]
    fn an_optional_ship_id_may_be_absent_but_not_malformed() {
        let query = Query::parse(Some("spaceship_id=42"));
        assert_eq!(query.optional_ship_id("spaceship_id"), Ok(Some(42)));
        for absent in [None, Some("other=1"), Some("spaceship_id=")] {
            let query = Query::parse(absent);
            assert_eq!(
                query.optional_ship_id("spaceship_id"),
                Ok(None),
                "{absent:?}"
            );
        }
        for bad in ["spaceship_id=x", "spaceship_id=1&spaceship_id=1"] {
            let query = Query::parse(Some(bad));
            let optional = query.optional_ship_id("spaceship_id").unwrap_err();
            assert_eq!(Err(optional), query.ship_id("spaceship_id"), "{bad}");
        }
    }

    #[test]
    fn missing_empty_and_repeated_parameters() {
        let error = Query::parse(None).ship_id("spaceship_id").unwrap_err();
        assert_eq!(error.field, "spaceship_id");
        assert!(Query::parse(Some("spaceship_id="))
            .ship_id("spaceship_id")
            .is_err());
        assert_eq!(
            Query::parse(Some("start=&end=")).timestamp("start"),
            Ok(None)
        );
        assert!(Query::parse(Some("start=a&start=b"))
            .timestamp("start")
            .is_err());
    }
}
