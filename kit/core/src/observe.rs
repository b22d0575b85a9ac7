//! How components report their figures: observable OpenTelemetry instruments that read the
//! component's own counters at each collection (a Prometheus scrape, an OTLP export). The
//! component is held weakly: a closed and dropped component stops reporting.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use gochat_core::observe;
//! use opentelemetry::{KeyValue, metrics::MeterProvider as _};
//!
//! let meter = opentelemetry::metrics::noop::NoopMeterProvider::new().meter("demo");
//! let hits = Arc::new(AtomicU64::new(0));
//! observe::counter(&meter, "demo_hits", "Hits.", &Arc::downgrade(&hits), |hits| {
//!     vec![(hits.load(Ordering::Relaxed), vec![KeyValue::new("kind", "any")])]
//! });
//! ```

use std::sync::Weak;

use opentelemetry::{
    KeyValue,
    metrics::{AsyncInstrumentBuilder, Meter},
};

/// The meter a component reports through: the injected one (`Options::metrics`), else one
/// from OpenTelemetry's global meter provider (a no-op until one is installed, e.g. by
/// `gochat_metrics::Metrics::install_global`; install it before building components).
pub fn meter_or_global(injected: Option<&Meter>, component: &'static str) -> Meter {
    injected
        .cloned()
        .unwrap_or_else(|| opentelemetry::global::meter(component))
}

/// Points read from a component: a value and its labels each.
pub type Points<T> = Vec<(T, Vec<KeyValue>)>;

/// Adds the description and a callback that reads `source` (while it lives) to `builder`.
fn reading<'a, I, T, S, F>(
    builder: AsyncInstrumentBuilder<'a, I, T>,
    description: &'static str,
    source: &Weak<S>,
    read: F,
) -> AsyncInstrumentBuilder<'a, I, T>
where
    S: Send + Sync + 'static,
    F: Fn(&S) -> Points<T> + Send + Sync + 'static,
{
    let source = source.clone();
    builder
        .with_description(description)
        .with_callback(move |observer| {
            if let Some(source) = source.upgrade() {
                for (value, labels) in read(&source) {
                    observer.observe(value, &labels);
                }
            }
        })
}

/// A monotonic counter `name` whose points `read` takes from `source`.
pub fn counter<S, F>(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
    source: &Weak<S>,
    read: F,
) where
    S: Send + Sync + 'static,
    F: Fn(&S) -> Points<u64> + Send + Sync + 'static,
{
    reading(
        meter.u64_observable_counter(name),
        description,
        source,
        read,
    )
    .build();
}

/// A floating-point monotonic counter (seconds spent, …).
pub fn counter_f64<S, F>(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
    source: &Weak<S>,
    read: F,
) where
    S: Send + Sync + 'static,
    F: Fn(&S) -> Points<f64> + Send + Sync + 'static,
{
    reading(
        meter.f64_observable_counter(name),
        description,
        source,
        read,
    )
    .build();
}

/// A gauge (a value that goes up and down: lag, state).
pub fn gauge<S, F>(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
    source: &Weak<S>,
    read: F,
) where
    S: Send + Sync + 'static,
    F: Fn(&S) -> Points<f64> + Send + Sync + 'static,
{
    reading(meter.f64_observable_gauge(name), description, source, read).build();
}
