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
//! straight in; otherwise the new rows are sorted by key in memory and merged with the stored
//! ones in key order, and only the rows that differ are deleted and inserted, so a rerun that
//! changed 1% of a site rewrites the pages those rows are on (and journals no more), not the
//! whole table (issue #17 item 4).

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

impl From<Option<bool>> for Value<'_> {
    fn from(b: Option<bool>) -> Self {
        b.map_or(Value::Null, Value::from)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Int(n)
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
///
/// On an empty table (a first run) the rows go straight in. Otherwise they are kept in one
/// byte buffer, sorted by key, and merged with the stored rows read in key order: one read of
/// the table, and writes only for the rows that differ. (A staging table diffed in SQL wrote as
/// little but took longer than the rewrite it saved: 11.7 s against 8.8 s for L's night.)
/// Values should be given as the column's type (text for TEXT columns): a number given for a
/// TEXT column is stored as text and then never compares equal, so its row is rewritten.
pub(crate) struct Replace<'t> {
    tx: &'t Transaction<'t>,
    table: &'static str,
    integration: Option<String>,
    columns: Vec<String>,
    /// Positions in `columns` of the key's columns, in the key's order.
    key: Vec<usize>,
    or_ignore: bool,
    mode: Mode<'t>,
}

enum Mode<'t> {
    /// The table (or the integration's part) was empty: rows go straight in.
    Direct {
        insert: Insert<'t>,
        changes_before: i64,
    },
    /// Rows kept for the merge: encoded values back to back, and each row's range.
    Merge {
        arena: Vec<u8>,
        rows: Vec<(usize, usize)>,
    },
    Finished,
}

/// What `Replace::finish` changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) deleted: usize,
    pub(crate) inserted: usize,
}

/// A value as compared: SQLite's order (NULL, numbers, text, blobs), text bytewise (BINARY).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl<'a> From<rusqlite::types::ValueRef<'a>> for Cell<'a> {
    fn from(v: rusqlite::types::ValueRef<'a>) -> Cell<'a> {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => Cell::Text(t),
            ValueRef::Blob(b) => Cell::Blob(b),
        }
    }
}

fn cmp_cells(a: &Cell<'_>, b: &Cell<'_>) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
}

fn encode(arena: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => arena.push(0),
        Value::Int(n) => {
            arena.push(1);
            arena.extend_from_slice(&n.to_le_bytes());
        }
        Value::Text(s) => {
            arena.push(2);
            arena.extend_from_slice(&(s.len() as u64).to_le_bytes());
            arena.extend_from_slice(s.as_bytes());
        }
    }
}

/// The cells of one encoded row (written by `encode`, so well formed).
fn decode<'a>(mut b: &'a [u8], out: &mut Vec<Cell<'a>>) {
    out.clear();
    let word = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    while let Some((&tag, rest)) = b.split_first() {
        match tag {
            1 => {
                out.push(Cell::Int(word(rest) as i64));
                b = &rest[8..];
            }
            2 => {
                let len = word(rest) as usize;
                out.push(Cell::Text(&rest[8..8 + len]));
                b = &rest[8 + len..];
            }
            _ => {
                out.push(Cell::Null);
                b = rest;
            }
        }
    }
}

impl<'t> Replace<'t> {
    /// Starts replacing `table`'s rows (only those of `integration`, when given: the table must
    /// then have an `integration` column). `columns` are the values `row` takes, in order, and
    /// must be all of the table's. `or_ignore`: a row whose key was given before is dropped
    /// (`INSERT OR IGNORE`), for rows seen many times (a published data source in every
    /// workbook that reads it); otherwise a repeated key is an error, as for an INSERT.
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
        let mut st = tx.prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        let all: Vec<(String, i64)> = st
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        drop(st);
        let mut key: Vec<(i64, usize)> = Vec::new();
        for (pos, c) in columns.iter().enumerate() {
            match all.iter().find(|a| a.0 == *c) {
                Some((_, pk)) if *pk > 0 => key.push((*pk, pos)),
                Some(_) => {}
                None => bail!("replace {table}: no column {c}"),
            }
        }
        if all.iter().any(|a| !columns.contains(&a.0.as_str())) {
            bail!(
                "replace {table}: every column must be given (a missing one could not be compared)"
            );
        }
        if integration.is_some() && !columns.contains(&"integration") {
            bail!("replace {table}: rows of one integration need its integration column");
        }
        key.sort_unstable();
        let key: Vec<usize> = key.into_iter().map(|(_, pos)| pos).collect();
        let held: bool = match integration {
            Some(i) => tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM main.{table} WHERE integration = ?1)"),
                [i],
                |r| r.get(0),
            )?,
            None => tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM main.{table})"),
                [],
                |r| r.get(0),
            )?,
        };
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut r = Replace {
            tx,
            table,
            integration: integration.map(str::to_string),
            columns,
            key,
            or_ignore,
            mode: Mode::Finished,
        };
        r.mode = if held {
            Mode::Merge {
                arena: Vec::new(),
                rows: Vec::new(),
            }
        } else {
            let insert = Insert::new(tx, table, &r.insert_sql(or_ignore))?;
            Mode::Direct {
                insert,
                changes_before: total_changes(tx),
            }
        };
        Ok(r)
    }

    fn insert_sql(&self, or_ignore: bool) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| format!("\"{c}\"")).collect();
        let params: Vec<String> = (1..=self.columns.len()).map(|n| format!("?{n}")).collect();
        let verb = if or_ignore {
            "INSERT OR IGNORE"
        } else {
            "INSERT"
        };
        format!(
            "{verb} INTO main.{} ({}) VALUES ({})",
            self.table,
            names.join(", "),
            params.join(", ")
        )
    }

    /// One new row; `values` in the order of `columns`.
    pub(crate) fn row(&mut self, values: &[Value<'_>]) -> Result<()> {
        if values.len() != self.columns.len() {
            bail!(
                "replace {}: {} values for {} columns",
                self.table,
                values.len(),
                self.columns.len()
            );
        }
        match &mut self.mode {
            Mode::Direct { insert, .. } => insert.row(values),
            Mode::Merge { arena, rows } => {
                let start = arena.len();
                for v in values {
                    encode(arena, v);
                }
                rows.push((start, arena.len()));
                Ok(())
            }
            Mode::Finished => bail!("replace {}: finished", self.table),
        }
    }

    /// Applies the difference: deletes the stored rows no new row equals, inserts the new rows
    /// no stored row equals.
    pub(crate) fn finish(mut self) -> Result<Changes> {
        let (arena, mut rows) = match std::mem::replace(&mut self.mode, Mode::Finished) {
            Mode::Direct {
                insert,
                changes_before,
            } => {
                drop(insert);
                return Ok(Changes {
                    deleted: 0,
                    inserted: (total_changes(self.tx) - changes_before) as usize,
                });
            }
            Mode::Merge { arena, rows } => (arena, rows),
            Mode::Finished => bail!("replace {}: finished", self.table),
        };
        let t = self.table;
        let key = &self.key;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let key_cmp = |x: &[Cell<'_>], y: &[Cell<'_>]| {
            key.iter()
                .map(|&k| cmp_cells(&x[k], &y[k]))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        // Stable: of rows with one key, the first given stays (as INSERT OR IGNORE keeps it).
        rows.sort_by(|x, y| {
            decode(&arena[x.0..x.1], &mut a);
            decode(&arena[y.0..y.1], &mut b);
            key_cmp(&a, &b)
        });
        let mut unique: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some(last) = unique.last() {
                decode(&arena[last.0..last.1], &mut a);
                decode(&arena[r.0..r.1], &mut b);
                if key_cmp(&a, &b).is_eq() {
                    if self.or_ignore {
                        continue;
                    }
                    bail!("insert into {t}: UNIQUE constraint failed: a key given twice");
                }
            }
            unique.push(r);
        }
        // The merge: stored rows in key order against the new ones.
        let names: Vec<String> = self.columns.iter().map(|c| format!("\"{c}\"")).collect();
        let order: Vec<&str> = key.iter().map(|&k| names[k].as_str()).collect();
        let scope = if self.integration.is_some() {
            " WHERE integration = ?1"
        } else {
            ""
        };
        let mut deletes: Vec<Vec<rusqlite::types::Value>> = Vec::new();
        let mut inserts: Vec<(usize, usize)> = Vec::new();
        {
            let mut st = self.tx.prepare(&format!(
                "SELECT {} FROM main.{t}{scope} ORDER BY {}",
                names.join(", "),
                order.join(", ")
            ))?;
            let mut stored = st.query(rusqlite::params_from_iter(self.integration.iter()))?;
            let mut next = unique.iter().peekable();
            // The stored row's key, owned: the row is deleted once the read is over.
            let stored_key =
                |row: &rusqlite::Row<'_>| -> rusqlite::Result<Vec<rusqlite::types::Value>> {
                    key.iter().map(|&k| row.get(k)).collect()
                };
            while let Some(row) = stored.next()? {
                let mut old: Vec<Cell<'_>> = Vec::with_capacity(names.len());
                for c in 0..names.len() {
                    old.push(row.get_ref(c)?.into());
                }
                loop {
                    let Some(&&n) = next.peek() else {
                        deletes.push(stored_key(row)?);
                        break;
                    };
                    decode(&arena[n.0..n.1], &mut b);
                    match key_cmp(&b, &old) {
                        std::cmp::Ordering::Less => {
                            inserts.push(n);
                            next.next();
                        }
                        std::cmp::Ordering::Equal => {
                            let same = b.iter().zip(&old).all(|(x, y)| {
                                cmp_cells(x, y).is_eq()
                                    && std::mem::discriminant(x) == std::mem::discriminant(y)
                            });
                            if !same {
                                deletes.push(stored_key(row)?);
                                inserts.push(n);
                            }
                            next.next();
                            break;
                        }
                        std::cmp::Ordering::Greater => {
                            deletes.push(stored_key(row)?);
                            break;
                        }
                    }
                }
            }
            inserts.extend(next.copied());
        }
        let wheres: Vec<String> = order
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        let mut del = self.tx.prepare(&format!(
            "DELETE FROM main.{t} WHERE {}",
            wheres.join(" AND ")
        ))?;
        for k in &deletes {
            del.execute(rusqlite::params_from_iter(k.iter()))?;
        }
        drop(del);
        let mut ins = Insert::new(self.tx, t, &self.insert_sql(false))?;
        let mut values: Vec<Value<'_>> = Vec::with_capacity(names.len());
        for &(s, e) in &inserts {
            decode(&arena[s..e], &mut b);
            values.clear();
            for c in &b {
                values.push(match c {
                    Cell::Int(n) => Value::Int(*n),
                    Cell::Text(t) => Value::Text(std::str::from_utf8(t)?),
                    _ => Value::Null,
                });
            }
            ins.row(&values)?;
        }
        Ok(Changes {
            deleted: deletes.len(),
            inserted: inserts.len(),
        })
    }
}

fn total_changes(tx: &Transaction) -> i64 {
    // SAFETY: the transaction's live connection; the call only reads a counter.
    unsafe { ffi::sqlite3_total_changes64(tx.handle()) }
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
        // Out of key order, over stored rows: the same table as in order.
        replace(
            &mut conn,
            Some("a"),
            &[
                ("a", "9", None),
                ("a", "2", Some("now")),
                ("a", "5", Some("v")),
            ],
        );
        let ids: Vec<String> = dump(&conn).into_iter().map(|r| r.1).collect();
        assert_eq!(ids, ["2", "5", "9", "1"]);
        assert_eq!(
            replace(&mut conn, Some("a"), &[("a", "2", Some("now"))]),
            Changes {
                deleted: 2,
                inserted: 0
            }
        );
        // A key given twice without or_ignore is refused, as an INSERT would be.
        {
            let tx = conn.transaction().unwrap();
            let mut r =
                Replace::new(&tx, "t", &["integration", "id", "v"], false, Some("a")).unwrap();
            r.row(&["a".into(), "7".into(), Value::Null]).unwrap();
            r.row(&["a".into(), "7".into(), "x".into()]).unwrap();
            let err = r.finish().unwrap_err().to_string();
            assert!(err.contains("UNIQUE"), "{err}");
        }
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
