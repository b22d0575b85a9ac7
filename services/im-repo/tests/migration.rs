//! Migrations over data written before them.

use gochat_db::{
    sea_orm::{ConnectionTrait, Database, Statement},
    sea_orm_migration::MigratorTrait,
};
use im_repo::Migrator;

/// Accounts registered before usernames were normalised are brought to the normal form, so
/// they can log in; a name whose normal form is taken is left alone, never merged.
#[tokio::test]
async fn legacy_usernames_are_brought_to_their_normal_form() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let db = Database::connect(url.as_str()).await.unwrap();
    Migrator::up(&db, Some(3)).await.unwrap();
    for (id, name) in [("1", "Alice"), ("2", " bob"), ("3", "carl"), ("4", "CARL")] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (id, username, password_hash, nickname, email, avatar, \
             created_at_ms, updated_at_ms) VALUES ('{id}', '{name}', 'h', 'n', '', '', 0, 0)"
        ))
        .await
        .unwrap();
    }
    Migrator::up(&db, None).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, username FROM users ORDER BY id",
        ))
        .await
        .unwrap();
    let names: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "id").unwrap(),
                row.try_get::<String>("", "username").unwrap(),
            )
        })
        .collect();
    let expected = [("1", "alice"), ("2", "bob"), ("3", "carl"), ("4", "CARL")];
    assert_eq!(
        names,
        expected.map(|(id, name)| (id.to_owned(), name.to_owned())),
        "CARL keeps its name: carl is another account"
    );
}
