//! Mutual TLS for the services' gRPC (rustls): each process presents its certificate and
//! accepts only peers whose certificate the cluster's CA signed, in both directions.
//!
//! ```no_run
//! use gochat_proto::GrpcTls;
//!
//! # fn main() -> Result<(), gochat_proto::TlsError> {
//! let tls = GrpcTls::new(
//!     "/etc/gochat/tls/service.pem",
//!     "/etc/gochat/tls/service.key",
//!     "/etc/gochat/tls/ca.pem",
//! );
//! let server = tls.server()?; // for `Server::builder().tls_config(…)`
//! let client = tls.client()?; // for each `Endpoint::tls_config(…)` (an https:// URI)
//! assert!(server.is_some() && client.is_some());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use gochat_core::ConfigError;
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The name service certificates carry unless `server_name` says otherwise.
pub const DEFAULT_SERVER_NAME: &str = "gochat.internal";

/// Where a process's certificate, its key and the cluster's CA are. All three set: mutual
/// TLS; none: plain TCP (then at least `service_token` authenticates calls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GrpcTls {
    /// This process's certificate chain (PEM), presented as server and as client.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The CA certificate (PEM) that signed every service's certificate; a peer without
    /// such a certificate is refused.
    pub ca: PathBuf,
    /// The DNS name in every service certificate's subject alternative names, which callers
    /// check: instances are found by address in coord, so the whole cluster shares one name.
    /// Default: `gochat.internal`.
    pub server_name: String,
}

impl Default for GrpcTls {
    fn default() -> Self {
        Self {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            ca: PathBuf::new(),
            server_name: DEFAULT_SERVER_NAME.to_owned(),
        }
    }
}

/// A certificate or key file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("grpc_tls: reading {path}: {source}")]
pub struct TlsError {
    path: String,
    #[source]
    source: std::io::Error,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError {
        path: path.display().to_string(),
        source,
    })
}

impl GrpcTls {
    /// Mutual TLS with this certificate, key and CA, for the default server name.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>, ca: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
            ..Self::default()
        }
    }

    /// Whether mutual TLS is on.
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }

    /// Checks that the three files are named together, and the server name.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let set = [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)];
        let named = set
            .iter()
            .filter(|(_, p)| !p.as_os_str().is_empty())
            .count();
        if named != 0 && named != set.len() {
            let (field, _) = set
                .iter()
                .find(|(_, p)| p.as_os_str().is_empty())
                .copied()
                .unwrap_or(("cert", &self.cert));
            return Err(ConfigError::new(
                field,
                "mutual TLS needs cert, key and ca together",
            ));
        }
        if self.server_name.trim().is_empty() {
            return Err(ConfigError::new("server_name", "must not be empty"));
        }
        Ok(())
    }

    fn identity(&self) -> Result<(Identity, Certificate), TlsError> {
        let identity = Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        Ok((identity, Certificate::from_pem(read(&self.ca)?)))
    }

    /// The server side: this certificate, and client certificates required and checked
    /// against the CA. `None` when TLS is off.
    ///
    /// # Errors
    /// A [`TlsError`] for a file that cannot be read.
    pub fn server(&self) -> Result<Option<ServerTlsConfig>, TlsError> {
        if !self.enabled() {
            return Ok(None);
        }
        let (identity, ca) = self.identity()?;
        Ok(Some(
            ServerTlsConfig::new().identity(identity).client_ca_root(ca),
        ))
    }

    /// The client side: the server's certificate checked against the CA and `server_name`,
    /// this certificate presented. `None` when TLS is off.
    ///
    /// # Errors
    /// A [`TlsError`] for a file that cannot be read.
    pub fn client(&self) -> Result<Option<ClientTlsConfig>, TlsError> {
        if !self.enabled() {
            return Ok(None);
        }
        let (identity, ca) = self.identity()?;
        Ok(Some(
            ClientTlsConfig::new()
                .ca_certificate(ca)
                .identity(identity)
                .domain_name(self.server_name.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_the_three_files_go_together() {
        let tls = GrpcTls::default();
        assert!(!tls.enabled());
        assert!(tls.validate().is_ok());
        assert!(tls.server().unwrap().is_none() && tls.client().unwrap().is_none());
        let half = GrpcTls {
            cert: "c.pem".into(),
            ca: "ca.pem".into(),
            ..GrpcTls::default()
        };
        assert_eq!(half.validate().unwrap_err().field, "key");
    }

    #[test]
    fn a_missing_file_is_named() {
        let tls = GrpcTls::new(
            "/nonexistent/c.pem",
            "/nonexistent/c.key",
            "/nonexistent/ca.pem",
        );
        let err = tls.client().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
    }
}
