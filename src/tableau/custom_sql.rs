//! Tableau's custom SQL, read by our own parser ([`crate::lineage`]) rather than taken from
//! Tableau's list of its tables (issue #13): Tableau lists nothing for SQL it could not parse
//! (`isUnsupportedCustomSql: true`, `tables: []`), and what it lists for SQL it did parse is not
//! always right (DataHub #5854: empty for complex SQL; #9841: aliases reported as tables).
//!
//! Tableau stores the query as the author wrote it, with two twists to undo before parsing:
//! - parameters appear as `<[Parameters].[Name]>`; each becomes the literal `1`, which stands
//!   wherever a value may (comparisons, `LIMIT`, `IN (…)`, inside quotes) and names no table;
//! - DataHub's Tableau source reports that Tableau doubles literal `<` and `>` (`<<`, `>>`) in
//!   the text it stores. Nobody here could check that against a live server, so both readings
//!   are tried: the undoubled one first, then the text as stored. Neither changes a table name
//!   (names hold no `<` or `>`), so whichever parses gives the same tables.

use crate::lineage::{self, Defaults, Dialect, ParseFailure, TableRef};
use crate::tableau::model::CustomSql;

/// What our parser made of one custom SQL query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Read {
    /// The tables it reads (possibly none: `SELECT 1`, only files or table functions).
    Tables(Vec<TableRef>),
    /// Neither reading of the text parsed: the parser's message and position, for the first.
    Failed(ParseFailure),
    /// Tableau gave no query text (permissions, or an empty query).
    NoText,
}

/// Reads one query with the dialect of its connection and the connection's database as the
/// default for one- and two-part names (`CustomSQLTable.database.name`; Tableau gives no
/// default schema).
pub(crate) fn read(c: &CustomSql) -> Read {
    let Some(query) = c.query.as_deref().filter(|q| !q.trim().is_empty()) else {
        return Read::NoText;
    };
    let dialect = Dialect::from_connection_type(
        c.connection_type
            .as_deref()
            .or_else(|| {
                c.database
                    .as_ref()
                    .and_then(|d| d.connection_type.as_deref())
            })
            .unwrap_or(""),
    );
    let defaults = Defaults {
        database: c
            .database
            .as_ref()
            .and_then(|d| d.name.clone())
            .filter(|d| !d.is_empty()),
        schema: None,
    };
    let stored = without_parameters(query);
    let undoubled = undouble(&stored);
    match lineage::tables_read(&undoubled, dialect, &defaults) {
        Ok(tables) => Read::Tables(tables),
        Err(first) if undoubled != stored => {
            match lineage::tables_read(&stored, dialect, &defaults) {
                Ok(tables) => Read::Tables(tables),
                Err(_) => Read::Failed(first),
            }
        }
        Err(first) => Read::Failed(first),
    }
}

/// The text with every `<[Parameters].[Name]>` replaced by `1`. A name's `]` is written `]]`
/// inside its brackets; an opening without its close is left as it is (the parser reports it).
fn without_parameters(sql: &str) -> String {
    const OPEN: &str = "<[parameters].[";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = find_ascii_ci(rest, OPEN) {
        let after = &rest[at + OPEN.len()..];
        match parameter_end(after) {
            Some(end) => {
                out.push_str(&rest[..at]);
                out.push('1');
                rest = &after[end..];
            }
            None => {
                out.push_str(&rest[..at + OPEN.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the parameter name starting `s` ends: the byte after its `]>`, skipping `]]`.
fn parameter_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b']' {
            if b.get(i + 1) == Some(&b']') {
                i += 2;
                continue;
            }
            return (b.get(i + 1) == Some(&b'>')).then_some(i + 2);
        }
        i += 1;
    }
    None
}

/// The byte offset of `needle` (lower-case ASCII) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..h.len().checked_sub(n.len())? + 1).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// `<<` → `<` and `>>` → `>`, left to right (`<<<<` is `<<`).
fn undouble(sql: &str) -> String {
    sql.replace("<<", "<").replace(">>", ">")
}

/// A table our parser found, as the relation's `full_name`: every known part in double quotes
/// (`"` doubled inside), so `keys::split_parts` keeps a dot inside a name in its part and
/// `keys::fold` takes the quotes off again. A missing schema stays an empty part (`"db".."t"`);
/// a missing database leaves the name at two parts or one, completed by nothing.
pub(crate) fn full_name(t: &TableRef) -> String {
    let q = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    let name = q(&t.name.value);
    match (&t.database, &t.schema) {
        (Some(d), Some(s)) => format!("{}.{}.{name}", q(&d.value), q(&s.value)),
        (Some(d), None) => format!("{}..{name}", q(&d.value)),
        (None, Some(s)) => format!("{}.{name}", q(&s.value)),
        (None, None) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tableau::model::Database;

    fn query(sql: &str, connection_type: &str, database: Option<&str>) -> CustomSql {
        CustomSql {
            id: "c1".into(),
            query: Some(sql.into()),
            connection_type: Some(connection_type.into()),
            database: database.map(|d| Database {
                name: Some(d.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn names(r: &Read) -> Vec<String> {
        match r {
            Read::Tables(t) => t.iter().map(TableRef::dotted).collect(),
            other => panic!("not parsed: {other:?}"),
        }
    }

    #[test]
    fn parameters_become_literals_wherever_they_stand() {
        assert_eq!(without_parameters("a = <[Parameters].[Region]>"), "a = 1");
        assert_eq!(
            without_parameters("x IN (<[parameters].[A]>, '<[Parameters].[B]>')"),
            "x IN (1, '1')"
        );
        assert_eq!(
            without_parameters("top <[Parameters].[N ]]x]>"),
            "top 1",
            "a `]` in the name is doubled"
        );
        assert_eq!(
            without_parameters("a < [Parameters].[X]>"),
            "a < [Parameters].[X]>",
            "not a parameter"
        );
        assert_eq!(
            without_parameters("a = <[Parameters].[open"),
            "a = <[Parameters].[open",
            "no close: left alone"
        );
        assert_eq!(without_parameters("é <[Parameters].[Ü]> ü"), "é 1 ü");
        let r = read(&query("select * from marts.orders where region = <[Parameters].[Region]> limit <[Parameters].[Top N]>", "postgres", Some("analytics")));
        assert_eq!(names(&r), ["analytics.marts.orders"]);
    }

    #[test]
    fn doubled_angle_brackets_are_read_both_ways() {
        // Stored doubled (as DataHub reports): undoubled first, and that parses.
        let r = read(&query(
            "select * from s.t where amount <<>> 0 and a >>= 1",
            "snowflake",
            Some("DB"),
        ));
        assert_eq!(names(&r), ["DB.s.t"]);
        // Stored as written: a real `>>` (a bit shift) parses as it is when undoubling breaks it.
        let r = read(&query(
            "select a >> 2 from s.t where b <> 0",
            "postgres",
            Some("db"),
        ));
        assert_eq!(names(&r), ["db.s.t"]);
        let r = read(&query(
            "select 1 from s.t where x <<>> 0)",
            "postgres",
            Some("db"),
        ));
        assert!(matches!(r, Read::Failed(_)), "{r:?}");
    }

    #[test]
    fn names_are_completed_from_the_connection_database_only() {
        let r = read(&query(
            "select * from orders o join marts.customers c on c.id = o.cid",
            "snowflake",
            Some("ANALYTICS"),
        ));
        let Read::Tables(t) = &r else { panic!("{r:?}") };
        assert_eq!(
            t.iter().map(TableRef::dotted).collect::<Vec<_>>(),
            ["ANALYTICS..orders", "ANALYTICS.marts.customers"]
        );
        assert_eq!(t[0].missing(), Some(lineage::Missing::Schema));
        assert_eq!(full_name(&t[0]), "\"ANALYTICS\"..\"orders\"");
        let r = read(&query("select * from marts.customers", "snowflake", None));
        let Read::Tables(t) = &r else { panic!("{r:?}") };
        assert_eq!(full_name(&t[0]), "\"marts\".\"customers\"");
        assert_eq!(t[0].missing(), Some(lineage::Missing::Database));
    }

    #[test]
    fn full_names_survive_hostile_parts() {
        let r = read(&query(
            r#"select * from "we""ird.db"."s.x"."{{ t }}""#,
            "postgres",
            Some("db"),
        ));
        let Read::Tables(t) = &r else { panic!("{r:?}") };
        let full = full_name(&t[0]);
        assert_eq!(full, r#""we""ird.db"."s.x"."{{ t }}""#);
        let parts: Vec<String> = crate::keys::split_parts(&full)
            .iter()
            .map(|p| crate::keys::fold(p))
            .collect();
        assert_eq!(parts, ["we\"ird.db", "s.x", "{{ t }}"]);
    }

    #[test]
    fn no_text_and_failures_say_so() {
        assert_eq!(read(&CustomSql::default()), Read::NoText);
        assert_eq!(read(&query("  ", "postgres", None)), Read::NoText);
        let Read::Failed(f) = read(&query("select * from", "postgres", None)) else {
            panic!()
        };
        assert!(f.to_string().contains("line 1"), "{f}");
        // Unknown connection types are generic SQL, not an error.
        assert_eq!(
            names(&read(&query("select * from a.b.c", "teradata", None))),
            ["a.b.c"]
        );
    }
}
