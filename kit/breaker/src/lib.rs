#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod breaker;
mod config;
mod layer;
mod metrics;
mod stats;

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use gochat_clog::Logger;
use gochat_coord::Coord;
use gochat_core::{ConfigError, Context, ErrorKind, KitError};

pub use breaker::{Breaker, BreakerError, Permit, State, reject_probability};
pub use config::{Config, Policy};
pub use layer::{BreakerLayer, BreakerService, Classify, ErrorsFail};
pub use stats::Stats;

/// The component name under which policies live in coord:
/// `/{root}/{env}/{service}/breaker/{resource}`.
pub const COORD_COMPONENT: &str = "breaker";

/// Why the breakers could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `coord_service` is set but no coord provider was given.
    #[error("coord_service needs a coord provider (Options::coord)")]
    MissingCoord,
    /// Reading policies from coord failed.
    #[error("coord: {0}")]
    Coord(#[from] gochat_coord::Error),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::MissingCoord => ErrorKind::InvalidConfig,
            Self::Coord(e) => e.kind(),
        }
    }
}

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
    metrics: Option<opentelemetry::metrics::Meter>,
    coord: Option<Coord>,
    seed: Option<u64>,
}

impl Options {
    /// The logger (namespace `breaker` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("breaker")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }

    /// The coord provider `coord_service` policies are read from.
    #[must_use]
    pub fn coord(mut self, coord: Coord) -> Self {
        self.coord = Some(coord);
        self
    }

    /// Seeds the SRE policy's random rejections, so a test sees the same ones every run.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// Builds the breakers of a service.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::MissingCoord`].
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Breakers, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("breaker");
    let breakers = Breakers {
        shared: Arc::new(Shared {
            default: config.default,
            configured: config.resources,
            overrides: Mutex::new(BTreeMap::new()),
            breakers: Mutex::new(HashMap::new()),
            seed: opts.seed,
            log,
            ctx: ctx.child(),
        }),
    };
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "breaker");
    metrics::register(&meter, &Arc::downgrade(&breakers.shared));
    if let Some(service) = &config.coord_service {
        let coord = opts.coord.as_ref().ok_or(Error::MissingCoord)?;
        breakers.follow(coord, service)?;
    }
    Ok(breakers)
}

/// The breakers of a service, one per resource name: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Breakers {
    shared: Arc<Shared>,
}

struct Shared {
    default: Policy,
    configured: BTreeMap<String, Policy>,
    /// Policies from coord, by resource.
    overrides: Mutex<BTreeMap<String, Policy>>,
    breakers: Mutex<HashMap<String, Breaker>>,
    seed: Option<u64>,
    log: Logger,
    ctx: Context,
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers").finish_non_exhaustive()
    }
}

impl Breakers {
    /// The breaker of `resource` (made on first use with its policy).
    pub fn get(&self, resource: &str) -> Breaker {
        let shared = &self.shared;
        let mut breakers = shared
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        breakers
            .entry(resource.to_owned())
            .or_insert_with(|| {
                Breaker::new(
                    resource,
                    self.policy(resource),
                    shared.seed,
                    shared.log.clone(),
                )
            })
            .clone()
    }

    /// The policy of `resource` now: from coord, else configured, else the default.
    pub fn policy(&self, resource: &str) -> Policy {
        let shared = &self.shared;
        let overrides = shared
            .overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        overrides
            .get(resource)
            .or_else(|| shared.configured.get(resource))
            .copied()
            .unwrap_or(shared.default)
    }

    /// Stops following coord. Idempotent.
    pub async fn close(&self) {
        let _ = self.shared.ctx.shutdown(Duration::from_secs(1)).await;
    }

    fn set_override(&self, resource: &str, policy: Option<Policy>) {
        {
            let mut overrides = self
                .shared
                .overrides
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match policy {
                Some(policy) => overrides.insert(resource.to_owned(), policy),
                None => overrides.remove(resource),
            };
        }
        let existing = self
            .shared
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource)
            .cloned();
        if let Some(breaker) = existing {
            breaker.set_policy(self.policy(resource));
        }
    }

    fn follow(&self, coord: &Coord, service: &str) -> Result<(), Error> {
        let breakers = self.clone();
        coord.config().scope(service, COORD_COMPONENT)?.follow(
            &self.shared.ctx,
            |name, policy: &Policy| policy.validate(name).map_err(|e| e.to_string()),
            move |name, policy| breakers.set_override(name, policy),
        )?;
        Ok(())
    }
}
