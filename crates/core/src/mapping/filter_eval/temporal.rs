//! DATE, DATETIME, TIMESTAMP and TIME values as ordered integers (microseconds in a calendar
//! that only needs to preserve order), from the row's text or a filter literal.
//!
//! MySQL converts a string literal compared with a temporal column to the column's type.
//! Only the canonical spellings are accepted here (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.ffffff]`,
//! `[-]HH:MM:SS[.ffffff]`); MySQL's lenient ones (`20240101`, `2024/1/1`, ...) are refused
//! when the filter is compiled rather than interpreted differently.
//! TIMESTAMP values are compared as their UTC text: the full copy's session runs with
//! `time_zone='+00:00'`, so MySQL reads a TIMESTAMP literal as UTC there too.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Date,
    DateTime,
    Time,
}

const DAY_MICROS: i128 = 86_400_000_000;

fn num(s: &[u8]) -> Option<i128> {
    super::number::digits(s)
}

/// `HH:MM:SS[.ffffff]` (hours of any width) as microseconds, with the hour value.
fn clock(s: &[u8]) -> Option<(i128, i128)> {
    let (hms, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = hms.split(|&b| b == b':');
    let h = num(parts.next()?)?;
    let m = parts.next()?;
    let sec = parts.next()?;
    if parts.next().is_some() || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (m, sec) = (num(m)?, num(sec)?);
    if m > 59 || sec > 59 {
        return None;
    }
    let us = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 6 => num(f)? * 10i128.pow(6 - f.len() as u32),
        Some(_) => return None,
    };
    Some((((h * 60 + m) * 60 + sec) * 1_000_000 + us, h))
}

/// `YYYY-MM-DD` as a day ordinal (order only), with month and day.
fn date(s: &[u8]) -> Option<(i128, i128, i128, i128)> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&s[..4])?, num(&s[5..7])?, num(&s[8..])?);
    Some(((y * 13 + m) * 32 + d, y, m, d))
}

/// A value of the column's type as the row text prints it (zero dates included).
pub fn from_row(kind: Kind, s: &[u8]) -> Option<i128> {
    match kind {
        Kind::Date => date(s).map(|(o, ..)| o * DAY_MICROS),
        Kind::DateTime => {
            if s.len() < 19 || s[10] != b' ' {
                return None;
            }
            let (o, ..) = date(&s[..10])?;
            let (t, _) = clock(&s[11..])?;
            Some(o * DAY_MICROS + t)
        }
        Kind::Time => match s.first() {
            Some(b'-') => clock(&s[1..]).map(|(t, _)| -t),
            _ => clock(s).map(|(t, _)| t),
        },
    }
}

fn days_in(y: i128, m: i128) -> i128 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A string literal converted to `kind` (a DATE column compares with a date; a DATETIME or
/// TIMESTAMP column with a date or a date and time; a TIME column with a time).
pub fn literal(kind: Kind, text: &str) -> Result<i128, String> {
    let s = text.as_bytes();
    let bad = || {
        format!(
            "'{text}' is not a canonical {} literal ({})",
            match kind {
                Kind::Date => "DATE",
                Kind::DateTime => "DATETIME",
                Kind::Time => "TIME",
            },
            match kind {
                Kind::Date => "write 'YYYY-MM-DD'",
                Kind::DateTime => "write 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS[.ffffff]'",
                Kind::Time => "write '[-]HH:MM:SS[.ffffff]'",
            }
        )
    };
    let valid_date = |o: (i128, i128, i128, i128)| {
        let (_, y, m, d) = o;
        (1..=12).contains(&m) && d >= 1 && d <= days_in(y, m) && y >= 1
    };
    match kind {
        Kind::Date => match date(s) {
            Some(o) if valid_date(o) => Ok(o.0 * DAY_MICROS),
            _ => Err(bad()),
        },
        Kind::DateTime => {
            let (d, t) = if s.len() == 10 {
                (s, None)
            } else if s.len() >= 19 && s[10] == b' ' {
                (&s[..10], Some(&s[11..]))
            } else {
                return Err(bad());
            };
            let o = date(d).filter(|o| valid_date(*o)).ok_or_else(bad)?;
            let t = match t {
                None => 0,
                Some(t) => match clock(t) {
                    Some((t, h)) if h < 24 => t,
                    _ => return Err(bad()),
                },
            };
            Ok(o.0 * DAY_MICROS + t)
        }
        Kind::Time => {
            let (neg, body) = match s.first() {
                Some(b'-') => (true, &s[1..]),
                _ => (false, s),
            };
            match clock(body) {
                Some((t, h)) if h <= 838 => Ok(if neg { -t } else { t }),
                _ => Err(bad()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_text_and_literals_order_the_same_way() {
        let dt = |s: &str| from_row(Kind::DateTime, s.as_bytes()).unwrap();
        assert!(dt("2024-01-01 00:00:00") < dt("2024-01-01 00:00:00.000001"));
        assert!(dt("2023-12-31 23:59:59") < dt("2024-01-01 00:00:00"));
        assert_eq!(
            literal(Kind::DateTime, "2024-01-01").unwrap(),
            dt("2024-01-01 00:00:00")
        );
        assert_eq!(
            literal(Kind::DateTime, "2024-01-01 10:00:00.5").unwrap(),
            dt("2024-01-01 10:00:00.500")
        );
        assert_eq!(
            literal(Kind::Date, "2024-02-29").unwrap(),
            from_row(Kind::Date, b"2024-02-29").unwrap()
        );
        assert!(from_row(Kind::Date, b"0000-00-00").is_some());
        let t = |s: &str| from_row(Kind::Time, s.as_bytes()).unwrap();
        assert!(t("-01:00:00") < t("00:00:00"));
        assert!(t("100:00:00") > t("23:59:59.999999"));
        assert_eq!(literal(Kind::Time, "-01:00:00").unwrap(), t("-01:00:00"));
        for bad in [
            "2023-02-29",
            "20240101",
            "2024-1-1",
            "2024-01-01T10:00:00",
            "x",
        ] {
            assert!(literal(Kind::Date, bad).is_err(), "{bad}");
        }
        assert!(literal(Kind::DateTime, "2024-01-01 24:00:00").is_err());
        assert!(literal(Kind::Time, "12:60:00").is_err());
    }
}
