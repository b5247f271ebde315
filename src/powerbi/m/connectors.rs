//! The data-access functions the reader follows: what each takes, what its navigation levels
//! are, and which SQL dialect its native queries are in (/work/shared/reference/powerbi.md
//! sections 5 and 11: the navigation table there, and DataHub's M-query corpus shapes).
//!
//! A connection ([`Conn`]) starts at what the function's arguments give (a server, sometimes a
//! database) and each navigation step (`{[Name=…,Kind=…]}[Data]`, `{[Schema=…,Item=…]}[Data]`)
//! fills the next level. A level is taken from `Kind` when there is one, else it is the next
//! level of the connector; a step that skips a level, repeats one with another name, or names
//! a key or kind the reader does not know is a miss, never a guess.

use std::hash::{Hash, Hasher};
use std::rc::Rc;

use super::resolve::Val;
use super::{Found, MissKind};
use crate::lineage::{self, Defaults, Dialect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Database,
    Schema,
    Table,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Database => "database",
            Level::Schema => "schema",
            Level::Table => "table",
        }
    }
}

/// One data-access function.
#[derive(Debug)]
pub(super) struct Spec {
    pub name: &'static str,
    pub dialect: Dialect,
    /// The argument holding the server / host / account / region.
    server: Option<usize>,
    /// The argument holding the database, where the function takes one.
    database: Option<usize>,
    /// The options record.
    options: usize,
    /// The levels navigation walks, in order, below what the arguments give.
    levels: &'static [Level],
    /// The schema unqualified names in native SQL fall back to, where the warehouse has a
    /// fixed default: SQL Server's `dbo` (the reference's table: "default schema dbo").
    sql_schema: Option<&'static str>,
    /// MySQL: the database argument is also the schema unqualified names in native SQL live
    /// in (database and schema are one level there; navigation says `{[Schema="shop",…]}`).
    schema_is_database: bool,
}

const DST: &[Level] = &[Level::Database, Level::Schema, Level::Table];
const ST: &[Level] = &[Level::Schema, Level::Table];

const SPECS: &[Spec] = &[
    Spec {
        name: "Snowflake.Databases",
        dialect: Dialect::Snowflake,
        server: Some(0),
        database: None,
        options: 2,
        levels: DST,
        sql_schema: None,
        schema_is_database: false,
    },
    Spec {
        name: "Sql.Database",
        dialect: Dialect::MsSql,
        server: Some(0),
        database: Some(1),
        options: 2,
        levels: ST,
        sql_schema: Some("dbo"),
        schema_is_database: false,
    },
    Spec {
        name: "Sql.Databases",
        dialect: Dialect::MsSql,
        server: Some(0),
        database: None,
        options: 1,
        levels: DST,
        sql_schema: Some("dbo"),
        schema_is_database: false,
    },
    Spec {
        name: "PostgreSQL.Database",
        dialect: Dialect::Postgres,
        server: Some(0),
        database: Some(1),
        options: 2,
        levels: ST,
        sql_schema: None,
        schema_is_database: false,
    },
    // The first navigation level is the project (reference: "first Name = project").
    Spec {
        name: "GoogleBigQuery.Database",
        dialect: Dialect::BigQuery,
        server: None,
        database: None,
        options: 0,
        levels: DST,
        sql_schema: None,
        schema_is_database: false,
    },
    Spec {
        name: "AmazonRedshift.Database",
        dialect: Dialect::Redshift,
        server: Some(0),
        database: Some(1),
        options: 2,
        levels: ST,
        sql_schema: None,
        schema_is_database: false,
    },
    // `Kind="Database"` is the Unity catalog (reference: Microsoft's Azure Databricks connector doc).
    Spec {
        name: "Databricks.Catalogs",
        dialect: Dialect::Databricks,
        server: Some(0),
        database: None,
        options: 2,
        levels: DST,
        sql_schema: None,
        schema_is_database: false,
    },
    Spec {
        name: "DatabricksMultiCloud.Catalogs",
        dialect: Dialect::Databricks,
        server: Some(0),
        database: None,
        options: 2,
        levels: DST,
        sql_schema: None,
        schema_is_database: false,
    },
    // "host:port/service": Oracle names tables by schema and table only.
    Spec {
        name: "Oracle.Database",
        dialect: Dialect::Generic,
        server: Some(0),
        database: None,
        options: 1,
        levels: ST,
        sql_schema: None,
        schema_is_database: false,
    },
    // Catalog (`AwsDataCatalog`), database (a schema to dbt), table.
    Spec {
        name: "AmazonAthena.Databases",
        dialect: Dialect::Generic,
        server: Some(0),
        database: None,
        options: 1,
        levels: DST,
        sql_schema: None,
        schema_is_database: false,
    },
    Spec {
        name: "MySQL.Database",
        dialect: Dialect::MySql,
        server: Some(0),
        database: Some(1),
        options: 2,
        levels: ST,
        sql_schema: None,
        schema_is_database: true,
    },
];

pub(super) fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// A connection and how far navigation has gone.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Conn {
    pub spec: &'static Spec,
    pub server: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
}

impl PartialEq for Spec {
    fn eq(&self, other: &Spec) -> bool {
        self.name == other.name
    }
}

pub(super) fn miss(reason: MissKind, detail: impl Into<String>) -> Val {
    Val::Found(vec![Found::Miss {
        reason,
        detail: detail.into(),
    }])
}

/// A text argument: `Ok(None)` when absent or null; a miss when it is an unresolved parameter
/// or computed.
fn text(v: Option<&Val>, what: &str, function: &str) -> Result<Option<String>, Val> {
    match v {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Text(s)) => Ok(Some(s.to_string())),
        Some(Val::Unresolved(name)) => Err(miss(MissKind::UnresolvedParameter, name.clone())),
        Some(f @ (Val::Found(_) | Val::Sql(_))) => Err(f.clone()),
        Some(_) => Err(miss(
            MissKind::Unreadable,
            format!("{function}: the {what} is computed, not a text the reader can know"),
        )),
    }
}

fn field<'v>(options: Option<&'v Val>, name: &str) -> Option<&'v Val> {
    match options {
        Some(Val::Record(fields)) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

/// A call of a connector function (its arguments already one alternative each).
pub(super) fn connect(spec: &'static Spec, args: &[Val]) -> Val {
    match connect_inner(spec, args) {
        Ok(v) | Err(v) => v,
    }
}

fn connect_inner(spec: &'static Spec, args: &[Val]) -> Result<Val, Val> {
    let name = spec.name;
    let server = match spec.server {
        Some(i) => text(args.get(i), "server", name)?,
        None => None,
    };
    let database = match spec.database {
        Some(i) => match text(args.get(i), "database", name)? {
            Some(d) => Some(d),
            None => {
                return Err(miss(
                    MissKind::Unreadable,
                    format!("{name}: no database argument"),
                ))
            }
        },
        None => None,
    };
    let options = args.get(spec.options);
    let mut conn = Conn {
        spec,
        server,
        database,
        schema: None,
        table: None,
    };
    if spec.dialect == Dialect::Databricks {
        // `[Catalog="main", Database="marts"]` start navigation below them (reference, Databricks row).
        conn.database = text(field(options, "Catalog"), "Catalog option", name)?;
        if conn.database.is_some() {
            conn.schema = text(field(options, "Database"), "Database option", name)?;
        }
    }
    if let Some(query) = field(options, "Query") {
        if let Some(sql) = text(Some(query), "Query option", name)? {
            let schema = sql_schema(&conn);
            return Ok(sql_found(
                name,
                conn.server,
                spec.dialect,
                conn.database,
                schema,
                sql,
            ));
        }
    }
    Ok(Val::Conn(Box::new(conn)))
}

/// The schema unqualified names in native SQL fall back to on this connection.
fn sql_schema(conn: &Conn) -> Option<String> {
    let spec = conn.spec;
    conn.schema
        .clone()
        .or_else(|| {
            if spec.schema_is_database {
                conn.database.clone()
            } else {
                None
            }
        })
        .or(spec.sql_schema.map(str::to_string))
}

/// Native SQL and the connection's defaults, not read yet: the lineage module reads each
/// distinct query once, when the expression's findings are collected ([`Query::read`]), however
/// many times evaluation passes it around.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Query {
    connector: String,
    server: Option<String>,
    dialect: Dialect,
    database: Option<String>,
    schema: Option<String>,
    sql: String,
}

impl Hash for Query {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (
            &self.connector,
            &self.server,
            &self.database,
            &self.schema,
            &self.sql,
        )
            .hash(h);
    }
}

impl Query {
    pub(super) fn sql_len(&self) -> usize {
        self.sql.len()
    }

    /// What the lineage module reads of the SQL, with the connection's defaults.
    pub(super) fn read(&self) -> Found {
        let defaults = Defaults {
            database: self.database.clone(),
            schema: self.schema.clone(),
        };
        let tables = lineage::tables_read(&self.sql, self.dialect, &defaults);
        Found::Sql {
            connector: self.connector.clone(),
            server: self.server.clone(),
            dialect: self.dialect,
            database: self.database.clone(),
            schema: self.schema.clone(),
            sql: self.sql.clone(),
            tables,
        }
    }
}

/// Native SQL with the connection's defaults.
pub(super) fn sql_found(
    connector: &str,
    server: Option<String>,
    dialect: Dialect,
    database: Option<String>,
    schema: Option<String>,
    sql: String,
) -> Val {
    Val::Sql(Rc::new(Query {
        connector: connector.to_string(),
        server,
        dialect,
        database,
        schema,
        sql,
    }))
}

/// `Value.NativeQuery(target, sql, …)`, one alternative of each argument.
pub(super) fn native_query(target: &Val, sql: Option<&Val>) -> Val {
    const F: &str = "Value.NativeQuery";
    let conn = match target {
        Val::Conn(c) | Val::Row(c) => c,
        Val::Unresolved(name) => return miss(MissKind::UnresolvedParameter, name.clone()),
        Val::Found(_) | Val::Sql(_) | Val::File(_) | Val::Dataflow { .. } => return target.clone(),
        _ => {
            return miss(
                MissKind::Unreadable,
                format!("{F}: the target is not a database connection the reader knows"),
            )
        }
    };
    let sql = match text(sql, "SQL", F) {
        Ok(Some(s)) => s,
        Ok(None) => return miss(MissKind::Unreadable, format!("{F}: no SQL")),
        Err(v) => return v,
    };
    let spec = conn.spec;
    let schema = sql_schema(conn);
    sql_found(
        spec.name,
        conn.server.clone(),
        spec.dialect,
        conn.database.clone(),
        schema,
        sql,
    )
}

/// `Odbc.Query(connection, sql)`: generic SQL, no defaults; the server is the DSN only (an ODBC
/// connection string may hold a password, which must go nowhere).
pub(super) fn odbc_query(connection: Option<&Val>, sql: Option<&Val>) -> Val {
    const F: &str = "Odbc.Query";
    let dsn = match connection {
        Some(Val::Text(s)) => dsn_of(s),
        Some(Val::Record(fields)) => fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("dsn"))
            .and_then(|(_, v)| {
                if let Val::Text(s) = v {
                    Some(s.to_string())
                } else {
                    None
                }
            }),
        Some(Val::Unresolved(name)) => return miss(MissKind::UnresolvedParameter, name.clone()),
        _ => None,
    };
    match text(sql, "SQL", F) {
        Ok(Some(s)) => sql_found(F, dsn, Dialect::Generic, None, None, s),
        Ok(None) => miss(MissKind::Unreadable, format!("{F}: no SQL")),
        Err(v) => v,
    }
}

fn dsn_of(connection_string: &str) -> Option<String> {
    connection_string.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("dsn")
            .then(|| v.trim().to_string())
    })
}

fn kind_level(function: &str, kind: &str) -> Result<Level, Val> {
    match kind {
        "Database" | "Catalog" | "Project" => Ok(Level::Database),
        "Schema" => Ok(Level::Schema),
        "Table" | "View" => Ok(Level::Table),
        other => Err(miss(
            MissKind::Unreadable,
            format!("{function}: navigation to a Kind=\"{other}\" item (the reader follows databases, schemas, tables and views)"),
        )),
    }
}

/// One navigation step `{[…]}` over a connection, its record's values one alternative each.
pub(super) fn navigate(conn: &Conn, fields: &[(String, Val)]) -> Val {
    match navigate_inner(conn, fields) {
        Ok(c) => Val::Row(Box::new(c)),
        Err(v) => v,
    }
}

fn navigate_inner(conn: &Conn, fields: &[(String, Val)]) -> Result<Conn, Val> {
    let f = conn.spec.name;
    let (mut name, mut kind, mut schema, mut item, mut catalog) = (None, None, None, None, None);
    for (k, v) in fields {
        let slot = match k.as_str() {
            "Name" => &mut name,
            "Kind" => &mut kind,
            "Schema" => &mut schema,
            "Item" => &mut item,
            "Catalog" => &mut catalog,
            other => {
                return Err(miss(
                    MissKind::Unreadable,
                    format!("{f}: navigation by a field {other} the reader does not know"),
                ))
            }
        };
        *slot = text(Some(v), &format!("navigation {k}"), f)?;
    }
    let mut next = conn.clone();
    if schema.is_some() || item.is_some() || catalog.is_some() {
        if name.is_some() {
            return Err(miss(
                MissKind::Unreadable,
                format!("{f}: a navigation step with both Name and Schema/Item"),
            ));
        }
        for (level, value) in [
            (Level::Database, catalog),
            (Level::Schema, schema),
            (Level::Table, item),
        ] {
            if let Some(v) = value {
                set(&mut next, level, v)?;
            }
        }
    } else if let Some(n) = name {
        let level = match kind {
            Some(k) => kind_level(f, &k)?,
            None => match conn.spec.levels.iter().find(|l| get(&next, **l).is_none()) {
                Some(l) => *l,
                None => {
                    return Err(miss(
                        MissKind::Unreadable,
                        format!("{f}: navigation below a table"),
                    ))
                }
            },
        };
        set(&mut next, level, n)?;
    } else {
        return Err(miss(
            MissKind::Unreadable,
            format!("{f}: a navigation step without Name or Item"),
        ));
    }
    Ok(next)
}

fn get(c: &Conn, level: Level) -> Option<&String> {
    match level {
        Level::Database => c.database.as_ref(),
        Level::Schema => c.schema.as_ref(),
        Level::Table => c.table.as_ref(),
    }
}

fn set(c: &mut Conn, level: Level, value: String) -> Result<(), Val> {
    let f = c.spec.name;
    if !c.spec.levels.contains(&level) {
        let why = if level == Level::Database {
            " (its database is an argument)"
        } else {
            ""
        };
        return Err(miss(
            MissKind::Unreadable,
            format!(
                "{f}: navigation to a {} it does not have{why}",
                level.word()
            ),
        ));
    }
    if let Some(old) = get(c, level) {
        if *old == value {
            return Ok(());
        }
        return Err(miss(
            MissKind::Unreadable,
            format!(
                "{f}: navigation to {} {value} under {} {old}",
                level.word(),
                level.word()
            ),
        ));
    }
    for earlier in c.spec.levels.iter().take_while(|l| **l != level) {
        if get(c, *earlier).is_none() {
            return Err(miss(
                MissKind::Unreadable,
                format!(
                    "{f}: navigation to {} {value} before a {}",
                    level.word(),
                    earlier.word()
                ),
            ));
        }
    }
    match level {
        Level::Database => c.database = Some(value),
        Level::Schema => c.schema = Some(value),
        Level::Table => c.table = Some(value),
    }
    Ok(())
}

/// What a connection ends as: the table it navigated to, or a miss saying how far it got.
pub(super) fn finish(c: &Conn) -> Found {
    let f = c.spec.name;
    match &c.table {
        Some(name) => Found::Table {
            connector: f.to_string(),
            server: c.server.clone(),
            database: c.database.clone(),
            schema: c.schema.clone(),
            name: name.clone(),
        },
        None => {
            let path: Vec<&str> = [&c.database, &c.schema]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let detail = if c.schema.is_some() {
                format!(
                    "{f}: navigation stops at schema {}, short of a table",
                    path.join(".")
                )
            } else if c.database.is_some() && c.spec.levels.contains(&Level::Database) {
                format!(
                    "{f}: navigation stops at database {}, short of a table",
                    path.join(".")
                )
            } else {
                format!("{f}: the connection is used without navigating to a table")
            };
            Found::Miss {
                reason: MissKind::Unreadable,
                detail,
            }
        }
    }
}
