//! The store's unit tests (key order, crash replay, compaction, encodings), in their own file
//! so the code files stay readable.

use super::*;
use proptest::prelude::*;
use tablestore::row::{PkColumn, PrimaryKey};
use tablestore::schema::{DefinedColumnType, PkSchema, TableDef};
use tablestore::value::{PkType, PkValue, Value};

use super::rows::ROW_FORMAT;
use super::vlog::parse_segment_file_name;

fn schema(types: &[PkType]) -> Vec<PkSchema> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| PkSchema::new(format!("pk{i}"), *t))
        .collect()
}

fn pk_value(t: PkType) -> BoxedStrategy<PkValue> {
    // Bytes biased towards 0x00 / 0xFF, the escaping edge cases.
    let byte = prop_oneof![Just(0u8), Just(0xFFu8), Just(1u8), any::<u8>()];
    let real: BoxedStrategy<PkValue> = match t {
        PkType::Integer => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            Just(-1i64),
            any::<i64>(),
            -3i64..3
        ]
        .prop_map(PkValue::Integer)
        .boxed(),
        PkType::String => prop::collection::vec(
            prop_oneof![Just('\0'), Just('a'), Just('\u{ff}'), any::<char>()],
            0..5,
        )
        .prop_map(|c| PkValue::String(c.into_iter().collect()))
        .boxed(),
        PkType::Binary => prop::collection::vec(byte, 0..5)
            .prop_map(PkValue::Binary)
            .boxed(),
    };
    prop_oneof![
        8 => real,
        1 => Just(PkValue::InfMin),
        1 => Just(PkValue::InfMax),
    ]
    .boxed()
}

fn key_pair() -> impl Strategy<Value = (Vec<PkType>, Vec<PkValue>, Vec<PkValue>)> {
    let t = prop_oneof![
        Just(PkType::Integer),
        Just(PkType::String),
        Just(PkType::Binary)
    ];
    prop::collection::vec(t, 1..=4).prop_flat_map(|types| {
        let vals: Vec<_> = types.iter().map(|t| pk_value(*t)).collect();
        (Just(types), vals.clone(), vals)
    })
}

fn pk(types: &[PkType], vals: &[PkValue]) -> PrimaryKey {
    PrimaryKey(
        types
            .iter()
            .zip(vals)
            .enumerate()
            .map(|(i, (_, v))| PkColumn {
                name: format!("pk{i}"),
                value: v.clone(),
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn key_encoding_preserves_pk_order((types, a, b) in key_pair()) {
        let (ka, kb) = (encode_key(&pk(&types, &a)), encode_key(&pk(&types, &b)));
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        let sch = schema(&types);
        prop_assert_eq!(decode_key(&ka, &sch).ok(), Some(pk(&types, &a)));
    }
}

#[test]
fn key_encoding_edge_cases() {
    let s = |x: &str| encode_key(&PrimaryKey::new().with("a", x).with("b", 0i64));
    assert!(s("a") < s("a\0"));
    assert!(s("a\0") < s("a\0\0"));
    assert!(s("a\0") < s("a\u{1}"));
    assert!(s("") < s("\0"));
    let i = |x: i64| encode_key(&PrimaryKey::new().with("a", x));
    assert!(i(i64::MIN) < i(-1) && i(-1) < i(0) && i(0) < i(i64::MAX));
    let min = encode_key(&PrimaryKey(vec![PkColumn {
        name: "a".into(),
        value: PkValue::InfMin,
    }]));
    assert!(min < i(i64::MIN));
}

fn record(name: &str) -> TableRecord {
    TableRecord {
        def: TableDef::new(name, vec![PkSchema::new("id", PkType::Integer)]),
        creation_time: 1,
        auto_increment: 0,
    }
}

fn k(i: i64) -> Vec<u8> {
    encode_key(&PrimaryKey::new().with("id", i))
}

/// A row whose column `n` is `tag`, padded to about `size` bytes.
fn row(tag: i64, size: usize) -> Vec<u8> {
    encode_row(&StoredRow {
        columns: vec![
            StoredColumn {
                name: "n".into(),
                versions: vec![(1, Value::Integer(tag))],
            },
            StoredColumn {
                name: "p".into(),
                versions: vec![(1, Value::Binary(vec![tag as u8; size]))],
            },
        ],
    })
}

fn open(dir: &Path) -> (Arc<Store>, Journal) {
    Store::open(dir, 1 << 20).expect("open store")
}

/// One transaction; acknowledged like the engine does (log fsynced).
fn batch(
    store: &Store,
    j: &mut Journal,
    checkpoint: bool,
    f: impl FnOnce(&mut WriteSession<'_>) -> Result<(), StoreError>,
) {
    let txn = store.begin_write().expect("begin");
    {
        let mut s = txn.session(store, j);
        f(&mut s).expect("apply");
    }
    if let Some(file) = txn.finish(store, j, checkpoint).expect("finish") {
        file.sync_data().expect("fsync");
    }
}

fn tag(store: &Store, table: &str, i: i64) -> Option<i64> {
    let txn = store.begin_read().expect("read");
    let t = txn.table(table).expect("table")?;
    let r = t.get_row(&k(i)).expect("get")?;
    match r.column("n")?.versions.first()? {
        (_, Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

fn segments(dir: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| parse_segment_file_name(e.ok()?.file_name().to_str()?))
        .collect();
    ids.sort_unstable();
    ids
}

/// Copies the directory while the store is open: the image a crash at this moment leaves
/// (redb holds only its last durable checkpoint; the log holds everything acknowledged).
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn replays_the_log_after_a_crash() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let (store, mut j) = open(&a);
    batch(&store, &mut j, true, |s| s.create_table(&record("t")));
    for round in 0..5i64 {
        batch(&store, &mut j, false, |s| {
            for i in 0..40 {
                // Small rows stay inline, big ones live in the log.
                let size = if i % 2 == 0 { 10 } else { 1000 };
                s.insert("t", &k(i), &row(round * 100 + i, size))?;
            }
            s.remove("t", &k(39 - round))?;
            let mut rec = record("t");
            rec.auto_increment = 10 + round;
            s.put_counter(&rec)
        });
    }
    crash_image(&a, &b);
    batch(&store, &mut j, false, |s| {
        s.insert("t", &k(1000), &row(7, 2000))
    });
    batch(&store, &mut j, false, |s| {
        s.insert("t", &k(1001), &row(8, 2000))
    });
    crash_image(&a, &c);
    drop(store);
    drop(j);

    let check = |store: &Store| {
        for i in 0..40 {
            let want = if i == 35 { None } else { Some(400 + i) };
            assert_eq!(tag(store, "t", i), want, "key {i}");
        }
        assert_eq!(store.load_tables().expect("tables")[0].auto_increment, 14);
    };
    let (store, mut j) = open(&b);
    check(&store);
    assert_eq!(tag(&store, "t", 1000), None);
    // Writes after recovery survive another crash.
    batch(&store, &mut j, false, |s| {
        s.insert("t", &k(2000), &row(9, 1500))
    });
    let b2 = dir.path().join("b2");
    crash_image(&b, &b2);
    drop((store, j));
    let (store, _j) = open(&b2);
    check(&store);
    assert_eq!(tag(&store, "t", 2000), Some(9));
    drop((store, _j));

    // A torn last frame: the rows it held are gone, the rest stays, new writes work.
    let last = *segments(&c).last().expect("segment");
    let path = c.join(segment_file_name(last));
    let len = std::fs::metadata(&path).expect("stat").len();
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(len - 100).expect("truncate");
    drop(f);
    let (store, mut j) = open(&c);
    check(&store);
    assert_eq!(tag(&store, "t", 1000), Some(7));
    assert_eq!(tag(&store, "t", 1001), None);
    batch(&store, &mut j, false, |s| {
        s.insert("t", &k(1001), &row(10, 1500))
    });
    drop((store, j));
    let (store, _j) = open(&c);
    assert_eq!(tag(&store, "t", 1001), Some(10));
}

#[test]
fn compaction_frees_garbage_segments() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let (store, mut j) = open(dir.path());
    j.segment_bytes = 32 * 1024;
    j.unlink_delay = std::time::Duration::ZERO;
    batch(&store, &mut j, true, |s| {
        s.create_table(&record("t"))?;
        s.create_table(&record("gone"))
    });
    // Overwrite 20 rows of ~1 KB many times: early segments become garbage.
    for round in 0..30i64 {
        batch(&store, &mut j, false, |s| {
            for i in 0..20 {
                s.insert("t", &k(i), &row(round * 100 + i, 1000))?;
            }
            s.insert("gone", &k(round), &row(round, 1000))
        });
    }
    batch(&store, &mut j, true, |s| s.delete_table("gone"));
    let before = segments(dir.path()).len();
    assert!(before > 10, "{before} segments");
    let mut compacted = 0;
    while let Some(seg) = j.gc_candidate(&store) {
        batch(&store, &mut j, true, |s| {
            s.compact_segment(seg, |t| t == "t").map(|_| ())
        });
        // Reads on a fresh snapshot still work after each step.
        assert_eq!(tag(&store, "t", 3), Some(2903));
        j.unlink_doomed(&store);
        compacted += 1;
    }
    let after = segments(dir.path()).len();
    assert!(compacted > 0 && after < before / 2, "{before} -> {after}");
    for i in 0..20 {
        assert_eq!(tag(&store, "t", i), Some(2900 + i));
    }
    drop((store, j));
    let (store, _j) = open(dir.path());
    for i in 0..20 {
        assert_eq!(tag(&store, "t", i), Some(2900 + i));
    }
    assert_eq!(tag(&store, "gone", 1), None);
}

#[test]
fn row_and_record_round_trip() {
    let row = StoredRow {
        columns: vec![
            StoredColumn {
                name: "a".into(),
                versions: vec![(5, Value::Integer(-3)), (1, Value::Double(1.5))],
            },
            StoredColumn {
                name: "b".into(),
                versions: vec![
                    (7, Value::Boolean(true)),
                    (6, Value::String("héllo".into())),
                    (2, Value::Binary(vec![0, 1, 255])),
                ],
            },
        ],
    };
    let enc = encode_row(&row);
    assert_eq!(decode_row(&enc).ok(), Some(row));
    assert!(decode_row(&enc[..enc.len() - 1]).is_err());
    assert!(decode_row(&[ROW_FORMAT, 0xFF, 0xFF, 0xFF]).is_err());

    let mut def = TableDef::new(
        "t1",
        vec![PkSchema::new("a", PkType::String), {
            let mut p = PkSchema::new("b", PkType::Integer);
            p.auto_increment = true;
            p
        }],
    );
    def.defined_columns = vec![("c".into(), DefinedColumnType::Blob)];
    def.options.time_to_live = 86400;
    def.options.allow_update = false;
    let rec = TableRecord {
        def,
        creation_time: 1_700_000_000,
        auto_increment: 42,
    };
    assert_eq!(decode_record(&encode_record(&rec)).ok(), Some(rec));
}
