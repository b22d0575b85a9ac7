//! An in-memory output, for tests that assert on what was logged.

use std::{
    io,
    sync::{Arc, Mutex, PoisonError},
};

use tracing_subscriber::fmt::MakeWriter;

/// Collects every line in memory; clones share the buffer. Inject it with
/// [`Options::writer`](crate::Options::writer).
///
/// ```
/// use gochat_clog::{Config, MemoryWriter, Options};
/// use gochat_core::{Context, Env};
///
/// let out = MemoryWriter::new();
/// let log = gochat_clog::new(
///     &Context::new(),
///     Config::for_env(Env::Production),
///     Options::default().writer(out.clone()),
/// ).unwrap();
/// log.namespace("db").warn("slow query");
/// let lines = out.json_lines().unwrap();
/// assert_eq!(lines[0]["namespace"], "db");
/// assert_eq!(lines[0]["level"], "WARN");
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemoryWriter {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Every line written so far, parsed as JSON (for the `json` format).
    ///
    /// # Errors
    /// The first line that is not JSON.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        self.contents().lines().map(serde_json::from_str).collect()
    }

    /// Forgets everything written so far.
    pub fn clear(&self) {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl io::Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for MemoryWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
