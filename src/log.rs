//! Plain stderr logging in text or JSON lines. Secrets never get here: every message that can
//! carry server text is scrubbed by the HTTP layer first.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

static SETTINGS: OnceLock<(Level, Format)> = OnceLock::new();

pub(crate) fn init(level: Level, format: Format) {
    let _ = SETTINGS.set((level, format));
}

fn settings() -> (Level, Format) {
    *SETTINGS.get().unwrap_or(&(Level::Info, Format::Text))
}

fn emit(level: Level, msg: &str) {
    let (max, format) = settings();
    if level > max {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = match format {
        Format::Text => match level {
            Level::Error => writeln!(err, "error: {msg}"),
            Level::Warn => writeln!(err, "warning: {msg}"),
            Level::Info | Level::Debug => writeln!(err, "{msg}"),
        },
        Format::Json => {
            let name = match level {
                Level::Error => "error",
                Level::Warn => "warn",
                Level::Info => "info",
                Level::Debug => "debug",
            };
            let line = serde_json::json!({"level": name, "message": msg});
            writeln!(err, "{line}")
        }
    };
}

pub(crate) fn error(msg: &str) {
    emit(Level::Error, msg);
}
pub(crate) fn warn(msg: &str) {
    emit(Level::Warn, msg);
}
pub(crate) fn info(msg: &str) {
    emit(Level::Info, msg);
}
pub(crate) fn debug(msg: &str) {
    emit(Level::Debug, msg);
}
