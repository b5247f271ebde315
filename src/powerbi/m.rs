//! The M reader: what a Power BI dataset table's M expression reads.
//!
//! The agreed interface between the Power BI extract (which turns [`Found`] into neutral
//! `bi_relations` rows) and the reader itself. `read` walks the expression's `let` bindings,
//! shared expressions and parameters, and returns every source it ends in: a warehouse table
//! reached by navigation, native SQL (already read by [`crate::lineage`]), or a miss with its
//! reason — never a guess and never silence (issue #14 item 3).

#![allow(dead_code)]

use crate::lineage::{Dialect, ParseFailure, TableRef};

/// What the reader may look up beside the expression itself.
#[derive(Debug, Default, Clone)]
pub(crate) struct Context<'a> {
    /// The dataset's shared expressions (`datasets[].expressions[]` of the scan result): name
    /// and M text, in the scan's order. Parameters are among them (`… meta
    /// [IsParameterQuery=true]`).
    pub expressions: &'a [(String, String)],
    /// Parameter values from `datasets/{id}/parameters` (name, `currentValue`), used when a
    /// parameter has no literal in the expressions.
    pub parameters: &'a [(String, String)],
}

/// One source an expression reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// A table or view reached by navigation, its parts exact names as M wrote them.
    Table {
        /// The data-access function, as written: `Snowflake.Databases`, `Sql.Database`, …
        connector: String,
        /// The server / host / account argument, where the function has one.
        server: Option<String>,
        database: Option<String>,
        schema: Option<String>,
        name: String,
    },
    /// Native SQL (`Value.NativeQuery`, `[Query="…"]`, `Odbc.Query`), unescaped, with the
    /// connector's database (and schema) as defaults, and what the lineage module read of it.
    Sql {
        connector: String,
        server: Option<String>,
        dialect: Dialect,
        database: Option<String>,
        schema: Option<String>,
        sql: String,
        tables: Result<Vec<TableRef>, ParseFailure>,
    },
    /// No lineage, and why.
    Miss { reason: MissKind, detail: String },
}

/// Why an expression gave no table (`unmatched_tables.reason` once matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissKind {
    /// A function we do not read (`Excel.Workbook`, `SharePoint.Files`, `Web.Contents`, …):
    /// detail names it.
    UnsupportedMFunction,
    /// A parameter with no literal and no value: detail names it.
    UnresolvedParameter,
    /// A file or web source: nothing in dbt to depend on.
    FileConnection,
    /// The table comes from a dataflow (`PowerPlatform.Dataflows`, `upstreamDataflows`).
    Dataflow,
    /// No source at all (a calculated table, `#table(…)`, an empty expression).
    NoSource,
    /// The M itself could not be read (unterminated string, unbalanced brackets, a cycle of
    /// shared expressions): detail says where.
    Unreadable,
}

mod connectors;
mod lexer;
mod parser;
mod resolve;
#[cfg(test)]
mod tests;

/// Every source `expression` (a table's M, `source[0].expression`) ends in, sorted (tables,
/// then native SQL, then misses) and de-duplicated; never empty (no source at all is a
/// [`MissKind::NoSource`] miss). Never panics, whatever the text.
pub(crate) fn read(expression: &str, ctx: &Context) -> Vec<Found> {
    let run = std::panic::AssertUnwindSafe(|| resolve::Eval::new(ctx).read(expression));
    let mut found = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        vec![Found::Miss {
            reason: MissKind::Unreadable,
            detail: "the M reader failed on this expression".into(),
        }]
    });
    found.sort_by_cached_key(sort_key);
    found.dedup();
    found
}

/// Found has no order of its own (the lineage module's types have none to give): its kind,
/// then its debug form, which holds every field.
fn sort_key(f: &Found) -> (u8, String) {
    let rank = match f {
        Found::Table { .. } => 0,
        Found::Sql { .. } => 1,
        Found::Miss { .. } => 2,
    };
    (rank, format!("{f:?}"))
}
