//! The production line format: one JSON object per event.
//!
//! Key order is fixed for people who read raw logs: `timestamp`, `level`, `namespace`,
//! `trace_id`, `message`, `target`, `span`, then the fields of the spans in scope (outermost
//! first) and of the event. An event field wins over a span field of the same name.

use std::fmt;

use serde_json::Value;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

use crate::{fields::Fields, span_fields::SpanFields};

/// Keys the formatter writes itself; an event or span field with one of these names is
/// written as `fields.<name>` so no line ever has a duplicate key.
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "span", "location"];

/// Formats each event as one JSON line.
pub(crate) struct JsonLines {
    pub(crate) with_location: bool,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut fields = Fields::default();
        let mut leaf_span = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend_from(span_fields);
                }
                leaf_span = Some(span.name());
            }
        }
        event.record(&mut fields);
        // `log` records bridged by tracing-log carry their metadata as fields; it is in
        // `meta` now.
        fields.0.retain(|(name, _)| !name.starts_with("log."));

        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut line = Line::default();
        line.put("timestamp", &Value::from(timestamp))?;
        line.put("level", &Value::from(meta.level().as_str()))?;
        for key in ["namespace", crate::TRACE_ID_FIELD, "message"] {
            if let Some(value) = fields.take(key) {
                line.put(key, &value)?;
            }
        }
        line.put("target", &Value::from(meta.target()))?;
        if let Some(name) = leaf_span {
            line.put("span", &Value::from(name))?;
        }
        if let (true, Some(file), Some(number)) = (self.with_location, meta.file(), meta.line()) {
            line.put("location", &Value::from(format!("{file}:{number}")))?;
        }
        for (name, value) in &fields.0 {
            if RESERVED.contains(name) {
                line.put(&format!("fields.{name}"), value)?;
            } else {
                line.put(name, value)?;
            }
        }
        line.0.push('}');
        writeln!(writer, "{}", line.0)
    }
}

/// A JSON object under construction.
#[derive(Default)]
struct Line(String);

impl Line {
    fn put(&mut self, key: &str, value: &Value) -> fmt::Result {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0
            .push_str(&serde_json::to_string(key).map_err(|_| fmt::Error)?);
        self.0.push(':');
        self.0
            .push_str(&serde_json::to_string(value).map_err(|_| fmt::Error)?);
        Ok(())
    }
}
