//! Readings → spans: the span and gap rules of SPEC.md. Placeholder until
//! the normaliser lands.

use crate::model::{Reading, Span, Units};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NormaliseError {
    /// Two readings share a timestamp: indices into the request's `data`.
    DuplicateTimestamp {
        first: usize,
        second: usize,
    },
    Empty,
}

pub fn normalise(
    _units: Units,
    _readings: &[Reading],
    _interval_s: Option<i64>,
) -> Result<Vec<Span>, NormaliseError> {
    Err(NormaliseError::Empty)
}
