//! Writers for each [`Output`]: stdout, stderr, and rotating files behind a background thread.

use std::io::IsTerminal;

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::{
    Error,
    config::{FileOutput, Output, Rotation},
};

/// A built output: the writer, the guard that flushes a background writer when dropped, and
/// whether it is a terminal (colours are only worth it there).
pub(crate) struct Built {
    pub(crate) writer: BoxMakeWriter,
    pub(crate) guard: Option<WorkerGuard>,
    pub(crate) terminal: bool,
}

pub(crate) fn build(output: &Output) -> Result<Built, Error> {
    Ok(match output {
        Output::Stdout => Built {
            writer: BoxMakeWriter::new(std::io::stdout),
            guard: None,
            terminal: std::io::stdout().is_terminal(),
        },
        Output::Stderr => Built {
            writer: BoxMakeWriter::new(std::io::stderr),
            guard: None,
            terminal: std::io::stderr().is_terminal(),
        },
        Output::File(file) => {
            let appender = file_appender(file)?;
            // Lossless: when the disk falls behind, logging waits rather than drops lines.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("gochat-clog-writer")
                .finish(appender);
            Built {
                writer: BoxMakeWriter::new(writer),
                guard: Some(guard),
                terminal: false,
            }
        }
    })
}

fn file_appender(file: &FileOutput) -> Result<rolling::RollingFileAppender, Error> {
    let rotation = match file.rotation {
        Rotation::Minutely => rolling::Rotation::MINUTELY,
        Rotation::Hourly => rolling::Rotation::HOURLY,
        Rotation::Daily => rolling::Rotation::DAILY,
        Rotation::Weekly => rolling::Rotation::WEEKLY,
        Rotation::Never => rolling::Rotation::NEVER,
    };
    let mut builder = rolling::Builder::new().rotation(rotation);
    if !file.prefix.is_empty() {
        builder = builder.filename_prefix(&file.prefix);
    }
    if !file.suffix.is_empty() {
        builder = builder.filename_suffix(&file.suffix);
    }
    if let Some(max) = file.max_files {
        builder = builder.max_log_files(max);
    }
    builder.build(&file.dir).map_err(|e| Error::Output {
        dir: file.dir.clone(),
        reason: e.to_string(),
    })
}
