//! The harnesses of the core's fuzz targets (`fuzz/`: `show_grants`, `config_load`,
//! `binlog_event`), here so that each target and its corpus replay test below run the very
//! same code. Not part of the crate's API. Each runs one input through public entry points and
//! never panics on any input; a panic is a bug (that is what the fuzzer checks).

use crate::config;
use crate::mysql::binlog;
use crate::mysql::probes::redact_grant_line;
use crate::mysql::{Flavor, Grants};

/// `SHOW GRANTS` lines (one per input line) into [`Grants`] and the questions the precheck
/// asks of them. The first byte picks the flavor and version the rules depend on.
pub fn show_grants(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (flavor, version) = match pick % 4 {
        0 => (Flavor::MySql, (8, 0, 36)),
        1 => (Flavor::MySql, (5, 7, 44)),
        2 => (Flavor::MariaDb, (10, 4, 33)),
        _ => (Flavor::MariaDb, (11, 4, 2)),
    };
    let text = String::from_utf8_lossy(rest);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for line in &lines {
        let _ = redact_grant_line(line);
    }
    let g = Grants::from_lines("tsmigrate@%", flavor, version, &lines, Vec::new());
    let _ = g.inactive_roles();
    let _ = g.has_replication_slave();
    let _ = g.has_replication_client();
    let _ = g.has_replica_monitor();
    let _ = g.can_select("shop", "orders");
    let _ = g.can("INSERT", "shop_1", "t");
}

/// Config text through the loader's parse and validation, as `tsmigrate` loads a file.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = config::from_json_str(text) else {
        return;
    };
    if cfg.validate().is_ok() {
        let _ = cfg.table_specs();
        let _ = cfg.secret_refs();
        let _ = cfg.effective_server_id();
        let _ = cfg.is_local_setup();
    }
}

/// Bytes as a binlog file, through the decoder the reader uses (`binlog::decode_file`). The
/// magic is added when missing, so that mutations of the first bytes still reach events.
pub fn binlog_event(data: &[u8]) {
    const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
    let mut owned;
    let bytes = if data.starts_with(&MAGIC) {
        data
    } else {
        owned = MAGIC.to_vec();
        owned.extend_from_slice(data);
        &owned
    };
    let _ = binlog::decode_file("fuzz-bin.000001", bytes, Box::new(|_, _| true));
}

#[cfg(test)]
mod tests {
    fn replay(target: &str, run: fn(&[u8])) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
            run(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus files in {}", dir.display());
    }

    /// Replays the committed corpus of the `show_grants` fuzz target (stable, fast).
    #[test]
    fn fuzz_corpus_show_grants_replays_without_panic() {
        replay("show_grants", super::show_grants);
    }

    /// Replays the committed corpus of the `config_load` fuzz target.
    #[test]
    fn fuzz_corpus_config_load_replays_without_panic() {
        replay("config_load", super::config_load);
    }

    /// Found by fuzzing: a rows event whose column bitmaps are all zero made mysql_common's row
    /// iterator yield empty rows without end (out of memory). Now a corrupt-event error.
    #[test]
    fn binlog_event_rows_without_columns() {
        let bytes = include_bytes!("../../../fuzz/regressions/binlog_event_rows_without_columns");
        let batch = crate::mysql::binlog::decode_file("f.000001", bytes, Box::new(|_, _| true))
            .expect("a binlog file");
        let error = batch.error.expect("the event is refused");
        assert!(error.contains("name no column"), "{error}");
    }

    /// Replays the committed corpus of the `binlog_event` fuzz target.
    #[test]
    fn fuzz_corpus_binlog_event_replays_without_panic() {
        replay("binlog_event", super::binlog_event);
    }
}
