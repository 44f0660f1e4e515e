//! Every binlog event type the reader may meet, and what it does with each: the one place that
//! decides, so an event type nobody thought of is an error, never a silent skip (design
//! invariant 6). Also the bodies mysql_common does not parse (MariaDB's GTID, GTID_LIST and
//! BINLOG_CHECKPOINT) and the artificial Rotate's file name (binlog notes, pitfall 2).

use std::fmt;

/// What the reader does with one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FormatDescription,
    Rotate,
    /// Transaction start (`BEGIN`), commit (`COMMIT`, `ROLLBACK`) or DDL.
    Query,
    Xid,
    TableMap,
    /// Row events, v1 (MariaDB, MySQL 5.5) and v2 (MySQL 5.6+).
    Rows(RowsKind),
    /// MySQL GTID (33) or ANONYMOUS_GTID (34): the next transaction's identity.
    MysqlGtid,
    /// MySQL's set of GTIDs before this file (35): context only.
    PreviousGtids,
    /// MySQL 8.0.20+ zstd-compressed transaction (40); its events follow, decompressed.
    TransactionPayload,
    /// MariaDB GTID (162): starts a transaction (or a standalone DDL).
    MariaGtid,
    /// MariaDB GTID_LIST (163) and BINLOG_CHECKPOINT (161): file-level bookkeeping.
    MariaBookkeeping,
    /// The SQL text of the next row events (MariaDB ANNOTATE_ROWS 160, MySQL ROWS_QUERY 29).
    StatementText,
    /// Keep-alive (27, 41) and server stop (3): no data.
    Heartbeat,
    Stop,
    /// An event the reader cannot follow: the batch stops with this reason and its fix.
    Refused(Refusal),
}

/// Row event flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Insert,
    Update,
    Delete,
}

/// Why an event type stops the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Statement-based events (INTVAR, RAND, USER_VAR, LOAD…): the source is not in ROW format.
    StatementBased,
    /// MariaDB `log_bin_compress=ON` compressed events (165–171).
    MariaCompressed,
    /// MySQL `binlog_row_value_options=PARTIAL_JSON` (39).
    PartialJson,
    /// An encrypted binlog (MariaDB START_ENCRYPTION 164): the server normally decrypts for
    /// replicas; seeing it means the stream cannot be read.
    Encrypted,
    /// INCIDENT (26): the source says changes may be missing from the log.
    Incident,
    /// XA PREPARE (38): two-phase XA transactions are not supported.
    XaPrepare,
    /// Group-replication events (36, 37).
    GroupReplication,
    /// A type this reader does not know.
    Unknown(u8),
}

impl Refusal {
    /// What is wrong and what to do, for the error message.
    pub fn explain(self) -> String {
        match self {
            Refusal::StatementBased => "a statement-based event: the source must log rows; set \
                 binlog_format=ROW (and binlog_row_image=FULL) and start a full migration again, \
                 since statement events cannot be replayed as row changes"
                .into(),
            Refusal::MariaCompressed => "a compressed MariaDB event (log_bin_compress=ON), which \
                 this reader cannot decode: set log_bin_compress=OFF on the source (SET GLOBAL \
                 log_bin_compress=OFF) and start a full migration again"
                .into(),
            Refusal::PartialJson => {
                "a partial JSON update (binlog_row_value_options=PARTIAL_JSON), \
                 which carries only the changed part of a JSON value: set \
                 binlog_row_value_options='' on the source and start a full migration again"
                    .into()
            }
            Refusal::Encrypted => "an encrypted binlog event the server did not decrypt: read \
                 through a replica connection of a server that holds the key, or turn off \
                 encrypt_binlog"
                .into(),
            Refusal::Incident => "an INCIDENT event: the source reports that changes may be \
                 missing from its binlog (e.g. a failed write); a full re-sync is needed"
                .into(),
            Refusal::XaPrepare => "an XA PREPARE event: XA (two-phase) transactions are not \
                 supported; finish or roll back XA transactions on the source, or exclude their \
                 tables"
                .into(),
            Refusal::GroupReplication => "a group-replication event (TRANSACTION_CONTEXT / \
                 VIEW_CHANGE): read from a regular replica of the group instead"
                .into(),
            Refusal::Unknown(t) => format!(
                "event type {t}, which this reader does not know; report it with the server's \
                 version (nothing is skipped silently)"
            ),
        }
    }
}

/// Event type codes (MySQL `binlog_event.h`, MariaDB `log_event.h`).
pub mod code {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const MARIA_ANNOTATE_ROWS: u8 = 160;
    pub const MARIA_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIA_GTID: u8 = 162;
    pub const MARIA_GTID_LIST: u8 = 163;
}

impl Kind {
    /// The kind of a raw event type.
    pub fn of(event_type: u8) -> Kind {
        match event_type {
            2 => Kind::Query,
            3 => Kind::Stop,
            4 => Kind::Rotate,
            15 => Kind::FormatDescription,
            16 => Kind::Xid,
            19 => Kind::TableMap,
            23 | 30 => Kind::Rows(RowsKind::Insert),
            24 | 31 => Kind::Rows(RowsKind::Update),
            25 | 32 => Kind::Rows(RowsKind::Delete),
            27 | 41 => Kind::Heartbeat,
            29 | 160 => Kind::StatementText,
            // IGNORABLE_EVENT: the protocol's own "safe to skip" type.
            28 => Kind::StatementText,
            33 | 34 => Kind::MysqlGtid,
            35 => Kind::PreviousGtids,
            40 => Kind::TransactionPayload,
            161 | 163 => Kind::MariaBookkeeping,
            162 => Kind::MariaGtid,
            1 | 5..=14 | 17 | 18 | 20..=22 => Kind::Refused(Refusal::StatementBased),
            26 => Kind::Refused(Refusal::Incident),
            36 | 37 => Kind::Refused(Refusal::GroupReplication),
            38 => Kind::Refused(Refusal::XaPrepare),
            39 => Kind::Refused(Refusal::PartialJson),
            164 => Kind::Refused(Refusal::Encrypted),
            165..=171 => Kind::Refused(Refusal::MariaCompressed),
            t => Kind::Refused(Refusal::Unknown(t)),
        }
    }
}

/// A MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// `FL_STANDALONE`: a GTID group of one statement without BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 1;

/// A MariaDB GTID event body (header and checksum already stripped): `seq u64`, `domain u32`,
/// `flags2 u8`. Returns the GTID and whether the group is standalone (ends with its statement).
pub fn parse_maria_gtid(server_id: u32, body: &[u8]) -> Option<(MariaGtid, bool)> {
    let seq = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
    let flags2 = *body.get(12)?;
    Some((
        MariaGtid {
            domain,
            server: server_id,
            seq,
        },
        flags2 & FL_STANDALONE != 0,
    ))
}

/// A MariaDB GTID_LIST body: `count u32` (low 28 bits), then `count × (domain u32, server u32,
/// seq u64)`.
pub fn parse_maria_gtid_list(body: &[u8]) -> Option<Vec<MariaGtid>> {
    let count = u32::from_le_bytes(body.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as usize {
        let at = 4 + i * 16;
        let e = body.get(at..at + 16)?;
        out.push(MariaGtid {
            domain: u32::from_le_bytes(e[0..4].try_into().ok()?),
            server: u32::from_le_bytes(e[4..8].try_into().ok()?),
            seq: u64::from_le_bytes(e[8..16].try_into().ok()?),
        });
    }
    Some(out)
}

/// The file name of the artificial Rotate that opens a replication stream. MariaDB checksums
/// it even when the stream has no checksums yet (mysql_async asks for `'ALL'`), and it comes
/// before the FORMAT_DESCRIPTION that would tell mysql_common to strip the CRC, so the name may
/// end in 4 CRC bytes: when the last 4 bytes are the CRC32 of header + rest, they are dropped.
/// `header` is the event's 19-byte header, `body` the event after it (8-byte position, name).
pub fn rotate_file_name(header: &[u8; 19], body: &[u8]) -> Option<String> {
    let name = body.get(8..)?;
    if name.len() > 4 {
        let (rest, crc) = body.split_at(body.len() - 4);
        let mut h = crc32fast::Hasher::new();
        h.update(header);
        h.update(rest);
        if h.finalize().to_le_bytes() == crc {
            return String::from_utf8(rest.get(8..)?.to_vec()).ok();
        }
    }
    String::from_utf8(name.to_vec()).ok()
}

/// What a QUERY event's statement does to the transaction around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Begin,
    /// COMMIT: ends the transaction (non-transactional engines log COMMIT instead of XID).
    Commit,
    /// ROLLBACK: ends the transaction; its row events (non-transactional tables) stay applied.
    Rollback,
    /// Anything else: DDL and other statements, each its own transaction.
    Statement,
}

/// Classifies a statement by its first keyword (case-insensitive, leading comments skipped).
pub fn query_kind(sql: &str) -> QueryKind {
    let mut words = skip_comments(sql)
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase());
    match (words.next().as_deref(), words.next().as_deref()) {
        (Some("BEGIN"), _) => QueryKind::Begin,
        // "START TRANSACTION" is logged as BEGIN.
        (Some("COMMIT"), _) => QueryKind::Commit,
        // ROLLBACK TO SAVEPOINT stays inside the transaction.
        (Some("ROLLBACK"), Some("TO")) => QueryKind::Statement,
        (Some("ROLLBACK"), _) => QueryKind::Rollback,
        _ => QueryKind::Statement,
    }
}

fn skip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => s = &rest[end + 2..],
                None => return "",
            }
        } else if let Some(rest) = s.strip_prefix("-- ").or_else(|| s.strip_prefix('#')) {
            match rest.find('\n') {
                Some(end) => s = &rest[end + 1..],
                None => return "",
            }
        } else {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_decision_and_unknown_ones_are_refused() {
        for t in 0..=255u8 {
            let _ = Kind::of(t);
        }
        assert_eq!(Kind::of(166), Kind::Refused(Refusal::MariaCompressed));
        assert_eq!(Kind::of(39), Kind::Refused(Refusal::PartialJson));
        assert_eq!(Kind::of(200), Kind::Refused(Refusal::Unknown(200)));
        assert_eq!(Kind::of(0), Kind::Refused(Refusal::Unknown(0)));
        assert_eq!(Kind::of(30), Kind::Rows(RowsKind::Insert));
        assert_eq!(Kind::of(25), Kind::Rows(RowsKind::Delete));
        assert!(Refusal::MariaCompressed
            .explain()
            .contains("log_bin_compress"));
        assert!(Refusal::PartialJson
            .explain()
            .contains("binlog_row_value_options"));
    }

    #[test]
    fn maria_gtid_bodies_parse_and_short_ones_do_not() {
        let mut body = 105u64.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(0x29);
        let (g, standalone) = parse_maria_gtid(1, &body).unwrap();
        assert_eq!(g.to_string(), "0-1-105");
        assert!(standalone);
        assert!(parse_maria_gtid(1, &body[..12]).is_none());

        let mut list = 1u32.to_le_bytes().to_vec();
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&1u32.to_le_bytes());
        list.extend_from_slice(&181u64.to_le_bytes());
        assert_eq!(
            parse_maria_gtid_list(&list).unwrap(),
            vec![MariaGtid {
                domain: 0,
                server: 1,
                seq: 181
            }]
        );
        assert!(parse_maria_gtid_list(&list[..10]).is_none());
    }

    #[test]
    fn rotate_names_lose_a_trailing_crc_only_when_it_is_one() {
        let header = [7u8; 19];
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend_from_slice(b"binlog.000001");
        assert_eq!(
            rotate_file_name(&header, &body).as_deref(),
            Some("binlog.000001")
        );
        let mut h = crc32fast::Hasher::new();
        h.update(&header);
        h.update(&body);
        let mut with_crc = body.clone();
        with_crc.extend_from_slice(&h.finalize().to_le_bytes());
        assert_eq!(
            rotate_file_name(&header, &with_crc).as_deref(),
            Some("binlog.000001")
        );
        assert_eq!(rotate_file_name(&header, &body[..4]), None);
    }

    #[test]
    fn statements_are_classified_by_their_first_keyword() {
        assert_eq!(query_kind("BEGIN"), QueryKind::Begin);
        assert_eq!(query_kind("  commit"), QueryKind::Commit);
        assert_eq!(query_kind("ROLLBACK /* x */"), QueryKind::Rollback);
        assert_eq!(
            query_kind("/* generated */ ALTER TABLE t ADD c INT"),
            QueryKind::Statement
        );
        assert_eq!(query_kind("# x\nBEGIN"), QueryKind::Begin);
        assert_eq!(query_kind(""), QueryKind::Statement);
        assert_eq!(query_kind("ROLLBACK TO SAVEPOINT s1"), QueryKind::Statement);
        assert_eq!(query_kind("SAVEPOINT s1"), QueryKind::Statement);
    }
}
