//! The JSON wire format: request bodies, query parameters' timestamps,
//! ISO 8601 durations, and how numbers and times are printed.
//!
//! Owns every message a client sees about malformed input; each names the
//! field (`data[1].datetime`) and the problem.

use std::fmt;

use crate::model::{Reading, ShipId, Units};

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

/// Parses a `POST /data` body. Placeholder until the wire layer lands.
pub fn parse_post_body(_bytes: &[u8]) -> Result<PostBody, FieldError> {
    Err(FieldError::new("", "not implemented"))
}

/// Parses an RFC 3339 timestamp (`2018-08-24T00:00:00Z`, offsets, fractional
/// seconds) or the dashed form (`2018-08-24T00-00-00Z`) into whole seconds
/// since the epoch (UTC, fraction truncated). The error text describes the
/// problem without naming a field. Placeholder until the wire layer lands.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    Err(format!("{text:?} is not an RFC 3339 timestamp"))
}

/// Appends `2018-08-24T00:00:00Z` for `secs`. Placeholder.
pub fn write_timestamp(out: &mut Vec<u8>, secs: i64) {
    out.extend_from_slice(secs.to_string().as_bytes());
}

/// Appends a JSON number: whole numbers without a fraction (`3`, not `3.0`),
/// others rounded to 9 decimal places and printed shortest. Placeholder.
pub fn write_number(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(value.to_string().as_bytes());
}

/// Parses an ISO 8601 duration such as `PT5M`, `PT1H` or `P1D` into seconds.
/// Placeholder.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    Err(format!("{text:?} is not an ISO 8601 duration"))
}
