//! The etcd v3 backend, on etcd-client. Every call is bounded by the request timeout.

use std::{future::Future, time::Duration};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use futures_util::StreamExt;
use gochat_core::BoxFuture;

use super::{
    Backend, Created, Event, EventStream, KeyValue, LeaseId, Revision, WatchError, ttl_secs,
};
use crate::{
    config::{EtcdConfig, TlsConfig},
    error::{Error, Result},
};

pub(crate) struct EtcdBackend {
    client: Client,
    timeout: Duration,
}

impl EtcdBackend {
    /// Connects and checks that the cluster answers, so a wrong address fails at start.
    pub(crate) async fn connect(config: &EtcdConfig) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.dial_timeout)
            .with_timeout(config.request_timeout)
            .with_keep_alive(config.keep_alive_interval, config.keep_alive_timeout)
            .with_keep_alive_while_idle(true);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            options = options.with_user(user.clone(), password.expose().to_owned());
        }
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        let connect = Client::connect(config.endpoints.clone(), Some(options));
        let client = bounded(config.dial_timeout, "connecting to etcd", connect).await?;
        let backend = Self {
            client,
            timeout: config.request_timeout,
        };
        backend.health().await?;
        Ok(backend)
    }

    async fn call<T, F>(&self, what: &'static str, f: impl FnOnce(Client) -> F) -> Result<T>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        bounded(self.timeout, what, f(self.client.clone())).await
    }
}

async fn bounded<T>(
    timeout: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result.map_err(|e| map_error(what, e)),
        Err(_) => Err(Error::Timeout(format!(
            "{what}: no answer within {timeout:?}"
        ))),
    }
}

fn map_error(what: &str, error: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    use tonic::Code;
    match error {
        E::GRpcStatus(status) => match status.code() {
            // Cancelled: the request died with its connection (a refused TLS handshake, a reset).
            Code::Unavailable | Code::Unknown | Code::Aborted | Code::Cancelled => {
                Error::Unavailable(format!("{what}: {}", status.message()))
            }
            Code::DeadlineExceeded => Error::Timeout(format!("{what}: {}", status.message())),
            Code::Unauthenticated | Code::PermissionDenied => {
                Error::Unavailable(format!("{what}: access denied: {}", status.message()))
            }
            Code::InvalidArgument => {
                Error::InvalidArgument(format!("{what}: {}", status.message()))
            }
            _ => Error::Backend(format!("{what}: {status}")),
        },
        E::TransportError(e) => Error::Unavailable(format!("{what}: {e}")),
        E::IoError(e) => Error::Unavailable(format!("{what}: {e}")),
        other => Error::Backend(format!("{what}: {other}")),
    }
}

fn tls_options(tls: &TlsConfig) -> Result<etcd_client::TlsOptions> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            Error::Config(gochat_core::ConfigError::new(
                "backend.etcd.tls",
                format!("cannot read {}: {e}", path.display()),
            ))
        })
    };
    let mut options = etcd_client::TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        options = options.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(domain) = &tls.domain {
        options = options.domain_name(domain.clone());
    }
    Ok(options)
}

fn key_string(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: key_string(kv.key()),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
    }
}

impl Backend for EtcdBackend {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>>> {
        let key = key.to_owned();
        Box::pin(async move {
            let response = self
                .call("get", |mut c| async move { c.get(key, None).await })
                .await?;
            Ok(response.kvs().first().map(key_value))
        })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision)>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let response = self
                .call("list", |mut c| async move {
                    c.get(prefix, Some(GetOptions::new().with_prefix())).await
                })
                .await?;
            let revision = response
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision);
            Ok((response.kvs().iter().map(key_value).collect(), revision))
        })
    }

    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Revision>> {
        let key = key.to_owned();
        Box::pin(async move {
            let options = lease.map(|id| PutOptions::new().with_lease(id));
            let response = self
                .call(
                    "put",
                    |mut c| async move { c.put(key, value, options).await },
                )
                .await?;
            Ok(response
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision))
        })
    }

    fn create(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Created>> {
        let key = key.to_owned();
        Box::pin(async move {
            let options = lease.map(|id| PutOptions::new().with_lease(id));
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, options)]);
            let response = self
                .call("create", |mut c| async move { c.txn(txn).await })
                .await?;
            let revision = response
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision);
            Ok(if response.succeeded() {
                Created::Yes(revision)
            } else {
                Created::No(revision)
            })
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let key = key.to_owned();
        Box::pin(async move {
            let response = self
                .call("delete", |mut c| async move { c.delete(key, None).await })
                .await?;
            Ok(response.deleted() > 0)
        })
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<(LeaseId, Duration)>> {
        Box::pin(async move {
            let secs = ttl_secs(ttl);
            let response = self
                .call("lease grant", |mut c| async move {
                    c.lease_grant(secs, None).await
                })
                .await?;
            let granted = Duration::from_secs(response.ttl().max(1).unsigned_abs());
            Ok((response.id(), granted))
        })
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            self.call("lease keep-alive", |mut c| async move {
                let (mut keeper, mut responses) = c.lease_keep_alive(lease).await?;
                keeper.keep_alive().await?;
                Ok(responses.message().await?.is_some_and(|r| r.ttl() > 0))
            })
            .await
        })
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self
                .call("lease revoke", |mut c| async move {
                    c.lease_revoke(lease).await
                })
                .await
            {
                Ok(_) => Ok(()),
                // Already expired or revoked: the goal is reached.
                Err(Error::Backend(message)) if message.contains("lease not found") => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'_, Result<EventStream>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let options = WatchOptions::new().with_prefix().with_start_revision(from);
            let stream = self
                .call("watch", |mut c| async move {
                    c.watch(prefix, Some(options)).await
                })
                .await?;
            let events = futures_util::stream::unfold(Some(stream), |state| async move {
                let mut stream = state?;
                loop {
                    match stream.message().await {
                        Ok(Some(response)) if response.canceled() => {
                            let error = if response.compact_revision() > 0 {
                                WatchError::Compacted
                            } else {
                                WatchError::Failed(Error::Unavailable(format!(
                                    "watch cancelled: {}",
                                    response.cancel_reason()
                                )))
                            };
                            return Some((Err(error), None));
                        }
                        Ok(Some(response)) => {
                            let events: Vec<Event> =
                                response.events().iter().filter_map(convert).collect();
                            if !events.is_empty() {
                                return Some((Ok(events), Some(stream)));
                            }
                        }
                        Ok(None) => {
                            let error = Error::Unavailable("the watch stream ended".to_owned());
                            return Some((Err(WatchError::Failed(error)), None));
                        }
                        Err(e) => {
                            return Some((Err(WatchError::Failed(map_error("watch", e))), None));
                        }
                    }
                }
            });
            Ok(events.boxed())
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.call("status", |mut c| async move { c.status().await })
                .await
                .map(drop)
        })
    }
}

fn convert(event: &etcd_client::Event) -> Option<Event> {
    let kv = event.kv()?;
    Some(match event.event_type() {
        EventType::Put => Event::Put(key_value(kv)),
        EventType::Delete => Event::Delete {
            key: key_string(kv.key()),
            revision: kv.mod_revision(),
        },
    })
}
