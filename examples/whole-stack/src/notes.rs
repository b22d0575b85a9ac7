//! The endpoint: notes written once per idempotency key, rate-limited per caller, stored
//! through a breaker, cached, and announced on the bus.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gochat_kit::{
    db::sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait},
    prelude::*,
};
use serde::{Deserialize, Serialize};

use crate::config::NOTES_RULE;

pub(crate) mod entity {
    // sea-orm's derives name `sea_orm::…`: the kit's re-export serves.
    use gochat_kit::db::sea_orm;
    use sea_orm::entity::prelude::*;

    /// One note.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "whole_stack_notes")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: i64,
        pub(crate) text: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The topic every stored note is announced on.
pub(crate) const TOPIC: &str = "whole-stack.notes";

/// What the handlers share.
pub(crate) struct App {
    pub(crate) service: String,
    pub(crate) greeting: String,
    pub(crate) backends: serde_json::Value,
    pub(crate) uid: Uid,
    pub(crate) cache: Cache,
    pub(crate) db: Db,
    pub(crate) mq: Mq,
    pub(crate) limiter: RateLimiter,
    pub(crate) once: Once,
    pub(crate) breakers: Breakers,
    pub(crate) coord: Coord,
    pub(crate) announced: Arc<AtomicU64>,
    pub(crate) health: Vec<Arc<dyn Lifecycle>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewNote {
    text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Note {
    /// A string: Snowflake ids do not fit a JavaScript number.
    id: String,
    text: String,
}

/// An error answer: `{"error": "…"}`.
pub(crate) struct Problem(StatusCode, String, Option<Duration>);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Self(status, error, retry_after) = self;
        let mut response = (status, Json(serde_json::json!({ "error": error }))).into_response();
        if let Some(wait) = retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Problem {
    Problem(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}: {e}"),
        None,
    )
}

/// `GET /`: who answers, and on which backends.
pub(crate) async fn index(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "service": app.service,
        "greeting": app.greeting,
        "backends": app.backends,
    }))
}

/// `POST /notes` `{text}`; `Idempotency-Key` makes retries return the first note; `X-User`
/// names the caller for the rate limit.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), Problem> {
    if new.text.trim().is_empty() || new.text.len() > 1000 {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "text must be 1 to 1000 bytes".into(),
            None,
        ));
    }
    let caller = headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous");
    let decision = app
        .limiter
        .allow(caller, NOTES_RULE)
        .await
        .map_err(|e| unavailable("ratelimit", e))?;
    if !decision.allowed {
        return Err(Problem(
            StatusCode::TOO_MANY_REQUESTS,
            "slow down".into(),
            decision.retry_after,
        ));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let note = match key {
        Some(key) => app
            .once
            .execute(
                &format!("notes:{caller}:{key}"),
                Duration::from_secs(600),
                || app.store(new.text),
            )
            .await
            .map_err(|e| unavailable("store", e))?,
        None => app
            .store(new.text)
            .await
            .map_err(|e| unavailable("store", e))?,
    };
    Ok((StatusCode::CREATED, Json(note)))
}

impl App {
    /// Stores a note through the database breaker, caches it, announces it.
    async fn store(&self, text: String) -> Result<Note, String> {
        let id = self.uid.snowflake().map_err(|e| e.to_string())?.as_i64();
        let row = entity::ActiveModel {
            id: Set(id),
            text: Set(text.clone()),
        };
        self.breakers
            .get("db")
            .call_with(|| row.insert(self.db.connection()), |_| true)
            .await
            .map_err(|e| e.to_string())?;
        let note = Note {
            id: id.to_string(),
            text,
        };
        let json = serde_json::to_vec(&note).map_err(|e| e.to_string())?;
        // A failed cache write costs a database read later, nothing more.
        let _ = self
            .cache
            .string()
            .set(&format!("note:{id}"), &json, Some(Duration::from_secs(300)))
            .await;
        let message = mq::Message::new(TOPIC, json).key(note.id.clone());
        self.mq
            .producer()
            .send(message)
            .await
            .map_err(|e| e.to_string())?;
        Ok(note)
    }
}

/// `GET /notes/{id}`: from the cache, else the database (single-flight).
pub(crate) async fn read(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
) -> Result<Json<Note>, Problem> {
    let db = app.db.reader().clone();
    let found = app
        .cache
        .get_or_load_json(
            &format!("note:{id}"),
            Duration::from_secs(300),
            || async move {
                let row = entity::Entity::find_by_id(id).one(&db).await?;
                Ok::<_, db::sea_orm::DbErr>(row.map(|m| Note {
                    id: m.id.to_string(),
                    text: m.text,
                }))
            },
        )
        .await
        .map_err(|e| unavailable("read", e))?;
    found
        .map(Json)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("no note {id}"), None))
}

/// `GET /stats`: notes seen on the bus, this service's registered instances.
pub(crate) async fn stats(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, Problem> {
    let instances = app
        .coord
        .registry()
        .discover(&app.service)
        .await
        .map_err(|e| unavailable("coord", e))?;
    Ok(Json(serde_json::json!({
        "announced": app.announced.load(Ordering::Relaxed),
        "instances": instances.iter().map(|i| &i.addr).collect::<Vec<_>>(),
    })))
}

/// `GET /healthz`: every stateful component; 503 when one is down.
pub(crate) async fn health(State(app): State<Arc<App>>) -> (StatusCode, Json<serde_json::Value>) {
    let report = gochat_kit::core::check_all(&app.health, Duration::from_secs(2)).await;
    let status = if report.is_up() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let components: serde_json::Map<String, serde_json::Value> = report
        .components
        .iter()
        .map(|(name, health)| {
            (
                name.clone(),
                serde_json::to_value(health).unwrap_or_default(),
            )
        })
        .collect();
    (status, Json(serde_json::Value::Object(components)))
}
