//! Bulk inserts for the stages' big tables: a prepared `INSERT` that binds text without
//! copying it.
//!
//! rusqlite binds every string as `SQLITE_TRANSIENT`, so SQLite copies it before the row is
//! built. With 700k rows of up to 14 columns at 20k workbooks, those copies were a fifth of the
//! writer thread's time. Here text is bound as `SQLITE_STATIC`, which is sound because `row`
//! borrows the values only for its own duration and steps, resets and clears the statement
//! before it returns: SQLite never holds a pointer past the call. Everything else (errors,
//! transactions, reads) stays with rusqlite.

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
        let rc = unsafe { ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            // SAFETY: on a failed prepare the statement is NULL or must still be finalized.
            unsafe { ffi::sqlite3_finalize(stmt) };
            bail!("insert into {table}: cannot prepare it: {}", message(db));
        }
        Ok(Insert { db, stmt, table, _tx: PhantomData })
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
                        ffi::sqlite3_bind_text(self.stmt, col, s.as_ptr().cast(), len, ffi::SQLITE_STATIC())
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

fn message(db: *mut ffi::sqlite3) -> String {
    // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by SQLite, copied at once.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_and_errors_name_the_table() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT NOT NULL, b TEXT, n INTEGER, PRIMARY KEY (a)) WITHOUT ROWID").unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut ins = Insert::new(&tx, "t", "INSERT INTO t (a, b, n) VALUES (?1, ?2, ?3)").unwrap();
            for i in 0..100 {
                // A fresh String per row, dropped right after: SQLite must not keep its pointer.
                let a = format!("key-{i:03}-é");
                ins.row(&[Value::from(&a), Value::from(None::<&str>), Value::from(i % 2 == 0)]).unwrap();
            }
            let err = ins.row(&["key-000-é".into(), Value::Null, Value::Int(1)]).unwrap_err().to_string();
            assert!(err.starts_with("insert into t:") && err.contains("UNIQUE"), "{err}");
            ins.row(&["after-error".into(), "b".into(), Value::Int(7)]).unwrap();
        }
        tx.commit().unwrap();
        let (n, first, last): (i64, String, String) =
            conn.query_row("SELECT count(*), min(a), max(a) FROM t", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert_eq!((n, first.as_str(), last.as_str()), (101, "after-error", "key-099-é"));
        let b: Option<String> = conn.query_row("SELECT b FROM t WHERE a = 'key-005-é'", [], |r| r.get(0)).unwrap();
        assert_eq!(b, None);
        assert!(Insert::new(&conn.transaction().unwrap(), "nope", "INSERT INTO nope VALUES (1)").is_err());
    }
}
