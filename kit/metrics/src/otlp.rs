//! OTLP export over gRPC: spans through a batch processor, metrics through a periodic reader.
//! Both run on threads of their own; tonic's channel needs the tokio runtime it was built on.

use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::PeriodicReader;

use crate::{Error, OtlpConfig};

/// The span exporter and the metric reader for `config`.
pub(crate) fn exporters(
    config: &OtlpConfig,
) -> Result<(SpanExporter, PeriodicReader<MetricExporter>), Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Otlp(
            "exporting needs a tokio runtime: build the provider inside one".to_owned(),
        ));
    }
    let spans = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| Error::Otlp(e.to_string()))?;
    let metrics = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| Error::Otlp(e.to_string()))?;
    let reader = PeriodicReader::builder(metrics)
        .with_interval(config.interval)
        .build();
    Ok((spans, reader))
}
