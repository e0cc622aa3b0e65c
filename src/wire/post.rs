//! The `POST /data` body, parsed in one streaming pass.
//!
//! This is the ingest hot path, so the body is never built into a
//! `serde_json::Value` tree: serde visitors walk the bytes once, keys are
//! matched as borrowed `&str`, and each `datetime` is parsed straight from the
//! input (an escaped string is first unescaped into serde_json's reused
//! scratch buffer). The whole body's UTF-8 is checked once up front, so
//! serde_json need not check every string again.
//!
//! serde's error type cannot carry a [`FieldError`], so a visitor that finds a
//! problem records it in a side channel (`failure`, first problem wins) and
//! returns a placeholder serde error that unwinds the deserializer. The entry
//! point prefers the recorded problem; an error with nothing recorded is
//! serde_json's own, i.e. the body is not JSON, reported with line and column.
//!
//! Every visitor handles every JSON kind itself (`deserialize_any`), so a
//! wrong type is reported in our words with the field's path rather than as
//! serde's "invalid type: ..., expected ...".

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::timestamp::{parse_timestamp_cached, DateCache};
use super::{parse_duration, quote, FieldError, PostBody, MAX_INTERVAL_S};
use crate::model::{Reading, ShipId, Units};

/// Parses and validates a `POST /data` body:
/// `{"spaceship_id": 42, "units": "kW"|"kWh", "interval": "PT5M" (optional),
/// "data": [{"datetime": "2018-08-24T00:00:00Z", "value": 12}, ...]}`.
///
/// `units` is case-insensitive; `interval: null` counts as absent; unknown
/// fields are ignored; a field given twice is an error. Duplicate timestamps
/// are left to the normaliser (they may only appear after truncation).
pub fn parse_post_body(bytes: &[u8]) -> Result<PostBody, FieldError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FieldError::new("", "body is empty; expected a JSON object"));
    }
    // Room for the readings up front: a reading takes at least ~40 bytes of
    // JSON in practice, so this rarely over- or under-shoots by much. Capped
    // so a huge body of something else cannot make us reserve a lot.
    let capacity = (bytes.len() / 40).min(1 << 16);
    // JSON is UTF-8. Checking the whole body once up front is much cheaper
    // than serde_json's per-string checks, which `from_str` then skips.
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e.valid_up_to()))?;
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = BodySeed {
        failure: &mut failure,
        capacity,
    }
    .deserialize(&mut de);
    match parsed {
        Ok(body) => match de.end() {
            Ok(()) => Ok(body),
            Err(e) => Err(invalid_json(&e)),
        },
        Err(e) => Err(failure.unwrap_or_else(|| invalid_json(&e))),
    }
}

fn invalid_json(e: &serde_json::Error) -> FieldError {
    // serde_json's text already ends with "at line L column C".
    FieldError::new("", format!("body is not valid JSON: {e}"))
}

fn not_utf8(bytes: &[u8], valid_up_to: usize) -> FieldError {
    let before = bytes.get(..valid_up_to).unwrap_or_default();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    FieldError::new(
        "",
        format!("body is not valid JSON: invalid UTF-8 at line {line} column {column}"),
    )
}

/// Where a problem is; rendered into a JSON path only when there is one.
#[derive(Clone, Copy)]
enum Field {
    Top(&'static str),
    Item(usize),
    InItem(usize, &'static str),
}

impl Field {
    fn path(self) -> String {
        match self {
            Field::Top(name) => name.to_owned(),
            Field::Item(index) => format!("data[{index}]"),
            Field::InItem(index, name) => format!("data[{index}].{name}"),
        }
    }
}

type Failure = Option<FieldError>;

const MISSING: &str = "required field is missing";

/// Records the problem (unless an inner visitor already did) and returns the
/// placeholder error that unwinds serde.
fn fail<T, E: de::Error>(failure: &mut Failure, field: Field, message: String) -> Result<T, E> {
    if failure.is_none() {
        *failure = Some(FieldError::new(field.path(), message));
    }
    Err(E::custom("rejected field"))
}

/// What a field turned out to hold (containers reduced to their kind), so a
/// checker can accept it or say what it got instead.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    /// serde_json reports only negative integers as `i64`.
    Negative(i64),
    Float(f64),
    Str(&'a str),
    Array,
    Object,
}

impl fmt::Display for Scalar<'_> {
    /// How a value is described after "got": `the string "12"`, `an array`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Unsigned(n) => write!(f, "the number {n}"),
            Scalar::Negative(n) => write!(f, "the number {n}"),
            Scalar::Float(x) => write!(f, "the number {}", float_text(*x)),
            Scalar::Str(s) => write!(f, "the string {}", quote(s)),
            Scalar::Array => f.write_str("an array"),
            Scalar::Object => f.write_str("an object"),
        }
    }
}

/// A float as JSON would spell it (`1.5`, `1e20`), for messages.
fn float_text(x: f64) -> String {
    if x.is_finite() {
        ryu::Buffer::new().format_finite(x).to_owned()
    } else {
        x.to_string()
    }
}

/// Reads one value and hands it, as a [`Scalar`], to a checker that turns it
/// into the field's type or says what is wrong. The checker sees strings
/// borrowed for the call only, so nothing is copied even for escaped strings.
struct CheckSeed<F>(F);

impl<'de, T, F> DeserializeSeed<'de> for CheckSeed<F>
where
    F: FnOnce(Scalar<'_>) -> Result<T, String>,
{
    type Value = Result<T, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T, F> Visitor<'de> for CheckSeed<F>
where
    F: FnOnce(Scalar<'_>) -> Result<T, String>,
{
    type Value = Result<T, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Null))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Bool(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Unsigned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Negative(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0(Scalar::Str(v)))
    }
    // Containers are consumed so the deserializer stays in step: returning
    // early would surface as a JSON syntax error instead of the checker's.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.0(Scalar::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.0(Scalar::Object))
    }
}

/// Reads the next map value through `check`; a problem is recorded for
/// `field`. A number too large for f64 is a hard error inside serde_json
/// ("number out of range"), not a value the checker gets to see; it is turned
/// into `too_large` for `field` instead of "not JSON".
fn next_checked<'de, A, T, F>(
    map: &mut A,
    failure: &mut Failure,
    field: Field,
    too_large: &str,
    check: F,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    F: FnOnce(Scalar<'_>) -> Result<T, String>,
{
    match map.next_value_seed(CheckSeed(check)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => fail(failure, field, message),
        Err(e) if e.to_string().starts_with("number out of range") => {
            fail(failure, field, too_large.to_owned())
        }
        Err(e) => Err(e),
    }
}

/// A set of known keys; anything else maps to the "ignore" variant.
trait Keys: Sized {
    fn from_name(name: &str) -> Self;
}

enum TopKey {
    SpaceshipId,
    Units,
    Interval,
    Data,
    Other,
}

impl Keys for TopKey {
    fn from_name(name: &str) -> Self {
        match name {
            "spaceship_id" => TopKey::SpaceshipId,
            "units" => TopKey::Units,
            "interval" => TopKey::Interval,
            "data" => TopKey::Data,
            _ => TopKey::Other,
        }
    }
}

enum ItemKey {
    Datetime,
    Value,
    Other,
}

impl Keys for ItemKey {
    fn from_name(name: &str) -> Self {
        match name {
            "datetime" => ItemKey::Datetime,
            "value" => ItemKey::Value,
            _ => ItemKey::Other,
        }
    }
}

/// Matches an object key without allocating (serde_json hands keys over as
/// borrowed `&str` unless they contain escapes).
struct KeySeed<K>(PhantomData<K>);

impl<'de, K: Keys> DeserializeSeed<'de> for KeySeed<K> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<K: Keys> Visitor<'_> for KeySeed<K> {
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        Ok(K::from_name(v))
    }
}

fn key<K>() -> KeySeed<K> {
    KeySeed(PhantomData)
}

/// The `visit_*` methods for the JSON kinds a container visitor refuses;
/// each hands what it got to the visitor's `wrong_type`.
macro_rules! refuse_scalars {
    () => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Null)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Bool(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Unsigned(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Negative(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Float(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.wrong_type(Scalar::Str(v))
        }
    };
}

/// The whole body: an object with the four known fields.
struct BodySeed<'a> {
    failure: &'a mut Failure,
    capacity: usize,
}

impl BodySeed<'_> {
    fn wrong_type<T, E: de::Error>(self, got: Scalar<'_>) -> Result<T, E> {
        let message = format!("body must be a JSON object, got {got}");
        *self.failure = Some(FieldError::new("", message));
        Err(E::custom("rejected body"))
    }
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = PostBody;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PostBody, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = PostBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    refuse_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<PostBody, A::Error> {
        self.wrong_type(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PostBody, A::Error> {
        let BodySeed { failure, capacity } = self;
        let mut spaceship_id: Option<ShipId> = None;
        let mut units: Option<Units> = None;
        let mut interval_s: Option<Option<i64>> = None;
        let mut readings: Option<Vec<Reading>> = None;
        while let Some(k) = map.next_key_seed(key::<TopKey>())? {
            let field = Field::Top(match k {
                TopKey::SpaceshipId => "spaceship_id",
                TopKey::Units => "units",
                TopKey::Interval => "interval",
                TopKey::Data => "data",
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            });
            let seen = match k {
                TopKey::SpaceshipId => spaceship_id.is_some(),
                TopKey::Units => units.is_some(),
                TopKey::Interval => interval_s.is_some(),
                TopKey::Data => readings.is_some(),
                TopKey::Other => false,
            };
            if seen {
                return fail(failure, field, "appears more than once".to_owned());
            }
            match k {
                TopKey::SpaceshipId => {
                    let too_large = "is too large; ship ids go up to 18446744073709551615";
                    let id = next_checked(&mut map, failure, field, too_large, check_ship_id)?;
                    spaceship_id = Some(id);
                }
                TopKey::Units => {
                    let too_large = "expected \"kW\" or \"kWh\", got a number";
                    units = Some(next_checked(
                        &mut map,
                        failure,
                        field,
                        too_large,
                        check_units,
                    )?);
                }
                TopKey::Interval => {
                    let too_large = "expected an ISO 8601 duration such as \"PT5M\", got a number";
                    let checked = next_checked(&mut map, failure, field, too_large, check_interval);
                    interval_s = Some(checked?);
                }
                TopKey::Data => {
                    readings = Some(map.next_value_seed(DataSeed {
                        failure: &mut *failure,
                        capacity,
                    })?);
                }
                TopKey::Other => {}
            }
        }
        let Some(spaceship_id) = spaceship_id else {
            return fail(failure, Field::Top("spaceship_id"), MISSING.to_owned());
        };
        let Some(units) = units else {
            return fail(failure, Field::Top("units"), MISSING.to_owned());
        };
        let Some(readings) = readings else {
            return fail(failure, Field::Top("data"), MISSING.to_owned());
        };
        Ok(PostBody {
            spaceship_id,
            units,
            interval_s: interval_s.flatten(),
            readings,
        })
    }
}

fn check_ship_id(got: Scalar<'_>) -> Result<ShipId, String> {
    match got {
        Scalar::Unsigned(id) => Ok(id),
        Scalar::Negative(n) => Err(format!("{n} is negative; expected a non-negative integer")),
        // 2^64 and above arrive as floats (serde_json has no bigger integer).
        Scalar::Float(x) if x >= 18_446_744_073_709_551_616.0 => Err(format!(
            "{} is too large; ship ids go up to {}",
            float_text(x),
            u64::MAX
        )),
        other => Err(format!("expected a non-negative integer, got {other}")),
    }
}

fn check_units(got: Scalar<'_>) -> Result<Units, String> {
    match got {
        Scalar::Str(s) if s.eq_ignore_ascii_case("kw") => Ok(Units::Kw),
        Scalar::Str(s) if s.eq_ignore_ascii_case("kwh") => Ok(Units::Kwh),
        Scalar::Str(s) => Err(format!(
            "{} is not a known unit; expected \"kW\" or \"kWh\"",
            quote(s)
        )),
        other => Err(format!("expected \"kW\" or \"kWh\", got {other}")),
    }
}

fn check_interval(got: Scalar<'_>) -> Result<Option<i64>, String> {
    match got {
        Scalar::Null => Ok(None),
        Scalar::Str(s) => {
            let secs = parse_duration(s)?;
            if secs > MAX_INTERVAL_S {
                return Err(format!(
                    "{} is longer than the 7-day maximum (\"P7D\")",
                    quote(s)
                ));
            }
            Ok(Some(secs))
        }
        other => Err(format!(
            "expected an ISO 8601 duration such as \"PT5M\", got {other}"
        )),
    }
}

/// The `data` array.
struct DataSeed<'a> {
    failure: &'a mut Failure,
    capacity: usize,
}

impl DataSeed<'_> {
    fn wrong_type<T, E: de::Error>(self, got: Scalar<'_>) -> Result<T, E> {
        let message = format!("expected an array of readings, got {got}");
        fail(self.failure, Field::Top("data"), message)
    }
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Vec<Reading>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Vec<Reading>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of readings")
    }

    refuse_scalars!();

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Self::Value, A::Error> {
        self.wrong_type(Scalar::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let DataSeed { failure, capacity } = self;
        let mut readings = Vec::with_capacity(capacity);
        let mut dates = DateCache::default();
        loop {
            let index = readings.len();
            let seed = ReadingSeed {
                failure: &mut *failure,
                dates: &mut dates,
                index,
            };
            match seq.next_element_seed(seed)? {
                Some(reading) => readings.push(reading),
                None => break,
            }
        }
        if readings.is_empty() {
            let message = "is empty; send at least one reading".to_owned();
            return fail(failure, Field::Top("data"), message);
        }
        Ok(readings)
    }
}

/// One element of `data`.
struct ReadingSeed<'a> {
    failure: &'a mut Failure,
    dates: &'a mut DateCache,
    index: usize,
}

impl ReadingSeed<'_> {
    fn wrong_type<T, E: de::Error>(self, got: Scalar<'_>) -> Result<T, E> {
        let message = format!("expected an object with \"datetime\" and \"value\", got {got}");
        fail(self.failure, Field::Item(self.index), message)
    }
}

impl<'de> DeserializeSeed<'de> for ReadingSeed<'_> {
    type Value = Reading;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Reading, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReadingSeed<'_> {
    type Value = Reading;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reading object")
    }

    refuse_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Reading, A::Error> {
        self.wrong_type(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reading, A::Error> {
        let ReadingSeed {
            failure,
            dates,
            index,
        } = self;
        let datetime = Field::InItem(index, "datetime");
        let value_field = Field::InItem(index, "value");
        let mut time_s: Option<i64> = None;
        let mut value: Option<f64> = None;
        while let Some(k) = map.next_key_seed(key::<ItemKey>())? {
            match k {
                ItemKey::Datetime => {
                    if time_s.is_some() {
                        return fail(failure, datetime, "appears more than once".to_owned());
                    }
                    let too_large = "expected an RFC 3339 timestamp string, got a number";
                    let check = |got: Scalar<'_>| check_datetime(got, &mut *dates);
                    let t = next_checked(&mut map, failure, datetime, too_large, check)?;
                    time_s = Some(t);
                }
                ItemKey::Value => {
                    if value.is_some() {
                        return fail(failure, value_field, "appears more than once".to_owned());
                    }
                    let too_large = "is not a finite number (too large)";
                    let v = next_checked(&mut map, failure, value_field, too_large, check_value)?;
                    value = Some(v);
                }
                ItemKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(time_s) = time_s else {
            return fail(failure, datetime, MISSING.to_owned());
        };
        let Some(value) = value else {
            return fail(failure, value_field, MISSING.to_owned());
        };
        Ok(Reading {
            index,
            time_s,
            value,
        })
    }
}

fn check_datetime(got: Scalar<'_>, dates: &mut DateCache) -> Result<i64, String> {
    match got {
        Scalar::Str(text) => parse_timestamp_cached(text, dates),
        other => Err(format!(
            "expected an RFC 3339 timestamp string, got {other}"
        )),
    }
}

/// The largest reading accepted, in kW or kWh. Far beyond any meter, yet it
/// keeps every derived number finite: a kWh reading spread over one second
/// is `value × 3600` kW, and bucket and fleet sums stay far below f64's range.
pub const MAX_READING_VALUE: f64 = 1e15;

fn check_value(got: Scalar<'_>) -> Result<f64, String> {
    let number = match got {
        Scalar::Unsigned(n) => n as f64,
        Scalar::Float(x) => x,
        Scalar::Negative(n) => {
            return Err(format!("{n} is negative; readings must be zero or more"))
        }
        Scalar::Str(s) => {
            return Err(format!(
                "expected a number, got the string {} (numbers must not be quoted)",
                quote(s)
            ))
        }
        other => return Err(format!("expected a number, got {other}")),
    };
    if !number.is_finite() {
        Err("is not a finite number".to_owned())
    } else if number < 0.0 {
        let text = float_text(number);
        Err(format!("{text} is negative; readings must be zero or more"))
    } else if number > MAX_READING_VALUE {
        let text = float_text(number);
        Err(format!("{text} is too large; readings go up to 1e15"))
    } else {
        // `+ 0.0` turns -0 into +0 so no sign leaks into sums or output.
        Ok(number + 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PostBody, FieldError> {
        parse_post_body(text.as_bytes())
    }

    /// The error for `text`, as "field: message".
    fn error(text: &str) -> String {
        match parse(text) {
            Ok(body) => panic!("accepted {text}: {body:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// A body with `readings` spliced into `data`.
    fn with_data(readings: &str) -> String {
        format!(r#"{{"spaceship_id": 1, "units": "kW", "data": [{readings}]}}"#)
    }

    #[test]
    fn a_valid_body() {
        let body = parse(
            r#"{"spaceship_id": 42, "units": "kWh", "interval": "PT1H", "data": [
                {"datetime": "2018-08-24T01:00:00Z", "value": 26},
                {"datetime": "2018-08-24T00:00:00+00:00", "value": 12.5, "quality": "good"}
            ], "comment": {"nested": [1, 2, {"x": null}]}}"#,
        )
        .expect("valid");
        assert_eq!(
            body,
            PostBody {
                spaceship_id: 42,
                units: Units::Kwh,
                interval_s: Some(3600),
                readings: vec![
                    Reading {
                        index: 0,
                        time_s: 1_535_072_400,
                        value: 26.0
                    },
                    Reading {
                        index: 1,
                        time_s: 1_535_068_800,
                        value: 12.5
                    },
                ],
            }
        );
    }

    #[test]
    fn field_order_units_case_and_optional_interval() {
        let body = parse(
            r#"{"data": [{"value": 0, "datetime": "2018-08-24T00:00:00Z"}],
                "units": "KW", "spaceship_id": 0}"#,
        )
        .expect("valid");
        assert_eq!(body.units, Units::Kw);
        assert_eq!(body.interval_s, None);
        assert_eq!(body.spaceship_id, 0);
        for (units, want) in [("kw", Units::Kw), ("kWh", Units::Kwh), ("KWH", Units::Kwh)] {
            let text = format!(
                r#"{{"spaceship_id": 1, "units": "{units}", "interval": null,
                    "data": [{{"datetime": "2018-08-24T00:00:00Z", "value": 1}}]}}"#
            );
            let body = parse(&text).expect("valid");
            assert_eq!(body.units, want);
            assert_eq!(body.interval_s, None);
        }
        let max = format!(
            r#"{{"spaceship_id": {}, "units": "kW", "data": [{{"datetime": "2018-08-24T00:00:00Z", "value": 1}}]}}"#,
            u64::MAX
        );
        assert_eq!(parse(&max).expect("valid").spaceship_id, u64::MAX);
    }

    #[test]
    fn escaped_strings_and_keys_still_parse() {
        let body = parse(
            r#"{"spaceship_id": 7, "un\u0069ts": "k\u0057h",
                "data": [{"date\u0074ime": "2018-08-24T00:00:00\u005A", "value": 1e0}]}"#,
        )
        .expect("valid");
        assert_eq!(body.units, Units::Kwh);
        assert_eq!(body.readings[0].time_s, 1_535_068_800);
        assert_eq!(body.readings[0].value, 1.0);
    }

    #[test]
    fn values_are_finite_non_negative_numbers() {
        let one = |v: &str| {
            parse(&with_data(&format!(
                r#"{{"datetime": "2018-08-24T00:00:00Z", "value": {v}}}"#
            )))
            .map(|b| b.readings[0].value)
        };
        assert_eq!(one("0"), Ok(0.0));
        assert_eq!(one("12"), Ok(12.0));
        assert_eq!(one("0.001"), Ok(0.001));
        assert_eq!(one("1.5e3"), Ok(1500.0));
        assert_eq!(one("1e-400"), Ok(0.0));
        assert_eq!(one("1e15"), Ok(MAX_READING_VALUE));
        assert_eq!(one("1000000000000000"), Ok(MAX_READING_VALUE));
        let minus_zero = one("-0").expect("valid");
        assert_eq!(minus_zero, 0.0);
        assert!(minus_zero.is_sign_positive());
        let minus_zero = one("-0.0").expect("valid");
        assert!(minus_zero.is_sign_positive());
    }

    #[test]
    fn value_errors_name_the_reading() {
        let at2 = |v: &str| {
            error(&with_data(&format!(
                r#"{{"datetime": "2018-08-24T00:00:00Z", "value": 1}},
                   {{"datetime": "2018-08-24T00:05:00Z", "value": 1}},
                   {{"datetime": "2018-08-24T00:10:00Z", "value": {v}}}"#
            )))
        };
        assert_eq!(
            at2("-3"),
            "data[2].value: -3 is negative; readings must be zero or more"
        );
        assert_eq!(
            at2("-0.5"),
            "data[2].value: -0.5 is negative; readings must be zero or more"
        );
        assert_eq!(
            at2("\"12\""),
            "data[2].value: expected a number, got the string \"12\" (numbers must not be quoted)"
        );
        assert_eq!(at2("null"), "data[2].value: expected a number, got null");
        assert_eq!(at2("true"), "data[2].value: expected a number, got true");
        assert_eq!(at2("[1]"), "data[2].value: expected a number, got an array");
        assert_eq!(
            at2("{\"kw\": 1}"),
            "data[2].value: expected a number, got an object"
        );
        assert_eq!(
            at2("1e400"),
            "data[2].value: is not a finite number (too large)"
        );
        assert_eq!(
            at2("-1e400"),
            "data[2].value: is not a finite number (too large)"
        );
        assert_eq!(
            at2("1e300"),
            "data[2].value: 1e300 is too large; readings go up to 1e15"
        );
        assert_eq!(
            at2("18446744073709551615"),
            "data[2].value: 1.8446744073709552e19 is too large; readings go up to 1e15"
        );
        // JSON has no NaN or Infinity literals: those are syntax errors.
        assert!(at2("NaN").starts_with("body is not valid JSON: "));
        assert!(at2("Infinity").starts_with("body is not valid JSON: "));
    }

    #[test]
    fn datetime_errors_name_the_reading() {
        let at1 = |d: &str| {
            error(&with_data(&format!(
                r#"{{"datetime": "2018-08-24T00:00:00Z", "value": 1}},
                   {{"datetime": {d}, "value": 1}}"#
            )))
        };
        assert_eq!(
            at1("\"2019-01-05T04:42:00ZZ\""),
            "data[1].datetime: \"2019-01-05T04:42:00ZZ\" is not an RFC 3339 timestamp \
             (unexpected text after the UTC offset)"
        );
        assert_eq!(
            at1("\"2019-02-30T00:00:00Z\""),
            "data[1].datetime: \"2019-02-30T00:00:00Z\" is not an RFC 3339 timestamp \
             (day 30 out of range for 2019-02)"
        );
        assert_eq!(
            at1("1535068800"),
            "data[1].datetime: expected an RFC 3339 timestamp string, got the number 1535068800"
        );
        assert_eq!(
            at1("null"),
            "data[1].datetime: expected an RFC 3339 timestamp string, got null"
        );
    }

    #[test]
    fn reading_shape_errors() {
        assert_eq!(
            error(&with_data(r#"{"value": 1}"#)),
            "data[0].datetime: required field is missing"
        );
        assert_eq!(
            error(&with_data(r#"{"datetime": "2018-08-24T00:00:00Z"}"#)),
            "data[0].value: required field is missing"
        );
        assert_eq!(
            error(&with_data(
                r#"{"datetime": "2018-08-24T00:00:00Z", "value": 1}, 5"#
            )),
            "data[1]: expected an object with \"datetime\" and \"value\", got the number 5"
        );
        assert_eq!(
            error(&with_data(r#"[]"#)),
            "data[0]: expected an object with \"datetime\" and \"value\", got an array"
        );
        assert_eq!(
            error(&with_data(r#""x""#)),
            "data[0]: expected an object with \"datetime\" and \"value\", got the string \"x\""
        );
        assert_eq!(
            error(&with_data(
                r#"{"datetime": "2018-08-24T00:00:00Z", "value": 1, "value": 2}"#
            )),
            "data[0].value: appears more than once"
        );
        assert_eq!(
            error(&with_data(
                r#"{"datetime": "2018-08-24T00:00:00Z", "datetime": "2018-08-24T00:00:00Z", "value": 1}"#
            )),
            "data[0].datetime: appears more than once"
        );
        assert_eq!(
            error(&with_data("")),
            "data: is empty; send at least one reading"
        );
    }

    #[test]
    fn top_level_field_errors() {
        let reading = r#"[{"datetime": "2018-08-24T00:00:00Z", "value": 1}]"#;
        let body = |id: &str, units: &str, extra: &str| {
            format!(r#"{{"spaceship_id": {id}, "units": {units}{extra}, "data": {reading}}}"#)
        };
        let cases = [
            (body("-1", "\"kW\"", ""), "spaceship_id: -1 is negative; expected a non-negative integer"),
            (body("1.5", "\"kW\"", ""), "spaceship_id: expected a non-negative integer, got the number 1.5"),
            (body("1.0", "\"kW\"", ""), "spaceship_id: expected a non-negative integer, got the number 1.0"),
            (body("\"42\"", "\"kW\"", ""), "spaceship_id: expected a non-negative integer, got the string \"42\""),
            (body("null", "\"kW\"", ""), "spaceship_id: expected a non-negative integer, got null"),
            (
                body("18446744073709551616", "\"kW\"", ""),
                "spaceship_id: 1.8446744073709552e19 is too large; ship ids go up to 18446744073709551615",
            ),
            (
                body("1e400", "\"kW\"", ""),
                "spaceship_id: is too large; ship ids go up to 18446744073709551615",
            ),
            (body("1", "\"MW\"", ""), "units: \"MW\" is not a known unit; expected \"kW\" or \"kWh\""),
            (body("1", "1e999", ""), "units: expected \"kW\" or \"kWh\", got a number"),
            (
                body("1", "\"kW\"", r#", "interval": -1e999"#),
                "interval: expected an ISO 8601 duration such as \"PT5M\", got a number",
            ),
            (body("1", "\"\"", ""), "units: \"\" is not a known unit; expected \"kW\" or \"kWh\""),
            (body("1", "1", ""), "units: expected \"kW\" or \"kWh\", got the number 1"),
            (body("1", "[\"kW\"]", ""), "units: expected \"kW\" or \"kWh\", got an array"),
            (
                body("1", "\"kW\"", r#", "interval": 300"#),
                "interval: expected an ISO 8601 duration such as \"PT5M\", got the number 300",
            ),
            (
                body("1", "\"kW\"", r#", "interval": "P8D""#),
                "interval: \"P8D\" is longer than the 7-day maximum (\"P7D\")",
            ),
            (
                body("1", "\"kW\"", r#", "spaceship_id": 2"#),
                "spaceship_id: appears more than once",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(error(&text), want, "{text}");
        }
        let interval = |i: &str| error(&body("1", "\"kW\"", &format!(r#", "interval": "{i}""#)));
        assert!(interval("PT0S").starts_with("interval: \"PT0S\" is zero"));
        assert!(interval("-PT5M").starts_with("interval: \"-PT5M\" is negative"));
        assert!(interval("P1M").contains("years or months"));
        assert!(interval("P1Y").contains("years or months"));
        assert!(interval("PT1.5H").contains("fractional"));
        assert!(interval("5 minutes")
            .starts_with("interval: \"5 minutes\" is not an ISO 8601 duration"));
        assert_eq!(
            parse(&body("1", "\"kW\"", r#", "interval": "P7D""#)).map(|b| b.interval_s),
            Ok(Some(MAX_INTERVAL_S))
        );
    }

    #[test]
    fn missing_fields_in_order() {
        let data = r#""data": [{"datetime": "2018-08-24T00:00:00Z", "value": 1}]"#;
        assert_eq!(
            error(&format!(r#"{{"units": "kW", {data}}}"#)),
            "spaceship_id: required field is missing"
        );
        assert_eq!(
            error(&format!(r#"{{"spaceship_id": 1, {data}}}"#)),
            "units: required field is missing"
        );
        assert_eq!(
            error(r#"{"spaceship_id": 1, "units": "kW"}"#),
            "data: required field is missing"
        );
        assert_eq!(error("{}"), "spaceship_id: required field is missing");
        // Field names are case-sensitive; an unknown one is ignored.
        assert_eq!(
            error(&format!(r#"{{"Spaceship_Id": 1, "units": "kW", {data}}}"#)),
            "spaceship_id: required field is missing"
        );
        let not_array = r#"{"spaceship_id": 1, "units": "kW", "data": {"datetime": "x"}}"#;
        assert_eq!(
            error(not_array),
            "data: expected an array of readings, got an object"
        );
        let null = r#"{"spaceship_id": 1, "units": "kW", "data": null}"#;
        assert_eq!(error(null), "data: expected an array of readings, got null");
    }

    #[test]
    fn body_level_errors_have_no_field() {
        for (text, want) in [
            ("", "body is empty; expected a JSON object"),
            ("  \n", "body is empty; expected a JSON object"),
            ("[]", "body must be a JSON object, got an array"),
            ("42", "body must be a JSON object, got the number 42"),
            (
                "\"hi\"",
                "body must be a JSON object, got the string \"hi\"",
            ),
            ("null", "body must be a JSON object, got null"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.field, "");
            assert_eq!(e.message, want);
        }
        for (text, location) in [
            ("{", "line 1 column 1"),
            ("{\"spaceship_id\": 1,\n \"units\": kW}", "line 2 column 11"),
            (
                &with_data(r#"{"datetime": "2018-08-24T00:00:00Z", "value": 1},"#),
                "line 1",
            ),
            (
                &format!(
                    "{} x",
                    with_data(r#"{"datetime": "2018-08-24T00:00:00Z", "value": 1}"#)
                ),
                "trailing characters",
            ),
            ("{\"a\": \"\u{1}\"}", "control character"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.field, "", "{text}");
            assert!(
                e.message.starts_with("body is not valid JSON: "),
                "{}",
                e.message
            );
            assert!(e.message.contains(location), "{text}: {}", e.message);
        }
        // Invalid UTF-8 inside a string is not JSON either.
        let e = parse_post_body(b"{\"units\":\n \"k\xffW\"}").expect_err("bad utf-8");
        assert_eq!(
            e.message,
            "body is not valid JSON: invalid UTF-8 at line 2 column 4"
        );
        // Deep nesting is skipped or refused without recursing (no stack overflow).
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = parse(&format!("{{\"x\": {deep}}}")).expect_err("deep");
        assert_eq!(e.to_string(), "spaceship_id: required field is missing");
        let e = parse(&format!("{{\"units\": {deep}}}")).expect_err("deep");
        assert_eq!(
            e.to_string(),
            "units: expected \"kW\" or \"kWh\", got an array"
        );
        let e = parse(&format!("{{\"data\": [{{\"value\": {deep}}}]}}")).expect_err("deep");
        assert_eq!(
            e.to_string(),
            "data[0].value: expected a number, got an array"
        );
    }

    #[test]
    fn the_first_problem_wins() {
        let text = r#"{"spaceship_id": -1, "units": "MW", "data": []}"#;
        assert_eq!(
            error(text),
            "spaceship_id: -1 is negative; expected a non-negative integer"
        );
        let text =
            with_data(r#"{"datetime": "nope", "value": -1}, {"datetime": "2018-08-24T00:00:00Z"}"#);
        assert!(error(&text).starts_with("data[0].datetime: \"nope\""));
    }

    #[test]
    fn long_strings_are_not_echoed_in_full() {
        let long = "9".repeat(10_000);
        let e = error(&with_data(&format!(
            r#"{{"datetime": "{long}", "value": 1}}"#
        )));
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn never_panics_on_mangled_bodies() {
        let good = with_data(
            r#"{"datetime": "2018-08-24T00:00:00Z", "value": 1.5},
               {"datetime": "2018-08-24T00:05:00+01:00", "value": 2}"#,
        );
        let bytes = good.as_bytes();
        // Every prefix, and every single-byte substitution with a few
        // characters that matter to JSON.
        for end in 0..bytes.len() {
            let _ = parse_post_body(&bytes[..end]);
        }
        for i in 0..bytes.len() {
            for c in [b'"', b'{', b']', b'-', b'9', b'\\', 0xff, b' '] {
                let mut mangled = bytes.to_vec();
                mangled[i] = c;
                if let Err(e) = parse_post_body(&mangled) {
                    assert!(!e.message.is_empty());
                    assert!(e.message != "rejected field", "placeholder leaked");
                }
            }
        }
    }

    /// A 288-reading day of five-minute kW readings, as a ship would send it.
    fn day_of_readings() -> String {
        let mut data = String::new();
        for i in 0..288 {
            if i > 0 {
                data.push_str(", ");
            }
            let (h, m) = (i * 5 / 60, i * 5 % 60);
            let value = 10.0 + f64::from(i % 97) * 0.137;
            data.push_str(&format!(
                r#"{{"datetime": "2018-08-24T{h:02}:{m:02}:00Z", "value": {value:.3}}}"#
            ));
        }
        format!(r#"{{"spaceship_id": 42, "units": "kW", "data": [{data}]}}"#)
    }

    #[test]
    fn a_day_of_readings_parses() {
        let body = parse(&day_of_readings()).expect("valid");
        assert_eq!(body.readings.len(), 288);
        assert_eq!(body.readings[287].time_s, 1_535_068_800 + 287 * 300);
        assert_eq!(body.readings[1].value, 10.137);
    }

    /// Parse throughput; run with
    /// `cargo test --release --lib -- --ignored --nocapture parse_throughput`.
    /// Reports the best of many short rounds, which filters out time lost to
    /// other processes on a busy machine.
    #[test]
    #[ignore = "measurement, not a check"]
    fn parse_throughput() {
        let text = day_of_readings();
        let bytes = text.as_bytes();
        let (rounds, bodies) = (200, 500);
        let mut best = f64::INFINITY;
        let mut total = std::time::Duration::ZERO;
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            let mut parsed = 0;
            for _ in 0..bodies {
                let body = parse_post_body(std::hint::black_box(bytes));
                parsed += body.map_or(0, |b| b.readings.len());
            }
            let elapsed = start.elapsed();
            assert_eq!(parsed, bodies * 288);
            best = best.min(elapsed.as_secs_f64());
            total += elapsed;
        }
        let per_round = (bodies * 288) as f64;
        println!(
            "parse_post_body, {} bytes/body: best {:.2} M readings/s ({:.0} MB/s), mean {:.2} M readings/s, one core",
            bytes.len(),
            per_round / best / 1e6,
            (bodies * bytes.len()) as f64 / best / 1e6,
            per_round * rounds as f64 / total.as_secs_f64() / 1e6,
        );
    }
}
