//! One comparable key per relation: `database.schema.identifier`, each part stripped of `"`,
//! `[ ]` and backticks and case-folded. dbt compares unquoted parts case-insensitively and dbt
//! Cloud matches Tableau names "not case-sensitive"; two dbt nodes that collide after folding
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
        if p.len() >= 2 { &p[1..p.len() - 1] } else { p }
    } else {
        p
    };
    inner.replace("]]", "]").replace("\"\"", "\"").to_lowercase()
}

/// Splits a Tableau `fullName` or a dbt `relation_name` into parts: on `.` outside brackets,
/// double quotes and backticks (`[my.db].[s].[t]` is three parts, not five).
pub(crate) fn split_name(full: &str) -> Vec<String> {
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
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The parts of a Tableau table as the Metadata API gave them.
#[derive(Debug, Default, Clone)]
pub(crate) struct TableauTable<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) full_name: Option<&'a str>,
    pub(crate) schema: Option<&'a str>,
    pub(crate) database: Option<&'a str>,
}

/// Tableau's side: `fullName` in 3, 2 or 1 parts, completed from `schema` and `database.name`,
/// then database aliases (folded names) applied.
pub(crate) fn tableau_key(t: &TableauTable, aliases: &BTreeMap<String, String>) -> Option<Key> {
    let full = t.full_name.or(t.name).filter(|s| !s.trim().is_empty())?;
    let mut parts = split_name(full);
    if parts.len() > 3 {
        parts = parts.split_off(parts.len() - 3);
    }
    let nonempty = |s: Option<&str>| s.map(fold).filter(|s| !s.is_empty());
    let (database, schema, identifier, mut derivation) = match parts.as_slice() {
        [d, s, i] => (Some(fold(d)), Some(fold(s)), fold(i), "fullName (3 parts)".to_string()),
        [s, i] => (nonempty(t.database), Some(fold(s)), fold(i), "fullName (2 parts) + database.name".to_string()),
        [i] => (nonempty(t.database), nonempty(t.schema), fold(i), "fullName (1 part) + schema + database.name".to_string()),
        _ => return None,
    };
    let mut database = database.unwrap_or_default();
    if database.is_empty() {
        derivation.push_str("; no database");
    }
    let schema = schema.unwrap_or_default();
    if schema.is_empty() {
        derivation.push_str("; no schema");
    }
    if let Some(to) = aliases.iter().find(|(from, _)| fold(from) == database).map(|(_, to)| fold(to)) {
        derivation.push_str(&format!("; database alias {database} → {to}"));
        database = to;
    }
    Some(Key { database, schema, identifier, derivation })
}

/// dbt's side: `database.schema.alias` (models, seeds, snapshots) or `.identifier` (sources).
pub(crate) fn dbt_key(database: Option<&str>, schema: Option<&str>, identifier: &str, is_source: bool) -> Key {
    Key {
        database: database.map(fold).unwrap_or_default(),
        schema: schema.map(fold).unwrap_or_default(),
        identifier: fold(identifier),
        derivation: if is_source { "database.schema.identifier" } else { "database.schema.alias" }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(full: Option<&'a str>, schema: Option<&'a str>, db: Option<&'a str>) -> TableauTable<'a> {
        TableauTable { name: None, full_name: full, schema, database: db }
    }

    #[test]
    fn splits_bracketed_and_quoted_names() {
        assert_eq!(split_name("[my.db].[s].[t]"), vec!["[my.db]", "[s]", "[t]"]);
        assert_eq!(split_name("\"DB\".\"S\".\"T\""), vec!["\"DB\"", "\"S\"", "\"T\""]);
        assert_eq!(split_name("a.b.c"), vec!["a", "b", "c"]);
        assert_eq!(split_name("[a]]b].[c]"), vec!["[a]]b]", "[c]"]);
        assert_eq!(split_name("`p`.`d`.`t`"), vec!["`p`", "`d`", "`t`"]);
    }

    #[test]
    fn folds_case_and_quotes() {
        assert_eq!(fold(" [FCT_Orders] "), "fct_orders");
        assert_eq!(fold("\"Mixed\"\"Q\""), "mixed\"q");
        assert_eq!(fold("[a]]b]"), "a]b");
    }

    #[test]
    fn tableau_keys_in_three_two_and_one_parts() {
        let none = BTreeMap::new();
        let k = tableau_key(&t(Some("[ANALYTICS].[MARTS].[FCT_ORDERS]"), Some("MARTS"), Some("ANALYTICS")), &none).unwrap();
        assert_eq!(k.text(), "analytics.marts.fct_orders");
        let k = tableau_key(&t(Some("[raw].[EVENTS_TBL]"), None, Some("demo")), &none).unwrap();
        assert_eq!(k.text(), "demo.raw.events_tbl");
        assert!(k.derivation.starts_with("fullName (2 parts)"));
        let k = tableau_key(&t(Some("orders"), Some("main"), Some("demo")), &none).unwrap();
        assert_eq!(k.text(), "demo.main.orders");
        let k = tableau_key(&t(Some("a.b.c.d"), None, None), &none).unwrap();
        assert_eq!(k.text(), "b.c.d");
    }

    #[test]
    fn aliases_rewrite_the_database() {
        let aliases = BTreeMap::from([("PROD_Demo".to_string(), "demo".to_string())]);
        let k = tableau_key(&t(Some("[prod_demo].[main].[fct_orders]"), None, None), &aliases).unwrap();
        assert_eq!(k.text(), "demo.main.fct_orders");
        assert!(k.derivation.contains("alias prod_demo → demo"), "{}", k.derivation);
    }

    #[test]
    fn missing_parts_are_said() {
        let k = tableau_key(&t(Some("orders"), Some(""), None), &BTreeMap::new()).unwrap();
        assert_eq!(k.text(), "..orders");
        assert!(k.derivation.contains("no database") && k.derivation.contains("no schema"));
        assert!(tableau_key(&t(None, None, None), &BTreeMap::new()).is_none());
    }

    #[test]
    fn dbt_keys_fold_snowflake_upper_case() {
        assert_eq!(dbt_key(Some("ANALYTICS"), Some("MART"), "ORDERS", false).text(), "analytics.mart.orders");
        assert_eq!(dbt_key(None, Some("s"), "t", true).text(), ".s.t");
    }
}
