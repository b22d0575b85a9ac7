//! The contract's error body `{"code", "message"}` and how every failure maps to it.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tonic::{Code, Status};

/// The contract's error codes.
pub mod code {
    /// Invalid params (400).
    pub const INVALID: i32 = 1001;
    /// Unauthorized (401).
    pub const UNAUTHORIZED: i32 = 1002;
    /// Not found (404).
    pub const NOT_FOUND: i32 = 1003;
    /// Internal (500).
    pub const INTERNAL: i32 = 1004;
    /// Forbidden (403).
    pub const FORBIDDEN: i32 = 1005;
    /// Rate limited (429, with `Retry-After`).
    pub const RATE_LIMITED: i32 = 1006;
    /// Conflict (409).
    pub const CONFLICT: i32 = 1007;
}

use code::{CONFLICT, FORBIDDEN, INTERNAL, INVALID, NOT_FOUND, RATE_LIMITED, UNAUTHORIZED};

/// What a failed call answers: a contract code, its HTTP status, a message and, when rate
/// limited, how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The contract's code (1001–1007).
    pub code: i32,
    /// A human-readable reason.
    pub message: String,
    /// When to try again (rate limits).
    pub retry_after: Option<Duration>,
}

/// The error body clients see.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// 1001 invalid params, 1002 unauthorized, 1003 not found, 1004 internal, 1005 forbidden,
    /// 1006 rate limited, 1007 conflict.
    code: i32,
    message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 1001: the request is malformed or out of range.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(INVALID, message)
    }

    /// 1002: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(UNAUTHORIZED, message)
    }

    /// 1006 with the wait.
    pub fn rate_limited(what: &str, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after,
            ..Self::new(RATE_LIMITED, format!("rate limited: {what}"))
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status of a contract code.
fn status_of(code: i32) -> StatusCode {
    match code {
        INVALID => StatusCode::BAD_REQUEST,
        UNAUTHORIZED => StatusCode::UNAUTHORIZED,
        NOT_FOUND => StatusCode::NOT_FOUND,
        FORBIDDEN => StatusCode::FORBIDDEN,
        RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        CONFLICT => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => INVALID,
            Code::Unauthenticated => UNAUTHORIZED,
            Code::NotFound => NOT_FOUND,
            Code::PermissionDenied | Code::FailedPrecondition => FORBIDDEN,
            Code::ResourceExhausted => RATE_LIMITED,
            Code::AlreadyExists => CONFLICT,
            _ => INTERNAL,
        };
        let retry_after = status
            .metadata()
            .get(im_logic::RETRY_AFTER_MS)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Duration::from_millis);
        Self {
            code,
            message: status.message().to_owned(),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Whole seconds, rounded up, at least one.
        let wait = (self.code == RATE_LIMITED).then(|| {
            self.retry_after
                .map_or(1, |d| d.as_millis().div_ceil(1000).max(1))
        });
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (status_of(self.code), Json(body)).into_response();
        if let Some(secs) = wait
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }
}

/// What setting a gateway up can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config field is out of range.
    #[error(transparent)]
    Config(#[from] gochat_core::ConfigError),
    /// The downstream topic could not be created or subscribed to.
    #[error("mq: {0}")]
    Mq(#[from] gochat_mq::Error),
    /// The HTTP listener failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    /// A key of `jwt_public_keys` could not be read or is not an Ed25519 public key.
    #[error("jwt_public_keys: {0}")]
    Keys(#[from] im_logic::KeyError),
}
