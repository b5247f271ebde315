//! The closed sets of words the stages store as text (`via`, `side`, `status`, `reason`,
//! `action` …), as enums: each lists its values once, in `text_tag!`.
//!
//! Written, a tag is its text, as before: the stored values are unchanged. Read back, a value
//! outside the set is an error naming the column and the value (`UnknownTag`), and the loader
//! adds the table (`in_table`); it is never coerced into a known value. A database written by a
//! newer autoexpose (or a second integration's rows) then stops the stage instead of being
//! read as something it is not, and `run` and the stages one by one cannot disagree.
//!
//! Tags are `Copy`: the rows carry one byte where they carried a `&'static str`, and reading
//! one back borrows the text SQLite holds, so the 300k-row loaders allocate nothing for them.
//! They have no `Ord`: rows are kept in their table's key order, which is SQLite's order of the
//! text (`as_str`), whatever order the values are listed in.

use std::fmt;

use rusqlite::types::{FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// What every tag enum gives: its values, and its text both ways.
pub(crate) trait Tag: Copy + Eq + fmt::Debug + Sized + 'static {
    /// The column it is stored in, for errors (the same name in every table that has it).
    const COLUMN: &'static str;
    /// Every value, in the order `text_tag!` lists them.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// The value whose text is `text`, or `None`.
    fn parse(text: &str) -> Option<Self>;
}

/// Declares a tag enum: `text_tag! { /// doc  pub(crate) enum Via in "via" { Embedded = "embedded", … } }`.
/// Each value is listed once; the macro writes `as_str`, `parse`, `Tag`, `ToSql`, `FromSql`
/// (loud on an unknown value), `Display` and the bulk insert's `Value`.
macro_rules! text_tag {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $column:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The stored text.
            #[allow(dead_code)]
            pub(crate) const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl $crate::tags::Tag for $name {
            const COLUMN: &'static str = $column;
            const ALL: &'static [$name] = &[$( $name::$variant ),+];
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(text: &str) -> Option<$name> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                $crate::tags::to_sql(*self)
            }
        }

        impl ::rusqlite::types::FromSql for $name {
            fn column_result(value: ::rusqlite::types::ValueRef<'_>) -> ::rusqlite::types::FromSqlResult<$name> {
                $crate::tags::from_sql(value)
            }
        }

        impl From<$name> for $crate::bulk::Value<'static> {
            fn from(t: $name) -> $crate::bulk::Value<'static> {
                $crate::bulk::Value::Text(t.as_str())
            }
        }
    };
}
pub(crate) use text_tag;

pub(crate) fn to_sql<T: Tag>(t: T) -> rusqlite::Result<ToSqlOutput<'static>> {
    Ok(ToSqlOutput::Borrowed(ValueRef::Text(t.as_str().as_bytes())))
}

pub(crate) fn from_sql<T: Tag>(value: ValueRef<'_>) -> FromSqlResult<T> {
    let text = value.as_str()?;
    T::parse(text).ok_or_else(|| FromSqlError::Other(Box::new(UnknownTag::of::<T>(text))))
}

/// A stored value outside its tag's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownTag {
    pub(crate) column: &'static str,
    pub(crate) value: String,
    pub(crate) known: Vec<&'static str>,
}

impl UnknownTag {
    pub(crate) fn of<T: Tag>(value: &str) -> UnknownTag {
        // Bounded: a hostile or corrupt value is not copied whole into a message.
        let value: String = value.chars().take(80).collect();
        UnknownTag {
            column: T::COLUMN,
            value,
            known: T::ALL.iter().map(|t| t.as_str()).collect(),
        }
    }
}

impl fmt::Display for UnknownTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: unknown value {:?} (this autoexpose knows {}); the database was written by another version of autoexpose or edited by hand",
            self.column,
            self.value,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownTag {}

/// For a loader's errors: an unknown tag in `table` of the database at `db` becomes an error
/// naming the database, the table, the column and the value; any other error gets the same
/// context.
pub(crate) fn in_table<'a>(
    db: &'a std::path::Path,
    table: &'static str,
) -> impl Fn(rusqlite::Error) -> anyhow::Error + 'a {
    move |e| {
        let unknown = match &e {
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => {
                inner.downcast_ref::<UnknownTag>().cloned()
            }
            _ => None,
        };
        match unknown {
            Some(u) => anyhow::anyhow!("database {}: table {table}, {u}", db.display()),
            None => anyhow::Error::new(e)
                .context(format!("database {}: reading table {table}", db.display())),
        }
    }
}

text_tag! {
    /// Which side of the match a `relation_keys` row is on: the dbt project, or a relation a
    /// BI asset reads (`relation_keys.integration` says which integration).
    pub(crate) enum Side in "side" {
        Dbt = "dbt",
        Bi = "bi",
    }
}

impl Side {
    /// A relation a dashboard reads (any side but dbt's).
    pub(crate) fn is_bi(self) -> bool {
        self != Side::Dbt
    }
}

text_tag! {
    /// The path an asset reads a relation through (`bi_relations.via`, and the rows of
    /// `exposure_dependencies` and `unmatched_tables` that came from it).
    pub(crate) enum Via in "via" {
        /// A data source embedded in the asset.
        Embedded = "embedded",
        /// A published (shared) data source the asset connects to.
        Published = "published",
        /// A custom SQL query.
        CustomSql = "custom_sql",
        /// Listed by hand: an inventory file names the relation.
        Listed = "listed",
    }
}

text_tag! {
    /// What a relation an asset reads is (`bi_relations.kind`), as its integration judged it.
    pub(crate) enum RelationKind in "kind" {
        /// A warehouse table or view: matched by name.
        Table = "table",
        /// A file or web connector: nothing in dbt to depend on.
        File = "file",
        /// SQL the tool could not read: the relations behind it are unknown.
        UnparsedSql = "unparsed_sql",
        /// A source the integration read that names no warehouse table (a web call, a
        /// dataflow, a parameter without a value): `detail` starts with the miss reason, as in
        /// `unsupported_m_function: Web.Contents`.
        NoLineage = "no_lineage",
    }
}

text_tag! {
    /// Whether normalize found a key (`relation_keys.status`).
    pub(crate) enum KeyStatus in "status" {
        Ok = "ok",
        /// The BI tool gave no name for the table (permissions).
        Redacted = "redacted",
        /// A file or web connector, not a warehouse table.
        File = "file",
        /// An ephemeral model: nothing in the warehouse.
        NoRelation = "no_relation",
    }
}

text_tag! {
    /// Why a table did not become a dependency (`unmatched_tables.reason`).
    pub(crate) enum MissReason in "reason" {
        NotInManifest = "not_in_manifest",
        DatabaseMismatch = "database_mismatch",
        MissingSchema = "missing_schema",
        Ambiguous = "ambiguous",
        /// SQL the tool gave no text for, and no tables.
        CustomSql = "custom_sql",
        /// SQL our parser could not read, and the tool listed no tables for.
        UnparseableSql = "unparseable_sql",
        /// A name without a schema (or database) that nothing completes.
        IncompleteName = "incomplete_name",
        FileConnection = "file_connection",
        /// An M function autoexpose does not read (`Web.Contents`, `SharePoint.Files`, …).
        UnsupportedMFunction = "unsupported_m_function",
        /// A parameter with no literal and no value, where a name was needed.
        UnresolvedParameter = "unresolved_parameter",
        /// A table read from a Power BI dataflow, not from the warehouse.
        Dataflow = "dataflow",
        /// A table with no source: calculated, or typed in (`#table(…)`).
        NoSource = "no_source",
        /// M autoexpose could not read (unbalanced brackets, a cycle of shared expressions, a
        /// size limit).
        UnreadableM = "unreadable_m",
        DisabledNode = "disabled_node",
        PrivateModel = "private_model",
        RedactedName = "redacted_name",
    }
}

text_tag! {
    /// Whether an exposure was written (`exposures.status`, and exposures.json's `status`).
    pub(crate) enum ExposureStatus in "status" {
        Written = "written",
        NoDependencies = "no_dependencies",
    }
}

text_tag! {
    /// What emit did with a generated file (`emitted_files.action`).
    pub(crate) enum FileAction in "action" {
        Written = "written",
        Unchanged = "unchanged",
        /// Its workbooks left the selection.
        Deleted = "deleted",
        /// Its integration's extraction was incomplete: kept as it was.
        KeptIncomplete = "kept_incomplete",
        /// Its integration left the config, and this database wrote it.
        DeletedLeftConfig = "deleted_left_config",
        /// Its integration is not in the config, and this database did not write it.
        NotOurs = "not_ours",
    }
}

impl FileAction {
    /// Whether the file is still in place after this action and this database owns it.
    pub(crate) fn still_ours(self) -> bool {
        matches!(
            self,
            FileAction::Written | FileAction::Unchanged | FileAction::KeptIncomplete
        )
    }
}

text_tag! {
    /// One recorded file change of an emit (`emit_pending.action`).
    pub(crate) enum PendingAction in "action" {
        Rename = "rename",
        Delete = "delete",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rusqlite::types::{FromSql, ToSql};

    /// Every value goes into SQLite as its text and comes back as itself; a value outside the
    /// set is an error naming the column and the value, through `in_table` the table too.
    pub(crate) fn round_trip<T: Tag + ToSql + FromSql>() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (seq INTEGER PRIMARY KEY, tag TEXT NOT NULL)")
            .unwrap();
        for (i, t) in T::ALL.iter().enumerate() {
            conn.execute(
                "INSERT INTO t (seq, tag) VALUES (?1, ?2)",
                rusqlite::params![i as i64, t],
            )
            .unwrap();
        }
        let mut st = conn
            .prepare("SELECT tag, CAST(tag AS TEXT) FROM t ORDER BY seq")
            .unwrap();
        let back: Vec<(T, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back.iter().map(|b| b.0).collect::<Vec<_>>(), T::ALL);
        for (t, text) in &back {
            assert_eq!(t.as_str(), text, "{} is stored as its text", T::COLUMN);
            assert_eq!(T::parse(text), Some(*t));
        }
        let mut texts: Vec<&str> = T::ALL.iter().map(|t| t.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(
            texts.len(),
            T::ALL.len(),
            "{}: two values share a text",
            T::COLUMN
        );

        conn.execute("INSERT INTO t (seq, tag) VALUES (100, 'Nope-é')", [])
            .unwrap();
        let err = conn
            .query_row("SELECT tag FROM t WHERE seq = 100", [], |r| {
                r.get::<_, T>(0)
            })
            .unwrap_err();
        let msg = in_table(std::path::Path::new("x.db"), "t")(err).to_string();
        assert!(
            msg.starts_with(&format!(
                "database x.db: table t, column {}: unknown value \"Nope-é\"",
                T::COLUMN
            )),
            "{msg}"
        );
        assert!(msg.contains(T::ALL[0].as_str()), "{msg}");
        // Not text at all: an error too, never a default.
        conn.execute("INSERT INTO t (seq, tag) VALUES (101, 7)", [])
            .unwrap();
        assert!(conn
            .query_row("SELECT tag FROM t WHERE seq = 101", [], |r| r
                .get::<_, T>(0))
            .is_err());
        assert!(T::parse("").is_none());
        assert!(
            T::ALL
                .iter()
                .all(|t| T::parse(&t.as_str().to_uppercase()).is_none()),
            "{}: text is exact",
            T::COLUMN
        );
    }

    #[test]
    fn every_tag_round_trips_and_unknown_values_fail() {
        round_trip::<Side>();
        round_trip::<Via>();
        round_trip::<RelationKind>();
        round_trip::<KeyStatus>();
        round_trip::<MissReason>();
        round_trip::<ExposureStatus>();
        round_trip::<FileAction>();
        round_trip::<PendingAction>();
        round_trip::<crate::integrations::Tool>();
    }

    #[test]
    fn values_are_the_stored_texts() {
        // The texts are the database's contract (README queries, snapshots): pinned here.
        let texts = |all: &[&'static str]| all.join(" ");
        assert_eq!(
            texts(&Side::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            "dbt bi"
        );
        assert_eq!(
            texts(&Via::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            "embedded published custom_sql listed"
        );
        assert_eq!(
            texts(
                &KeyStatus::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
            ),
            "ok redacted file no_relation"
        );
        assert_eq!(
            texts(&MissReason::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            "not_in_manifest database_mismatch missing_schema ambiguous custom_sql unparseable_sql incomplete_name file_connection unsupported_m_function unresolved_parameter dataflow no_source unreadable_m disabled_node private_model redacted_name"
        );
        assert_eq!(
            texts(
                &FileAction::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
            ),
            "written unchanged deleted kept_incomplete deleted_left_config not_ours"
        );
        assert!(Side::Bi.is_bi() && !Side::Dbt.is_bi());
        let ours: Vec<FileAction> = FileAction::ALL
            .iter()
            .copied()
            .filter(|a| a.still_ours())
            .collect();
        assert_eq!(
            ours,
            [
                FileAction::Written,
                FileAction::Unchanged,
                FileAction::KeptIncomplete
            ]
        );
        assert_eq!(format!("{}", Via::CustomSql), "custom_sql");
    }
}
