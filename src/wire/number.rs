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
    let mut text = [0u8; NUMBER_MAX_LEN];
    let len = format_number(&mut text, value);
    out.extend_from_slice(&text[..len]);
}

/// The longest text [`format_number`] writes.
pub const NUMBER_MAX_LEN: usize = 32;

/// [`write_number`] into a stack buffer; returns the length. For callers
/// that assemble a whole record on the stack and append it at once.
pub fn format_number(text: &mut [u8; NUMBER_MAX_LEN], value: f64) -> usize {
    if !value.is_finite() {
        text[..4].copy_from_slice(b"null");
        return 4;
    }
    if value.abs() < ROUND_BELOW {
        // Below 1e6, |value| × 1e9 + 0.5 < 2^52: exact, so truncating it
        // rounds half away from zero, and the integer's digits with the
        // point put back are the 9-place rounding itself. No float printer.
        let nanos = (value.abs() * 1e9 + 0.5) as u64;
        let mut len = 0;
        if nanos != 0 && value < 0.0 {
            text[0] = b'-';
            len = 1;
        }
        len += write_integer(&mut text[len..], (nanos / 1_000_000_000) as u32);
        len += write_fraction(&mut text[len..], (nanos % 1_000_000_000) as u32);
        len
    } else {
        let mut integer = itoa::Buffer::new();
        let mut float = ryu::Buffer::new();
        let printed = if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_BELOW {
            integer.format(value as i64)
        } else {
            float.format_finite(value)
        };
        let len = printed.len().min(NUMBER_MAX_LEN);
        text[..len].copy_from_slice(&printed.as_bytes()[..len]);
        len
    }
}

/// Appends an exact fixed-point energy (`nano` × 10^-9 kWh) as a JSON
/// number: integer digits, then up to 9 fraction digits without trailing
/// zeros. No float is involved: what a bucket holds is what prints, so
/// sums of printed values equal printed sums.
pub fn write_nanokwh(out: &mut Vec<u8>, nano: i128) {
    let mut text = [0u8; NANOKWH_MAX_LEN];
    let len = format_nanokwh(&mut text, nano);
    out.extend_from_slice(&text[..len]);
}

/// The longest text [`format_nanokwh`] writes: a sign, 30 integer digits
/// (`i128::MIN / 10^9`), a point and 9 fraction digits.
pub const NANOKWH_MAX_LEN: usize = 41;

/// [`write_nanokwh`] into a stack buffer; returns the length.
pub fn format_nanokwh(text: &mut [u8; NANOKWH_MAX_LEN], nano: i128) -> usize {
    let mut len = 0;
    if nano < 0 {
        text[0] = b'-';
        len = 1;
    }
    let magnitude = nano.unsigned_abs();
    // Every real bucket fits a u64 (18 billion kWh): a u64 division by a
    // constant is a multiply, a u128 one a library call per value.
    let (integer, fraction) = match u64::try_from(magnitude) {
        Ok(small) => (
            u128::from(small / 1_000_000_000),
            (small % 1_000_000_000) as u32,
        ),
        Err(_) => (
            magnitude / 1_000_000_000,
            (magnitude % 1_000_000_000) as u32,
        ),
    };
    if let Ok(small) = u32::try_from(integer) {
        len += write_integer(&mut text[len..], small);
    } else {
        let mut digits = itoa::Buffer::new();
        let printed = digits.format(integer).as_bytes();
        text[len..len + printed.len()].copy_from_slice(printed);
        len += printed.len();
    }
    len + write_fraction(&mut text[len..], fraction)
}

/// Two-digit strings "00".."99": one table lookup per digit pair.
const PAIRS: [[u8; 2]; 100] = {
    let mut table = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        table[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    table
};

/// Writes `value` in decimal at the start of `out` (at least 10 bytes);
/// returns the length. Digits go straight to their places: no variable-
/// length copies.
fn write_integer(out: &mut [u8], value: u32) -> usize {
    let digits = match value {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        10_000..=99_999 => 5,
        100_000..=999_999 => 6,
        1_000_000..=9_999_999 => 7,
        10_000_000..=99_999_999 => 8,
        100_000_000..=999_999_999 => 9,
        _ => 10,
    };
    let mut position = digits;
    let mut rest = value;
    while rest >= 100 {
        position -= 2;
        out[position..position + 2].copy_from_slice(&PAIRS[(rest % 100) as usize]);
        rest /= 100;
    }
    if rest >= 10 {
        out[..2].copy_from_slice(&PAIRS[rest as usize]);
    } else {
        out[0] = b'0' + rest as u8;
    }
    digits
}

/// Writes `.ddddddddd` for a 9-digit fraction at the start of `out` (at
/// least 10 bytes), without trailing zeros; nothing for zero. Returns the
/// length. All ten bytes are written; the length says how many count.
fn write_fraction(out: &mut [u8], fraction: u32) -> usize {
    if fraction == 0 {
        return 0;
    }
    let digits = &mut out[..10];
    digits[0] = b'.';
    digits[1] = b'0' + (fraction / 100_000_000) as u8;
    let rest = fraction % 100_000_000;
    digits[2..4].copy_from_slice(&PAIRS[(rest / 1_000_000) as usize]);
    digits[4..6].copy_from_slice(&PAIRS[(rest / 10_000 % 100) as usize]);
    digits[6..8].copy_from_slice(&PAIRS[(rest / 100 % 100) as usize]);
    digits[8..10].copy_from_slice(&PAIRS[(rest % 100) as usize]);
    let mut len = 10;
    while digits[len - 1] == b'0' {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(value: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, value);
        String::from_utf8(out).expect("ASCII")
    }

    fn show_nano(nano: i128) -> String {
        let mut out = Vec::new();
        write_nanokwh(&mut out, nano);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn nano_kwh_prints_exactly_at_every_size() {
        assert_eq!(show_nano(0), "0");
        assert_eq!(show_nano(5_750_000_000), "5.75");
        assert_eq!(show_nano(1), "0.000000001");
        assert_eq!(show_nano(-1_500_000_000), "-1.5");
        assert_eq!(show_nano(4_294_967_296_000_000_001), "4294967296.000000001");
        assert_eq!(
            show_nano(123_456_789_012_345_678_901_234_567_891),
            "123456789012345678901.234567891"
        );
        assert_eq!(
            show_nano(i128::MIN),
            "-170141183460469231731687303715.884105728"
        );
        assert_eq!(show_nano(i128::MIN).len(), NANOKWH_MAX_LEN);
        assert_eq!(
            show_nano(i128::MAX),
            "170141183460469231731687303715.884105727"
        );
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
