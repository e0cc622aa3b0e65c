//! Printing numbers in responses.
//!
//! Invariants: the output is always a valid JSON number (or `null` for a
//! non-finite value, which must never reach a client as `NaN`/`inf`); a whole
//! number prints without a fraction (`3`, not `3.0`), and `-0` prints `0`.
//!
//! Energies are sums of products of decimal inputs, so they carry binary
//! noise (`0.30000000000000004`). Rounding to 9 decimal places — far below any
//! meter's resolution — removes it, and printing that decimal without
//! trailing zeros gives what a person expects. Above 1e6 the rounding is
//! skipped: `x * 1e9` would leave the range where f64 holds every integer
//! exactly, so those values print in the shortest round-trip form (ryu).

/// Largest magnitude below which [`write_number`] rounds to 9 decimal places.
const ROUND_BELOW: f64 = 1e6;
/// Whole numbers below 2^53 are exact in f64 and print as integers.
const EXACT_INTEGER_BELOW: f64 = 9_007_199_254_740_992.0;

/// Appends a JSON number: whole numbers without a fraction (`3`, not `3.0`),
/// others rounded to 9 decimal places (when |x| < 1e6, else shortest);
/// `-0` as `0`; non-finite values as `null`.
pub fn write_number(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if value.abs() < ROUND_BELOW {
        // Below 1e6, |value| × 1e9 + 0.5 < 2^52: exact, so truncating it
        // rounds half away from zero, and the integer's digits with the
        // point put back are the 9-place rounding itself. No float printer.
        let nanos = (value.abs() * 1e9 + 0.5) as u64;
        if nanos != 0 && value < 0.0 {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(nanos / 1_000_000_000).as_bytes());
        write_fraction(out, (nanos % 1_000_000_000) as u32);
    } else if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_BELOW {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// Appends `.ddddddddd` for a 9-digit fraction, without trailing zeros;
/// nothing for zero.
fn write_fraction(out: &mut Vec<u8>, fraction: u32) {
    if fraction == 0 {
        return;
    }
    let mut digits = [b'0'; 10];
    digits[0] = b'.';
    let mut rest = fraction;
    for position in (1..10).rev() {
        digits[position] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut len = 10;
    while digits[len - 1] == b'0' {
        len -= 1;
    }
    out.extend_from_slice(&digits[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(value: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, value);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn whole_numbers_have_no_fraction() {
        assert_eq!(show(3.0), "3");
        assert_eq!(show(0.0), "0");
        assert_eq!(show(-0.0), "0");
        assert_eq!(show(-7.0), "-7");
        assert_eq!(show(5002.0), "5002");
        assert_eq!(show(1e15), "1000000000000000");
        assert_eq!(show(2.000_000_000_1), "2");
    }

    #[test]
    fn fractions_round_to_nine_places_and_print_shortest() {
        assert_eq!(show(5.75), "5.75");
        assert_eq!(show(69.0 / 12.0), "5.75");
        assert_eq!(show(63.0 / 12.0), "5.25");
        assert_eq!(show(8.0 * 300.0 / 3600.0), "0.666666667");
        assert_eq!(show(0.1 + 0.2), "0.3");
        assert_eq!(show(-0.1 - 0.2), "-0.3");
        assert_eq!(show(1e-7), "0.0000001");
        assert_eq!(show(4e-10), "0");
        assert_eq!(show(-4e-10), "0");
        assert_eq!(show(999_999.123_456_789_4), "999999.123456789");
    }

    #[test]
    fn large_and_non_finite_values_stay_valid_json() {
        for v in [
            1e20,
            -1e20,
            1.5e300,
            f64::MAX,
            f64::MIN,
            1_234_567.891_234_5,
            9.1e15 + 0.0,
        ] {
            let text = show(v);
            let back: f64 = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, v, "{text}");
        }
        assert_eq!(show(f64::NAN), "null");
        assert_eq!(show(f64::INFINITY), "null");
        assert_eq!(show(f64::NEG_INFINITY), "null");
    }

    #[test]
    fn output_always_parses_as_json() {
        let mut x = 1.234_567_890_123e-12;
        while x < 1e300 {
            for v in [x, -x, x * 3.0 / 7.0] {
                let text = show(v);
                assert!(serde_json::from_str::<f64>(&text).is_ok(), "{text}");
            }
            x *= 9.7;
        }
    }
}
