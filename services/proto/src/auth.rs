//! Service-to-service authentication: every call between gochat services carries a shared
//! token (`authorization: Bearer …`), and a server built with [`require_token`] refuses calls
//! without it, so reaching the port is not enough to act as a user or read the database.
//!
//! ```
//! use gochat_proto::{ServiceToken, require_token, tonic::{Code, Request}};
//! use gochat_proto::tonic::service::Interceptor as _;
//!
//! let token = ServiceToken::new("q3Zk1m9V0rT8yXcL2bN7wPfH5sJd4gAe6uKo").unwrap();
//! let mut check = require_token(Some(token.clone()));
//! let mut signed = Request::new(());
//! token.sign(signed.metadata_mut());
//! assert!(check.call(signed).is_ok());
//! assert_eq!(check.call(Request::new(())).unwrap_err().code(), Code::Unauthenticated);
//! ```

use subtle::ConstantTimeEq as _;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataMap, errors::InvalidMetadataValue},
};

/// The metadata key the token travels in.
const KEY: &str = "authorization";

/// The shared token, as it is sent: `Bearer {token}`.
#[derive(Clone)]
pub struct ServiceToken(AsciiMetadataValue);

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceToken(***)")
    }
}

impl ServiceToken {
    /// The token `token` (printable ASCII).
    ///
    /// # Errors
    /// A token that cannot travel in gRPC metadata.
    pub fn new(token: &str) -> Result<Self, InvalidMetadataValue> {
        let mut value: AsciiMetadataValue = format!("Bearer {token}").parse()?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// Puts the token into a call's metadata.
    pub fn sign(&self, metadata: &mut MetadataMap) {
        metadata.insert(KEY, self.0.clone());
    }

    fn matches(&self, presented: &AsciiMetadataValue) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// A server interceptor: calls without `token` are refused as unauthenticated (constant-time
/// comparison); with `None`, every call passes (development).
pub fn require_token(
    token: Option<ServiceToken>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    move |request: Request<()>| match &token {
        None => Ok(request),
        Some(token) => match request.metadata().get(KEY) {
            Some(presented) if token.matches(presented) => Ok(request),
            _ => Err(Status::unauthenticated(
                "this service answers gochat services only: a service token is required",
            )),
        },
    }
}
