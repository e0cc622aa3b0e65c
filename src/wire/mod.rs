//! The JSON wire format: request bodies, query parameters' timestamps,
//! ISO 8601 durations, and how numbers and times are printed.
//!
//! Owns every message a client sees about malformed input; each names the
//! field (`data[1].datetime`) and the problem.
//!
//! Invariants the rest of the service relies on:
//! - A [`PostBody`] that [`parse_post_body`] returns has at least one reading;
//!   every value is in `0..=`[`MAX_READING_VALUE`] (never `-0`, so kWh spread
//!   over even one second stays a finite power); every timestamp is a
//!   real instant between years 0001 and 9999 (before offset conversion),
//!   truncated to the whole second; `interval_s`, when present, is in
//!   `1..=`[`MAX_INTERVAL_S`]. Duplicate timestamps are *not* checked here:
//!   truncation can create them, so the normaliser checks after it.
//! - Everything this module prints is valid JSON / RFC 3339: [`write_number`]
//!   never emits `NaN` or `inf`, [`write_timestamp`] always emits `...Z` UTC.
//! - No input makes any function here panic; client text quoted back in an
//!   error message is escaped and cut short (see [`quote`]).
//!
//! Layout: [`post`] (the streaming body parser), [`timestamp`], [`duration`],
//! [`number`]; everything public is re-exported here.

use std::fmt;

use crate::model::{Reading, ShipId, Units};

pub mod duration;
pub mod number;
pub mod post;
pub mod timestamp;

pub use duration::{parse_duration, MAX_INTERVAL_S};
pub use number::{
    format_nanokwh, format_number, write_nanokwh, write_number, NANOKWH_MAX_LEN, NUMBER_MAX_LEN,
};
pub use post::{parse_post_body, MAX_READING_VALUE};
pub use timestamp::{
    format_timestamp, parse_timestamp, parse_timestamp_cached, write_quoted_timestamp,
    write_timestamp, DateCache, TimestampWriter,
};

/// A problem with one field of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `data[1].datetime`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// A parsed and validated `POST /data` body.
#[derive(Clone, Debug, PartialEq)]
pub struct PostBody {
    pub spaceship_id: ShipId,
    pub units: Units,
    /// The optional `interval` field, in seconds.
    pub interval_s: Option<i64>,
    /// In request order; not yet sorted or checked for duplicates.
    pub readings: Vec<Reading>,
}

/// Longest client text echoed back in an error message, in bytes (roughly).
const QUOTE_LIMIT: usize = 64;

/// Client text as it should appear inside an error message: in double quotes,
/// with control characters and quotes escaped, and cut to about 64 bytes (with
/// `…`) so that a megabyte-long string does not come back in a 400 response.
pub fn quote(text: &str) -> String {
    let mut end = text.len().min(QUOTE_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text.get(..end) {
        Some(head) if end < text.len() => format!("{:?}…", head),
        _ => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_field_and_message() {
        let e = FieldError::new("data[1].datetime", "bad");
        assert_eq!(e.to_string(), "data[1].datetime: bad");
        assert_eq!(
            FieldError::new("", "body is empty").to_string(),
            "body is empty"
        );
    }

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.ends_with('…'));
        assert!(q.len() < 80, "{q}");
        assert_eq!(quote(""), "\"\"");
    }
}
