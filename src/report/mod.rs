//! `autoexpose report`: the exposures, their health and their lineage as one HTML file a
//! person opens from a CI artifact or a file share.
//!
//! Reads the SQLite file (through `crate::view`), writes one file, atomically; no stage runs
//! and no row is written. The page is self-contained: page.html, page.css and page.js are
//! compiled in, the data goes in a `<script type="application/json">` block (`data.rs`), and a
//! Content-Security-Policy meta tag forbids every load from anywhere (`default-src 'none'`),
//! allowing only this inline script and style by their sha256.
//!
//! Untrusted text (workbook, owner and table names) reaches the page only inside that JSON
//! block, escaped so it cannot end the block (`embed_json`), and page.js puts it in the
//! document only as text (textContent, createTextNode, setAttribute of non-URL attributes;
//! dashboard links only for http/https URLs).
//!
//! Byte-identical for the same database: no clock is read; "generated" is the newest run's
//! finished_at.

mod data;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::view::{self, ExposureView};

const SHELL: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The file name `report` writes beside the database when `--out` is not given.
pub(crate) const DEFAULT_FILE: &str = "autoexpose-report.html";

/// What `report` wrote, for its one line of output.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) path: PathBuf,
    pub(crate) exposures: usize,
    pub(crate) bytes: usize,
}

/// Where the report goes: `out`, or `autoexpose-report.html` in the database's folder.
pub(crate) fn default_path(db: &Path, out: Option<&Path>) -> PathBuf {
    out.map_or_else(
        || crate::atomic::folder(db).join(DEFAULT_FILE),
        Path::to_path_buf,
    )
}

/// The page for the database `conn`, and how many exposures it shows.
pub(crate) fn build(conn: &Connection) -> Result<Page> {
    let views = crate::list::judged(conn)?;
    let html = page(conn, &views)?;
    Ok(Page {
        html,
        exposures: views.len(),
    })
}

/// A built page, not yet written.
pub(crate) struct Page {
    html: String,
    exposures: usize,
}

/// Writes `page` to `path` (atomically).
pub(crate) fn write(page: &Page, path: &Path) -> Result<Written> {
    crate::atomic::write(path, page.html.as_bytes())
        .with_context(|| format!("report {}: cannot write it", path.display()))?;
    Ok(Written {
        path: path.to_path_buf(),
        exposures: page.exposures,
        bytes: page.html.len(),
    })
}

/// The whole page for these views.
fn page(conn: &Connection, views: &[ExposureView]) -> Result<String> {
    let graph = view::load_graph(conn)?;
    let names = relation_names(conn)?;
    let generated: Option<String> = conn
        .query_row("SELECT max(finished_at) FROM runs", [], |r| r.get(0))
        .context("reading runs.finished_at")?;
    let data = data::build(views, &graph, &names, generated);
    let json = serde_json::to_string(&data).context("report data as JSON")?;
    Ok(assemble(&embed_json(&json)))
}

/// The BI tools' names for their relations, by (integration, relation id): dependencies
/// carry only the id, which means nothing to a reader.
fn relation_names(conn: &Connection) -> Result<HashMap<(String, String), String>> {
    let mut stmt = conn.prepare(
        "SELECT integration, relation_id, min(coalesce(nullif(full_name, ''), name)) FROM bi_relations
         WHERE relation_id <> '' GROUP BY integration, relation_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?), r.get::<_, Option<String>>(2)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (key, name) = row.context("reading bi_relations names")?;
        if let Some(name) = name {
            out.insert(key, name);
        }
    }
    Ok(out)
}

/// The shell with the CSP, style, script and data put in. `json` must already be escaped
/// by `embed_json`.
fn assemble(json: &str) -> String {
    let csp = format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    let mut out =
        String::with_capacity(SHELL.len() + SCRIPT.len() + STYLE.len() + json.len() + csp.len());
    let mut rest = SHELL;
    for (marker, value) in [
        ("@CSP@", csp.as_str()),
        ("@STYLE@", STYLE),
        ("@DATA@", json),
        ("@SCRIPT@", SCRIPT),
    ] {
        let (before, after) = rest
            .split_once(marker)
            .expect("page.html holds each marker once, in this order");
        out.push_str(before);
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `'sha256-<base64>'`'s inside: the hash CSP allows an inline script or style by.
fn csp_hash(text: &str) -> String {
    use base64::Engine;
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// JSON made safe inside `<script type="application/json">`: `<`, `>` and `&` as `\u003c`,
/// `\u003e`, `\u0026` (so no `</script>` or `<!--` can end or bend the block), U+2028 and
/// U+2029 as `\u2028`, `\u2029` (line terminators to older JavaScript). JSON.parse reads the
/// same values back. Those characters only occur inside JSON strings, where the escapes mean
/// the same thing.
fn embed_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
