//! Plain stderr logging in text or JSON lines. Every line, on stderr and stdout, is scrubbed of
//! the run's secrets on its way out (`http::scrub_secrets`, in every encoding): the boundary,
//! whatever a message was made of. Server text (which may also echo a PAT name) is scrubbed in
//! full where it enters (the client, the Metadata API's `errors`).

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
    let msg = &crate::http::scrub_secrets(msg);
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

/// A progress bar for `len` steps, drawn only for a person: stderr a terminal, text logs,
/// not --quiet, not in CI. Everywhere else it is hidden and costs nothing.
pub(crate) fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let (level, format) = settings();
    let show = level >= Level::Info
        && format == Format::Text
        && std::env::var_os("CI").is_none()
        && std::io::stderr().is_terminal();
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// An error line on stderr, scrubbed, in the format `run` was given.
pub fn error(msg: &str) {
    emit(Level::Error, msg);
}
pub(crate) fn warn(msg: &str) {
    emit(Level::Warn, msg);
}
pub(crate) fn info(msg: &str) {
    emit(Level::Info, msg);
}
/// A line for `-v` on stderr, scrubbed.
pub fn debug(msg: &str) {
    emit(Level::Debug, msg);
}

/// A line of the command's result on stdout (refresh decisions, `parse-manifest`'s figures).
/// Unlike `println!`, a closed stdout (`autoexpose refresh | head -1`) is not a panic: the
/// line is dropped and the command goes on to record what it did.
pub(crate) fn result(line: &str) {
    let line = crate::http::scrub_secrets(line);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// `println!`'s arguments, written by `log::result`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::log::result(&format!($($arg)*)) };
}
