//! The web chat page at `/`: plain HTML, CSS and JavaScript compiled into the binary (nothing
//! from a CDN), speaking the same HTTP API and WebSocket as every other client.

use axum::{
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::{Html, IntoResponse},
};

/// `GET /`.
pub(crate) async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

/// `GET /app.js`.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../web/app.js"),
    )
}

/// `GET /style.css`.
pub(crate) async fn style() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../web/style.css"),
    )
}
