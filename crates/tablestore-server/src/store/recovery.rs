//! Opening a store: replaying the log frames written after the last durable checkpoint into
//! redb (truncating a torn tail), then starting a fresh segment. Separate from the running
//! store because it is the only code that writes redb from the log rather than the reverse.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::Instant;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::vlog::{
    decode_live, decode_position, encode_inline, encode_pointer, parse_records,
    parse_segment_file_name, read_frame, release, Record, ValuePtr, FRAME_HEADER, INLINE_MAX,
    SEGMENT_BYTES, STATE, STATE_LIVE, STATE_POSITION, UNLINK_DELAY,
};
use super::{
    data_table_name, decode_record, encode_record, io_err, DataTable, Journal, Position, Store,
    StoreError, META,
};

impl Store {
    /// Replays the log after the checkpoint into redb, starts a fresh segment, checkpoints
    /// durably and drops segments nothing refers to any more.
    pub(super) fn recover(&self) -> Result<Journal, StoreError> {
        let (checkpoint, mut live) = {
            let txn = self.db.begin_write()?;
            let cp;
            let live;
            {
                txn.open_table(META)?;
                let state = txn.open_table(STATE)?;
                cp = match state.get(STATE_POSITION)? {
                    Some(v) => Some(decode_position(v.value())?),
                    None => None,
                };
                live = match state.get(STATE_LIVE)? {
                    Some(v) => decode_live(v.value())?,
                    None => BTreeMap::new(),
                };
            }
            txn.commit()?;
            (cp, live)
        };
        let mut ids = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| io_err("cannot list", &self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| io_err("cannot list", &self.dir, e))?;
            if let Some(id) = e.file_name().to_str().and_then(parse_segment_file_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        for &id in &ids {
            let path = self.segment_path(id);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err("cannot open log segment", &path, e))?;
            self.register(id, Arc::new(f));
        }
        let from = checkpoint.unwrap_or(Position {
            segment: ids.first().copied().unwrap_or(0),
            offset: 0,
        });
        let replayed = self.replay(from, &ids, &mut live)?;
        if replayed > 0 {
            tracing::info!(
                frames = replayed,
                "replayed the value log after the last checkpoint"
            );
        }
        // New writes always go to a fresh segment: never after a possibly torn tail, and
        // always after the checkpoint recorded below.
        let active = ids
            .last()
            .map_or(0, |l| l + 1)
            .max(checkpoint.map_or(0, |c| c.segment + 1));
        let file = self.create_segment(active)?;
        // Sealed segments that hold no live value are garbage once this checkpoint is durable.
        let garbage: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| live.get(id).copied().unwrap_or(0) == 0)
            .collect();
        for id in &garbage {
            live.remove(id);
        }
        let mut journal = Journal {
            active,
            file,
            end: 0,
            frame: Vec::new(),
            live,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            segment_bytes: SEGMENT_BYTES,
            unlink_delay: UNLINK_DELAY,
            emptied: Vec::new(),
            doomed: Vec::new(),
        };
        let txn = self.begin_write()?;
        txn.finish(self, &mut journal, true)?;
        for id in garbage {
            self.unregister(id);
            let path = self.segment_path(id);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove unused log segment");
            }
        }
        Ok(journal)
    }

    /// Applies every intact frame from `from` on; truncates a torn tail. Returns frames applied.
    fn replay(
        &self,
        from: Position,
        ids: &[u32],
        live: &mut BTreeMap<u32, u64>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut frames = 0;
        {
            let mut meta = txn.open_table(META)?;
            let mut tables: HashMap<String, DataTable<'_>> = HashMap::new();
            let mut torn = false;
            for &id in ids.iter().filter(|&&id| id >= from.segment) {
                let path = self.segment_path(id);
                let file = self.segment(id)?;
                if torn {
                    // Nothing after a torn frame was ever acknowledged.
                    file.set_len(0)
                        .and_then(|_| file.sync_all())
                        .map_err(|e| io_err("cannot truncate", &path, e))?;
                    continue;
                }
                let len = file
                    .metadata()
                    .map_err(|e| io_err("cannot stat", &path, e))?
                    .len();
                let mut pos = if id == from.segment { from.offset } else { 0 };
                while pos < len {
                    let Some(payload) =
                        read_frame(&file, pos, len).map_err(|e| io_err("cannot read", &path, e))?
                    else {
                        tracing::warn!(
                            segment = id,
                            offset = pos,
                            "truncating a torn value log tail"
                        );
                        file.set_len(pos)
                            .and_then(|_| file.sync_all())
                            .map_err(|e| io_err("cannot truncate", &path, e))?;
                        torn = true;
                        break;
                    };
                    let base = pos + FRAME_HEADER as u64;
                    for rec in parse_records(&payload)? {
                        match rec {
                            Record::Put {
                                table,
                                key,
                                value,
                                value_offset,
                            } => {
                                let Some(t) = replay_table(&txn, &meta, &mut tables, table)? else {
                                    continue;
                                };
                                let entry = if value.len() <= INLINE_MAX {
                                    encode_inline(value)
                                } else {
                                    let p = ValuePtr {
                                        segment: id,
                                        offset: base + value_offset as u64,
                                        len: value.len() as u32,
                                    };
                                    *live.entry(id).or_default() += u64::from(p.len);
                                    encode_pointer(p).to_vec()
                                };
                                if let Some(old) = t.insert(key, entry.as_slice())? {
                                    release(live, old.value());
                                }
                            }
                            Record::Delete { table, key } => {
                                let Some(t) = replay_table(&txn, &meta, &mut tables, table)? else {
                                    continue;
                                };
                                if let Some(old) = t.remove(key)? {
                                    release(live, old.value());
                                }
                            }
                            Record::Counter { table, value } => {
                                let rec = match meta.get(table)? {
                                    Some(v) => Some(decode_record(v.value())?),
                                    None => None,
                                };
                                if let Some(mut rec) = rec {
                                    if value > rec.auto_increment {
                                        rec.auto_increment = value;
                                        meta.insert(table, encode_record(&rec).as_slice())?;
                                    }
                                }
                            }
                        }
                    }
                    frames += 1;
                    pos = base + payload.len() as u64;
                }
            }
        }
        txn.commit()?;
        Ok(frames)
    }
}

/// The data table of `name` during replay, or None when the table no longer exists.
fn replay_table<'a, 't>(
    txn: &'t WriteTransaction,
    meta: &Table<'t, &'static str, &'static [u8]>,
    tables: &'a mut HashMap<String, DataTable<'t>>,
    name: &str,
) -> Result<Option<&'a mut DataTable<'t>>, StoreError> {
    if !tables.contains_key(name) {
        if meta.get(name)?.is_none() {
            return Ok(None);
        }
        let t = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&data_table_name(name)))?;
        tables.insert(name.to_owned(), t);
    }
    Ok(tables.get_mut(name))
}
