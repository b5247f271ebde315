//! Bulk inserts for the stages' big tables: a prepared `INSERT` that binds text without
//! copying it.
//!
//! rusqlite binds every string as `SQLITE_TRANSIENT`, so SQLite copies it before the row is
//! built. With 700k rows of up to 14 columns at 20k workbooks, those copies were a fifth of the
//! writer thread's time. Here text is bound as `SQLITE_STATIC`, which is sound because `row`
//! borrows the values only for its own duration and steps, resets and clears the statement
//! before it returns: SQLite never holds a pointer past the call. Everything else (errors,
//! transactions, reads) stays with rusqlite.
//!
//! `Replace` is the stages' way to replace a keyed table's rows: on an empty table it inserts
//! straight in; otherwise the new rows go to an in-memory staging table and only the rows that
//! differ are deleted and inserted, so a rerun that changed 1% of a site rewrites about 1% of
//! the table's pages (and journals no more), not all of them (issue #17 item 4).

use std::ffi::{c_int, CStr, CString};
use std::marker::PhantomData;

use anyhow::{bail, Result};
use rusqlite::{ffi, Transaction};

/// One column's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Text(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Value<'a> {
        Value::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Value<'a> {
        s.map_or(Value::Null, Value::Text)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(s: &'a Option<String>) -> Value<'a> {
        s.as_deref().into()
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Int(b.into())
    }
}

/// A prepared statement on the transaction's connection; it cannot outlive the transaction.
pub(crate) struct Insert<'t> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    table: &'static str,
    _tx: PhantomData<&'t Transaction<'t>>,
}

impl<'t> Insert<'t> {
    /// Prepares `sql`, an INSERT into `table` (named in errors).
    pub(crate) fn new(tx: &'t Transaction, table: &'static str, sql: &str) -> Result<Insert<'t>> {
        // SAFETY: the handle is only used while `tx` is borrowed, and never closed here.
        let db = unsafe { tx.handle() };
        let text = CString::new(sql)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: a valid connection, a NUL-terminated statement, an out-pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            // SAFETY: on a failed prepare the statement is NULL or must still be finalized.
            unsafe { ffi::sqlite3_finalize(stmt) };
            bail!("insert into {table}: cannot prepare it: {}", message(db));
        }
        Ok(Insert {
            db,
            stmt,
            table,
            _tx: PhantomData,
        })
    }

    /// Inserts one row; `values` are the statement's parameters in order.
    pub(crate) fn row(&mut self, values: &[Value<'_>]) -> Result<()> {
        let mut failed = None;
        for (i, v) in values.iter().enumerate() {
            let col = i as c_int + 1;
            // SAFETY: `self.stmt` is a live prepared statement. Text is bound SQLITE_STATIC:
            // the bytes stay borrowed until this function returns, and the statement is reset
            // and its bindings cleared below before that, so SQLite keeps no pointer to them.
            let rc = unsafe {
                match v {
                    Value::Text(s) => {
                        let len = c_int::try_from(s.len()).unwrap_or(c_int::MAX);
                        ffi::sqlite3_bind_text(
                            self.stmt,
                            col,
                            s.as_ptr().cast(),
                            len,
                            ffi::SQLITE_STATIC(),
                        )
                    }
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt, col, *n),
                    Value::Null => ffi::sqlite3_bind_null(self.stmt, col),
                }
            };
            if rc != ffi::SQLITE_OK {
                failed = Some(format!("cannot bind parameter {col}: {}", message(self.db)));
                break;
            }
        }
        if failed.is_none() {
            // SAFETY: a live statement with every parameter bound (or left NULL).
            let rc = unsafe { ffi::sqlite3_step(self.stmt) };
            if rc != ffi::SQLITE_DONE {
                failed = Some(message(self.db));
            }
        }
        // SAFETY: a live statement; both calls only release SQLite's state for the next row.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
        match failed {
            Some(m) => bail!("insert into {}: {m}", self.table),
            None => Ok(()),
        }
    }
}

impl Drop for Insert<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// Replaces the rows of a keyed `WITHOUT ROWID` table (all of them, or one integration's) with
/// the rows given to `row`, writing only the difference: rows equal in every column stay where
/// they are, the others are deleted and the new ones inserted. A `WITHOUT ROWID` table is
/// stored in key order, so the result is the same table a whole rewrite gives, row for row.
/// Runs inside the caller's transaction: the stage stays all or nothing.
pub(crate) struct Replace<'t> {
    tx: &'t Transaction<'t>,
    table: &'static str,
    integration: Option<String>,
    /// The staging table's name when the target held rows (diffing); None: rows went straight in.
    stage: Option<String>,
    columns: Vec<Column>,
    insert: Option<Insert<'t>>,
    /// The connection's change counter when the rows began (rows inserted straight in).
    changes_before: i64,
}

/// A column of the target table, as `pragma_table_info` gives it.
struct Column {
    name: String,
    decl: String,
    key: bool,
}

/// What `Replace::finish` changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) deleted: usize,
    pub(crate) inserted: usize,
}

impl<'t> Replace<'t> {
    /// Starts replacing `table`'s rows (only those of `integration`, when given: the table must
    /// then have an `integration` column). `columns` are the values `row` takes, in order.
    /// `or_ignore`: a row whose key was given before is dropped (`INSERT OR IGNORE`), for rows
    /// seen many times (a published data source in every workbook that reads it).
    pub(crate) fn new(
        tx: &'t Transaction<'t>,
        table: &'static str,
        columns: &[&str],
        or_ignore: bool,
        integration: Option<&str>,
    ) -> Result<Replace<'t>> {
        let without_rowid: Option<bool> = tx
            .query_row(
                "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .ok();
        if without_rowid != Some(true) {
            bail!("replace {table}: not a WITHOUT ROWID table of the database (a rowid table would change its rows' order)");
        }
        let mut st = tx.prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        let all: Vec<Column> = st
            .query_map([table], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    decl: r.get(1)?,
                    key: r.get::<_, i64>(2)? > 0,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(st);
        let mut cols = Vec::with_capacity(columns.len());
        for c in columns {
            match all.iter().find(|a| a.name == *c) {
                Some(a) => cols.push(Column {
                    name: a.name.clone(),
                    decl: a.decl.clone(),
                    key: a.key,
                }),
                None => bail!("replace {table}: no column {c}"),
            }
        }
        if all.iter().any(|a| !columns.contains(&a.name.as_str())) {
            bail!(
                "replace {table}: every column must be given (a missing one could not be compared)"
            );
        }
        if integration.is_some() && !columns.contains(&"integration") {
            bail!("replace {table}: rows of one integration need its integration column");
        }
        let scope = if integration.is_some() {
            " WHERE integration = ?1"
        } else {
            ""
        };
        let held: bool = match integration {
            Some(i) => tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM main.{table}{scope})"),
                [i],
                |r| r.get(0),
            )?,
            None => tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM main.{table})"),
                [],
                |r| r.get(0),
            )?,
        };
        let stage = held.then(|| format!("autoexpose_stage_{table}"));
        let target = match &stage {
            Some(s) => {
                let defs: Vec<String> = cols
                    .iter()
                    .map(|c| format!("\"{}\" {}", c.name, c.decl))
                    .collect();
                let key: Vec<String> = cols
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| format!("\"{}\"", c.name))
                    .collect();
                tx.execute_batch(&format!(
                    "DROP TABLE IF EXISTS temp.{s}; CREATE TEMP TABLE {s} ({}, PRIMARY KEY ({})) WITHOUT ROWID;",
                    defs.join(", "),
                    key.join(", ")
                ))?;
                format!("temp.{s}")
            }
            None => format!("main.{table}"),
        };
        let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
        let params: Vec<String> = (1..=cols.len()).map(|n| format!("?{n}")).collect();
        let verb = if or_ignore {
            "INSERT OR IGNORE"
        } else {
            "INSERT"
        };
        let sql = format!(
            "{verb} INTO {target} ({}) VALUES ({})",
            names.join(", "),
            params.join(", ")
        );
        let insert = Insert::new(tx, table, &sql)?;
        let mut r = Replace {
            tx,
            table,
            integration: integration.map(str::to_string),
            stage,
            columns: cols,
            insert: Some(insert),
            changes_before: 0,
        };
        r.changes_before = r.total_changes();
        Ok(r)
    }

    /// One new row; `values` in the order of `columns`.
    pub(crate) fn row(&mut self, values: &[Value<'_>]) -> Result<()> {
        match &mut self.insert {
            Some(ins) => ins.row(values),
            None => bail!("replace {}: finished", self.table),
        }
    }

    /// Applies the difference: deletes the rows no new row equals, inserts the new rows no old
    /// row equals.
    pub(crate) fn finish(mut self) -> Result<Changes> {
        self.insert = None;
        let Some(stage) = self.stage.take() else {
            return Ok(Changes {
                deleted: 0,
                inserted: (self.total_changes() - self.changes_before) as usize,
            });
        };
        let t = self.table;
        // Key columns are NOT NULL (`=` lets SQLite probe the key); the rest may be NULL (`IS`).
        let same: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "s.\"{0}\" {1} o.\"{0}\"",
                    c.name,
                    if c.key { "=" } else { "IS" }
                )
            })
            .collect();
        let same = same.join(" AND ");
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let names = names.join(", ");
        let and_scope = if self.integration.is_some() {
            " AND o.integration = ?1"
        } else {
            ""
        };
        let deleted = self.tx.execute(
            &format!(
                "DELETE FROM main.{t} AS o WHERE NOT EXISTS (SELECT 1 FROM temp.{stage} AS s WHERE {same}){and_scope}"
            ),
            self.scope_params(),
        )?;
        let inserted = self.tx.execute(
            &format!("INSERT INTO main.{t} ({names}) SELECT {names} FROM temp.{stage} AS s WHERE NOT EXISTS (SELECT 1 FROM main.{t} AS o WHERE {same})"),
            [],
        )?;
        self.tx.execute_batch(&format!("DROP TABLE temp.{stage}"))?;
        Ok(Changes { deleted, inserted })
    }

    fn scope_params(&self) -> impl rusqlite::Params + '_ {
        rusqlite::params_from_iter(self.integration.iter())
    }

    fn total_changes(&self) -> i64 {
        // SAFETY: the transaction's live connection; the call only reads a counter.
        unsafe { ffi::sqlite3_total_changes64(self.tx.handle()) }
    }
}

impl Drop for Replace<'_> {
    fn drop(&mut self) {
        self.insert = None;
        if let Some(stage) = self.stage.take() {
            // Unfinished (an error on the way): the staging table goes; the transaction, rolled
            // back by its owner, undoes the rest.
            let _ = self
                .tx
                .execute_batch(&format!("DROP TABLE IF EXISTS temp.{stage}"));
        }
    }
}

fn message(db: *mut ffi::sqlite3) -> String {
    // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by SQLite, copied at once.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_and_errors_name_the_table() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (a TEXT NOT NULL, b TEXT, n INTEGER, PRIMARY KEY (a)) WITHOUT ROWID",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut ins =
                Insert::new(&tx, "t", "INSERT INTO t (a, b, n) VALUES (?1, ?2, ?3)").unwrap();
            for i in 0..100 {
                // A fresh String per row, dropped right after: SQLite must not keep its pointer.
                let a = format!("key-{i:03}-é");
                ins.row(&[
                    Value::from(&a),
                    Value::from(None::<&str>),
                    Value::from(i % 2 == 0),
                ])
                .unwrap();
            }
            let err = ins
                .row(&["key-000-é".into(), Value::Null, Value::Int(1)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("insert into t:") && err.contains("UNIQUE"),
                "{err}"
            );
            ins.row(&["after-error".into(), "b".into(), Value::Int(7)])
                .unwrap();
        }
        tx.commit().unwrap();
        let (n, first, last): (i64, String, String) = conn
            .query_row("SELECT count(*), min(a), max(a) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(
            (n, first.as_str(), last.as_str()),
            (101, "after-error", "key-099-é")
        );
        let b: Option<String> = conn
            .query_row("SELECT b FROM t WHERE a = 'key-005-é'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(b, None);
        assert!(Insert::new(
            &conn.transaction().unwrap(),
            "nope",
            "INSERT INTO nope VALUES (1)"
        )
        .is_err());
    }

    fn dump(conn: &rusqlite::Connection) -> Vec<(String, String, Option<String>)> {
        let mut st = conn.prepare("SELECT integration, id, v FROM t").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn replace(
        conn: &mut rusqlite::Connection,
        integration: Option<&str>,
        rows: &[(&str, &str, Option<&str>)],
    ) -> Changes {
        let tx = conn.transaction().unwrap();
        let changes = {
            let mut r =
                Replace::new(&tx, "t", &["integration", "id", "v"], true, integration).unwrap();
            for (i, id, v) in rows {
                r.row(&[(*i).into(), (*id).into(), (*v).into()]).unwrap();
            }
            r.finish().unwrap()
        };
        tx.commit().unwrap();
        changes
    }

    #[test]
    fn replace_writes_only_the_difference_and_gives_a_whole_rewrite_s_table() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (integration TEXT NOT NULL, id TEXT NOT NULL, v TEXT, PRIMARY KEY (integration, id)) WITHOUT ROWID").unwrap();
        let first = [
            ("a", "1", Some("x")),
            ("a", "2", None),
            ("a", "3", Some("y")),
            ("b", "1", Some("z")),
        ];
        // Empty: straight in (a repeated key is ignored).
        let mut with_repeat = first.to_vec();
        with_repeat.push(("a", "1", Some("other")));
        assert_eq!(
            replace(&mut conn, None, &with_repeat),
            Changes {
                deleted: 0,
                inserted: 4
            }
        );
        assert_eq!(dump(&conn).len(), 4);
        // One changed (NULL to a value), one gone, one new; the rest untouched.
        let second = [
            ("a", "1", Some("x")),
            ("a", "2", Some("now")),
            ("a", "4", None),
            ("b", "1", Some("z")),
        ];
        assert_eq!(
            replace(&mut conn, None, &second),
            Changes {
                deleted: 2,
                inserted: 2
            }
        );
        let want: Vec<_> = second
            .iter()
            .map(|(i, id, v)| (i.to_string(), id.to_string(), v.map(str::to_string)))
            .collect();
        assert_eq!(dump(&conn), want);
        // Scoped to one integration: the other's rows stay.
        assert_eq!(
            replace(&mut conn, Some("a"), &[("a", "2", Some("now"))]),
            Changes {
                deleted: 2,
                inserted: 0
            }
        );
        assert_eq!(
            dump(&conn),
            vec![
                ("a".into(), "2".into(), Some("now".into())),
                ("b".into(), "1".into(), Some("z".into()))
            ]
        );
        // The same rows again: nothing written.
        assert_eq!(
            replace(&mut conn, Some("a"), &[("a", "2", Some("now"))]),
            Changes::default()
        );
        // No staging table is left behind, and a rowid table or a missing column is refused.
        let temp: i64 = conn
            .query_row("SELECT count(*) FROM temp.sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp, 0);
        conn.execute_batch("CREATE TABLE r (integration TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (integration, id))").unwrap();
        let tx = conn.transaction().unwrap();
        let err = Replace::new(&tx, "r", &["integration", "id"], false, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("WITHOUT ROWID"), "{err}");
        let err = Replace::new(&tx, "t", &["integration", "id"], false, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("every column"), "{err}");
    }
}
