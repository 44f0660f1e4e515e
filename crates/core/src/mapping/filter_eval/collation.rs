//! String comparison and LIKE under the collations that can be reproduced exactly.
//!
//! - `binary` strings (BINARY, VARBINARY, BLOB): bytes, no padding.
//! - `*_bin` of utf8mb4/utf8mb3/ascii (not the `0900` ones): code points (UTF-8 byte order is
//!   code point order), PAD SPACE: trailing spaces do not count.
//! - `*_general_ci` of utf8mb4/utf8mb3/ascii and latin1_swedish_ci: ASCII letters compare by
//!   their upper case, PAD SPACE. Outside ASCII these collations fold accents by weight tables
//!   that are not reproduced: a value with a non-ASCII byte cannot be compared (an evaluation
//!   error, never a guess).
//!
//! Every other collation (unicode_ci, 0900_ai_ci, language-specific ones, ...) is refused when
//! the filter is compiled.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coll {
    Binary,
    BinPad,
    AsciiCi,
}

/// The collation of a column, or why it is not supported.
pub fn of_column(collation: Option<&str>, binary_type: bool) -> Result<Coll, String> {
    if binary_type {
        return Ok(Coll::Binary);
    }
    let Some(c) = collation else {
        return Ok(Coll::Binary);
    };
    let c = c.to_ascii_lowercase();
    match c.as_str() {
        "binary" => Ok(Coll::Binary),
        "utf8mb4_bin" | "utf8mb3_bin" | "utf8_bin" | "ascii_bin" => Ok(Coll::BinPad),
        "utf8mb4_general_ci" | "utf8mb3_general_ci" | "utf8_general_ci" | "ascii_general_ci"
        | "latin1_swedish_ci" => Ok(Coll::AsciiCi),
        _ => Err(format!(
            "collation {c} is not reproduced exactly (supported: binary, utf8mb4_bin, \
             utf8mb3_bin, ascii_bin, utf8mb4_general_ci, utf8mb3_general_ci, ascii_general_ci, \
             latin1_swedish_ci)"
        )),
    }
}

/// The error of a comparison outside what the collation reproduces.
pub fn non_ascii() -> String {
    "a value with non-ASCII characters cannot be compared under a _general_ci collation \
     exactly (accent folding is not reproduced)"
        .to_owned()
}

fn fold(coll: Coll, b: u8) -> u8 {
    match coll {
        Coll::AsciiCi => b.to_ascii_uppercase(),
        _ => b,
    }
}

/// Compares `a` and `b` under `coll`.
pub fn compare(coll: Coll, a: &[u8], b: &[u8]) -> Result<Ordering, String> {
    if coll == Coll::AsciiCi && (!a.is_ascii() || !b.is_ascii()) {
        return Err(non_ascii());
    }
    let n = a.len().min(b.len());
    for i in 0..n {
        let (x, y) = (fold(coll, a[i]), fold(coll, b[i]));
        if x != y {
            return Ok(x.cmp(&y));
        }
    }
    if coll == Coll::Binary {
        return Ok(a.len().cmp(&b.len()));
    }
    // PAD SPACE: the shorter string is compared as if padded with spaces.
    let (rest, flip) = if a.len() > n {
        (&a[n..], false)
    } else {
        (&b[n..], true)
    };
    for &c in rest {
        let c = fold(coll, c);
        if c != b' ' {
            let o = c.cmp(&b' ');
            return Ok(if flip { o.reverse() } else { o });
        }
    }
    Ok(Ordering::Equal)
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pat {
    /// One character (its bytes, folded for the case-insensitive collation).
    Lit(Vec<u8>),
    /// `_`
    One,
    /// `%`
    Any,
}

/// Compiles a LIKE pattern with its escape character.
pub fn pattern(coll: Coll, text: &[u8], escape: Option<u8>) -> Result<Vec<Pat>, String> {
    if coll == Coll::AsciiCi && !text.is_ascii() {
        return Err(non_ascii());
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let len = unit_len(coll, &text[i..]);
        let unit = &text[i..i + len];
        if Some(unit[0]) == escape && len == 1 && i + 1 < text.len() {
            // An escaped character is literal; a trailing escape is itself literal (MySQL).
            let next = unit_len(coll, &text[i + 1..]);
            out.push(Pat::Lit(folded(coll, &text[i + 1..i + 1 + next])));
            i += 1 + next;
            continue;
        }
        out.push(match unit {
            b"%" => Pat::Any,
            b"_" => Pat::One,
            _ => Pat::Lit(folded(coll, unit)),
        });
        i += len;
    }
    Ok(out)
}

fn folded(coll: Coll, unit: &[u8]) -> Vec<u8> {
    unit.iter().map(|&b| fold(coll, b)).collect()
}

/// The length of the character at the start of `s`: one byte for binary strings, one UTF-8
/// sequence otherwise.
fn unit_len(coll: Coll, s: &[u8]) -> usize {
    if coll == Coll::Binary {
        return 1;
    }
    let n = match s[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    n.min(s.len())
}

/// Whether `subject` matches the compiled pattern (LIKE does not pad: trailing spaces count).
pub fn like(coll: Coll, subject: &[u8], pat: &[Pat]) -> Result<bool, String> {
    if coll == Coll::AsciiCi && !subject.is_ascii() {
        return Err(non_ascii());
    }
    // Iterative wildcard matching with one backtrack point (the last `%`).
    let (mut s, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pat.len() {
            match &pat[p] {
                Pat::Any => {
                    star = Some((p, s));
                    p += 1;
                    continue;
                }
                Pat::One if s < subject.len() => {
                    s += unit_len(coll, &subject[s..]);
                    p += 1;
                    continue;
                }
                Pat::Lit(c)
                    if s + c.len() <= subject.len()
                        && subject[s..s + c.len()]
                            .iter()
                            .zip(c)
                            .all(|(&x, &y)| fold(coll, x) == y) =>
                {
                    s += c.len();
                    p += 1;
                    continue;
                }
                _ => {}
            }
        } else if s == subject.len() {
            return Ok(true);
        }
        // Mismatch: let the last `%` swallow one more character.
        match star {
            Some((sp, ss)) if ss < subject.len() => {
                let next = ss + unit_len(coll, &subject[ss..]);
                star = Some((sp, next));
                p = sp + 1;
                s = next;
            }
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_space_and_case_rules() {
        use Ordering::*;
        assert_eq!(compare(Coll::AsciiCi, b"abc", b"ABC  ").unwrap(), Equal);
        assert_eq!(compare(Coll::BinPad, b"abc", b"abc  ").unwrap(), Equal);
        assert_eq!(compare(Coll::BinPad, b"abc", b"ABC").unwrap(), Greater);
        assert_eq!(compare(Coll::Binary, b"abc", b"abc ").unwrap(), Less);
        // A tab sorts below the pad space.
        assert_eq!(compare(Coll::BinPad, b"a\t", b"a").unwrap(), Less);
        assert_eq!(compare(Coll::BinPad, b"a", b"a\t").unwrap(), Greater);
        // general_ci folds to upper case: 'a' (as 'A') sorts below '_'.
        assert_eq!(compare(Coll::AsciiCi, b"a", b"_").unwrap(), Less);
        assert!(compare(Coll::AsciiCi, "é".as_bytes(), b"e").is_err());
        assert!(of_column(Some("utf8mb4_unicode_ci"), false).is_err());
        assert_eq!(of_column(Some("utf8mb4_bin"), false).unwrap(), Coll::BinPad);
    }

    #[test]
    fn like_wildcards_escape_and_case() {
        let m = |coll, s: &str, p: &str, e: Option<u8>| {
            like(coll, s.as_bytes(), &pattern(coll, p.as_bytes(), e).unwrap()).unwrap()
        };
        assert!(m(Coll::AsciiCi, "Hello", "h%O", Some(b'\\')));
        assert!(!m(Coll::BinPad, "Hello", "h%O", Some(b'\\')));
        assert!(m(Coll::BinPad, "a_b", "a\\_b", Some(b'\\')));
        assert!(!m(Coll::BinPad, "axb", "a\\_b", Some(b'\\')));
        assert!(m(Coll::BinPad, "axb", "a_b", None));
        assert!(m(Coll::BinPad, "a%b", "a!%b", Some(b'!')));
        assert!(!m(Coll::BinPad, "ab ", "ab", None));
        assert!(m(Coll::BinPad, "", "%", None));
        assert!(m(Coll::BinPad, "éa", "_a", None));
        assert!(!m(Coll::Binary, "éa", "_a", None));
        assert!(m(Coll::BinPad, "abcabd", "%ab_", None));
        assert!(m(Coll::BinPad, "a\\", "a\\", Some(b'\\')));
    }
}
