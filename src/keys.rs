//! One comparable key per relation: `database.schema.identifier`, each part stripped of `"`,
//! `[ ]` and backticks and case-folded. dbt compares unquoted parts case-insensitively and dbt
//! Cloud matches BI tools' names "not case-sensitive"; two dbt nodes that collide after folding
//! are reported as ambiguous by match, never silently merged.

use std::collections::BTreeMap;

/// A derived key and how it came about (shown to people in `relation_keys.derivation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) identifier: String,
    pub(crate) derivation: String,
}

impl Key {
    pub(crate) fn text(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.identifier)
    }
}

/// Strips one layer of quoting and folds case.
pub(crate) fn fold(part: &str) -> String {
    let p = part.trim();
    let inner = if (p.starts_with('[') && p.ends_with(']'))
        || (p.starts_with('"') && p.ends_with('"'))
        || (p.starts_with('`') && p.ends_with('`'))
    {
        if p.len() >= 2 {
            &p[1..p.len() - 1]
        } else {
            p
        }
    } else {
        p
    };
    inner
        .replace("]]", "]")
        .replace("\"\"", "\"")
        .to_lowercase()
}

/// Splits a BI tool's full name or a dbt `relation_name` into parts: on `.` outside brackets,
/// double quotes and backticks (`[my.db].[s].[t]` is three parts, not five). Empty parts stay
/// where they are: `dvdrental..customer` is a database, an empty schema and a table.
pub(crate) fn split_parts(full: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut close: Option<char> = None;
    let chars: Vec<char> = full.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match close {
            Some(end) if c == end => {
                // `]]` / `""` inside a quoted part is an escaped closing character.
                if chars.get(i + 1) == Some(&end) {
                    cur.push(c);
                    cur.push(c);
                    i += 2;
                    continue;
                }
                close = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None => match c {
                '[' => {
                    close = Some(']');
                    cur.push(c);
                }
                '"' | '`' => {
                    close = Some(c);
                    cur.push(c);
                }
                '.' => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
        i += 1;
    }
    parts.push(cur);
    parts
}

/// The parts of a relation a BI asset reads, as its integration gave them (`bi_relations`).
#[derive(Debug, Default, Clone)]
pub(crate) struct NamedRelation<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) full_name: Option<&'a str>,
    pub(crate) schema: Option<&'a str>,
    pub(crate) database: Option<&'a str>,
}

/// The BI side: `full_name` (`fullName`) in 3, 2 or 1 parts, completed from `schema` and `database`,
/// then a default schema for a table recorded without one (`default_schemas`, keyed by the
/// folded database name, the tool's or the one `database_aliases` gives), then database
/// aliases (folded names) applied.
///
/// Empty parts count: `dvdrental..customer` is database `dvdrental`, no schema, table
/// `customer` (BI tools write that for tables read without a schema), and an empty part
/// is completed from the table's own `schema` or `database.name` when those have one.
pub(crate) fn bi_key(
    t: &NamedRelation,
    aliases: &BTreeMap<String, String>,
    default_schemas: &BTreeMap<String, String>,
) -> Option<Key> {
    let full = t.full_name.or(t.name).filter(|s| !s.trim().is_empty())?;
    let mut parts = split_parts(full);
    if parts.len() > 3 {
        parts = parts.split_off(parts.len() - 3);
    }
    let nonempty = |s: Option<&str>| s.map(fold).filter(|s| !s.is_empty());
    let part = |p: &String| Some(fold(p)).filter(|s| !s.is_empty());
    let (database, schema, identifier, mut derivation) = match parts.as_slice() {
        [d, s, i] => (
            part(d).or(nonempty(t.database)),
            part(s).or(nonempty(t.schema)),
            fold(i),
            "fullName (3 parts)".to_string(),
        ),
        [s, i] => (
            nonempty(t.database),
            part(s).or(nonempty(t.schema)),
            fold(i),
            "fullName (2 parts) + database.name".to_string(),
        ),
        [i] => (
            nonempty(t.database),
            nonempty(t.schema),
            fold(i),
            "fullName (1 part) + schema + database.name".to_string(),
        ),
        _ => return None,
    };
    // `db.schema.` : no table name in the full name; `name` is the table's.
    let identifier = match identifier.is_empty() {
        true => nonempty(t.name.filter(|_| t.full_name.is_some()))?,
        false => identifier,
    };
    let mut database = database.unwrap_or_default();
    if database.is_empty() {
        derivation.push_str("; no database");
    }
    let alias = aliases
        .iter()
        .find(|(from, _)| fold(from) == database)
        .map(|(_, to)| fold(to));
    let mut schema = schema.unwrap_or_default();
    if schema.is_empty() {
        let default = [Some(&database), alias.as_ref()]
            .into_iter()
            .flatten()
            .filter(|d| !d.is_empty())
            .find_map(|d| {
                default_schemas
                    .iter()
                    .find(|(db, _)| fold(db) == *d)
                    .map(|(db, to)| (db, fold(to)))
            });
        match default {
            Some((db, to)) => {
                derivation.push_str(&format!("; no schema, default_schemas {db} → {to}"));
                schema = to;
            }
            None => derivation.push_str("; no schema"),
        }
    }
    if let Some(to) = alias {
        derivation.push_str(&format!("; database alias {database} → {to}"));
        database = to;
    }
    Some(Key {
        database,
        schema,
        identifier,
        derivation,
    })
}

/// dbt's side: `database.schema.alias` (models, seeds, snapshots) or `.identifier` (sources).
pub(crate) fn dbt_key(
    database: Option<&str>,
    schema: Option<&str>,
    identifier: &str,
    is_source: bool,
) -> Key {
    Key {
        database: database.map(fold).unwrap_or_default(),
        schema: schema.map(fold).unwrap_or_default(),
        identifier: fold(identifier),
        derivation: if is_source {
            "database.schema.identifier"
        } else {
            "database.schema.alias"
        }
        .into(),
    }
}

/// How a warehouse resolves the parts of a relation name: which spellings name one table.
/// Keys fold everything (to find candidates); this decides whether candidates that share a
/// key are the very same table (then all are dependencies) or only look alike once folded
/// (then the table is `ambiguous`). When unsure it says "different": a missed dependency is
/// reported with a reason, a wrong one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// Unquoted parts are stored and resolved upper case, quoted parts keep their case:
    /// Snowflake ("id is stored and resolved as ID", docs.snowflake.com, identifiers-syntax).
    UnquotedUpper,
    /// Unquoted parts fold to lower case, quoted parts keep their case: Postgres (postgresql.org,
    /// "Identifiers and Key Words"). Redshift too: it also lowercases quoted parts unless
    /// `enable_case_sensitive_identifier` is on (docs.aws.amazon.com, Redshift
    /// r_enable_case_sensitive_identifier), which a manifest does not say, so quoted parts are
    /// taken as they are.
    UnquotedLower,
    /// Every part case-insensitive, quoted or not: DuckDB ("identifier resolution is
    /// case-insensitive, also when quoted": duckdb.org, SQL dialect, keywords and identifiers).
    Insensitive,
    /// Parts compare exactly once their quotes are removed: BigQuery (dataset and table names
    /// are case-sensitive) and every adapter not researched (databricks, sqlserver, …).
    Exact,
}

impl Resolution {
    /// From `metadata.adapter_type`.
    pub(crate) fn of(adapter_type: Option<&str>) -> Resolution {
        match adapter_type.map(str::to_ascii_lowercase).as_deref() {
            Some("snowflake") => Resolution::UnquotedUpper,
            Some("postgres" | "redshift") => Resolution::UnquotedLower,
            Some("duckdb") => Resolution::Insensitive,
            _ => Resolution::Exact,
        }
    }
}

/// The table a dbt node names, as the warehouse resolves it: the parts of `relation_name`
/// (what dbt renders into SQL, quoted where the adapter's quote policy says), each resolved
/// per `res`. Without a `relation_name`, the manifest's `database`, `schema` and identifier
/// as they are, unfolded. Two nodes are on the same table when these are equal.
pub(crate) fn same_table(
    res: Resolution,
    relation_name: Option<&str>,
    parts: [Option<&str>; 3],
) -> Vec<String> {
    let Some(rel) = relation_name.filter(|r| !r.trim().is_empty()) else {
        return parts
            .iter()
            .map(|p| p.unwrap_or_default().to_string())
            .collect();
    };
    split_parts(rel)
        .iter()
        .map(|part| {
            let p = part.trim();
            let quoted = p.len() >= 2
                && ((p.starts_with('"') && p.ends_with('"'))
                    || (p.starts_with('`') && p.ends_with('`'))
                    || (p.starts_with('[') && p.ends_with(']')));
            let inner = if quoted {
                let close = &p[p.len() - 1..];
                p[1..p.len() - 1].replace(&close.repeat(2), close)
            } else {
                p.to_string()
            };
            match (res, quoted) {
                (Resolution::UnquotedUpper, false) => inner.to_uppercase(),
                (Resolution::UnquotedLower, false) | (Resolution::Insensitive, _) => {
                    inner.to_lowercase()
                }
                _ => inner,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(
        full: Option<&'a str>,
        schema: Option<&'a str>,
        db: Option<&'a str>,
    ) -> NamedRelation<'a> {
        NamedRelation {
            name: None,
            full_name: full,
            schema,
            database: db,
        }
    }

    #[test]
    fn splits_bracketed_and_quoted_names() {
        assert_eq!(split_parts("db..t"), vec!["db", "", "t"]);
        assert_eq!(
            split_parts("[my.db].[s].[t]"),
            vec!["[my.db]", "[s]", "[t]"]
        );
        assert_eq!(
            split_parts("\"DB\".\"S\".\"T\""),
            vec!["\"DB\"", "\"S\"", "\"T\""]
        );
        assert_eq!(split_parts("a.b.c"), vec!["a", "b", "c"]);
        assert_eq!(split_parts("[a]]b].[c]"), vec!["[a]]b]", "[c]"]);
        assert_eq!(split_parts("`p`.`d`.`t`"), vec!["`p`", "`d`", "`t`"]);
    }

    #[test]
    fn folds_case_and_quotes() {
        assert_eq!(fold(" [FCT_Orders] "), "fct_orders");
        assert_eq!(fold("\"Mixed\"\"Q\""), "mixed\"q");
        assert_eq!(fold("[a]]b]"), "a]b");
    }

    #[test]
    fn bi_keys_in_three_two_and_one_parts() {
        let none = BTreeMap::new();
        let k = bi_key(
            &t(
                Some("[ANALYTICS].[MARTS].[FCT_ORDERS]"),
                Some("MARTS"),
                Some("ANALYTICS"),
            ),
            &none,
            &none,
        )
        .unwrap();
        assert_eq!(k.text(), "analytics.marts.fct_orders");
        let k = bi_key(
            &t(Some("[raw].[EVENTS_TBL]"), None, Some("demo")),
            &none,
            &none,
        )
        .unwrap();
        assert_eq!(k.text(), "demo.raw.events_tbl");
        assert!(k.derivation.starts_with("fullName (2 parts)"));
        let k = bi_key(&t(Some("orders"), Some("main"), Some("demo")), &none, &none).unwrap();
        assert_eq!(k.text(), "demo.main.orders");
        let k = bi_key(&t(Some("a.b.c.d"), None, None), &none, &none).unwrap();
        assert_eq!(k.text(), "b.c.d");
    }

    #[test]
    fn aliases_rewrite_the_database() {
        let aliases = BTreeMap::from([("PROD_Demo".to_string(), "demo".to_string())]);
        let k = bi_key(
            &t(Some("[prod_demo].[main].[fct_orders]"), None, None),
            &aliases,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(k.text(), "demo.main.fct_orders");
        assert!(
            k.derivation.contains("alias prod_demo → demo"),
            "{}",
            k.derivation
        );
    }

    #[test]
    fn missing_parts_are_said() {
        let k = bi_key(
            &t(Some("orders"), Some(""), None),
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(k.text(), "..orders");
        assert!(k.derivation.contains("no database") && k.derivation.contains("no schema"));
        assert!(bi_key(&t(None, None, None), &BTreeMap::new(), &BTreeMap::new()).is_none());
    }

    #[test]
    fn dbt_keys_fold_snowflake_upper_case() {
        assert_eq!(
            dbt_key(Some("ANALYTICS"), Some("MART"), "ORDERS", false).text(),
            "analytics.mart.orders"
        );
        assert_eq!(dbt_key(None, Some("s"), "t", true).text(), ".s.t");
    }

    #[test]
    fn an_empty_schema_part_stays_empty() {
        let none = BTreeMap::new();
        let k = bi_key(
            &t(Some("dvdrental..customer"), None, Some("dvdrental")),
            &none,
            &none,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental..customer");
        assert!(k.derivation.ends_with("; no schema"), "{}", k.derivation);
        // The relation.s own schema field fills an empty part.
        let k = bi_key(
            &t(Some("dvdrental..customer"), Some("public"), None),
            &none,
            &none,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental.public.customer");
        let k = bi_key(
            &t(Some(".customer"), Some(""), Some("dvdrental")),
            &none,
            &none,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental..customer");
    }

    #[test]
    fn default_schemas_fill_a_missing_schema() {
        let defaults = BTreeMap::from([("DVDRental".to_string(), "Public".to_string())]);
        let none = BTreeMap::new();
        let k = bi_key(
            &t(Some("[dvdrental]..[customer]"), None, None),
            &none,
            &defaults,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental.public.customer");
        assert_eq!(
            k.derivation,
            "fullName (3 parts); no schema, default_schemas DVDRental → public"
        );
        // A schema the tool gave is never replaced.
        let k = bi_key(
            &t(Some("dvdrental.sales.customer"), None, None),
            &none,
            &defaults,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental.sales.customer");
        // Keyed by the tool.s database name or by the one an alias gives.
        let aliases = BTreeMap::from([("prod_dvd".to_string(), "dvdrental".to_string())]);
        let k = bi_key(
            &t(Some("customer"), None, Some("prod_dvd")),
            &aliases,
            &defaults,
        )
        .unwrap();
        assert_eq!(k.text(), "dvdrental.public.customer");
        assert!(
            k.derivation.contains("default_schemas")
                && k.derivation.contains("alias prod_dvd → dvdrental"),
            "{}",
            k.derivation
        );
        let k = bi_key(&t(Some("customer"), None, Some("other")), &none, &defaults).unwrap();
        assert_eq!(k.text(), "other..customer");
    }

    #[test]
    fn same_table_follows_the_adapter() {
        let sf = Resolution::of(Some("snowflake"));
        let n = [None, None, None];
        // Unquoted Snowflake names are upper case whatever the project wrote; quoted keep case.
        assert_eq!(
            same_table(sf, Some("ANALYTICS.RAW.ORDERS"), n),
            same_table(sf, Some("analytics.raw.orders"), n)
        );
        assert_eq!(
            same_table(sf, Some("analytics.raw.\"ORDERS\""), n),
            same_table(sf, Some("ANALYTICS.RAW.ORDERS"), n)
        );
        assert_ne!(
            same_table(sf, Some("analytics.raw.\"Orders\""), n),
            same_table(sf, Some("ANALYTICS.RAW.ORDERS"), n)
        );
        // Postgres quotes every part: case matters.
        let pg = Resolution::of(Some("postgres"));
        assert_eq!(
            same_table(pg, Some("\"db\".\"s\".\"t\""), n),
            vec!["db", "s", "t"]
        );
        assert_ne!(
            same_table(pg, Some("\"db\".\"s\".\"T\""), n),
            same_table(pg, Some("\"db\".\"s\".\"t\""), n)
        );
        assert_eq!(
            same_table(pg, Some("db.s.T"), n),
            same_table(pg, Some("\"db\".\"s\".\"t\""), n)
        );
        // DuckDB resolves quoted names case-insensitively.
        let duck = Resolution::of(Some("duckdb"));
        assert_eq!(
            same_table(duck, Some("\"dev\".\"main\".\"Orders\""), n),
            same_table(duck, Some("\"dev\".\"main\".\"orders\""), n)
        );
        // BigQuery and unknown adapters: exact once unquoted.
        let bq = Resolution::of(Some("bigquery"));
        assert_eq!(same_table(bq, Some("`p`.`d`.`t`"), n), vec!["p", "d", "t"]);
        assert_ne!(
            same_table(bq, Some("`p`.`d`.`T`"), n),
            same_table(bq, Some("`p`.`d`.`t`"), n)
        );
        assert_eq!(Resolution::of(None), Resolution::Exact);
        // Escaped quotes and dots inside quotes.
        assert_eq!(
            same_table(pg, Some("\"a.b\".\"s\".\"x\"\"y\""), n),
            vec!["a.b", "s", "x\"y"]
        );
        // No relation_name: the manifest's parts, unfolded.
        assert_eq!(
            same_table(sf, None, [Some("A"), Some("b"), Some("C")]),
            vec!["A", "b", "C"]
        );
    }
}
