//! ISO 8601 durations for a batch's `interval` field.
//!
//! Accepted: `P[nW][nD][T[nH][nM][nS]]` with whole numbers, designators in
//! that order, each at most once, at least one component (`PT5M`, `PT1H`,
//! `P1D`, `P1DT12H`, `PT1H30M`, `PT90S`). Designators may be upper- or
//! lowercase (`pt5m`): meters are inconsistent and nothing is ambiguous.
//!
//! Rejected, each with its own message: years and months (their length in
//! seconds depends on the calendar), fractions (`PT1.5H`; write `PT1H30M`),
//! negative and zero durations. The result is always > 0 seconds and never
//! overflows.

use super::quote;

/// The longest `interval` a POST may declare. A reading's span is bounded by
/// its `interval`, and nobody meters a ship once a week or less often; a
/// larger value is far more likely a typo (`P30D` for `PT30M`).
pub const MAX_INTERVAL_S: i64 = 7 * 86_400;

/// Parses an ISO 8601 duration such as `PT5M`, `PT1H` or `P1D` into seconds
/// (> 0). See the module docs for the accepted forms. The error text
/// describes the problem without naming a field.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    parse(text.as_bytes()).map_err(|problem| problem.describe(text))
}

enum Problem {
    /// Not the right shape; the reason in words.
    Shape(&'static str),
    CalendarUnit,
    Fraction,
    Negative,
    Zero,
    TooLong,
}

impl Problem {
    fn describe(self, text: &str) -> String {
        let q = quote(text);
        match self {
            Problem::Shape(why) => {
                format!("{q} is not an ISO 8601 duration such as \"PT5M\", \"PT1H\" or \"P1D\" ({why})")
            }
            Problem::CalendarUnit => format!(
                "{q} uses years or months, whose length varies; \
                 give weeks, days, hours, minutes or seconds instead (e.g. \"P30D\")"
            ),
            Problem::Fraction => format!(
                "{q} has a fractional number; use whole numbers of smaller units instead (e.g. \"PT1H30M\")"
            ),
            Problem::Negative => format!("{q} is negative; the interval must be positive"),
            Problem::Zero => format!("{q} is zero; the interval must be positive"),
            Problem::TooLong => format!("{q} is too long to be an interval"),
        }
    }
}

/// Designator → (rank for ordering, seconds per unit; 0 = calendar unit).
fn designator(c: u8, in_time: bool) -> Option<(u8, i64)> {
    match (c.to_ascii_uppercase(), in_time) {
        (b'Y', false) => Some((0, 0)),
        (b'M', false) => Some((1, 0)),
        (b'W', false) => Some((2, 7 * 86_400)),
        (b'D', false) => Some((3, 86_400)),
        (b'H', true) => Some((4, 3600)),
        (b'M', true) => Some((5, 60)),
        (b'S', true) => Some((6, 1)),
        _ => None,
    }
}

fn parse(b: &[u8]) -> Result<i64, Problem> {
    let rest = match b {
        [] => return Err(Problem::Shape("it is empty")),
        [b'-', ..] => return Err(Problem::Negative),
        [b'P' | b'p', rest @ ..] => rest,
        _ => return Err(Problem::Shape("it must start with 'P'")),
    };
    if rest.is_empty() {
        return Err(Problem::Shape("no number follows 'P'"));
    }
    let mut total: i64 = 0;
    let mut in_time = false;
    let mut time_components = 0;
    // Rank of the last designator seen; components must strictly increase.
    let mut last_rank: Option<u8> = None;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        if c == b'T' || c == b't' {
            if in_time {
                return Err(Problem::Shape("'T' appears twice"));
            }
            in_time = true;
            i += 1;
            continue;
        }
        let start = i;
        let mut number: i64 = 0;
        while let Some(&d) = rest.get(i).filter(|d| d.is_ascii_digit()) {
            number = number
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(d - b'0')))
                .ok_or(Problem::TooLong)?;
            i += 1;
        }
        if i == start {
            return Err(Problem::Shape("expected a number"));
        }
        let Some(&unit) = rest.get(i) else {
            return Err(Problem::Shape("the last number has no unit"));
        };
        if unit == b'.' || unit == b',' {
            return Err(Problem::Fraction);
        }
        i += 1;
        let Some((rank, seconds)) = designator(unit, in_time) else {
            return Err(Problem::Shape(match unit.to_ascii_uppercase() {
                b'H' | b'S' => "hours, minutes and seconds need a 'T' first, e.g. \"PT1H\"",
                b'Y' | b'W' | b'D' => "years, weeks and days go before the 'T'",
                _ => "unknown unit; use W, D, H, M or S",
            }));
        };
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(Problem::Shape("units must appear once each, largest first"));
        }
        last_rank = Some(rank);
        if seconds == 0 {
            return Err(Problem::CalendarUnit);
        }
        if in_time {
            time_components += 1;
        }
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or(Problem::TooLong)?;
    }
    if in_time && time_components == 0 {
        return Err(Problem::Shape("no hours, minutes or seconds follow 'T'"));
    }
    if total == 0 {
        return Err(Problem::Zero);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_intervals() {
        let cases = [
            ("PT5M", 300),
            ("PT15M", 900),
            ("PT1H", 3600),
            ("PT30S", 30),
            ("P1D", 86_400),
            ("P1DT12H", 129_600),
            ("PT1H30M", 5400),
            ("PT90S", 90),
            ("PT1H0M1S", 3601),
            ("P1W", 604_800),
            ("pt5m", 300),
            ("PT05M", 300),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn calendar_units_are_refused_with_a_reason() {
        for text in ["P1Y", "P1M", "P1Y2M", "P1MT5M"] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains("years or months, whose length varies"), "{e}");
        }
    }

    #[test]
    fn fractions_negative_zero() {
        let e = parse_duration("PT1.5H").unwrap_err();
        assert!(e.contains("fractional"), "{e}");
        assert!(parse_duration("PT0,5S").unwrap_err().contains("fractional"));
        assert!(parse_duration("-PT5M").unwrap_err().contains("negative"));
        assert!(parse_duration("PT0S").unwrap_err().contains("zero"));
        assert!(parse_duration("P0DT0H").unwrap_err().contains("zero"));
    }

    #[test]
    fn malformed() {
        for text in [
            "", "P", "PT", "5M", "T5M", "P5", "PT5", "P1DT", "PT5M5M", "PT5S5M", "P1H", "PT1D",
            "PTT5M", "P 5M", "PT+5M", "PT-5M", "PT5X", "1 hour", "PT5M ", "P1D1W",
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.starts_with(&quote(text)), "{e}");
        }
        assert!(parse_duration("P1H").unwrap_err().contains("need a 'T'"));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(parse_duration("PT99999999999999999999S")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("P9999999999999999W")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("P1DT9223372036854775807S")
            .unwrap_err()
            .contains("too long"));
    }
}
