//! Exact comparison of decimal number text (for the `max` and `min` resolvers).

use std::cmp::Ordering;

/// A decimal number parsed exactly from text: `0.DIGITS × 10^exponent`, with no leading or
/// trailing zeros in `digits` (no digits: zero). Comparing two of them never rounds, so the
/// order is total and the `max`/`min` merges are associative even for numbers no float holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i128,
}

impl Decimal {
    /// Parses integer or float text: optional surrounding ASCII whitespace, an optional sign,
    /// digits with an optional fraction (at least one digit in all), an optional exponent
    /// (`e`/`E`, optional sign, digits). `None` for anything else (`inf`, `NaN`, hex, JSON, ...).
    pub(super) fn parse(bytes: &[u8]) -> Option<Decimal> {
        let text = std::str::from_utf8(bytes).ok()?.trim_ascii().as_bytes();
        let (negative, rest) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let integer_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (integer, rest) = rest.split_at(integer_len);
        let (fraction, rest) = match rest.strip_prefix(b".") {
            Some(after_point) => {
                let len = after_point
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                after_point.split_at(len)
            }
            None => (&rest[..0], rest),
        };
        if integer.is_empty() && fraction.is_empty() {
            return None;
        }
        let exponent: i128 = match rest.first() {
            None => 0,
            Some(b'e' | b'E') => parse_exponent(&rest[1..])?,
            Some(_) => return None,
        };
        let all_digits = integer.iter().chain(fraction).map(|b| b - b'0');
        let mut digits: Vec<u8> = all_digits.skip_while(|d| *d == 0).collect();
        let significant = i128::try_from(digits.len()).ok()?;
        let fraction_len = i128::try_from(fraction.len()).ok()?;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Some(Decimal {
            negative: negative && !digits.is_empty(),
            exponent: if digits.is_empty() {
                0
            } else {
                significant + exponent - fraction_len
            },
            digits,
        })
    }

    /// -1, 0 or 1.
    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// The exponent after `e`: an optional sign and at least one digit, within `i64`.
fn parse_exponent(text: &[u8]) -> Option<i128> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    })
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let by_sign = self.sign().cmp(&other.sign());
        if by_sign != Ordering::Equal || self.sign() == 0 {
            return by_sign;
        }
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text:?} should parse"))
    }

    #[test]
    fn parses_integers_and_floats_in_their_usual_forms() {
        for text in [
            "0", "-0", "+7", "42", "-3.5", "1.", ".5", "1e3", "1E-3", "2.5e+10", " 12\n", "007",
        ] {
            assert!(Decimal::parse(text.as_bytes()).is_some(), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_decimal_number() {
        for text in [
            "",
            " ",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "abc",
            "inf",
            "NaN",
            "0x10",
            "1,5",
            "1 2",
            "--1",
            "[1]",
            "1e99999999999999999999",
            "1.2.3",
        ] {
            assert_eq!(Decimal::parse(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(Decimal::parse(&[0xff, b'1']), None);
    }

    #[test]
    fn equal_numbers_in_different_forms_compare_equal() {
        assert_eq!(d("1").cmp(&d("1.000")), Ordering::Equal);
        assert_eq!(d("100").cmp(&d("1e2")), Ordering::Equal);
        assert_eq!(d("0.05").cmp(&d("5e-2")), Ordering::Equal);
        assert_eq!(d("-0").cmp(&d("0.0")), Ordering::Equal);
        assert_eq!(d("007").cmp(&d("7")), Ordering::Equal);
    }

    #[test]
    fn orders_exactly_where_floats_would_round() {
        assert!(d("9007199254740993") > d("9007199254740992.0"));
        assert!(d("0.30000000000000001") > d("0.3"));
        assert!(d("123456789012345678901234567890") > d("123456789012345678901234567889"));
    }

    #[test]
    fn orders_signs_magnitudes_and_negatives() {
        let ascending = [
            "-1e10", "-100", "-2.5", "-2", "-0.001", "0", "0.001", "0.01", "0.1", "0.12", "1",
            "1.5", "10", "1e10",
        ];
        for pair in ascending.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }
}
