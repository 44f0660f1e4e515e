//! The MySQL source side against a real, private MariaDB (tests/integration/harness/mariadb.rs).

use std::time::Duration;

use crate::harness::mariadb::{MariaDb, USER};
use mysql_async::prelude::Queryable;
use tsmigrate_core::mysql::{
    self, binlog_position, binlog_settings, describe_table, describe_tables, grants,
    key_for_migration, list_tables, server_info, ColumnDefault, ConnectOptions, Flavor, Generated,
    ReadingPool, RetentionSource, SourceError, TlsMode,
};

async fn user_conn(db: &MariaDb) -> mysql::Conn {
    match mysql::connect(&db.user_options()).await {
        Ok(c) => c,
        Err(e) => panic!("tsmigrate user cannot connect: {e}"),
    }
}

#[tokio::test]
async fn detects_mariadb_flavor_and_version() {
    let db = MariaDb::shared();
    let mut conn = user_conn(db).await;
    let info = server_info(&mut conn).await.unwrap();
    assert_eq!(info.flavor, Flavor::MariaDb);
    assert!(info.version >= (10, 5, 0), "{info:?}");
    assert!(info.version_string.contains("MariaDB"), "{info:?}");
    assert!(!info.is_rds && !info.is_aurora);
    assert!(info.has_binlog_row_metadata() && info.has_invisible_columns());
    assert!(!info.uses_show_binary_log_status());
    mysql::close(conn).await;
}

#[tokio::test]
async fn binlog_settings_read_back_exactly() {
    let db = MariaDb::shared();
    let mut conn = user_conn(db).await;
    let info = server_info(&mut conn).await.unwrap();
    let s = binlog_settings(&mut conn, &info).await.unwrap();
    assert!(s.log_bin);
    assert_eq!(s.binlog_format.as_deref(), Some("ROW"));
    assert_eq!(s.binlog_row_image.as_deref(), Some("FULL"));
    assert_eq!(s.binlog_row_metadata.as_deref(), Some("FULL"));
    assert!(s.is_row_based_full());
    assert_eq!(s.server_id, 1);
    // MariaDB 10.11 default: no automatic purge
    assert_eq!(s.retention, None);
    assert_eq!(s.retention_source, RetentionSource::NoAutomaticPurge);
    assert_eq!(s.gtid_mode, None);
    assert_eq!(s.gtid_strict_mode, Some(false));
    assert_eq!(s.log_replica_updates, Some(false));
    assert_eq!(s.log_bin_compress, Some(false));
    assert_eq!(s.binlog_checksum.as_deref(), Some("CRC32"));
    assert!(s.warnings.is_empty());
    mysql::close(conn).await;
}

#[tokio::test]
async fn bad_binlog_setup_reads_back_as_such() {
    let bad = MariaDb::start_with(&[
        "--binlog-format=STATEMENT",
        "--binlog-row-image=MINIMAL",
        "--binlog-row-metadata=MINIMAL",
        "--binlog-expire-logs-seconds=259200",
        "--log-slave-updates",
        "--server-id=7",
    ]);
    let mut conn = user_conn(&bad).await;
    let info = server_info(&mut conn).await.unwrap();
    let s = binlog_settings(&mut conn, &info).await.unwrap();
    assert!(s.log_bin);
    assert_eq!(s.binlog_format.as_deref(), Some("STATEMENT"));
    assert_eq!(s.binlog_row_image.as_deref(), Some("MINIMAL"));
    assert_eq!(s.binlog_row_metadata.as_deref(), Some("MINIMAL"));
    assert!(!s.is_row_based_full());
    assert_eq!(s.retention, Some(Duration::from_secs(3 * 86_400)));
    assert_eq!(s.retention_source, RetentionSource::BinlogExpireLogsSeconds);
    assert_eq!(s.log_replica_updates, Some(true));
    assert_eq!(s.server_id, 7);
    mysql::close(conn).await;
}

#[tokio::test]
async fn binlog_off_is_reported() {
    let off = MariaDb::start_with(&["--skip-log-bin"]);
    let mut conn = user_conn(&off).await;
    let info = server_info(&mut conn).await.unwrap();
    let s = binlog_settings(&mut conn, &info).await.unwrap();
    assert!(!s.log_bin);
    assert!(!s.is_row_based_full());
    let err = binlog_position(&mut conn, &info).await.unwrap_err();
    assert!(matches!(err, SourceError::BinlogDisabled { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("--log-bin"), "{err}");
    mysql::close(conn).await;
}

#[tokio::test]
async fn binlog_position_advances_after_a_write() {
    let db = MariaDb::shared();
    let name = db.fresh_database("pos").await;
    db.exec(&format!(
        "CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await;
    let mut conn = user_conn(db).await;
    let info = server_info(&mut conn).await.unwrap();
    let before = binlog_position(&mut conn, &info).await.unwrap();
    assert!(before.file.starts_with("binlog."), "{before}");
    assert!(before.pos >= 4);
    db.exec(&format!("INSERT INTO `{name}`.t VALUES (1, 'a'), (2, 'b')"))
        .await;
    let after = binlog_position(&mut conn, &info).await.unwrap();
    assert!(
        (after.file.as_str(), after.pos) > (before.file.as_str(), before.pos),
        "{before} -> {after}"
    );
    // MariaDB GTIDs are always on: domain-server-seq
    let gtid = after
        .gtid_set
        .clone()
        .expect("a GTID position after writes");
    assert!(gtid.starts_with("0-1-"), "{gtid}");
    assert_ne!(before.gtid_set, after.gtid_set);
    let files = mysql::binary_logs(&mut conn).await.unwrap();
    assert!(files.iter().any(|f| f.name == after.file), "{files:?}");
    mysql::close(conn).await;
}

#[tokio::test]
async fn grants_of_the_migration_user() {
    let db = MariaDb::shared();
    let mut conn = user_conn(db).await;
    let g = grants(&mut conn).await.unwrap();
    assert_eq!(g.current_user, format!("{USER}@%"));
    assert_eq!(g.flavor, Flavor::MariaDb);
    assert!(g.has_replication_slave(), "{g:?}");
    assert!(g.has_replication_client(), "{g:?}");
    assert!(g.can_select("anything", "at_all"));
    assert!(g.unparsed.is_empty(), "{:?}", g.unparsed);
    mysql::close(conn).await;
}

#[tokio::test]
async fn grants_without_replication_and_via_roles() {
    let db = MariaDb::shared();
    let shop = db.fresh_database("gshop").await;
    let other = db.fresh_database("gother").await;
    db.exec(&format!(
        "CREATE USER 'plain'@'%' IDENTIFIED BY 'plain-pass';
         GRANT SELECT ON `{shop}`.* TO 'plain'@'%';
         CREATE TABLE `{other}`.t1 (id INT PRIMARY KEY);
         CREATE TABLE `{other}`.t2 (id INT PRIMARY KEY, secret INT);
         GRANT SELECT ON `{other}`.t1 TO 'plain'@'%';
         GRANT SELECT (id) ON `{other}`.t2 TO 'plain'@'%';
         CREATE ROLE r_repl;
         GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO r_repl;
         CREATE USER 'viarole'@'%' IDENTIFIED BY 'role-pass';
         GRANT r_repl TO 'viarole'@'%';
         SET DEFAULT ROLE r_repl FOR 'viarole'@'%';
         CREATE USER 'inactive'@'%' IDENTIFIED BY 'inactive-pass';
         GRANT r_repl TO 'inactive'@'%';"
    ))
    .await;

    let opts = ConnectOptions::new("127.0.0.1", db.port(), "plain", "plain-pass")
        .with_tls(TlsMode::Disabled);
    let mut conn = mysql::connect(&opts).await.unwrap();
    let g = grants(&mut conn).await.unwrap();
    assert!(!g.has_replication_slave());
    assert!(!g.has_replication_client());
    assert!(g.can_select(&shop, "orders"));
    assert!(g.can_select(&other, "t1"));
    assert!(
        !g.can_select(&other, "t2"),
        "column-level grant is not enough"
    );
    assert!(!g.can_select("mysql", "user"));
    // and the server agrees: SHOW MASTER STATUS needs BINLOG MONITOR
    let info = server_info(&mut conn).await.unwrap();
    let err = binlog_position(&mut conn, &info).await.unwrap_err();
    assert!(matches!(err, SourceError::AccessDenied { .. }), "{err}");
    assert!(!err.is_transient());
    mysql::close(conn).await;

    let opts = ConnectOptions::new("127.0.0.1", db.port(), "viarole", "role-pass")
        .with_tls(TlsMode::Disabled);
    let mut conn = mysql::connect(&opts).await.unwrap();
    let g = grants(&mut conn).await.unwrap();
    assert_eq!(g.active_roles.len(), 1, "{g:?}");
    assert!(g.inactive_roles().is_empty());
    assert!(
        g.has_replication_slave() && g.has_replication_client(),
        "{g:?}"
    );
    mysql::close(conn).await;

    let opts = ConnectOptions::new("127.0.0.1", db.port(), "inactive", "inactive-pass")
        .with_tls(TlsMode::Disabled);
    let mut conn = mysql::connect(&opts).await.unwrap();
    let g = grants(&mut conn).await.unwrap();
    assert!(!g.has_replication_slave(), "{g:?}");
    assert_eq!(g.inactive_roles().len(), 1, "{g:?}");
    mysql::close(conn).await;
}

#[tokio::test]
async fn introspects_every_type_family() {
    let db = MariaDb::shared();
    let name = db.fresh_database("types").await;
    db.exec(&format!(
        r"CREATE TABLE `{name}`.all_types (
            ti TINYINT NOT NULL,
            si SMALLINT UNSIGNED,
            mi MEDIUMINT,
            i INT DEFAULT 7,
            bi BIGINT UNSIGNED NOT NULL,
            dec_max DECIMAL(65,30),
            f FLOAT,
            d DOUBLE,
            b5 BIT(5) DEFAULT b'101',
            y YEAR,
            dt DATE DEFAULT '2024-01-01',
            tm TIME(3),
            dtm DATETIME(6),
            ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            c CHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
            vc VARCHAR(100) CHARACTER SET utf8mb4 DEFAULT 'it''s',
            vl VARCHAR(50) CHARACTER SET latin1,
            tx TEXT,
            bl BLOB,
            bn BINARY(16),
            vb VARBINARY(64),
            e ENUM('small','it''s','back\\slash','com,ma') NOT NULL,
            st SET('a','b','c'),
            j JSON,
            g GEOMETRY,
            hidden INT INVISIBLE DEFAULT 3,
            gen_v INT AS (i * 2) VIRTUAL,
            gen_s INT AS (i + 1) PERSISTENT,
            PRIMARY KEY (bi, ti)
        ) ENGINE=InnoDB"
    ))
    .await;
    let mut conn = user_conn(db).await;
    let t = describe_table(&mut conn, &name, "all_types").await.unwrap();
    assert_eq!(t.schema, name);
    assert_eq!(t.engine.as_deref(), Some("InnoDB"));
    assert_eq!(t.charset.as_deref(), Some("utf8mb4"));
    assert_eq!(t.primary_key, ["bi", "ti"]);
    assert_eq!(key_for_migration(&t), Some(vec!["bi".into(), "ti".into()]));
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 28);
    assert_eq!(names[0], "ti");
    assert_eq!(names[27], "gen_s");
    for (i, c) in t.columns.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i + 1);
    }
    let c = |n: &str| t.column(n).unwrap_or_else(|| panic!("no column {n}"));

    assert_eq!(c("ti").data_type, "tinyint");
    assert!(!c("ti").nullable && !c("ti").unsigned);
    assert_eq!(c("si").data_type, "smallint");
    assert!(c("si").unsigned && c("si").nullable);
    assert_eq!(c("mi").data_type, "mediumint");
    assert_eq!(c("i").default, Some(ColumnDefault::Literal("7".into())));
    assert_eq!(c("bi").column_type, "bigint(20) unsigned");
    assert!(c("bi").unsigned);
    assert_eq!(c("dec_max").data_type, "decimal");
    assert_eq!(c("dec_max").numeric_precision, Some(65));
    assert_eq!(c("dec_max").numeric_scale, Some(30));
    assert_eq!(c("f").data_type, "float");
    assert_eq!(c("d").data_type, "double");
    assert_eq!(c("b5").data_type, "bit");
    assert_eq!(c("b5").bit_width, Some(5));
    assert_eq!(
        c("b5").default,
        Some(ColumnDefault::Literal("b'101'".into()))
    );
    assert_eq!(c("y").data_type, "year");
    assert_eq!(
        c("dt").default,
        Some(ColumnDefault::Literal("2024-01-01".into()))
    );
    assert_eq!(c("tm").datetime_precision, Some(3));
    assert_eq!(c("dtm").datetime_precision, Some(6));
    assert_eq!(c("ts").data_type, "timestamp");
    assert_eq!(c("ts").datetime_precision, Some(6));
    assert!(
        matches!(c("ts").default, Some(ColumnDefault::Expression(ref e)) if e.starts_with("current_timestamp"))
    );
    assert_eq!(c("c").collation.as_deref(), Some("utf8mb4_bin"));
    assert_eq!(c("c").char_max_length, Some(10));
    assert_eq!(c("c").octet_max_length, Some(40));
    assert_eq!(c("vc").charset.as_deref(), Some("utf8mb4"));
    assert_eq!(c("vc").default, Some(ColumnDefault::Literal("it's".into())));
    assert_eq!(c("vl").charset.as_deref(), Some("latin1"));
    assert_eq!(c("vl").octet_max_length, Some(50));
    assert_eq!(c("tx").data_type, "text");
    assert_eq!(c("bl").data_type, "blob");
    assert_eq!(c("bl").charset, None);
    assert_eq!(c("bn").data_type, "binary");
    assert_eq!(c("bn").octet_max_length, Some(16));
    assert_eq!(c("vb").data_type, "varbinary");
    assert_eq!(c("e").data_type, "enum");
    assert_eq!(
        c("e").enum_values,
        ["small", "it's", r"back\slash", "com,ma"]
    );
    assert!(!c("e").nullable);
    assert_eq!(c("st").set_values, ["a", "b", "c"]);
    assert!(c("j").json, "MariaDB JSON is LONGTEXT + json_valid check");
    assert_eq!(c("j").data_type, "longtext");
    assert_eq!(c("g").data_type, "geometry");
    assert!(c("hidden").invisible);
    assert_eq!(
        c("hidden").default,
        Some(ColumnDefault::Literal("3".into()))
    );
    assert!(!c("i").invisible);
    assert_eq!(c("gen_v").generated, Some(Generated::Virtual));
    assert_eq!(c("gen_s").generated, Some(Generated::Stored));
    assert!(c("gen_v").generation_expression.is_some());
    assert_eq!(c("i").generated, None);
    mysql::close(conn).await;
}

#[tokio::test]
async fn keys_estimates_and_listing() {
    let db = MariaDb::shared();
    let name = db.fresh_database("keys").await;
    db.exec(&format!(
        "USE `{name}`;
         CREATE TABLE composite (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b));
         CREATE TABLE only_unique (code VARCHAR(20) NOT NULL, maybe INT, v INT,
             UNIQUE KEY u_maybe (maybe), UNIQUE KEY u_code (code));
         CREATE TABLE nullable_unique (x INT, UNIQUE KEY ux (x));
         CREATE TABLE no_key (x INT, y INT);
         CREATE VIEW a_view AS SELECT x FROM no_key;
         INSERT INTO composite SELECT seq, CONCAT('k', seq), seq FROM seq_1_to_1000;
         ANALYZE TABLE composite;"
    ))
    .await;
    let mut conn = user_conn(db).await;
    let tables = list_tables(&mut conn, &name).await.unwrap();
    assert_eq!(
        tables,
        ["composite", "no_key", "nullable_unique", "only_unique"]
    );

    let all = describe_tables(&mut conn, &name, &tables).await.unwrap();
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, tables);

    let composite = &all[0];
    assert_eq!(composite.primary_key, ["a", "b"]);
    assert!(
        (500..=2000).contains(&composite.row_estimate),
        "estimate {}",
        composite.row_estimate
    );
    assert!(composite.avg_row_length > 0 && composite.data_length > 0);

    let no_key = &all[1];
    assert!(no_key.primary_key.is_empty() && no_key.unique_keys.is_empty());
    assert_eq!(key_for_migration(no_key), None);

    let nullable = &all[2];
    assert_eq!(nullable.unique_keys.len(), 1);
    assert!(!nullable.unique_keys[0].all_not_null);
    assert_eq!(key_for_migration(nullable), None);

    let only_unique = &all[3];
    assert!(only_unique.primary_key.is_empty());
    assert_eq!(only_unique.unique_keys.len(), 2);
    let code = only_unique
        .unique_keys
        .iter()
        .find(|k| k.name == "u_code")
        .unwrap();
    assert!(code.all_not_null);
    assert_eq!(
        key_for_migration(only_unique),
        Some(vec!["code".to_string()])
    );

    let err = describe_table(&mut conn, &name, "a_view")
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::TableNotFound { .. }), "{err}");
    let err = describe_table(&mut conn, &name, "missing")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"));
    mysql::close(conn).await;
}

#[tokio::test]
async fn connect_errors_are_classified() {
    let db = MariaDb::shared();
    // wrong password: definite
    let mut opts = db.user_options();
    opts.password = "wrong-password".into();
    let err = mysql::connect(&opts).await.unwrap_err();
    assert!(
        matches!(err, SourceError::AccessDenied { code: 1045, .. }),
        "{err}"
    );
    assert!(!err.is_transient() && !err.is_connection_failure());
    assert!(!err.to_string().contains("wrong-password"));

    // unknown database: definite
    let opts = db.user_options().with_database("no_such_db");
    let err = mysql::connect(&opts).await.unwrap_err();
    assert!(matches!(err, SourceError::UnknownDatabase { .. }), "{err}");
    assert!(!err.is_transient());

    // nothing listening: connection failure, transient
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let opts = ConnectOptions::new("127.0.0.1", closed, "u", "p").with_tls(TlsMode::Disabled);
    let err = mysql::connect(&opts).await.unwrap_err();
    assert!(err.is_connection_failure() && err.is_transient(), "{err}");

    // a listener that never sends the greeting: timeout, connection failure
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut opts = ConnectOptions::new("127.0.0.1", silent.local_addr().unwrap().port(), "u", "p")
        .with_tls(TlsMode::Disabled);
    opts.connect_timeout = Duration::from_millis(300);
    let err = mysql::connect(&opts).await.unwrap_err();
    assert!(matches!(err, SourceError::ConnectTimeout { .. }), "{err}");
    assert!(err.is_connection_failure() && err.is_transient());
    drop(silent);

    // TLS required but the server has none: definite, with a fix
    let opts = db.user_options().with_tls(TlsMode::Required);
    let err = mysql::connect(&opts).await.unwrap_err();
    assert!(matches!(err, SourceError::Tls { .. }), "{err}");
    assert!(!err.is_transient());

    // TLS preferred falls back to plain TCP
    let opts = db.user_options().with_tls(TlsMode::Preferred);
    let conn = mysql::connect(&opts).await.unwrap();
    mysql::close(conn).await;
}

#[tokio::test]
async fn reading_sessions_use_utc() {
    let db = MariaDb::shared();
    let mut conn = mysql::connect_for_reading(&db.user_options())
        .await
        .unwrap();
    let tz: Option<String> = conn
        .query_first("SELECT @@session.time_zone")
        .await
        .unwrap();
    assert_eq!(tz.as_deref(), Some("+00:00"));
    mysql::close(conn).await;

    let pool = ReadingPool::connect(&db.user_options().with_tls(TlsMode::Preferred), 2)
        .await
        .unwrap();
    for _ in 0..3 {
        let mut c = pool.get().await.unwrap();
        let tz: Option<String> = c.query_first("SELECT @@session.time_zone").await.unwrap();
        assert_eq!(tz.as_deref(), Some("+00:00"));
    }
    pool.close().await;
}

#[tokio::test]
async fn lock_wait_timeout_is_transient() {
    let db = MariaDb::shared();
    let name = db.fresh_database("locks").await;
    db.exec(&format!(
        "CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v INT); INSERT INTO `{name}`.t VALUES (1, 1)"
    ))
    .await;
    let mut holder = db.admin_conn().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop(format!("SELECT * FROM `{name}`.t WHERE id = 1 FOR UPDATE"))
        .await
        .unwrap();
    let mut waiter = db.admin_conn().await;
    waiter
        .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let raw = waiter
        .query_drop(format!("UPDATE `{name}`.t SET v = 2 WHERE id = 1"))
        .await
        .unwrap_err();
    let err = SourceError::from_mysql("updating a row", raw);
    assert_eq!(err.server_code(), Some(1205), "{err}");
    assert!(err.is_transient() && !err.is_connection_failure(), "{err}");
    holder.query_drop("ROLLBACK").await.unwrap();
    mysql::close(holder).await;
    mysql::close(waiter).await;
}
