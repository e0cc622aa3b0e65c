//! Timestamps on the wire: RFC 3339 in, RFC 3339 (`...Z`, whole seconds) out.
//!
//! Accepted (see [`parse_timestamp`]):
//! - `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`, `T`/`Z` in either case, a space
//!   instead of `T` (RFC 3339 §5.6 allows it);
//! - the dashed form `YYYY-MM-DDTHH-MM-SS[.frac](Z|±hh:mm|±hh-mm)` used in
//!   query strings, where `:` is awkward.
//!
//! Invariants: the date and time must exist (no 2019-02-30, no 24:00, no leap
//! second 60); years are 0001..=9999 as written, before the offset is applied;
//! fractions truncate toward the earlier second. Because a fraction only ever
//! *adds* to the written seconds, dropping it is a floor of the real instant,
//! also before 1970.
//!
//! Every reading goes through here, so the exact shape `YYYY-MM-DDTHH:MM:SSZ`
//! takes a branch-light path with no allocation; anything else (or anything
//! wrong) takes the general parser, which also explains what is wrong.

use super::quote;

const SECONDS_PER_DAY: i64 = 86_400;

/// Parses an RFC 3339 timestamp (`2018-08-24T00:00:00Z`, offsets, fractional
/// seconds) or the dashed form (`2018-08-24T00-00-00Z`) into whole seconds
/// since the epoch (UTC, fraction truncated). The error text describes the
/// problem without naming a field, e.g.
/// `"2019-02-30T00:00:00Z" is not an RFC 3339 timestamp (day 30 out of range for 2019-02)`.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    parse_timestamp_cached(text, &mut DateCache::default())
}

/// Appends `"2018-08-24T00:00:00Z"` (quoted) for `Some(secs)`, `null` for
/// `None`: a JSON value for a time that may be absent.
pub fn write_quoted_timestamp(out: &mut Vec<u8>, secs: Option<i64>) {
    match secs {
        Some(secs) => {
            out.push(b'"');
            write_timestamp(out, secs);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `2018-08-24T00:00:00Z` for `secs` (UTC).
///
/// Years outside 0000..=9999 cannot come from [`parse_timestamp`]; should one
/// ever be asked for, it is written with a sign (ISO 8601 expanded years)
/// rather than wrapped or panicking.
pub fn write_timestamp(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let of_day = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // All of these are < 100 by construction, so `as u8` and `two` are exact.
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let mut buf = *b"0000-00-00T00:00:00Z";
    let [y0, y1, y2, y3, _, m0, m1, _, d0, d1, _, h0, h1, _, i0, i1, _, s0, s1, _] = &mut buf;
    [*m0, *m1] = two(month as u8);
    [*d0, *d1] = two(day as u8);
    [*h0, *h1] = two(hour as u8);
    [*i0, *i1] = two(minute as u8);
    [*s0, *s1] = two(second as u8);
    if (0..=9999).contains(&year) {
        [*y0, *y1] = two((year / 100) as u8);
        [*y2, *y3] = two((year % 100) as u8);
        out.extend_from_slice(&buf);
    } else {
        out.push(if year < 0 { b'-' } else { b'+' });
        out.extend_from_slice(itoa::Buffer::new().format(year.unsigned_abs()).as_bytes());
        out.extend_from_slice(&buf[4..]);
    }
}

const QUARTER_HOUR_S: i64 = 900;

/// `HH:MM:00Z` of each quarter hour of a day: bucket starts, which is what
/// responses print, come from this table.
const QUARTER_HOURS: [[u8; 9]; 96] = {
    let mut table = [*b"00:00:00Z"; 96];
    let mut quarter = 0;
    while quarter < 96 {
        let minutes = quarter * 15;
        let (hour, minute) = (minutes / 60, minutes % 60);
        table[quarter][0] = b'0' + (hour / 10) as u8;
        table[quarter][1] = b'0' + (hour % 10) as u8;
        table[quarter][3] = b'0' + (minute / 10) as u8;
        table[quarter][4] = b'0' + (minute % 10) as u8;
        quarter += 1;
    }
    table
};

/// [`write_timestamp`] for runs of timestamps that mostly share a date, as
/// the buckets of a response do: the date part is formatted once per day.
#[derive(Clone, Debug)]
pub struct TimestampWriter {
    day: i64,
    /// `YYYY-MM-DDT` of `day`, valid when `day != i64::MIN`.
    date: [u8; 11],
}

impl Default for TimestampWriter {
    fn default() -> Self {
        TimestampWriter {
            day: i64::MIN,
            date: [0; 11],
        }
    }
}

impl TimestampWriter {
    pub fn write(&mut self, out: &mut Vec<u8>, secs: i64) {
        match self.stamp(secs) {
            Some(stamp) => out.extend_from_slice(&stamp),
            None => write_timestamp(out, secs),
        }
    }

    /// The 20-byte stamp of `secs`, or `None` outside years 0000–9999
    /// (which print longer; see [`write_timestamp`]).
    pub fn stamp(&mut self, secs: i64) -> Option<[u8; 20]> {
        let day = secs.div_euclid(SECONDS_PER_DAY);
        if day != self.day {
            let (year, _, _) = civil_from_days(day);
            if !(0..=9999).contains(&year) {
                return None;
            }
            let mut full = Vec::with_capacity(20);
            write_timestamp(&mut full, day * SECONDS_PER_DAY);
            self.date.copy_from_slice(&full[..11]);
            self.day = day;
        }
        let of_day = secs.rem_euclid(SECONDS_PER_DAY);
        let mut stamp = [0u8; 20];
        stamp[..11].copy_from_slice(&self.date);
        if of_day % QUARTER_HOUR_S == 0 {
            stamp[11..].copy_from_slice(&QUARTER_HOURS[(of_day / QUARTER_HOUR_S) as usize]);
        } else {
            let mut time = *b"00:00:00Z";
            [time[0], time[1]] = two((of_day / 3600) as u8);
            [time[3], time[4]] = two((of_day / 60 % 60) as u8);
            [time[6], time[7]] = two((of_day % 60) as u8);
            stamp[11..].copy_from_slice(&time);
        }
        Some(stamp)
    }
}

/// [`write_timestamp`] into a fresh `String`.
pub fn format_timestamp(secs: i64) -> String {
    let mut out = Vec::with_capacity(20);
    write_timestamp(&mut out, secs);
    // Only ASCII is ever written; the fallback is unreachable but not a panic.
    String::from_utf8(out).unwrap_or_default()
}

/// Two ASCII digits of `n` (which must be < 100).
fn two(n: u8) -> [u8; 2] {
    [b'0' + n / 10 % 10, b'0' + n % 10]
}

/// Remembers the date of the last fast-path timestamp and its day number: a
/// batch's readings nearly all share a handful of dates, so most timestamps
/// then only need their time of day checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct DateCache {
    last: Option<([u8; 10], i64)>,
}

/// [`parse_timestamp`] for many timestamps in a row (one batch): same
/// results, faster when consecutive timestamps share a date.
pub fn parse_timestamp_cached(text: &str, cache: &mut DateCache) -> Result<i64, String> {
    if let Some(secs) = parse_fast(text.as_bytes(), cache) {
        return Ok(secs);
    }
    parse_general(text.as_bytes())
        .map_err(|reason| format!("{} is not an RFC 3339 timestamp ({reason})", quote(text)))
}

/// The common shape `YYYY-MM-DDTHH:MM:SSZ` exactly, valid; `None` for anything
/// else, which the general parser then handles (and explains).
#[inline]
fn parse_fast(b: &[u8], cache: &mut DateCache) -> Option<i64> {
    let (date, time) = b.split_first_chunk::<10>()?;
    let time: &[u8; 10] = time.try_into().ok()?;
    let days = match cache.last {
        Some((last, days)) if last == *date => days,
        _ => {
            let days = fast_date(date)?;
            cache.last = Some((*date, days));
            days
        }
    };
    Some(days * SECONDS_PER_DAY + i64::from(fast_time(time)?))
}

/// Two ASCII digits as a number, or `None`.
#[inline]
fn d2(hi: u8, lo: u8) -> Option<u32> {
    if hi.is_ascii_digit() && lo.is_ascii_digit() {
        Some(u32::from(hi - b'0') * 10 + u32::from(lo - b'0'))
    } else {
        None
    }
}

/// `YYYY-MM-DD`, a real date in years 0001..=9999 → days since the epoch.
#[inline]
fn fast_date(date: &[u8; 10]) -> Option<i64> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', a0, a1] = date else {
        return None;
    };
    let year = d2(y0, y1)? * 100 + d2(y2, y3)?;
    let (month, day) = (d2(m0, m1)?, d2(a0, a1)?);
    let valid =
        year != 0 && (1..=12).contains(&month) && day != 0 && day <= days_in_month(year, month);
    valid.then(|| days_from_civil(i64::from(year), month, day))
}

/// `THH:MM:SSZ`, a real time of day → seconds since midnight.
#[inline]
fn fast_time(time: &[u8; 10]) -> Option<u32> {
    let &[b'T', h0, h1, b':', i0, i1, b':', s0, s1, b'Z'] = time else {
        return None;
    };
    let (hour, minute, second) = (d2(h0, h1)?, d2(i0, i1)?, d2(s0, s1)?);
    (hour < 24 && minute < 60 && second < 60).then_some(hour * 3600 + minute * 60 + second)
}

/// A cursor over the timestamp's bytes; errors are the reason in words.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    /// Exactly `count` ASCII digits.
    fn digits(&mut self, count: usize, what: &str) -> Result<u32, String> {
        let mut value = 0u32;
        for _ in 0..count {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    value = value * 10 + u32::from(c - b'0');
                    self.bump();
                }
                _ => return Err(format!("expected a {count}-digit {what}")),
            }
        }
        Ok(value)
    }

    /// One of `allowed`, returning which.
    fn one_of(&mut self, allowed: &[u8], expected: &str) -> Result<u8, String> {
        match self.peek() {
            Some(c) if allowed.contains(&c) => {
                self.bump();
                Ok(c)
            }
            _ => Err(format!("expected {expected}")),
        }
    }
}

fn parse_general(b: &[u8]) -> Result<i64, String> {
    if b.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut cur = Cursor { rest: b };
    let year = cur.digits(4, "year")?;
    cur.one_of(b"-", "'-' after the year")?;
    let month = cur.digits(2, "month")?;
    cur.one_of(b"-", "'-' after the month")?;
    let day = cur.digits(2, "day")?;
    cur.one_of(b"Tt ", "'T' between the date and the time")?;
    let hour = cur.digits(2, "hour")?;
    // The first separator decides the form: RFC 3339 (`:`) or dashed (`-`).
    let sep = cur.one_of(b":-", "':' after the hour")?;
    let minute = cur.digits(2, "minute")?;
    cur.one_of(
        &[sep],
        if sep == b':' {
            "':' after the minute"
        } else {
            "'-' after the minute"
        },
    )?;
    let second = cur.digits(2, "second")?;
    if cur.peek() == Some(b'.') {
        cur.bump();
        let mut any = false;
        while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
            cur.bump();
            any = true;
        }
        if !any {
            return Err("expected digits after the decimal point".to_owned());
        }
    }
    let offset_s = match cur.one_of(b"Zz+-", "a UTC offset ('Z' or ±hh:mm)")? {
        b'Z' | b'z' => 0,
        sign => {
            let hours = cur.digits(2, "offset hour")?;
            // The dashed form may spell the offset dashed too (`+02-00`).
            let allowed: &[u8] = if sep == b'-' { b":-" } else { b":" };
            cur.one_of(allowed, "':' in the UTC offset (±hh:mm)")?;
            let minutes = cur.digits(2, "offset minute")?;
            if hours > 23 {
                return Err(format!("offset hour {hours} out of range"));
            }
            if minutes > 59 {
                return Err(format!("offset minute {minutes} out of range"));
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    if !cur.rest.is_empty() {
        return Err("unexpected text after the UTC offset".to_owned());
    }
    if year == 0 {
        return Err("year 0000 out of range (0001..=9999)".to_owned());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day {day} out of range for {year:04}-{month:02}"));
    }
    if hour > 23 {
        return Err(format!("hour {hour} out of range"));
    }
    if minute > 59 {
        return Err(format!("minute {minute} out of range"));
    }
    if second == 60 {
        return Err("leap second 60 is not supported".to_owned());
    }
    if second > 59 {
        return Err(format!("second {second} out of range"));
    }
    // Local time minus the offset is UTC; the fraction was dropped (a floor).
    let utc = days_from_civil(i64::from(year), month, day) * SECONDS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_s;
    // The offset can carry a date across 0001 or 9999, which would print
    // as a year no RFC 3339 timestamp has.
    let first = days_from_civil(1, 1, 1) * SECONDS_PER_DAY;
    let end = days_from_civil(10_000, 1, 1) * SECONDS_PER_DAY;
    if !(first..end).contains(&utc) {
        return Err("out of range once its UTC offset is applied (0001..=9999 in UTC)".to_owned());
    }
    Ok(utc)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`); `month` in 1..=12, `day` in 1..=31, `year` >= 0.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] for any `i64` day count reachable from
/// `i64` seconds (no overflow: |days| < 1.1e14).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {

    #[test]
    fn offsets_cannot_carry_a_date_out_of_years_0001_to_9999() {
        assert!(parse_timestamp("9999-12-31T23:59:59-23:59").is_err());
        assert!(parse_timestamp("0001-01-01T00:00:00+00:01").is_err());
        assert!(parse_timestamp("9999-12-31T23:59:59Z").is_ok());
        assert!(parse_timestamp("0001-01-01T00:00:00Z").is_ok());
        assert!(parse_timestamp("9999-12-31T23:00:00-00:59").is_ok());
    }

    #[test]
    fn timestamp_writer_matches_write_timestamp() {
        let mut writer = TimestampWriter::default();
        for secs in [
            0i64,
            899,
            86_399,
            86_400,
            1_535_068_800,
            1_535_068_800 + 900,
            -1,
            -86_401,
            253_402_300_799,
            253_402_300_800,
            -62_167_219_201,
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            writer.write(&mut a, secs);
            write_timestamp(&mut b, secs);
            assert_eq!(
                String::from_utf8(a).unwrap(),
                String::from_utf8(b).unwrap(),
                "{secs}"
            );
        }
    }

    use super::*;

    fn ok(text: &str) -> i64 {
        parse_timestamp(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn reason(text: &str) -> String {
        parse_timestamp(text).expect_err(text)
    }

    #[test]
    fn common_shape() {
        assert_eq!(ok("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ok("2018-08-24T00:00:00Z"), 1_535_068_800);
        assert_eq!(ok("2018-08-24T00:05:00Z"), 1_535_069_100);
        assert_eq!(ok("1969-12-31T23:59:59Z"), -1);
        assert_eq!(ok("2000-02-29T12:00:00Z"), 951_825_600);
        assert_eq!(ok("0001-01-01T00:00:00Z"), -62_135_596_800);
        assert_eq!(ok("9999-12-31T23:59:59Z"), 253_402_300_799);
    }

    #[test]
    fn offsets_convert_to_utc() {
        assert_eq!(ok("2018-08-24T02:00:00+02:00"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-23T19:30:00-04:30"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-24T00:00:00-00:00"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-24t00:00:00z"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-24 00:00:00Z"), ok("2018-08-24T00:00:00Z"));
        // An offset may not carry a time out of years 0001..=9999 in UTC.
        assert_eq!(ok("0001-01-01T01:00:00+01:00"), -62_135_596_800);
        assert!(reason("0001-01-01T00:00:00+01:00").contains("out of range once"));
    }

    #[test]
    fn fractions_truncate_toward_the_earlier_second() {
        assert_eq!(ok("2018-08-24T00:00:00.999Z"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(
            ok("2018-08-24T00:00:00.5+01:00"),
            ok("2018-08-23T23:00:00Z")
        );
        // Before the epoch: -0.5 s floors to -1, not 0.
        assert_eq!(ok("1969-12-31T23:59:59.5Z"), -1);
        assert_eq!(ok("1970-01-01T00:00:00.000000001Z"), 0);
        assert_eq!(ok("1970-01-01T00:00:00.123456789123456789Z"), 0);
    }

    #[test]
    fn dashed_form() {
        assert_eq!(ok("2018-08-24T00-00-00Z"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-24T01-02-03.7Z"), ok("2018-08-24T01:02:03Z"));
        assert_eq!(ok("2018-08-24T02-00-00+02-00"), ok("2018-08-24T00:00:00Z"));
        assert_eq!(ok("2018-08-24T02-00-00+02:00"), ok("2018-08-24T00:00:00Z"));
        // Mixed separators are neither form.
        assert!(reason("2018-08-24T00:00-00Z").contains("':' after the minute"));
        assert!(reason("2018-08-24T00-00:00Z").contains("'-' after the minute"));
    }

    #[test]
    fn impossible_dates_and_times_are_explained() {
        let cases = [
            ("2019-02-30T00:00:00Z", "day 30 out of range for 2019-02"),
            ("2019-02-29T00:00:00Z", "day 29 out of range for 2019-02"),
            ("2019-04-31T00:00:00Z", "day 31 out of range for 2019-04"),
            ("2019-01-00T00:00:00Z", "day 0 out of range"),
            ("2019-13-01T00:00:00Z", "month 13 out of range"),
            ("2019-00-01T00:00:00Z", "month 0 out of range"),
            ("2019-01-01T24:00:00Z", "hour 24 out of range"),
            ("2019-01-01T00:60:00Z", "minute 60 out of range"),
            ("2019-01-01T00:00:60Z", "leap second"),
            ("2019-01-01T00:00:61Z", "second 61 out of range"),
            ("0000-01-01T00:00:00Z", "year 0000"),
            ("2019-01-01T00:00:00+24:00", "offset hour 24"),
            ("2019-01-01T00:00:00+01:60", "offset minute 60"),
        ];
        for (text, why) in cases {
            let e = reason(text);
            assert!(
                e.starts_with(&format!("{text:?} is not an RFC 3339 timestamp")),
                "{e}"
            );
            assert!(e.contains(why), "{text}: {e}");
        }
        // A leap day that exists.
        assert!(parse_timestamp("2020-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("1900-02-29T00:00:00Z").is_err());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn malformed_shapes() {
        assert_eq!(
            reason("2019-01-05T04:42:00ZZ"),
            "\"2019-01-05T04:42:00ZZ\" is not an RFC 3339 timestamp (unexpected text after the UTC offset)"
        );
        for text in [
            "",
            "2019",
            "2019-01-05",
            "2019-01-05T04:42",
            "2019-01-05T04:42:00",
            "2019-01-05T04:42:00.Z",
            "2019-01-05T04:42:00+0100",
            "2019-01-05T04:42:00+01",
            "19-01-05T04:42:00Z",
            "2019-1-05T04:42:00Z",
            "2019/01/05T04:42:00Z",
            "2019-01-05X04:42:00Z",
            "+2019-01-05T04:42:00Z",
            "２０１９-01-05T04:42:00Z",
            "2019-01-05T04:42:00Zé",
            "2019-01-05T04:42:00,5Z",
            "1535068800",
        ] {
            assert!(parse_timestamp(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn fast_and_general_paths_agree() {
        // Every day of a leap and a common year, and a spread of times.
        for days in (-719_162..=2_932_896).step_by(997) {
            let secs = days * SECONDS_PER_DAY + (days.rem_euclid(86_400) * 7919) % 86_400;
            let text = format_timestamp(secs);
            let mut fresh = DateCache::default();
            assert_eq!(
                parse_fast(text.as_bytes(), &mut fresh),
                Some(secs),
                "{text}"
            );
            assert_eq!(
                parse_fast(text.as_bytes(), &mut fresh),
                Some(secs),
                "{text}"
            );
            assert_eq!(parse_general(text.as_bytes()), Ok(secs), "{text}");
        }
    }

    #[test]
    fn the_date_cache_never_changes_a_result() {
        let mut cache = DateCache::default();
        let texts = [
            "2018-08-24T00:00:00Z",
            "2018-08-24T23:59:59Z",
            "2018-08-24T24:00:00Z",
            "2018-08-24T00:00:00+01:00",
            "2018-08-25T00:00:00Z",
            "2018-08-24T00:00:00Z",
            "2019-02-29T00:00:00Z",
            "2019-02-29T00:00:01Z",
            "2019-02-28T00:00:00Z",
            "2018-08-24T00-00-00Z",
            "2018-08-24X00:00:00Z",
            "\0\0\0\0\0\0\0\0\0\0T00:00:00Z",
        ];
        for _ in 0..2 {
            for text in texts {
                assert_eq!(
                    parse_timestamp_cached(text, &mut cache),
                    parse_timestamp(text),
                    "{text}"
                );
            }
        }
        // A fresh cache cannot match anything, even ten NUL bytes.
        assert!(parse_timestamp("\0\0\0\0\0\0\0\0\0\0T00:00:00Z").is_err());
    }

    #[test]
    fn agrees_with_chrono() {
        use chrono::{DateTime, Utc};
        let samples = [
            "2018-08-24T00:00:00Z",
            "2016-12-31T23:59:59+14:00",
            "1600-02-29T12:34:56-11:59",
            "1969-12-31T23:59:59.999Z",
            "0001-01-01T00:01:00+00:01",
            "9999-12-31T00:00:59-23:59",
            "2400-02-29T00:00:00Z",
        ];
        for text in samples {
            let expected = DateTime::parse_from_rfc3339(text)
                .expect(text)
                .with_timezone(&Utc)
                .timestamp();
            assert_eq!(ok(text), expected, "{text}");
        }
    }

    #[test]
    fn write_round_trips() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_535_068_800, "2018-08-24T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-62_135_596_800, "0001-01-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (951_825_600, "2000-02-29T12:00:00Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(format_timestamp(secs), text);
            assert_eq!(ok(text), secs);
        }
        let mut out = b"x".to_vec();
        write_timestamp(&mut out, 1_535_069_100);
        assert_eq!(out, b"x2018-08-24T00:05:00Z");
    }

    #[test]
    fn write_agrees_with_chrono_and_survives_extremes() {
        for secs in (-62_135_596_800i64..253_402_300_799).step_by(86_399 * 37 + 13) {
            let expected = chrono::DateTime::from_timestamp(secs, 0)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(format_timestamp(secs), expected);
        }
        // Outside what the parser produces: no panic, still a readable shape.
        assert_eq!(format_timestamp(253_402_300_800), "+10000-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-62_135_596_801), "0000-12-31T23:59:59Z");
        assert!(format_timestamp(i64::MIN).starts_with('-'));
        assert!(format_timestamp(i64::MAX).starts_with('+'));
    }
}
