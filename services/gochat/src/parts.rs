//! The kit's providers, built from the config with the log and metrics wired into each —
//! the same way in every binary.

use std::time::Duration;

use gochat_cache::Cache;
use gochat_clog::Logger;
use gochat_coord::Coord;
use gochat_core::Context;
use gochat_db::Db;
use gochat_metrics::Metrics;
use gochat_mq::Mq;
use gochat_ratelimit::RateLimiter;
use gochat_uid::Uid;

use crate::{Config, StartError};

/// How long the providers' background tasks get to finish at shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The names a failed component is reported under.
fn failed(what: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> StartError {
    move |e| StartError::Component {
        what,
        reason: e.to_string(),
    }
}

/// What every binary starts with: a context, the process-wide log, metrics.
pub(crate) struct Base {
    pub(crate) ctx: Context,
    pub(crate) log: Logger,
    pub(crate) metrics: Metrics,
    metrics_listen: bool,
    service: String,
}

impl Base {
    /// The log (installed process-wide) and metrics of `service`.
    pub(crate) fn new(config: &Config, service: &str) -> Result<Self, StartError> {
        let ctx = Context::new();
        let log = gochat_clog::init(config.log.clone(), gochat_clog::Options::default())
            .map_err(|e| failed("log")(&e))?;
        let mut metrics_config = config.metrics.clone();
        if metrics_config.service_name.is_empty() || metrics_config.service_name == "gochat" {
            metrics_config.service_name = service.to_owned();
        }
        let metrics = gochat_metrics::new(
            &ctx,
            metrics_config,
            gochat_metrics::Options::default().logger(log.clone()),
        )
        .map_err(|e| failed("metrics")(&e))?;
        let metrics_listen = config.metrics.listen.is_some();
        Ok(Self {
            ctx,
            log,
            metrics,
            metrics_listen,
            service: service.to_owned(),
        })
    }

    pub(crate) async fn db(&self, config: gochat_db::Config) -> Result<Db, StartError> {
        let mut options = gochat_db::Options::default()
            .migrator::<im_repo::Migrator>()
            .logger(self.log.clone())
            .metrics(self.metrics.meter("db"));
        if config.sharding.tables.contains_key("messages") {
            options = options.shard_schema(im_repo::messages_shards());
        }
        gochat_db::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("db")(&e))
    }

    pub(crate) async fn cache(&self, config: gochat_cache::Config) -> Result<Cache, StartError> {
        let options = gochat_cache::Options::default()
            .logger(self.log.clone())
            .metrics(self.metrics.meter("cache"));
        gochat_cache::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("cache")(&e))
    }

    pub(crate) async fn mq(&self, config: gochat_mq::Config) -> Result<Mq, StartError> {
        let options = gochat_mq::Options::default()
            .logger(self.log.clone())
            .metrics(self.metrics.meter("mq"));
        gochat_mq::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("mq")(&e))
    }

    pub(crate) async fn coord(&self, config: gochat_coord::Config) -> Result<Coord, StartError> {
        let options = gochat_coord::Options::default()
            .logger(self.log.clone())
            .metrics(self.metrics.meter("coord"));
        let coord = gochat_coord::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("coord")(&e))?;
        // `{service}/log/level` in coord sets every instance's log level, without a restart.
        coord
            .config()
            .scope(&self.service, "log")
            .and_then(|scope| scope.follow_log_level(&self.ctx, &self.log))
            .map_err(|e| failed("coord log level")(&e))?;
        Ok(coord)
    }

    pub(crate) async fn uid(
        &self,
        config: gochat_uid::Config,
        coord: &Coord,
    ) -> Result<Uid, StartError> {
        let options = gochat_uid::Options::default()
            .coord(coord.clone())
            .logger(self.log.clone());
        gochat_uid::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("uid")(&e))
    }

    pub(crate) async fn limiter(
        &self,
        config: gochat_ratelimit::Config,
        cache: &Cache,
        coord: &Coord,
    ) -> Result<RateLimiter, StartError> {
        // With `ratelimit.coord_service` set, rules kept in coord are hot-reloaded.
        let options = gochat_ratelimit::Options::default()
            .cache(cache.clone())
            .coord(coord.clone())
            .logger(self.log.clone())
            .metrics(self.metrics.meter("ratelimit"));
        gochat_ratelimit::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("ratelimit")(&e))
    }

    /// Serves `/metrics` on `metrics.listen`, when set.
    pub(crate) async fn serve_metrics(&self) -> Result<(), StartError> {
        if self.metrics_listen {
            self.metrics
                .serve()
                .await
                .map_err(|e| failed("metrics listener")(&e))?;
        }
        Ok(())
    }

    pub(crate) async fn breakers(
        &self,
        config: gochat_breaker::Config,
        coord: &Coord,
    ) -> Result<gochat_breaker::Breakers, StartError> {
        let options = gochat_breaker::Options::default()
            .coord(coord.clone())
            .logger(self.log.clone())
            .metrics(self.metrics.meter("breaker"));
        gochat_breaker::new(&self.ctx, config, options)
            .await
            .map_err(|e| failed("breaker")(&e))
    }

    /// A failed step named `what`.
    pub(crate) fn fail(what: &'static str, e: &dyn std::fmt::Display) -> StartError {
        failed(what)(e)
    }

    /// Stops the background tasks, then flushes metrics and the log.
    pub(crate) async fn close(self) {
        if self.ctx.shutdown(SHUTDOWN_GRACE).await.is_err() {
            self.log
                .warn("gochat: background tasks still running after the grace period");
        }
        self.metrics.close().await;
        self.log.flush_and_close();
    }
}
