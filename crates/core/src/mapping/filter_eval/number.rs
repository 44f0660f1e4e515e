//! Numbers as MySQL computes them in a WHERE: integers (signed and unsigned 64-bit, held in an
//! `i128` so mixed signedness compares exactly), DECIMAL exactly (a mantissa and a scale, up to
//! 38 digits), DOUBLE, and MySQL's string-to-number conversion (the longest numeric prefix).

use std::cmp::Ordering;

/// An exact decimal: `m / 10^s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    pub m: i128,
    pub s: u32,
}

/// Most digits an `i128` mantissa holds exactly (DECIMAL columns wider than this are refused).
pub const MAX_DEC_DIGITS: u32 = 38;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Dec {
    pub fn int(i: i128) -> Dec {
        Dec { m: i, s: 0 }
    }

    /// Parses `[-+]digits[.digits]` (the text MySQL prints for a DECIMAL, or a literal).
    pub fn parse(text: &[u8]) -> Option<Dec> {
        let (neg, body) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let mut m: i128 = 0;
        let mut s = 0u32;
        let mut dot = false;
        let mut digits = 0;
        for &b in body {
            match b {
                b'0'..=b'9' => {
                    m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
                    digits += 1;
                    if dot {
                        s += 1;
                    }
                }
                b'.' if !dot => dot = true,
                _ => return None,
            }
        }
        if digits == 0 {
            return None;
        }
        Some(Dec {
            m: if neg { -m } else { m },
            s,
        })
    }

    /// `self` with scale `s` (>= its own); `None` on overflow.
    fn rescale(self, s: u32) -> Option<i128> {
        self.m.checked_mul(pow10(s - self.s)?)
    }

    pub fn cmp(self, other: Dec) -> Option<Ordering> {
        let s = self.s.max(other.s);
        Some(self.rescale(s)?.cmp(&other.rescale(s)?))
    }

    pub fn add(self, other: Dec) -> Option<Dec> {
        let s = self.s.max(other.s);
        Some(Dec {
            m: self.rescale(s)?.checked_add(other.rescale(s)?)?,
            s,
        })
    }

    pub fn sub(self, other: Dec) -> Option<Dec> {
        self.add(Dec {
            m: other.m.checked_neg()?,
            s: other.s,
        })
    }

    pub fn mul(self, other: Dec) -> Option<Dec> {
        let s = self.s + other.s;
        // MySQL keeps at most 30 fraction digits; past that it would round, which is not
        // reproduced: refuse rather than differ.
        if s > 30 {
            return None;
        }
        Some(Dec {
            m: self.m.checked_mul(other.m)?,
            s,
        })
    }

    /// `self % other` (sign of the dividend); `None` inside for a zero divisor (SQL NULL).
    pub fn rem(self, other: Dec) -> Option<Option<Dec>> {
        let s = self.s.max(other.s);
        let (a, b) = (self.rescale(s)?, other.rescale(s)?);
        if b == 0 {
            return Some(None);
        }
        Some(Some(Dec { m: a % b, s }))
    }

    pub fn is_zero(self) -> bool {
        self.m == 0
    }

    /// The nearest double, as MySQL converts (through the decimal's text, correctly rounded).
    pub fn to_f64(self) -> f64 {
        let mut digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        if digits.len() <= s {
            digits = "0".repeat(s + 1 - digits.len()) + &digits;
        }
        let point = digits.len() - s;
        let text = format!(
            "{}{}.{}",
            if self.m < 0 { "-" } else { "" },
            &digits[..point],
            &digits[point..]
        );
        text.parse().unwrap_or(f64::NAN)
    }
}

/// MySQL's string-to-double conversion: leading whitespace skipped, then the longest prefix
/// that reads as a number (`'12abc'` is 12, `'abc'` is 0).
pub fn str_to_f64(bytes: &[u8]) -> f64 {
    let mut i = 0;
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let start = i;
    if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        digits += j - frac_start;
        if digits > 0 {
            i = j;
        }
    }
    if digits == 0 {
        return 0.0;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < bytes.len() && matches!(bytes[j], b'+' | b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    std::str::from_utf8(&bytes[start..i])
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A whole-string integer (`[-+]digits`), for comparing an integer column with a string
/// constant exactly as MySQL does when the constant converts losslessly.
pub fn exact_int(bytes: &[u8]) -> Option<i128> {
    let (neg, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    Some(if neg { -digits(body)? } else { digits(body)? })
}

/// Up to 20 ASCII digits as a number (per row: no UTF-8 check or generic parse).
pub fn digits(s: &[u8]) -> Option<i128> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0i128, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i128::from(b - b'0'))
    })
}

/// Whether `v` is in the range of MySQL's BIGINT (or BIGINT UNSIGNED).
pub fn in_bigint(v: i128, unsigned: bool) -> bool {
    if unsigned {
        (0..=i128::from(u64::MAX)).contains(&v)
    } else {
        (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_and_compute_exactly() {
        let d = |t: &str| Dec::parse(t.as_bytes()).unwrap();
        assert_eq!(d("1.50").cmp(d("1.5")), Some(Ordering::Equal));
        assert_eq!(d("-0.001").cmp(d("0")), Some(Ordering::Less));
        assert_eq!(
            d("0.1").add(d("0.2")).unwrap().cmp(d("0.3")),
            Some(Ordering::Equal)
        );
        assert_eq!(d("1.5").mul(d("-2.25")).unwrap(), Dec { m: -3375, s: 3 });
        assert_eq!(
            d("-7.5").rem(d("2")).unwrap().unwrap(),
            Dec { m: -15, s: 1 }
        );
        assert_eq!(d("1").rem(d("0.0")).unwrap(), None);
        assert_eq!(d("-12.340").to_f64(), -12.34);
        assert_eq!(d("0.005").to_f64(), 0.005);
        assert!(Dec::parse(b"1e5").is_none());
        assert!(Dec::parse(b".").is_none());
    }

    #[test]
    fn strings_convert_like_mysql() {
        assert_eq!(str_to_f64(b"  12abc"), 12.0);
        assert_eq!(str_to_f64(b"abc"), 0.0);
        assert_eq!(str_to_f64(b"-1.5e2x"), -150.0);
        assert_eq!(str_to_f64(b"1e"), 1.0);
        assert_eq!(str_to_f64(b".5"), 0.5);
        assert_eq!(str_to_f64(b"5."), 5.0);
        assert_eq!(str_to_f64(b"-"), 0.0);
        assert_eq!(exact_int(b"-42"), Some(-42));
        assert_eq!(exact_int(b"4.0"), None);
        assert!(in_bigint(i128::from(u64::MAX), true));
        assert!(!in_bigint(-1, true));
    }
}
