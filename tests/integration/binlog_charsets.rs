//! Character data of every charset the binlog decoder claims (`binlog::charsets`) renders to
//! exactly the UTF-8 the full copy reads for it. Every single byte, every two-byte sequence led
//! by a high byte (by any byte for UTF-16) and EUC-JP's three-byte codes are inserted into a
//! column of each charset (non-strict, so the server keeps what is well-formed), read back from
//! the binlog, rendered, and compared with what a utf8mb4 reading session receives for the row.
//!
//! With `TSMIGRATE_WRITE_CHARSET_MAPS=DIR` the test instead writes the legacy charsets' maps
//! (`crates/core/src/mysql/binlog/charsets/maps`) from the server's answers.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;

use crate::binlog_stream::{position, read, unbounded};
use crate::chunk_reader::reader;
use crate::harness::mariadb::MariaDb;
use tsmigrate_core::mysql;
use tsmigrate_core::mysql::binlog::charsets::{self, DOUBLES, NONE, SINGLES, TRIPLES};
use tsmigrate_core::mysql::binlog::{render, Change, Position, Stop, Value};
use tsmigrate_core::mysql::ConnectOptions;

const ID_CHARSETS: u32 = 9011;
const ID_COLLATIONS: u32 = 9012;

/// Charsets decoded without a map, checked the same way.
const UNMAPPED: &[&str] = &["latin1", "utf16", "utf16le", "ucs2", "utf32"];

fn is_euc_jp(charset: &str) -> bool {
    matches!(charset, "ujis" | "eucjpms")
}

/// Candidate byte strings for a charset (see the module comment; utf32: every BMP code point,
/// every 97th of the others, and some past U+10FFFF).
fn candidates(charset: &str) -> Vec<Vec<u8>> {
    if charset == "utf32" {
        return (0..=0xFFFFu32)
            .chain((0x1_0000..=0x10_FFFF).step_by(97))
            .chain([0x10_FFFF, 0x11_0000, 0xFFFF_FFFF])
            .map(|c| c.to_be_bytes().to_vec())
            .collect();
    }
    let mut out: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let first = if charset.starts_with("utf16") || charset == "ucs2" {
        0
    } else {
        0x80
    };
    for a in first..=255u8 {
        for b in 0..=255u8 {
            out.push(vec![a, b]);
        }
    }
    if is_euc_jp(charset) {
        for a in 0xA1..=0xFEu8 {
            for b in 0xA1..=0xFEu8 {
                out.push(vec![0x8F, a, b]);
            }
        }
    }
    out
}

/// Every row change of `db` from `start` to the end of the log, however many batches that
/// takes (a slow machine may end a batch at its time bound).
async fn read_to_end(opts: &ConnectOptions, id: u32, mut start: Position, db: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    loop {
        let batch = read(opts, id, &start, &unbounded(), db).await;
        changes.extend(batch.transactions.into_iter().flat_map(|t| t.changes));
        if matches!(batch.stop, Stop::EndOfLog) {
            return changes;
        }
        start = batch.end;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// One candidate as the server kept it: `(candidate, stored bytes, what a utf8mb4 session reads)`.
type Answer = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// A legacy charset's map from the server's answers.
fn map_of(charset: &str, rows: &[Answer]) -> Vec<u8> {
    let one_char = |utf8: &Option<Vec<u8>>| -> Option<u16> {
        let s = std::str::from_utf8(utf8.as_deref()?).ok()?;
        let mut chars = s.chars();
        let c = chars.next()?;
        let c = u16::try_from(u32::from(c)).ok().filter(|&c| c != NONE)?;
        chars.next().is_none().then_some(c)
    };
    let mut map = vec![NONE; SINGLES];
    for (cand, stored, utf8) in rows {
        if let ([b], true) = (&cand[..], cand == stored) {
            map[usize::from(*b)] = one_char(utf8).unwrap_or_else(|| {
                panic!("{charset} {b:02X}: the server reads {utf8:?}, not one BMP character")
            });
        }
    }
    // Multi-byte when a byte that is no character by itself leads a stored two-byte code.
    let multi = rows
        .iter()
        .any(|(c, s, _)| matches!(c[..], [a, _] if map[usize::from(a)] == NONE) && c == s);
    if multi {
        map.resize(SINGLES + DOUBLES, NONE);
    }
    if is_euc_jp(charset) {
        map.resize(SINGLES + DOUBLES + TRIPLES, NONE);
    }
    for (cand, stored, utf8) in rows {
        if cand != stored {
            continue;
        }
        let at = match cand[..] {
            [_] => continue,
            [a, b] if multi && map[usize::from(a)] == NONE => {
                SINGLES + usize::from(a - 0x80) * 256 + usize::from(b)
            }
            [0x8F, a, b] => SINGLES + DOUBLES + usize::from(a - 0xA1) * 94 + usize::from(b - 0xA1),
            _ => continue,
        };
        match one_char(utf8) {
            Some(c) => map[at] = c,
            None => panic!(
                "{charset} {}: the server reads {:?}, not one BMP character",
                hex(cand),
                utf8.as_deref().map(String::from_utf8_lossy)
            ),
        }
    }
    map.iter().flat_map(|c| c.to_le_bytes()).collect()
}

#[tokio::test]
async fn every_decoded_charset_renders_as_the_copy_reads_it() {
    let server = MariaDb::shared();
    let db = server.fresh_database("binlog_charsets").await;
    let write_maps = std::env::var_os("TSMIGRATE_WRITE_CHARSET_MAPS");
    let all: Vec<&str> = charsets::MAPPED.iter().chain(UNMAPPED).copied().collect();
    let opts = server.user_options();
    let start = position(&opts).await;
    let mut admin = server.admin_conn().await;
    admin
        .query_drop(format!("USE `{db}`; SET SESSION sql_mode = ''"))
        .await
        .expect("session");
    for cs in &all {
        assert!(charsets::decodes(cs), "{cs}");
        admin
            .query_drop(format!(
                "CREATE TABLE t_{cs} (id INT PRIMARY KEY, v VARCHAR(4) CHARACTER SET {cs})"
            ))
            .await
            .expect("create");
        for (n, part) in candidates(cs).chunks(4096).enumerate() {
            let values: Vec<String> = part
                .iter()
                .enumerate()
                .map(|(i, b)| format!("({}, UNHEX('{}'))", n * 4096 + i, hex(b)))
                .collect();
            admin
                .query_drop(format!("INSERT INTO t_{cs} VALUES {}", values.join(",")))
                .await
                .expect("insert");
        }
    }
    drop(admin);

    let changes = read_to_end(&opts, ID_CHARSETS, start, &db).await;

    let mut conn = reader(server).await;
    let mut failures = Vec::new();
    for cs in &all {
        let copied: Vec<(usize, Vec<u8>, Option<Vec<u8>>)> = conn
            .query(format!(
                "SELECT id, CAST(v AS BINARY), v FROM `{db}`.t_{cs} ORDER BY id"
            ))
            .await
            .expect("select");
        let cands = candidates(cs);
        assert_eq!(copied.len(), cands.len(), "{cs}: rows stored");
        if let Some(dir) = &write_maps {
            if charsets::MAPPED.contains(cs) {
                let rows: Vec<_> = copied
                    .into_iter()
                    .map(|(id, stored, utf8)| (cands[id].clone(), stored, utf8))
                    .collect();
                let path = std::path::Path::new(dir).join(format!("{cs}.map"));
                std::fs::write(&path, map_of(cs, &rows)).expect("write map");
            }
            continue;
        }
        // What the binlog holds for each row: the stored bytes, and their rendering.
        let mut from_binlog = BTreeMap::new();
        for change in &changes {
            if change.table.table != format!("t_{cs}") {
                continue;
            }
            let image = change.after.as_ref().expect("inserts only");
            let id = render(image.get(0).expect("id"), &change.table.columns[0])
                .expect("id renders")
                .and_then(|b| String::from_utf8(b).ok()?.parse::<usize>().ok())
                .expect("an id");
            let v = image.get(1).expect("v");
            let raw = match v {
                Value::Bytes(b) => b.to_vec(),
                Value::Null => panic!("{cs}: NULL stored"),
            };
            from_binlog.insert(id, (raw, render(v, &change.table.columns[1])));
        }
        assert_eq!(from_binlog.len(), copied.len(), "{cs}: rows in the binlog");
        for (id, stored, utf8) in &copied {
            let (raw, ours) = &from_binlog[id];
            assert_eq!(raw, stored, "{cs} {}: binlog bytes", hex(&cands[*id]));
            let valid = utf8
                .as_deref()
                .is_some_and(|u| std::str::from_utf8(u).is_ok());
            let fine = match ours {
                // Bytes the server itself cannot give as UTF-8 are refused, never guessed.
                Err(_) => !valid,
                Ok(o) => valid && o == utf8,
            };
            if !fine {
                failures.push(format!(
                    "{cs} {}: binlog {:?}, the copy reads {:?}",
                    hex(stored),
                    ours.as_ref()
                        .map(|o| o.as_deref().map(String::from_utf8_lossy)),
                    utf8.as_deref().map(hex)
                ));
            }
        }
    }
    mysql::close(conn).await;
    let shown: Vec<&String> = failures.iter().take(30).collect();
    assert!(
        failures.is_empty(),
        "{} values differ:\n{shown:#?}",
        failures.len()
    );
}

/// The binlog names a column's charset by its collation id: every collation the server has
/// (MariaDB's own ids above MySQL's included: NO PAD, more UCA, uca1400) must resolve to its
/// charset, so a column in any collation renders as the copy reads it.
#[tokio::test]
async fn a_column_in_any_collation_renders_as_the_copy_reads_it() {
    let server = MariaDb::shared();
    let db = server.fresh_database("binlog_collations").await;
    let mut admin = server.admin_conn().await;
    let collations: Vec<(String, String, u64)> = admin
        .query(
            // FULL_COLLATION_NAME lists MariaDB's uca1400 collations per charset too.
            "SELECT FULL_COLLATION_NAME, CHARACTER_SET_NAME, ID
             FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY
             WHERE CHARACTER_SET_NAME <> 'binary' ORDER BY ID",
        )
        .await
        .expect("collations");
    assert!(collations.len() > 100, "{}", collations.len());
    // MariaDB 10.10+: the uca1400 ids (from 2048) are among them.
    assert!(collations.iter().any(|(_, _, id)| *id >= 2048));
    // Each id names the server's charset (text alone cannot tell utf16 from ucs2).
    for (name, charset, id) in &collations {
        let ours = u16::try_from(*id).ok().and_then(charsets::of_collation);
        assert_eq!(ours, Some(charset.as_str()), "{name} (id {id})");
    }
    let opts = server.user_options();
    let start = position(&opts).await;
    // One table per 200 collations (a row stays far below MariaDB's row size limit).
    let mut tables = Vec::new();
    for (n, part) in collations.chunks(200).enumerate() {
        let cols: Vec<String> = part
            .iter()
            .enumerate()
            .map(|(i, (name, cs, _))| format!("c{i} VARCHAR(8) CHARACTER SET {cs} COLLATE {name}"))
            .collect();
        let values = vec!["'Az09 é'"; part.len()].join(", ");
        admin
            .query_drop(format!(
                "CREATE TABLE `{db}`.t{n} (id INT PRIMARY KEY, {});
                 INSERT IGNORE INTO `{db}`.t{n} VALUES (1, {values})",
                cols.join(", ")
            ))
            .await
            .expect("create and insert");
        tables.push((format!("t{n}"), part.to_vec()));
    }
    drop(admin);
    let changes = read_to_end(&opts, ID_COLLATIONS, start, &db).await;
    let mut conn = reader(server).await;
    let mut failures = Vec::new();
    for (table, part) in &tables {
        let change = changes
            .iter()
            .find(|c| &c.table.table == table)
            .unwrap_or_else(|| panic!("{table} not in the binlog"));
        let image = change.after.as_ref().expect("an insert");
        let select: Vec<String> = (0..part.len()).map(|i| format!("c{i}")).collect();
        let row: mysql_async::Row = conn
            .query_first(format!("SELECT {} FROM `{db}`.{table}", select.join(", ")))
            .await
            .expect("select")
            .expect("a row");
        for (i, (collation, _, id)) in part.iter().enumerate() {
            let copied: Option<Vec<u8>> = row.get(i).expect("column");
            let ours = render(
                image.get(i + 1).expect("value"),
                &change.table.columns[i + 1],
            );
            if ours.as_ref() != Ok(&copied) {
                failures.push(format!("{collation} (id {id}): {ours:?}"));
            }
        }
    }
    mysql::close(conn).await;
    assert!(
        failures.is_empty(),
        "{} collations: {failures:#?}",
        failures.len()
    );
}
