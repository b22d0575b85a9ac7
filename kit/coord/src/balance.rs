//! A tonic channel balanced over a service's instances, following the registry.

use tonic::transport::{Channel, ClientTlsConfig, Endpoint, channel::Change};

use crate::{Error, Registry, RegistryEvent};

impl Registry {
    /// A tonic [`Channel`] that spreads calls over the instances of `service` and follows the
    /// registry: instances are added and removed as they come and go.
    ///
    /// Instances are reached at `http://{addr}`. While the service has no instance, calls wait
    /// for one (tonic's balancer holds them until an endpoint is ready): bound calls with a
    /// timeout, as every remote call should be.
    ///
    /// # Errors
    /// An invalid service name, or a closed provider.
    pub fn balanced_channel(&self, service: &str) -> Result<Channel, Error> {
        self.balanced_channel_with(service, None)
    }

    /// [`Registry::balanced_channel`] over TLS when `tls` is given: instances are reached at
    /// `https://{addr}` with `tls` (the CA to trust, the name to check, a client certificate
    /// for mutual TLS).
    ///
    /// # Errors
    /// An invalid service name, or a closed provider.
    pub fn balanced_channel_with(
        &self,
        service: &str,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Channel, Error> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut events = self.watch(service)?;
        let (channel, changes) = Channel::balance_channel::<String>(64);
        let log = self.shared.log.clone();
        self.shared.ctx.spawn(async move {
            while let Some(event) = events.next().await {
                let change = match event {
                    RegistryEvent::Added(instance) | RegistryEvent::Updated(instance) => {
                        let endpoint = Endpoint::from_shared(format!("{scheme}://{}", instance.addr))
                            .and_then(|endpoint| match &tls {
                                Some(tls) => endpoint.tls_config(tls.clone()),
                                None => Ok(endpoint),
                            });
                        match endpoint {
                            Ok(endpoint) => Change::Insert(instance.id, endpoint),
                            Err(e) => {
                                gochat_clog::warn!(log, addr = instance.addr, error = %e, "skipping an instance with a bad address");
                                continue;
                            }
                        }
                    }
                    RegistryEvent::Removed { id } => Change::Remove(id),
                };
                if changes.send(change).await.is_err() {
                    return;
                }
            }
        });
        Ok(channel)
    }
}
