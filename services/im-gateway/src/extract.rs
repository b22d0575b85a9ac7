//! Extractors that answer a bad request with the contract's error body (1001, 1002) instead
//! of axum's plain-text rejections.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request},
    http::{HeaderMap, header::AUTHORIZATION, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{API_RULE, ApiError, Gateway};

/// A JSON body; malformed, mistyped or oversized is a 1001.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Query parameters; a bad one is a 1001.
pub(crate) struct Params<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Path segments; a bad one is a 1001.
pub(crate) struct Segments<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// The address of the client's end of the TCP connection (IPv4-mapped IPv6 addresses as
/// IPv4); `0.0.0.0` when the router is called without connection info (in tests). Proxy
/// headers such as `X-Forwarded-For` are not read: a client could set them to anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl ClientAddr {
    /// The address of a request's connection, if it was served with connection info.
    pub(crate) fn of(parts: &Parts) -> Self {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| {
                info.0.ip().to_canonical()
            });
        Self(ip)
    }
}

impl ClientAddr {
    /// The address as im-logic's per-address limits key it; empty when unknown.
    pub(crate) fn for_limits(self) -> String {
        if self.0.is_unspecified() {
            String::new()
        } else {
            self.0.to_string()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::of(parts))
    }
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The authenticated caller of an endpoint: a valid access token of a live session, within
/// the per-user `api` rate limit.
pub(crate) struct Caller {
    pub(crate) user_id: String,
    pub(crate) session_id: String,
    pub(crate) token: String,
}

impl FromRequestParts<Gateway> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <access_token>"))?
            .to_owned();
        let session = gateway.session(&token).await?;
        gateway.limit(&session.user_id, API_RULE).await?;
        Ok(Self {
            user_id: session.user_id,
            session_id: session.token_id,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[tokio::test]
    async fn the_client_address_comes_from_the_connection_or_is_unspecified() {
        let request = axum::http::Request::new(());
        let (mut parts, ()) = request.into_parts();
        let unknown = ClientAddr::from_request_parts(&mut parts, &()).await;
        assert_eq!(unknown, Ok(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        parts.extensions.insert(ConnectInfo(mapped));
        let known = ClientAddr::from_request_parts(&mut parts, &()).await;
        assert_eq!(known, Ok(ClientAddr("10.1.2.3".parse().unwrap())));
    }

    #[test]
    fn bearer_tokens_are_read_whatever_the_scheme_case() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
