//! Assembles the subscriber: level filter (reloadable), span fields, and one format layer.

use std::sync::Mutex;

use tracing::Dispatch;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt, layer::Layered, layer::SubscriberExt, reload,
};

use crate::{
    Config, Error, Format, Logger, Options,
    json::JsonLines,
    logger::{LevelControl, Shared},
    output,
    span_fields::SpanFieldsLayer,
};

/// An extra layer right on the registry (the OpenTelemetry bridge).
pub(crate) type Extra = Box<dyn Layer<Registry> + Send + Sync>;

/// What the level filter sits on.
pub(crate) type Base = Layered<Option<Extra>, Registry>;

/// Builds the subscriber and a logger on it. A `global` logger does not scope to its
/// subscriber on each call: the caller installs it as the process-wide default.
pub(crate) fn build(
    config: Config,
    opts: Options,
    global: bool,
) -> Result<(Dispatch, Logger), Error> {
    config.validate()?;
    let filter = EnvFilter::try_new(&config.level).map_err(|e| Error::InvalidLevel {
        reason: e.to_string(),
    })?;
    let (filter, handle) = reload::Layer::new(filter);

    let built = match opts.writer {
        Some(writer) => output::Built {
            writer,
            guard: None,
            terminal: false,
        },
        None => output::build(&config.output)?,
    };
    let ansi = config.color && built.terminal;
    let location = config.with_location;
    let writer = built.writer;

    let (json, pretty, compact) = match config.format {
        Format::Json => {
            let layer = fmt::layer()
                .event_format(JsonLines {
                    with_location: location,
                })
                .with_writer(writer);
            (Some(layer), None, None)
        }
        Format::Pretty => {
            let layer = fmt::layer()
                .pretty()
                .with_ansi(ansi)
                .with_file(location)
                .with_line_number(location)
                .with_writer(writer);
            (None, Some(layer), None)
        }
        Format::Compact => {
            let layer = fmt::layer()
                .compact()
                .with_ansi(ansi)
                .with_file(location)
                .with_line_number(location)
                .with_writer(writer);
            (None, None, Some(layer))
        }
    };

    let subscriber = Registry::default()
        .with(opts.otel)
        .with(filter)
        .with(SpanFieldsLayer)
        .with(json)
        .with(pretty)
        .with(compact);
    let dispatch = Dispatch::new(subscriber);
    let shared = Shared {
        dispatch: (!global).then(|| dispatch.clone()),
        level: Some(LevelControl {
            handle,
            current: Mutex::new(config.level),
        }),
        guard: Mutex::new(built.guard),
    };
    Ok((dispatch, Logger::from_shared(shared, opts.namespace)))
}
