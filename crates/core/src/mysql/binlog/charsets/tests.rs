use super::*;

fn text(charset: &str, raw: &[u8]) -> Result<String, String> {
    to_utf8(charset, raw).map(|b| String::from_utf8(b).expect("the decoder gives UTF-8"))
}

#[test]
fn multi_byte_text_decodes_character_by_character() {
    // "中文 ok" and the like, each in its charset.
    assert_eq!(
        text("gbk", b"\xD6\xD0\xCE\xC4 ok").as_deref(),
        Ok("中文 ok")
    );
    assert_eq!(text("gb2312", b"\xD6\xD0\xCE\xC4").as_deref(), Ok("中文"));
    assert_eq!(text("big5", b"\xA4\xA4\xA4\xE5").as_deref(), Ok("中文"));
    assert_eq!(
        text("sjis", b"\x93\xFA\x96\x7B\xB1").as_deref(),
        Ok("日本ｱ")
    );
    assert_eq!(text("cp932", b"\x93\xFA\x96\x7B").as_deref(), Ok("日本"));
    assert_eq!(text("euckr", b"\xC7\xD1\xB1\xB9").as_deref(), Ok("한국"));
    // EUC-JP: two-byte kanji, SS2 half-width katakana, SS3 JIS X 0212.
    assert_eq!(
        text("ujis", b"\xC6\xFC\x8E\xB1\x8F\xB0\xA1").as_deref(),
        Ok("日ｱ丂")
    );
    assert_eq!(text("eucjpms", b"\xC6\xFC").as_deref(), Ok("日"));
}

#[test]
fn utf16_charsets_decode_units_and_pairs() {
    assert_eq!(
        text("utf16", b"\x4E\x2D\xD8\x3D\xDE\x00").as_deref(),
        Ok("中😀")
    );
    assert_eq!(
        text("utf16le", b"\x2D\x4E\x3D\xD8\x00\xDE").as_deref(),
        Ok("中😀")
    );
    assert_eq!(text("ucs2", b"\x4E\x2D\x00a").as_deref(), Ok("中a"));
    assert_eq!(
        text("utf32", b"\0\0\x4E\x2D\0\x01\xF6\x00").as_deref(),
        Ok("中😀")
    );
}

#[test]
fn single_byte_charsets_follow_mysql_not_their_namesakes() {
    assert_eq!(text("cp1251", b"\xCF\xF0\xE8").as_deref(), Ok("При"));
    assert_eq!(text("latin2", b"\xB1").as_deref(), Ok("ą"));
    assert_eq!(text("koi8r", b"\xF0\xD2\xC9").as_deref(), Ok("При"));
    // MySQL's ascii reads a high byte as '?'.
    assert_eq!(text("ascii", b"a\x80").as_deref(), Ok("a?"));
    // MySQL's gbk sends its user-defined area as '?' (a GBK decoder gives U+E4C6).
    assert_eq!(text("gbk", b"\xA1\x40").as_deref(), Ok("?"));
}

#[test]
fn bytes_that_are_no_character_are_refused() {
    for (charset, raw) in [
        ("gbk", &b"\xD6"[..]),         // a lead byte without its second byte
        ("gbk", b"\xD6\x20"),          // a second byte out of range
        ("big5", b"\xA4"),             // truncated
        ("ujis", b"\x8F\xB0"),         // SS3 short of its third byte
        ("ujis", b"\x8F\x20\x20"),     // SS3 with bytes out of range
        ("utf8mb4", b"\xC3"),          // truncated UTF-8
        ("ucs2", b"\xD8\x00"),         // a lone surrogate
        ("ucs2", b"\xD8\x00\xDC\x00"), // a surrogate pair: MySQL's ucs2 has none
        ("utf16", b"\xDC\x00"),        // a lone low surrogate
        ("utf16le", b"a"),             // half a code unit
        ("utf32", b"\0\0\xD8\x00"),    // a surrogate
        ("utf32", b"\0\x11\0\0"),      // past U+10FFFF
        ("utf32", b"\0\0\0"),          // not a whole code point
    ] {
        let e = text(charset, raw).expect_err(charset);
        assert!(e.contains(charset), "{e}");
    }
}

#[test]
fn unknown_charsets_are_refused_with_the_fix() {
    assert!(!decodes("gb18030"));
    assert!(!decodes("utf8mb5"));
    let e = text("gb18030", b"a").expect_err("gb18030 is not decoded");
    assert!(e.contains("convert the column to utf8mb4"), "{e}");
}

#[test]
fn every_map_has_the_size_of_its_kind() {
    for name in MAPPED {
        let m = map(name).expect("listed");
        let n = m.len() / 2;
        assert!(
            m.len().is_multiple_of(2)
                && [SINGLES, SINGLES + DOUBLES, SINGLES + DOUBLES + TRIPLES].contains(&n),
            "{name}: {} bytes",
            m.len()
        );
        // ASCII letters and digits are themselves in every charset MySQL has.
        assert_eq!(text(name, b"Az09").as_deref(), Ok("Az09"), "{name}");
    }
}

#[test]
fn collation_ids_name_their_charset() {
    for (id, charset) in [
        (45, Some("utf8mb4")),   // utf8mb4_general_ci
        (33, Some("utf8mb3")),   // utf8mb3_general_ci
        (87, Some("gbk")),       // gbk_bin
        (63, Some("binary")),    // binary
        (1070, Some("utf8mb4")), // MariaDB utf8mb4_nopad_bin
        (1052, Some("gbk")),     // MariaDB gbk_chinese_nopad_ci
        (576, Some("utf8mb3")),  // MariaDB utf8mb3_croatian_ci
        (736, Some("utf32")),    // MariaDB utf32_croatian_ci
        (2304, Some("utf8mb4")), // MariaDB utf8mb4_uca1400_ai_ci
        (0, None),
        (4000, None),
    ] {
        assert_eq!(of_collation(id), charset, "{id}");
    }
}

proptest::proptest! {
    /// Any bytes in any charset: UTF-8 (bytes as they are for binary) or an error naming the
    /// charset, never a panic.
    #[test]
    fn any_bytes_decode_or_are_refused(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..12)) {
        for name in MAPPED.iter().chain(UNMAPPED) {
            match to_utf8(name, &raw) {
                Ok(text) if *name == "binary" => proptest::prop_assert_eq!(&text, &raw),
                Ok(text) => proptest::prop_assert!(std::str::from_utf8(&text).is_ok()),
                Err(e) => proptest::prop_assert!(e.contains(name), "{}", e),
            }
        }
    }
}
