//! `/healthz`, `/readyz`, `/metrics`, and the answer to unknown paths.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{ApiError, Gateway, error::code::NOT_FOUND};

/// How long a backend may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers.
pub(crate) async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: every backend answers and the gateway is not stopping.
pub(crate) async fn ready(State(gw): State<Gateway>) -> Response {
    let report = gochat_core::check_all(&gw.inner.deps.ready, CHECK_TIMEOUT).await;
    let up = report.is_up() && !gw.is_stopping();
    let components: serde_json::Map<String, serde_json::Value> = report
        .components
        .into_iter()
        .map(|(name, health)| (name, json!(health)))
        .collect();
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if up { "ready" } else { "unavailable" },
        "stopping": gw.is_stopping(),
        "components": components,
    });
    (status, Json(body)).into_response()
}

/// Prometheus text, when the gateway was given a metrics provider.
pub(crate) async fn metrics(State(gw): State<Gateway>) -> Result<Response, ApiError> {
    let Some(metrics) = &gw.inner.deps.metrics else {
        return Err(ApiError::new(NOT_FOUND, "metrics are not enabled"));
    };
    let text = metrics
        .scrape()
        .map_err(|e| ApiError::new(crate::error::code::INTERNAL, e.to_string()))?;
    Ok(([(CONTENT_TYPE, gochat_metrics::CONTENT_TYPE)], text).into_response())
}

/// Any path the gateway does not serve.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(NOT_FOUND, "no such endpoint")
}
