//! Keeps each span's fields as JSON in its extensions, so the JSON formatter can put them on
//! every line and [`current_trace_id`] can find the trace id.

use tracing::{
    Subscriber,
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    Registry,
    layer::{Context, Layer},
    registry::LookupSpan,
};

use crate::fields::{Fields, as_text};

/// The recorded fields of one span.
#[derive(Debug, Default)]
pub(crate) struct SpanFields(pub(crate) Fields);

/// Records span fields on creation and on `Span::record`.
pub(crate) struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(fields);
        } else {
            let mut fields = Fields::default();
            values.record(&mut fields);
            extensions.insert(SpanFields(fields));
        }
    }
}

/// The trace id of the innermost current span that has one, if a gochat-clog logger
/// records the current span.
///
/// This is what crosses process boundaries: put it in an outgoing message header or request,
/// and start the receiving side's span with [`request_span`](crate::request_span)`(Some(id))`.
///
/// ```
/// use gochat_clog::{Config, Options, current_trace_id};
/// use gochat_core::{Context, Env};
///
/// let log = gochat_clog::new(&Context::new(), Config::for_env(Env::Production), Options::default()).unwrap();
/// log.in_scope(|| {
///     let span = log.request_span(Some("4bf92f3577b34da6a3ce929d0e0e4736"));
///     let _entered = span.enter();
///     assert_eq!(current_trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// });
/// assert_eq!(current_trace_id(), None);
/// ```
pub fn current_trace_id() -> Option<String> {
    span_trace_id(&tracing::Span::current())
}

/// The trace id of `span` or its innermost ancestor that has one, if a gochat-clog logger
/// records it (whichever subscriber is current where this is called).
pub fn span_trace_id(span: &tracing::Span) -> Option<String> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        span.scope().find_map(|s| {
            let extensions = s.extensions();
            let SpanFields(fields) = extensions.get::<SpanFields>()?;
            fields.get(crate::TRACE_ID_FIELD).map(as_text)
        })
    })
    .flatten()
}
