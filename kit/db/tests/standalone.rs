//! What needs no server: the standalone SQLite modes, and a primary that cannot be reached.

use std::time::Duration;

use gochat_core::{Context, Env, Health};
use gochat_db::{
    Config, Error, Options,
    sea_orm::{ConnectionTrait, Statement},
};
use gochat_testkit::block_on;

async fn scalar(db: &gochat_db::Db, sql: &str) -> String {
    let row = db
        .connection()
        .query_one_raw(Statement::from_string(db.backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

#[test]
fn a_sqlite_file_runs_in_wal_mode_and_keeps_its_data() {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let dsn = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
        let config = Config::with_primary(Env::Development, dsn);
        let db = gochat_db::new(&Context::new(), config.clone(), Options::default())
            .await
            .unwrap();
        assert_eq!(scalar(&db, "PRAGMA journal_mode").await, "wal");
        db.connection()
            .execute_unprepared("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('kept')")
            .await
            .unwrap();
        db.close().await;
        assert!(db.health().await != Health::up(), "closed");

        let reopened = gochat_db::new(&Context::new(), config, Options::default())
            .await
            .unwrap();
        assert_eq!(scalar(&reopened, "SELECT body FROM notes").await, "kept");
        reopened.close().await;
    });
}

#[test]
fn an_in_memory_database_is_one_database_for_the_whole_pool() {
    block_on(async {
        let config = Config::with_primary(Env::Development, "sqlite::memory:");
        let db = gochat_db::new(&Context::new(), config, Options::default())
            .await
            .unwrap();
        db.connection()
            .execute_unprepared("CREATE TABLE t (n INTEGER)")
            .await
            .unwrap();
        let writers = (0..20).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.connection()
                    .execute_unprepared(&format!("INSERT INTO t VALUES ({n})"))
                    .await
                    .unwrap();
            })
        });
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(
            scalar(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM t").await,
            "20"
        );
        assert_eq!(db.health().await, Health::up());
    });
}

#[test]
fn an_unreachable_primary_is_a_clear_error_without_the_password() {
    block_on(async {
        let mut config =
            Config::with_primary(Env::Production, "postgres://app:s3cret@127.0.0.1:1/chat");
        config.pool.connect_timeout = Duration::from_secs(1);
        config.pool.acquire_timeout = Duration::from_secs(1);
        let err = gochat_db::new(&Context::new(), config, Options::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1") && !text.contains("s3cret"),
            "{text}"
        );

        let err = gochat_db::new(
            &Context::new(),
            Config::with_primary(Env::Development, "oracle://x"),
            Options::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::Config(ref e) if e.field == "primary"),
            "{err}"
        );
    });
}
