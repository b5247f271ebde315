//! `autoexpose list`: the exposures in the SQLite file, as dbt Explorer lists them (name,
//! health, type, owner, owner email, integration, exposure mode), with label, dependency and
//! unmatched-table counts and the last refresh, as a terminal table, JSON or CSV.
//!
//! Reads the tables `view` and `health` read, in one read transaction on a read-only
//! connection: no stage runs, nothing is written, and no lock is taken, so a list can run
//! beside a running stage (it sees the last committed state). A database of an older schema
//! is the exception: it is migrated first, under the database's lock, as any command would.
//!
//! Every text came from a BI tool and may hold anything. The table shows control characters,
//! line breaks and bidirectional controls as visible escapes (`\n`, `\u{1b}`), so no name can
//! break a row or reach the terminal as an escape sequence; JSON escapes them as JSON does (and
//! also DEL, the C1 controls and the bidi controls, which serde_json leaves raw); CSV keeps the
//! text exactly, quoted per RFC 4180, as data for scripts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use unicode_width::UnicodeWidthChar;

use crate::view::{self, ExposureView};

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

/// The exposures in `db`, printed as `format` says.
pub(crate) fn run(db: &Path, format: Format) -> Result<()> {
    let exposures = read(db)?;
    if exposures.is_empty() {
        crate::log::info(&format!(
            "database {}: no exposures (emit wrote none: no dashboard matched a dbt node)",
            db.display()
        ));
    }
    let text = render(&exposures, format);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (`autoexpose list | head`) is not an error.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// Every exposure with its health, from one consistent state of `db`.
pub(crate) fn read(db: &Path) -> Result<Vec<ExposureView>> {
    read_with(db, |tx| {
        judged(tx).with_context(|| {
            format!(
                "database {}: reading the exposures and judging their health",
                db.display()
            )
        })
    })
}

/// Every exposure, health included: what `list` prints and the report shows.
pub(crate) fn judged(conn: &Connection) -> Result<Vec<ExposureView>> {
    let mut exposures = view::load(conn).context("reading the exposures")?;
    crate::health::assess(conn, &mut exposures).context("judging health")?;
    Ok(exposures)
}

/// Runs `f` on one consistent state of `db` after emit has run, without the database's lock
/// and without writing a row (`list` and `report` read while a nightly run may be writing):
/// a read-only connection in one read transaction. An older schema is migrated first, as
/// any command would, under the lock.
pub(crate) fn read_with<T>(
    db: &Path,
    f: impl FnOnce(&rusqlite::Transaction) -> Result<T>,
) -> Result<T> {
    if !db.exists() {
        anyhow::bail!("database {} does not exist: run `autoexpose run` (or extract … emit) first, or point --db at the SQLite file", db.display());
    }
    let version: usize = open_read_only(db)?
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .with_context(|| format!("database {}: cannot use it as autoexpose's SQLite file; check --db or `database:` in the config", db.display()))?;
    if version < crate::db::MIGRATIONS.len() {
        // An older schema lacks columns the readers read: migrate it, as any command would.
        let _lock = crate::lock::acquire(db)?;
        crate::db::open(db)?;
    }
    let mut conn = open_read_only(db)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    crate::db::require_stage(&tx, "emit", db)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

fn open_read_only(db: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("database {}: cannot open it to read", db.display()))?;
    // A stage committing meanwhile holds the file for a moment; wait for it as stages do.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// One exposure as `list` prints it, in its columns' order.
#[derive(Debug, Serialize)]
struct Row<'a> {
    name: &'a str,
    label: &'a str,
    health: &'static str,
    health_reasons: &'a [String],
    #[serde(rename = "type")]
    exposure_type: &'a str,
    owner: Option<&'a str>,
    owner_email: Option<&'a str>,
    integration: &'a str,
    exposure_mode: &'a str,
    dependencies: usize,
    unmatched_tables: usize,
    /// The newest real (not dry) refresh run's decision and time, or None.
    last_refresh: Option<String>,
}

impl<'a> Row<'a> {
    fn of(e: &'a ExposureView) -> Row<'a> {
        Row {
            name: &e.name,
            label: &e.label,
            health: e.health.level.as_str(),
            health_reasons: &e.health.reasons,
            exposure_type: &e.exposure_type,
            owner: e.owner_name.as_deref(),
            owner_email: e.owner_email.as_deref(),
            integration: &e.integration,
            exposure_mode: &e.exposure_mode,
            dependencies: e.dependencies.len(),
            unmatched_tables: e.unmatched.len(),
            last_refresh: last_refresh(e),
        }
    }
}

/// The newest refresh run that was not a dry run, as "<decision> <time>": of its decisions
/// about the exposure (one per target) the one that matters most (failed, then triggered,
/// already_queued, sending, skipped, not_applicable).
fn last_refresh(e: &ExposureView) -> Option<String> {
    let newest = e
        .refreshes
        .iter()
        .filter(|r| !r.dry_run)
        .map(|r| r.run_id)
        .max()?;
    let rank = |d: &str| match d {
        "failed" => 0,
        "triggered" => 1,
        "already_queued" => 2,
        "sending" => 3,
        "skipped" => 4,
        "not_applicable" => 5,
        _ => 6,
    };
    let top = e
        .refreshes
        .iter()
        .filter(|r| !r.dry_run && r.run_id == newest)
        .min_by_key(|r| rank(&r.decision))?;
    Some(format!("{} {}", top.decision, top.decided_at))
}

pub(crate) fn render(exposures: &[ExposureView], format: Format) -> String {
    let rows: Vec<Row<'_>> = exposures.iter().map(Row::of).collect();
    match format {
        Format::Table => table(&rows),
        Format::Json => json(&rows),
        Format::Csv => csv(&rows),
    }
}

const HEADERS: [&str; 11] = [
    "name",
    "label",
    "health",
    "type",
    "owner",
    "owner_email",
    "integration",
    "exposure_mode",
    "dependencies",
    "unmatched_tables",
    "last_refresh",
];

fn cells(r: &Row<'_>) -> [String; 11] {
    [
        r.name.to_string(),
        r.label.to_string(),
        r.health.to_string(),
        r.exposure_type.to_string(),
        r.owner.unwrap_or("").to_string(),
        r.owner_email.unwrap_or("").to_string(),
        r.integration.to_string(),
        r.exposure_mode.to_string(),
        r.dependencies.to_string(),
        r.unmatched_tables.to_string(),
        r.last_refresh.clone().unwrap_or_else(|| "-".into()),
    ]
}

/// The most a table column takes, in terminal cells; longer text ends in "…". Names and labels
/// get the room, codes and counts need little.
const WIDTHS: [usize; 11] = [40, 40, 8, 10, 24, 32, 16, 8, 5, 9, 40];
const TABLE_HEADERS: [&str; 11] = [
    "NAME",
    "LABEL",
    "HEALTH",
    "TYPE",
    "OWNER",
    "OWNER EMAIL",
    "INTEGRATION",
    "MODE",
    "DEPS",
    "UNMATCHED",
    "LAST REFRESH",
];
/// Columns aligned right (the counts).
const NUMERIC: [bool; 11] = [
    false, false, false, false, false, false, false, false, true, true, false,
];

fn table(rows: &[Row<'_>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let body: Vec<[String; 11]> = rows.iter().map(|r| cells(r).map(|c| visible(&c))).collect();
    let fitted: Vec<Vec<(String, usize)>> = std::iter::once(TABLE_HEADERS.map(str::to_string))
        .chain(body)
        .map(|row| {
            row.iter()
                .zip(WIDTHS)
                .map(|(c, max)| truncate(c, max))
                .collect()
        })
        .collect();
    let mut widths = [0usize; 11];
    for row in &fitted {
        for (w, (_, cw)) in widths.iter_mut().zip(row) {
            *w = (*w).max(*cw);
        }
    }
    let mut out = String::new();
    for row in &fitted {
        let mut line = String::new();
        for (i, (text, w)) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - w);
            if NUMERIC[i] {
                line.push_str(&pad);
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&pad);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Text safe on one terminal line: control characters (C0, DEL, C1), line and paragraph
/// separators, bidirectional controls and other invisible format characters become visible
/// escapes; everything else is kept.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters a terminal does not show as themselves: controls, separators, bidi overrides and
/// isolates, zero-width and byte-order marks.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `text` cut to at most `max` terminal cells, ending in "…" when cut; with its width.
fn truncate(text: &str, max: usize) -> (String, usize) {
    let width = |c: char| c.width().unwrap_or(0);
    let total: usize = text.chars().map(width).sum();
    if total <= max {
        return (text.to_string(), total);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    (out, used + 1)
}

/// One object per exposure, in the list's order, pretty-printed. Besides what serde_json
/// escapes, DEL, C1 controls, separators and bidi controls are written as `\uXXXX` too: they are
/// valid raw in JSON but would reach a terminal that shows the output. They can only occur
/// inside strings, where an escape means the same character.
fn json(rows: &[Row<'_>]) -> String {
    let text =
        serde_json::to_string_pretty(rows).unwrap_or_else(|e| unreachable!("rows serialize: {e}"));
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c != '\n' && hidden(c) {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// A header and one record per exposure, RFC 4180: CRLF line ends, a field quoted when it holds
/// a comma, a quote, CR or LF, its quotes doubled. Health reasons are left out (one column per
/// fact; the JSON has them).
fn csv(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, fields: &[String]| {
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    };
    line(&mut out, &HEADERS.map(str::to_string));
    for r in rows {
        let mut c = cells(r);
        if r.last_refresh.is_none() {
            c[10] = String::new();
        }
        line(&mut out, &c);
    }
    out
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_shows_what_a_terminal_would_act_on() {
        assert_eq!(
            visible("a\nb\r\tc\u{1b}[31md\u{7f}\u{9b}e\u{202e}f\u{2028}"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\\u{9b}e\\u{202e}f\\u{2028}"
        );
        assert_eq!(visible("Ventes été — 売上"), "Ventes été — 売上");
    }

    #[test]
    fn truncate_counts_terminal_cells() {
        assert_eq!(truncate("abcdef", 6), ("abcdef".into(), 6));
        assert_eq!(truncate("abcdefg", 6), ("abcde…".into(), 6));
        // Wide characters take two cells each.
        assert_eq!(truncate("売上売上売上", 6), ("売上…".into(), 5));
    }

    #[test]
    fn csv_quotes_as_rfc_4180_says() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nthen"), "\"say \"\"hi\"\"\nthen\"");
    }

    #[test]
    fn json_escapes_c1_and_bidi_controls() {
        let reasons = Vec::new();
        let row = Row {
            name: "n\u{9b}31m\u{202e}",
            label: "\u{1b}[2J",
            health: "Unknown",
            health_reasons: &reasons,
            exposure_type: "dashboard",
            owner: None,
            owner_email: None,
            integration: "prod",
            exposure_mode: "auto",
            dependencies: 0,
            unmatched_tables: 0,
            last_refresh: None,
        };
        let text = json(&[row]);
        assert!(text.contains(r#""name": "n\u009b31m\u202e""#), "{text}");
        assert!(text.contains(r#""label": "\u001b[2J""#), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back[0]["name"], "n\u{9b}31m\u{202e}");
    }
}
