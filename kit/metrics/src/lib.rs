#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod carrier;
mod client;
mod config;
mod instruments;
mod metered_body;
mod otlp;
mod serve;
mod server;

use std::{fmt, sync::Arc};

use gochat_clog::Logger;
use gochat_core::{BoxFuture, ConfigError, Context, ErrorKind, Health, KitError, Lifecycle};
use opentelemetry::{KeyValue, metrics::MeterProvider as _};
use opentelemetry_sdk::{
    Resource,
    metrics::SdkMeterProvider,
    trace::{Sampler, SdkTracerProvider},
};

pub use carrier::{HeaderExtractor, HeaderInjector};
pub use client::{ClientLayer, ClientService};
pub use config::{Config, OtlpConfig};
pub use metered_body::MeteredBody;
/// The OpenTelemetry API this crate is built on, so instruments use the same version.
pub use opentelemetry;
pub use server::{ServerLayer, ServerService, TRACE_ID_HEADER};

/// Why the metrics provider could not be built or served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Prometheus exporter or encoder failed.
    #[error("prometheus: {0}")]
    Prometheus(String),
    /// The OTLP exporter could not be built.
    #[error("otlp: {0}")]
    Otlp(String),
    /// The scrape listener could not bind.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::Prometheus(_) => ErrorKind::Internal,
            Self::Otlp(_) => ErrorKind::InvalidConfig,
            Self::Listen { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
}

impl Options {
    /// The logger (namespace `metrics` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }
}

/// Builds the meter and tracer providers, with `service.name` and `service.instance.id` on
/// everything they record, and a Prometheus registry to scrape.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::Prometheus`].
pub fn new(ctx: &Context, config: Config, opts: Options) -> Result<Metrics, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("metrics");
    let instance = config
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("pid-{}", std::process::id()));
    // Empty, not from OTEL_* variables: the config is the one place that says who we are.
    let resource = Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.instance.id", instance))
        .build();
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .scope_info_enabled(false)
        .build()
        .map_err(|e| Error::Prometheus(e.to_string()))?;
    let mut meters = SdkMeterProvider::builder()
        .with_resource(resource.clone())
        .with_reader(exporter);
    let mut tracers = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sampling_ratio,
        ))))
        .with_resource(resource);
    if let Some(otlp) = &config.otlp {
        let (spans, metrics) = otlp::exporters(otlp)?;
        tracers = tracers.with_batch_exporter(spans);
        meters = meters.with_reader(metrics);
    }
    let meters = meters.build();
    let tracers = tracers.build();
    Ok(Metrics {
        shared: Arc::new(Shared {
            config,
            meters,
            tracers,
            registry,
            log,
            ctx: ctx.child(),
        }),
    })
}

/// The metrics provider: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    meters: SdkMeterProvider,
    tracers: SdkTracerProvider,
    registry: prometheus::Registry,
    log: Logger,
    ctx: Context,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("service_name", &self.shared.config.service_name)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A meter for a component (`cache`, `mq`, …): what a component's `Options::metrics`
    /// takes.
    pub fn meter(&self, component: &'static str) -> opentelemetry::metrics::Meter {
        self.shared.meters.meter(component)
    }

    /// The tracer provider, for exporters of your own.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.shared.tracers
    }

    /// Makes these providers OpenTelemetry's global ones, so components built without
    /// `Options::metrics` (and libraries that use `opentelemetry::global`) report here.
    /// Install before building the components: a meter is taken when a component is built.
    pub fn install_global(&self) {
        opentelemetry::global::set_meter_provider(self.shared.meters.clone());
        opentelemetry::global::set_tracer_provider(self.shared.tracers.clone());
    }

    /// A tracer for the tracing ↔ OpenTelemetry bridge: pass it to
    /// `gochat_clog::Options::tracer` so spans become OpenTelemetry spans and logged trace
    /// ids are OpenTelemetry's.
    pub fn tracer(&self) -> opentelemetry_sdk::trace::SdkTracer {
        opentelemetry::trace::TracerProvider::tracer(&self.shared.tracers, "gochat")
    }

    /// Every metric in Prometheus's text format (content type
    /// [`CONTENT_TYPE`]), for an HTTP handler of your own.
    ///
    /// # Errors
    /// [`Error::Prometheus`] when encoding fails.
    pub fn scrape(&self) -> Result<String, Error> {
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &self.shared.registry.gather(),
            &mut text,
        )
        .map_err(|e| Error::Prometheus(e.to_string()))?;
        String::from_utf8(text).map_err(|e| Error::Prometheus(e.to_string()))
    }

    /// Answers `GET /metrics` on `listen` until the provider closes; returns the bound address
    /// (useful with port 0).
    ///
    /// # Errors
    /// [`Error::Listen`]; [`Error::Config`] when `listen` is not set.
    pub async fn serve(&self) -> Result<std::net::SocketAddr, Error> {
        let address = self
            .shared
            .config
            .listen
            .ok_or_else(|| ConfigError::new("listen", "is not set: mount scrape() instead"))?;
        serve::serve(self.clone(), address, &self.shared.ctx).await
    }

    /// Flushes and shuts both providers down. Idempotent.
    pub async fn close(&self) {
        let shared = self.shared.clone();
        if shared.ctx.is_cancelled() {
            return;
        }
        shared.ctx.cancel();
        // Flushing blocks until the exporters are done, and an OTLP export needs this
        // runtime to make progress: block a thread of the blocking pool, not this one.
        let flush = move || {
            // Errors here are "already shut down" or an exporter that cannot flush: logged.
            for result in [
                shared.meters.force_flush(),
                shared.tracers.force_flush(),
                shared.meters.shutdown(),
                shared.tracers.shutdown(),
            ] {
                if let Err(e) = result {
                    gochat_clog::warn!(shared.log, error = %e, "closing the metrics providers");
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                if let Err(e) = runtime.spawn_blocking(flush).await {
                    gochat_clog::warn!(self.shared.log, error = %e, "flushing the metrics providers");
                }
            }
            Err(_) => flush(),
        }
    }

    pub(crate) fn log(&self) -> &Logger {
        &self.shared.log
    }
}

/// The content type of [`Metrics::scrape`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

impl Lifecycle for Metrics {
    fn name(&self) -> &str {
        "metrics"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            match self.scrape() {
                Ok(_) => Health::up(),
                Err(e) => Health::down(e.to_string()),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Metrics::close(self))
    }
}
