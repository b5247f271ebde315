//! SQL lineage: the physical tables a piece of SQL reads.
//!
//! Generic over the tool the SQL comes from: given the text, the warehouse's [`Dialect`] and the
//! connection's [`Defaults`], [`tables_read`] parses it with `sqlparser` and returns every table
//! read, sorted and de-duplicated, or the parser's error with its position.
//!
//! # What counts as a table read
//! - every relation in FROM and JOIN, at any depth: derived tables, subqueries in SELECT, WHERE,
//!   HAVING, ON, function arguments, set operations (UNION / INTERSECT / EXCEPT), LATERAL, APPLY;
//! - the sources of INSERT … SELECT, CREATE TABLE … AS SELECT, CREATE VIEW … AS, MERGE … USING,
//!   UPDATE … FROM and DELETE … USING. The *targets* of INSERT, UPDATE, DELETE and MERGE are
//!   written, not read, and are not returned;
//! - Snowflake's `IDENTIFIER('db.s.t')` (a string literal argument; a variable cannot be resolved
//!   and is left out);
//! - SQL Server's `t WITH (NOLOCK)` and the older `t (NOLOCK)` are the table `t`.
//!
//! Not tables: CTE names where they are in scope (a CTE shadows a real table of the same name
//! inside its WITH — in the later CTEs and the body — but not inside its own definition unless
//! the WITH is RECURSIVE, nor outside the query), tables the SQL creates itself (any CREATE
//! TABLE / CREATE VIEW / SELECT … INTO earlier in the text, SQL Server `#temp` tables and `@table`
//! variables), table functions (`FLATTEN`, `UNNEST`, `generate_series`, `TABLE(...)`,
//! `read_csv('x')`, any `name(args)` in FROM), VALUES, `DUAL`, Snowflake stages (`@stage`), file
//! paths (DuckDB's `FROM 'x.parquet'`, Databricks' ``parquet.`/mnt/x` ``: a name in single
//! quotes, or one starting with `/` or holding `://`), and anything in comments or string
//! literals.
//!
//! # Names
//! Parts are returned as written, unquoted, with a `quoted` flag per part: nothing is case
//! folded, so the caller folds the unquoted parts by its warehouse's rules (Snowflake upper,
//! Postgres lower, SQL Server and BigQuery as written). One- and two-part names are completed
//! from the defaults; parts taken from the defaults are exact names (`quoted: true`). A name
//! that still has no database (or no schema) is returned incomplete — see [`TableRef::missing`]
//! — never guessed. `db..t` (Snowflake, SQL Server) means the warehouse's default schema (PUBLIC
//! on Snowflake, the user's default on SQL Server): it is returned with `schema: None` and
//! `default_schema: true`, not an invented name. Four-part names (SQL Server linked servers) keep
//! the last three parts; the server is in `written`. BigQuery wildcard tables keep their `*`
//! (`events_*`).
//!
//! # Several statements
//! Statements are read in order; `USE …`, `USE SCHEMA …`, `USE DATABASE …`, `USE CATALOG …`,
//! `SET search_path …` (its first schema other than `$user`) and `SET SCHEMA …` change the
//! defaults of the statements after them. What a one-part `USE x` names depends on the dialect:
//! a database on Snowflake, SQL Server, DuckDB and generic SQL; a schema on MySQL, Hive, Spark
//! and Databricks (where database and schema are one namespace level). On Snowflake and DuckDB a
//! `USE` of a database alone leaves the schema at the warehouse's default (`default_schema`).
//!
//! # Limits
//! The parser's recursion limit bounds nesting (a deeper query is a [`ParseFailure`], never a
//! stack overflow); the parser grows its stack for the rest.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;

use serde::Serialize;
use sqlparser::ast::{
    Expr, FromTable, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, Query,
    Select, Set, Statement, TableFactor, Use, Value, Visit, Visitor,
};
use sqlparser::parser::{Parser, ParserError};

/// Nesting the parser accepts (subqueries, parentheses, expressions): far beyond hand-written
/// or BI-generated SQL, and well within the stack.
const RECURSION_LIMIT: usize = 200;

/// The SQL dialect of a warehouse, chosen from a connection type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Dialect {
    Snowflake,
    Postgres,
    Redshift,
    BigQuery,
    MsSql,
    MySql,
    Databricks,
    Hive,
    Spark,
    DuckDb,
    Generic,
}

impl Dialect {
    /// The dialect of a connection type as BI tools name them (`snowflake`, `postgres`,
    /// `sqlserver`, …), case-insensitive; Oracle and anything unknown are generic SQL.
    pub(crate) fn from_connection_type(connection_type: &str) -> Dialect {
        match connection_type.trim().to_ascii_lowercase().as_str() {
            "snowflake" => Dialect::Snowflake,
            "postgres" | "postgresql" => Dialect::Postgres,
            "redshift" => Dialect::Redshift,
            "bigquery" => Dialect::BigQuery,
            "sqlserver" | "mssql" | "azure_sql_dw" | "azure_sqldb" => Dialect::MsSql,
            "mysql" => Dialect::MySql,
            "databricks" => Dialect::Databricks,
            "hive" | "hadoophive" => Dialect::Hive,
            "spark" | "sparksql" => Dialect::Spark,
            "duckdb" => Dialect::DuckDb,
            _ => Dialect::Generic,
        }
    }

    fn parser(self) -> Box<dyn sqlparser::dialect::Dialect> {
        use sqlparser::dialect as d;
        match self {
            Dialect::Snowflake => Box::new(d::SnowflakeDialect),
            Dialect::Postgres => Box::new(d::PostgreSqlDialect {}),
            Dialect::Redshift => Box::new(d::RedshiftSqlDialect {}),
            Dialect::BigQuery => Box::new(d::BigQueryDialect),
            Dialect::MsSql => Box::new(d::MsSqlDialect {}),
            Dialect::MySql => Box::new(d::MySqlDialect {}),
            Dialect::Databricks => Box::new(d::DatabricksDialect),
            Dialect::Hive => Box::new(d::HiveDialect {}),
            Dialect::Spark => Box::new(d::SparkSqlDialect),
            Dialect::DuckDb => Box::new(d::DuckDbDialect),
            Dialect::Generic => Box::new(d::GenericDialect),
        }
    }

    /// Whether a one-part `USE x` (or `USE DATABASE x`) names a schema rather than a database.
    fn use_names_schema(self) -> bool {
        matches!(
            self,
            Dialect::MySql | Dialect::Hive | Dialect::Spark | Dialect::Databricks
        )
    }

    /// Whether `USE <database>` resets the schema to the warehouse's default one.
    fn use_database_resets_schema(self) -> bool {
        matches!(self, Dialect::Snowflake | Dialect::DuckDb)
    }
}

/// The connection's defaults: what a one- or two-part name is completed with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub database: Option<String>,
    pub schema: Option<String>,
}

/// One part of a name, unquoted, not case folded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub(crate) struct Part {
    pub value: String,
    /// Quoted in the SQL (`"x"`, `[x]`, `` `x` ``), or taken from the defaults: an exact name
    /// the caller must not fold.
    pub quoted: bool,
}

/// A table the SQL reads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub(crate) struct TableRef {
    pub database: Option<Part>,
    /// `None` with `default_schema` for `db..t`; `None` alone when neither the SQL nor the
    /// defaults name one.
    pub schema: Option<Part>,
    pub name: Part,
    /// `db..t`, or a `USE` of a database alone: the warehouse's default schema, unnamed.
    pub default_schema: bool,
    /// A part (database or schema) was taken from the defaults.
    pub completed: bool,
    /// The name as written in the SQL (re-quoted the way it was quoted).
    pub written: String,
}

/// What a [`TableRef`] lacks to be matched. Matching finds the same from the name's parts
/// (`incomplete_name`); the corpus test and the M reader ask it directly.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    Database,
    Schema,
}

impl TableRef {
    /// The part still unknown after completion, if any (the default schema counts as known to
    /// the warehouse, not to us: it is reported as missing only when not flagged).
    #[allow(dead_code)]
    pub(crate) fn missing(&self) -> Option<Missing> {
        if self.database.is_none() {
            Some(Missing::Database)
        } else if self.schema.is_none() && !self.default_schema {
            Some(Missing::Schema)
        } else {
            None
        }
    }

    /// `db.schema.name`, unquoted; `?` for a missing database, nothing for a missing schema
    /// (`db..name`).
    pub(crate) fn dotted(&self) -> String {
        format!(
            "{}.{}.{}",
            self.database.as_ref().map_or("?", |p| p.value.as_str()),
            self.schema.as_ref().map_or("", |p| p.value.as_str()),
            self.name.value
        )
    }
}

/// The parser's error: its message and, when it gives one, the position (1-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ParseFailure {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl ParseFailure {
    /// sqlparser gives no position for "found: EOF": the end of the text (its last character
    /// that is not white space) is where the query stops short.
    fn at_end_if_eof(mut self, sql: &str) -> ParseFailure {
        if self.line.is_none() && self.message.ends_with("found: EOF") {
            let text = sql.trim_end();
            let line = text.lines().count().max(1);
            let last = text.rsplit('\n').next().unwrap_or("");
            self.line = Some(line as u64);
            self.column = Some(last.chars().count() as u64 + 1);
        }
        self
    }

    fn from_parser(e: ParserError) -> ParseFailure {
        let text = match e {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => {
                return ParseFailure {
                    message: format!(
                        "the query nests deeper than the parser's limit ({RECURSION_LIMIT})"
                    ),
                    line: None,
                    column: None,
                }
            }
        };
        // sqlparser appends " at Line: L, Column: C" to the messages that have a position.
        if let Some(at) = text.rfind(" at Line: ") {
            let (message, position) = text.split_at(at);
            let mut numbers = position[" at Line: ".len()..].split(", Column: ");
            let line = numbers.next().and_then(|n| n.trim().parse().ok());
            let column = numbers.next().and_then(|n| n.trim().parse().ok());
            if line.is_some() && column.is_some() {
                return ParseFailure {
                    message: message.to_string(),
                    line,
                    column,
                };
            }
        }
        ParseFailure {
            message: text,
            line: None,
            column: None,
        }
    }
}

/// Longer SQL is refused rather than parsed (a BI tool's custom SQL is kilobytes).
const MAX_SQL_BYTES: usize = 4 << 20;

/// Stack the parse may need per byte of SQL: a chain like `1+1+…` or `a OR b OR …` is parsed in
/// a loop into a left-deep tree that is dropped recursively, one frame (~100 bytes unoptimised)
/// per operator, two bytes of text apart at the least.
const STACK_PER_BYTE: usize = 96;

/// The tables `sql` reads, sorted and de-duplicated, or why it could not be parsed.
pub(crate) fn tables_read(
    sql: &str,
    dialect: Dialect,
    defaults: &Defaults,
) -> Result<Vec<TableRef>, ParseFailure> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(ParseFailure {
            message: format!(
                "the query is {} bytes long, more than the {MAX_SQL_BYTES} bytes read",
                sql.len()
            ),
            line: None,
            column: None,
        });
    }
    // Where the caller's stack is too short for this text, the parse runs on a stack of its own
    // (allocated, and only touched as deep as needed).
    let need = (256 << 10) + sql.len() * STACK_PER_BYTE;
    stacker::maybe_grow(need, need, || {
        // sqlparser is not expected to panic, but a panic on one user's query must not take
        // the run down with it.
        std::panic::catch_unwind(|| tables_read_inner(sql, dialect, defaults)).unwrap_or_else(
            |_| {
                Err(ParseFailure {
                    message: "the SQL parser failed on this query".to_string(),
                    line: None,
                    column: None,
                })
            },
        )
    })
}

fn tables_read_inner(
    sql: &str,
    dialect: Dialect,
    defaults: &Defaults,
) -> Result<Vec<TableRef>, ParseFailure> {
    let parser_dialect = dialect.parser();
    let rewritten = set_schema_equals(sql, parser_dialect.as_ref());
    let statements = Parser::new(parser_dialect.as_ref())
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(rewritten.as_deref().unwrap_or(sql))
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| ParseFailure::from_parser(e).at_end_if_eof(sql))?;
    let exact = |s: &String| Part {
        value: s.clone(),
        quoted: true,
    };
    let mut walker = Walker {
        dialect,
        database: defaults.database.as_ref().map(exact),
        schema: defaults.schema.as_ref().map(exact),
        schema_is_default: false,
        frames: Vec::new(),
        created: HashSet::new(),
        targets: HashSet::new(),
        out: Vec::new(),
    };
    for statement in &statements {
        walker.statement(statement);
    }
    let mut out = walker.out;
    out.sort();
    out.dedup_by(|b, a| {
        a.database == b.database
            && a.schema == b.schema
            && a.name == b.name
            && a.default_schema == b.default_schema
            && a.completed == b.completed
    });
    Ok(out)
}

/// Postgres' `SET SCHEMA 'x'`, which sqlparser parses only with `TO` or `=`: the space after
/// `SCHEMA` becomes `=`, so every position in the text (and in an error) stays where it was.
/// `None` when there is nothing to rewrite.
fn set_schema_equals(sql: &str, dialect: &dyn sqlparser::dialect::Dialect) -> Option<String> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    if !sql
        .as_bytes()
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"schema"))
    {
        return None;
    }
    let tokens = Tokenizer::new(dialect, sql).tokenize_with_location().ok()?;
    let is_word = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let mut spaces = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        let starts_statement =
            n == 0 || matches!(tokens[significant[n - 1]].token, Token::SemiColon);
        let (Some(&schema), Some(&value)) = (significant.get(n + 1), significant.get(n + 2)) else {
            break;
        };
        if !starts_statement
            || !is_word(&tokens[i].token, Keyword::SET)
            || !is_word(&tokens[schema].token, Keyword::SCHEMA)
            || !matches!(&tokens[value].token,
                Token::SingleQuotedString(_) | Token::Word(_) if !is_word(&tokens[value].token, Keyword::TO))
        {
            continue;
        }
        if matches!(
            tokens[schema + 1].token,
            Token::Whitespace(Whitespace::Space | Whitespace::Tab)
        ) {
            spaces.push(tokens[schema + 1].span.start);
        }
    }
    if spaces.is_empty() {
        return None;
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut bytes = sql.as_bytes().to_vec();
    for at in spaces {
        let start = *line_starts.get((at.line as usize).checked_sub(1)?)?;
        let (offset, c) = sql[start..]
            .char_indices()
            .nth((at.column as usize).checked_sub(1)?)?;
        if c == ' ' || c == '\t' {
            bytes[start + offset] = b'=';
        }
    }
    String::from_utf8(bytes).ok()
}

/// The CTEs of one query: their bodies (by address, to know when the walk is inside one) and
/// names, and how many of them are visible where the walk is.
struct Frame {
    ctes: Vec<(*const Query, Ident)>,
    visible: usize,
    recursive: bool,
}

struct Walker {
    dialect: Dialect,
    database: Option<Part>,
    schema: Option<Part>,
    schema_is_default: bool,
    frames: Vec<Frame>,
    /// Tables the SQL created, by their lowercased written name.
    created: HashSet<String>,
    /// Table factors that are written (MERGE/UPDATE/DELETE targets), by address.
    targets: HashSet<*const TableFactor>,
    out: Vec<TableRef>,
}

fn part(ident: &Ident) -> Part {
    Part {
        value: ident.value.clone(),
        quoted: ident.quote_style.is_some(),
    }
}

fn created_key(name: &ObjectName) -> String {
    name.to_string().to_lowercase()
}

impl Walker {
    fn statement(&mut self, statement: &Statement) {
        self.targets.clear();
        match statement {
            Statement::Use(u) => {
                self.use_(u);
                return;
            }
            Statement::Set(set) => {
                self.set(set);
                return;
            }
            Statement::Merge(merge) => {
                self.targets.insert(&merge.table as *const TableFactor);
            }
            Statement::Update(update) => {
                self.targets
                    .insert(&update.table.relation as *const TableFactor);
            }
            Statement::Delete(delete) => {
                let from = match &delete.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
                };
                let named: HashSet<String> = delete.tables.iter().map(created_key).collect();
                for (i, t) in from.iter().enumerate() {
                    let is_target = match &t.relation {
                        TableFactor::Table { name, .. } if !named.is_empty() => {
                            named.contains(&created_key(name))
                        }
                        _ => named.is_empty() && i == 0,
                    };
                    if is_target {
                        self.targets.insert(&t.relation as *const TableFactor);
                    }
                }
            }
            _ => {}
        }
        let _ = statement.visit(self);
        match statement {
            Statement::CreateTable(ct) => {
                self.created.insert(created_key(&ct.name));
            }
            Statement::CreateView(cv) => {
                self.created.insert(created_key(&cv.name));
            }
            _ => {}
        }
    }

    fn set_database(&mut self, database: Part) {
        self.database = Some(database);
        if self.dialect.use_database_resets_schema() {
            self.schema = None;
            self.schema_is_default = true;
        }
    }

    fn set_schema(&mut self, name: &ObjectName) {
        let idents: Vec<&Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
        match idents.as_slice() {
            [schema] => {
                self.schema = Some(part(schema));
                self.schema_is_default = false;
            }
            [.., database, schema] => {
                self.database = Some(part(database));
                self.schema = Some(part(schema));
                self.schema_is_default = false;
            }
            [] => {}
        }
    }

    fn use_(&mut self, u: &Use) {
        match u {
            Use::Catalog(name) => {
                if let Some(db) = name.0.last().and_then(ObjectNamePart::as_ident) {
                    self.database = Some(part(db));
                }
            }
            Use::Schema(name) => self.set_schema(name),
            Use::Database(name) | Use::Object(name) => {
                let idents: Vec<&Ident> =
                    name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
                match idents.as_slice() {
                    [one] if self.dialect.use_names_schema() => {
                        self.schema = Some(part(one));
                        self.schema_is_default = false;
                    }
                    [one] => self.set_database(part(one)),
                    [..] => self.set_schema(name),
                }
            }
            Use::Warehouse(_) | Use::Role(_) | Use::SecondaryRoles(_) | Use::Default => {}
        }
    }

    fn set(&mut self, set: &Set) {
        let Set::SingleAssignment {
            variable, values, ..
        } = set
        else {
            return;
        };
        let Some(var) = variable.0.last().and_then(ObjectNamePart::as_ident) else {
            return;
        };
        let var = var.value.to_ascii_lowercase();
        if var != "search_path" && var != "schema" && var != "current_schema" {
            return;
        }
        for value in values {
            let p = match value {
                Expr::Identifier(ident) => part(ident),
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        // A search_path string may hold the whole list: 'a, b'.
                        let first = s.split(',').next().unwrap_or("").trim();
                        Part {
                            value: first.trim_matches('"').to_string(),
                            quoted: true,
                        }
                    }
                    _ => continue,
                },
                _ => continue,
            };
            if p.value.is_empty() || p.value == "$user" {
                continue;
            }
            self.schema = Some(p);
            self.schema_is_default = false;
            return;
        }
    }

    fn is_cte(&self, ident: &Ident) -> bool {
        self.frames.iter().rev().any(|frame| {
            frame.ctes[..frame.visible].iter().any(|(_, cte)| {
                if ident.quote_style.is_some() && cte.quote_style.is_some() {
                    cte.value == ident.value
                } else {
                    cte.value.eq_ignore_ascii_case(&ident.value)
                }
            })
        })
    }

    /// Snowflake's `IDENTIFIER('db.s.t')`: the name inside the string literal.
    fn identifier_function(&self, name: &ObjectName) -> Option<ObjectName> {
        let [ObjectNamePart::Function(f)] = name.0.as_slice() else {
            return None;
        };
        if !f.name.value.eq_ignore_ascii_case("identifier") {
            return None;
        }
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] = f.args.as_slice()
        else {
            return None;
        };
        let (Value::SingleQuotedString(s) | Value::DoubleQuotedString(s)) = &v.value else {
            return None;
        };
        let dialect = self.dialect.parser();
        let mut parser = Parser::new(dialect.as_ref()).try_with_sql(s).ok()?;
        let inner = parser.parse_object_name(false).ok()?;
        parser
            .expect_token(&sqlparser::tokenizer::Token::EOF)
            .ok()?;
        Some(inner)
    }

    fn table(&mut self, name: &ObjectName) {
        let written = name.to_string();
        let resolved;
        let name = if name
            .0
            .iter()
            .any(|p| matches!(p, ObjectNamePart::Function(_)))
        {
            match self.identifier_function(name) {
                Some(inner) => {
                    resolved = inner;
                    &resolved
                }
                None => return,
            }
        } else {
            name
        };
        let idents: Vec<&Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
        let Some((last, qualifiers)) = idents.split_last() else {
            return;
        };
        let first = idents[0];
        if first.value.starts_with('#') || first.value.starts_with('@') {
            return; // SQL Server temp table or table variable, Snowflake stage
        }
        if last.quote_style == Some('\'')
            || last.value.starts_with('/')
            || last.value.contains("://")
        {
            // A file: DuckDB's `FROM 'x.parquet'`, Databricks' parquet.`/mnt/x`, URLs.
            return;
        }
        if qualifiers.is_empty() {
            if last.quote_style.is_none() && last.value.eq_ignore_ascii_case("dual") {
                return;
            }
            if self.is_cte(last) {
                return;
            }
        }
        if self.created.contains(&created_key(name)) {
            return;
        }
        let mut t = TableRef {
            database: None,
            schema: None,
            name: part(last),
            default_schema: false,
            completed: false,
            written,
        };
        match qualifiers {
            [] => {
                t.database = self.database.clone();
                t.schema = self.schema.clone();
                t.default_schema = self.schema.is_none() && self.schema_is_default;
                t.completed = t.database.is_some() || t.schema.is_some();
            }
            [schema] => {
                t.database = self.database.clone();
                t.schema = Some(part(schema));
                t.completed = t.database.is_some();
            }
            [.., database, schema] => {
                t.database = Some(part(database));
                t.schema = Some(part(schema));
            }
        }
        if t.schema
            .as_ref()
            .is_some_and(|s| s.value.is_empty() && !s.quoted)
        {
            // `db..t`: sqlparser's empty part for the default schema.
            t.schema = None;
            t.default_schema = true;
        }
        self.out.push(t);
    }
}

/// `FROM t (NOLOCK)`: SQL Server's old hint syntax, parsed as arguments.
fn only_mssql_hints(args: &[FunctionArg]) -> bool {
    const HINTS: &[&str] = &[
        "nolock",
        "readuncommitted",
        "readcommitted",
        "readcommittedlock",
        "repeatableread",
        "serializable",
        "holdlock",
        "updlock",
        "xlock",
        "rowlock",
        "paglock",
        "tablock",
        "tablockx",
        "readpast",
        "nowait",
        "forceseek",
        "forcescan",
        "noexpand",
    ];
    !args.is_empty()
        && args.iter().all(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(i))) => {
                i.quote_style.is_none() && HINTS.iter().any(|h| i.value.eq_ignore_ascii_case(h))
            }
            _ => false,
        })
}

impl Visitor for Walker {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let ptr = query as *const Query;
        if let Some(top) = self.frames.last_mut() {
            if let Some(k) = top.ctes.iter().position(|(q, _)| *q == ptr) {
                if !top.recursive {
                    top.visible = k;
                }
            }
        }
        let (ctes, recursive) = match &query.with {
            Some(with) => (
                with.cte_tables
                    .iter()
                    .map(|c| (&*c.query as *const Query, c.alias.name.clone()))
                    .collect::<Vec<_>>(),
                with.recursive,
            ),
            None => (Vec::new(), false),
        };
        let visible = if recursive { ctes.len() } else { 0 };
        self.frames.push(Frame {
            ctes,
            visible,
            recursive,
        });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.frames.pop();
        let ptr = query as *const Query;
        if let Some(top) = self.frames.last_mut() {
            if let Some(k) = top.ctes.iter().position(|(q, _)| *q == ptr) {
                top.visible = top.visible.max(k + 1);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if let Some(into) = &select.into {
            for target in &into.targets {
                let name = match target {
                    Expr::Identifier(i) => ObjectName::from(vec![i.clone()]),
                    Expr::CompoundIdentifier(is) => ObjectName::from(is.clone()),
                    _ => continue,
                };
                self.created.insert(created_key(&name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if self.targets.contains(&(factor as *const TableFactor)) {
            return ControlFlow::Continue(());
        }
        if let TableFactor::Table { name, args, .. } = factor {
            let is_function = match args {
                None => false,
                Some(a) => !(self.dialect == Dialect::MsSql && only_mssql_hints(&a.args)),
            };
            if !is_function {
                self.table(name);
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    //! The corpus in testdata/sql_lineage/: every case's tables (or error) against what it
    //! expects, snapshotted with the details (quoting, completion, written text), with precision
    //! and recall over the corpus printed.

    use super::*;
    use std::path::PathBuf;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Case {
        name: String,
        dialect: String,
        #[serde(default)]
        defaults: CaseDefaults,
        sql: String,
        #[serde(default)]
        tables: Option<Vec<String>>,
        #[serde(default)]
        error: bool,
        /// A case the module gets wrong on purpose, with the reason; it does not fail the test.
        #[serde(default)]
        known_gap: Option<String>,
    }

    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct CaseDefaults {
        database: Option<String>,
        schema: Option<String>,
    }

    #[derive(Serialize)]
    struct Outcome<'a> {
        name: &'a str,
        dialect: Dialect,
        #[serde(skip_serializing_if = "Option::is_none")]
        tables: Option<Vec<Shown>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ParseFailure>,
    }

    /// A table as the snapshot shows it: dotted, then what the dotted form hides.
    #[derive(Serialize)]
    struct Shown {
        table: String,
        written: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        quoted: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        completed: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        default_schema: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        missing: Option<&'static str>,
    }

    fn shown(t: &TableRef) -> Shown {
        let quoted = [
            ("database", &t.database),
            ("schema", &t.schema),
            ("name", &Some(t.name.clone())),
        ]
        .iter()
        .filter(|(_, p)| p.as_ref().is_some_and(|p| p.quoted))
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(",");
        Shown {
            table: t.dotted(),
            written: t.written.clone(),
            quoted,
            completed: t.completed,
            default_schema: t.default_schema,
            missing: t.missing().map(|m| match m {
                Missing::Database => "database",
                Missing::Schema => "schema",
            }),
        }
    }

    fn corpus_files() -> Vec<PathBuf> {
        crate::corpus::files("sql_lineage")
    }

    #[test]
    fn corpus() {
        let settings = crate::corpus::snapshot_settings();
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        let (mut cases, mut errors_right, mut errors) = (0usize, 0usize, 0usize);
        let mut failures = Vec::new();
        let mut gaps = Vec::new();
        let mut names = HashSet::new();
        let files = corpus_files();
        assert!(!files.is_empty(), "no corpus in testdata/sql_lineage");
        for file in &files {
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(file).unwrap();
            let parsed: Vec<Case> =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut outcomes = Vec::new();
            for case in &parsed {
                assert!(
                    names.insert(case.name.clone()),
                    "{stem}: case name {} twice",
                    case.name
                );
                assert!(
                    case.error != case.tables.is_some(),
                    "{stem}/{}: give either tables or error: true",
                    case.name
                );
                cases += 1;
                let dialect = Dialect::from_connection_type(&case.dialect);
                let defaults = Defaults {
                    database: case.defaults.database.clone(),
                    schema: case.defaults.schema.clone(),
                };
                let got = tables_read(&case.sql, dialect, &defaults);
                let mut wrong = None;
                match (&got, &case.tables) {
                    (Ok(tables), Some(expected)) => {
                        let got: std::collections::BTreeSet<String> =
                            tables.iter().map(TableRef::dotted).collect();
                        let want: std::collections::BTreeSet<String> =
                            expected.iter().cloned().collect();
                        tp += got.intersection(&want).count();
                        fp += got.difference(&want).count();
                        fn_ += want.difference(&got).count();
                        if got != want {
                            wrong = Some(format!(
                                "extra {:?}, missing {:?}",
                                got.difference(&want).collect::<Vec<_>>(),
                                want.difference(&got).collect::<Vec<_>>()
                            ));
                        }
                    }
                    (Err(e), Some(expected)) => {
                        fn_ += expected.len();
                        wrong = Some(format!("unexpected parse failure: {e}"));
                    }
                    (Ok(tables), None) => {
                        errors += 1;
                        fp += tables.len();
                        wrong = Some(format!(
                            "expected a parse failure, got {:?}",
                            tables.iter().map(TableRef::dotted).collect::<Vec<_>>()
                        ));
                    }
                    (Err(_), None) => {
                        errors += 1;
                        errors_right += 1;
                    }
                }
                match (wrong, &case.known_gap) {
                    (Some(w), Some(reason)) => {
                        gaps.push(format!("{stem}/{}: {w} ({reason})", case.name))
                    }
                    (Some(w), None) => failures.push(format!("{stem}/{}: {w}", case.name)),
                    (None, Some(_)) => failures.push(format!(
                        "{stem}/{}: marked as a known gap but right: drop known_gap",
                        case.name
                    )),
                    (None, None) => {}
                }
                outcomes.push(Outcome {
                    name: &case.name,
                    dialect,
                    tables: got.as_ref().ok().map(|ts| ts.iter().map(shown).collect()),
                    error: got.as_ref().err().cloned(),
                });
            }
            settings.bind(|| insta::assert_yaml_snapshot!(format!("sql_lineage@{stem}"), outcomes));
        }
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        let recall = tp as f64 / (tp + fn_).max(1) as f64;
        println!(
            "sql lineage corpus: {cases} cases in {} files, {} tables expected; precision {precision:.3}, recall {recall:.3}; unparseable {errors_right}/{errors} reported as failures; {} known gaps",
            files.len(),
            tp + fn_,
            gaps.len()
        );
        for g in &gaps {
            println!("  known gap: {g}");
        }
        assert!(
            failures.is_empty(),
            "{} cases wrong:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(cases >= 100, "the corpus has {cases} cases, fewer than 100");
    }
}

#[cfg(test)]
mod api {
    use super::*;

    #[test]
    fn dialect_from_connection_type() {
        for (t, d) in [
            ("snowflake", Dialect::Snowflake),
            ("postgres", Dialect::Postgres),
            ("redshift", Dialect::Redshift),
            ("bigquery", Dialect::BigQuery),
            ("sqlserver", Dialect::MsSql),
            ("mssql", Dialect::MsSql),
            ("MySQL", Dialect::MySql),
            ("databricks", Dialect::Databricks),
            ("hive", Dialect::Hive),
            ("spark", Dialect::Spark),
            ("duckdb", Dialect::DuckDb),
            ("oracle", Dialect::Generic),
            ("teradata", Dialect::Generic),
            ("", Dialect::Generic),
        ] {
            assert_eq!(Dialect::from_connection_type(t), d, "{t}");
        }
    }

    #[test]
    fn parts_keep_quoting_and_defaults_are_exact() {
        let d = Defaults {
            database: Some("Analytics".into()),
            schema: None,
        };
        let got = tables_read(r#"SELECT * FROM "Mart".orders"#, Dialect::Snowflake, &d).unwrap();
        assert_eq!(
            got,
            [TableRef {
                database: Some(Part {
                    value: "Analytics".into(),
                    quoted: true
                }),
                schema: Some(Part {
                    value: "Mart".into(),
                    quoted: true
                }),
                name: Part {
                    value: "orders".into(),
                    quoted: false
                },
                default_schema: false,
                completed: true,
                written: r#""Mart".orders"#.into(),
            }]
        );
        assert_eq!(got[0].missing(), None);
        let got = tables_read("SELECT * FROM orders", Dialect::Snowflake, &d).unwrap();
        assert_eq!(got[0].missing(), Some(Missing::Schema));
        let got = tables_read(
            "SELECT * FROM s.orders",
            Dialect::Snowflake,
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!(
            (got[0].missing(), got[0].completed),
            (Some(Missing::Database), false)
        );
        let got = tables_read(
            "SELECT * FROM db..orders",
            Dialect::MsSql,
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!((got[0].missing(), got[0].default_schema), (None, true));
    }

    #[test]
    fn failure_names_its_position() {
        let e = tables_read(
            "SELECT *\nFROM orders WHERE ((",
            Dialect::Postgres,
            &Defaults::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(21)), "{e}");
        assert_eq!(e.to_string(), format!("{} (line 2, column 21)", e.message));
        let e = tables_read("SELECT 'open", Dialect::Generic, &Defaults::default()).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.line, e.column),
            ("Unterminated string literal", Some(1), Some(8))
        );
    }
}

#[cfg(test)]
mod robustness {
    //! Never a panic or a stack overflow, whatever the text.

    use super::*;
    use proptest::prelude::*;

    fn defaults() -> Defaults {
        Defaults {
            database: Some("DB".into()),
            schema: Some("S".into()),
        }
    }

    const DIALECTS: [&str; 11] = [
        "snowflake",
        "postgres",
        "redshift",
        "bigquery",
        "sqlserver",
        "mysql",
        "databricks",
        "hive",
        "spark",
        "duckdb",
        "oracle",
    ];

    /// Every dialect on the same text, on a test thread's own (small) stack.
    fn all_dialects(sql: &str) {
        for d in DIALECTS {
            let _ = tables_read(sql, Dialect::from_connection_type(d), &defaults());
        }
    }

    #[test]
    fn long_expression_chains_do_not_overflow() {
        let ors = (0..50_000)
            .map(|i| format!("x = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT * FROM t WHERE {ors}");
        let got = tables_read(&sql, Dialect::Snowflake, &defaults()).unwrap();
        assert_eq!(
            got.iter().map(TableRef::dotted).collect::<Vec<_>>(),
            ["DB.S.t"]
        );
        let sum = vec!["1"; 50_000].join(" + ");
        all_dialects(&format!("SELECT {sum} FROM t"));
        // The densest chain (two bytes an operator), also dropped half-built on an error.
        let dense = vec!["1"; 300_000].join("+");
        assert!(tables_read(
            &format!("SELECT {dense} FROM t"),
            Dialect::Generic,
            &defaults()
        )
        .is_ok());
        let e = tables_read(
            &format!("SELECT {dense} + ) FROM t"),
            Dialect::Generic,
            &defaults(),
        );
        assert!(e.is_err());
    }

    #[test]
    fn oversized_sql_is_refused() {
        let sql = format!(
            "SELECT * FROM t WHERE x IN ({})",
            "1,".repeat(MAX_SQL_BYTES / 2)
        );
        let e = tables_read(&sql, Dialect::Generic, &defaults()).unwrap_err();
        assert!(e.message.contains("bytes long"), "{e}");
    }

    #[test]
    fn deep_nesting_is_a_parse_failure() {
        for depth in [1_000, 100_000] {
            let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
            let e = tables_read(&sql, Dialect::Postgres, &defaults()).unwrap_err();
            assert!(e.message.contains("nests deeper"), "{e}");
            let sql = format!(
                "{}SELECT * FROM t{}",
                "SELECT * FROM (".repeat(depth),
                ") x".repeat(depth)
            );
            let e = tables_read(&sql, Dialect::MsSql, &defaults()).unwrap_err();
            assert!(e.message.contains("nests deeper"), "{e}");
        }
        all_dialects(&"(".repeat(100_000));
        all_dialects(&"SELECT * FROM (".repeat(20_000));
    }

    #[test]
    fn many_unions_and_statements() {
        let union = (0..5_000)
            .map(|i| format!("SELECT a FROM t{i}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let got = tables_read(&union, Dialect::Redshift, &defaults()).unwrap();
        assert_eq!(got.len(), 5_000);
        let stmts = (0..5_000)
            .map(|i| format!("SELECT a FROM s.t{i};"))
            .collect::<String>();
        let got = tables_read(&stmts, Dialect::Generic, &defaults()).unwrap();
        assert_eq!(got.len(), 5_000);
    }

    const WORDS: &[&str] = &[
        "SELECT",
        "FROM",
        "JOIN",
        "WITH",
        "AS",
        "(",
        ")",
        ",",
        ".",
        "..",
        ";",
        "*",
        "t",
        "s.t",
        "db.s.t",
        "'x'",
        "\"q\"",
        "[b]",
        "`bq.d.t`",
        "@stage",
        "#tmp",
        "USE",
        "SET",
        "search_path",
        "=",
        "UNION",
        "LATERAL",
        "FLATTEN",
        "IDENTIFIER('a.b.c')",
        "IDENTIFIER(",
        "VALUES",
        "WHERE",
        "EXISTS",
        "IN",
        "MERGE",
        "INTO",
        "USING",
        "ON",
        "WHEN",
        "MATCHED",
        "THEN",
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE",
        "TEMP",
        "TABLE",
        "--",
        "/*",
        "*/",
        "\n",
        "$$",
        "<[Parameters].[P]>",
        "1",
        "NULL",
        "CROSS",
        "APPLY",
        "UNNEST",
        "RECURSIVE",
        "SCHEMA",
        "DATABASE",
        "WITH (NOLOCK)",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_text_never_panics(sql in "\\PC{0,200}") {
            all_dialects(&sql);
        }

        #[test]
        fn random_sql_words_never_panic(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..60)) {
            all_dialects(&words.join(" "));
        }

        #[test]
        fn output_is_sorted_unique_and_deterministic(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..40)) {
            let sql = words.join(" ");
            for d in DIALECTS {
                let d = Dialect::from_connection_type(d);
                let a = tables_read(&sql, d, &defaults());
                prop_assert_eq!(&a, &tables_read(&sql, d, &defaults()));
                if let Ok(tables) = a {
                    prop_assert!(tables.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }
    }
}
