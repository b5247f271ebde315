//! The inventory integration: dashboards listed by hand in a YAML or JSON file, for teams
//! whose BI tool has no API autoexpose reads. Each dashboard becomes an exposure on the dbt
//! nodes built as the tables it lists, through the same seam and stages as Tableau.
//!
//! ```yaml
//! dashboards:
//!   - id: weekly-sales                # required, unique in the file: the exposure's identity
//!     name: Weekly sales              # required
//!     url: https://bi.example.com/d/12
//!     owner: {name: Ann Lee, email: ann@example.com}
//!     folder: Finance                 # one YAML file per folder, like a Tableau project
//!     description: Revenue by week.
//!     tags: [finance]
//!     tables: [analytics.marts.fct_orders, raw.events]   # database.schema.table, or shorter
//! ```
//!
//! The file is untrusted like any BI tool's answer: unknown fields, a missing id or name, a
//! duplicate id and a table that is not text are errors naming the file, the dashboard and the
//! field; names go through the same neutralising as Tableau's on their way into YAML.
//! Raw tables: `inventory_files` (the file read, its hash) and `inventory_dashboards` (each
//! entry as listed).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Transaction};
use serde::Deserialize;

use crate::config::InventorySource;
use crate::integrations::Tool;
use crate::rows;
use crate::seam::{Extraction, Source, Texts};
use crate::tags::{RelationKind, Via};

/// The inventory's words in the generic stages' texts.
pub(crate) static TEXTS: Texts = Texts {
    tool: "Inventory",
    config_key: "inventory",
    instance: "file",
    asset: "dashboard",
    folder: "folder",
    no_folder: "Unfiled",
    meta_instance: "inventory_file",
    meta_ref: "dashboard_id",
    meta_folder: "folder",
    redacted_derivation: "the inventory lists this table as an empty name",
    redacted_advice: "The inventory file lists this table without a name. Write it as database.schema.table",
    unparsed_sql_advice: "The SQL of this dashboard could not be read, so the tables it reads are unknown. List its tables under `tables:`",
    unparseable_sql_advice: "The SQL parser could not read the SQL of this dashboard, so the tables it reads are unknown. List its tables under `tables:`",
    where_names_come_from: "how the inventory file spells the table (database.schema.table)",
    no_lineage_advice: crate::seam::no_lineage_advice,
};

/// `via_id` of every listed table: the field it was listed in.
const LISTED_IN: &str = "tables";

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    dashboards: Vec<Dashboard>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct Dashboard {
    id: String,
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    owner: Option<Owner>,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
struct Owner {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// One configured inventory file.
pub(crate) struct FileSource<'c> {
    config: &'c InventorySource,
}

pub(crate) fn source(config: &InventorySource) -> FileSource<'_> {
    FileSource { config }
}

impl Source for FileSource<'_> {
    fn describe(&self) -> String {
        format!(
            "inventory {:?} (file {})",
            self.config.name,
            self.config.file.display()
        )
    }

    fn allow_partial(&self) -> bool {
        false
    }

    fn extract(&self) -> Result<Box<dyn Extraction>> {
        let read =
            read(&self.config.file, self.config.max_file_mb).with_context(|| self.describe())?;
        Ok(Box::new(Read {
            integration: self.config.name.clone(),
            path: self.config.file.clone(),
            ..read
        }))
    }

    fn cancel(&self) {}
}

/// A file read and checked.
pub(crate) struct Read {
    integration: String,
    path: PathBuf,
    xxh3: String,
    dashboards: Vec<Dashboard>,
}

/// Reads and checks the file: YAML or JSON (JSON is read as YAML, which it is).
fn read(path: &Path, max_mb: u64) -> Result<Read> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read the inventory file", path.display()))?;
    if meta.len() > max_mb.saturating_mul(1024 * 1024) {
        bail!(
            "{}: {} bytes is more than max_file_mb ({max_mb} MB)",
            path.display(),
            meta.len()
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the inventory file", path.display()))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let file: File =
        serde_yaml::from_slice(body).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut seen = std::collections::BTreeMap::new();
    for (i, d) in file.dashboards.iter().enumerate() {
        let at = |field: &str| format!("{}: dashboards[{i}] ({:?}).{field}", path.display(), d.id);
        if d.id.trim().is_empty() {
            bail!(
                "{}: must not be empty (it is the exposure's identity)",
                at("id")
            );
        }
        if d.name.trim().is_empty() {
            bail!("{}: must not be empty", at("name"));
        }
        if let Some(j) = seen.insert(d.id.clone(), i) {
            bail!(
                "{}: {:?} is also the id of dashboards[{j}]; ids must be unique in the file",
                at("id"),
                d.id
            );
        }
        if let Some((k, _)) = d
            .tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.trim().is_empty())
        {
            bail!(
                "{}: entry {k} is empty; write database.schema.table",
                at("tables")
            );
        }
    }
    Ok(Read {
        integration: String::new(),
        path: PathBuf::new(),
        xxh3: crate::config::hex_xxh3(&bytes),
        dashboards: file.dashboards,
    })
}

impl Extraction for Read {
    fn complete(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        let tables: usize = self.dashboards.iter().map(|d| d.tables.len()).sum();
        format!(
            "{} dashboards, {tables} listed tables",
            self.dashboards.len()
        )
    }

    fn take_rows(&mut self) -> rows::Extracted {
        let i = &self.integration;
        let instance = rows::Instance {
            integration: i.clone(),
            tool: Tool::Inventory,
            label: self
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            complete: true,
        };
        let mut assets = Vec::with_capacity(self.dashboards.len());
        let mut relations = Vec::new();
        for d in &self.dashboards {
            let owner = d.owner.clone().unwrap_or_default();
            let mut tags = d.tags.clone();
            tags.sort();
            tags.dedup();
            assets.push(rows::Asset {
                integration: i.clone(),
                id: d.id.clone(),
                asset_ref: d.id.clone(),
                name: d.name.clone(),
                folder_ref: d.folder.clone(),
                folder: d.folder.clone(),
                description: d.description.clone(),
                owner_name: owner.name,
                owner_email: owner.email,
                url: d.url.clone(),
                tags,
                meta: Default::default(),
            });
            for t in &d.tables {
                // The table's own name, unquoted as listed: what people search for.
                let name = crate::keys::split_parts(t.trim()).pop();
                relations.push(rows::RelationUse {
                    integration: i.clone(),
                    asset_id: d.id.clone(),
                    via: Via::Listed,
                    via_id: LISTED_IN.into(),
                    relation_id: t.trim().to_string(),
                    name,
                    full_name: Some(t.trim().to_string()),
                    schema: None,
                    database: None,
                    kind: RelationKind::Table,
                    detail: None,
                });
            }
        }
        rows::Extracted {
            instances: vec![instance],
            assets,
            relations,
            ..Default::default()
        }
    }

    fn store(&self, tx: &Transaction) -> Result<()> {
        let i = &self.integration;
        tx.execute(
            "INSERT INTO inventory_files (integration, path, xxh3, dashboards) VALUES (?1, ?2, ?3, ?4)",
            params![i, self.path.display().to_string(), self.xxh3, self.dashboards.len() as i64],
        )?;
        let mut st = tx.prepare_cached(
            "INSERT INTO inventory_dashboards (integration, seq, id, name, folder, url, owner_name, owner_email, description, tags, tables)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (n, d) in self.dashboards.iter().enumerate() {
            let owner = d.owner.clone().unwrap_or_default();
            st.execute(params![
                i,
                n as i64,
                d.id,
                d.name,
                d.folder,
                d.url,
                owner.name,
                owner.email,
                d.description,
                serde_json::to_string(&d.tags)?,
                serde_json::to_string(&d.tables)?
            ])?;
        }
        Ok(())
    }
}

/// Deletes every inventory row, and the shared rows of the inventories written before.
pub(crate) fn clear(tx: &Transaction) -> Result<()> {
    for t in ["extract_warnings", "raw_responses"] {
        tx.execute(
            &format!(
                "DELETE FROM {t} WHERE integration IN (SELECT integration FROM inventory_files)"
            ),
            [],
        )?;
    }
    tx.execute("DELETE FROM inventory_dashboards", [])?;
    tx.execute("DELETE FROM inventory_files", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dashboards.yml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[track_caller]
    fn refused(text: &str, wants: &[&str]) {
        let (_d, p) = write(text);
        let err = format!("{:#}", read(&p, 64).err().expect("refused"));
        for w in wants {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
        assert!(err.contains("dashboards.yml"), "names the file: {err}");
    }

    #[test]
    fn bad_files_are_refused_naming_the_dashboard_and_field() {
        refused(
            "dashboards:\n  - id: a\n    name: A\n    colour: red\n",
            &["unknown field `colour`"],
        );
        refused("dashboards:\n  - name: A\n", &["missing field `id`"]);
        refused(
            "dashboards:\n  - id: ' '\n    name: A\n",
            &["dashboards[0]", ".id: must not be empty"],
        );
        refused(
            "dashboards:\n  - id: a\n    name: ''\n",
            &["dashboards[0] (\"a\").name"],
        );
        refused(
            "dashboards:\n  - {id: a, name: A}\n  - {id: a, name: B}\n",
            &["dashboards[1] (\"a\").id", "dashboards[0]", "unique"],
        );
        refused(
            "dashboards:\n  - {id: a, name: A, tables: [x.y.z, '']}\n",
            &["tables: entry 1 is empty"],
        );
        refused(
            "dashboards:\n  - {id: a, name: A, tables: [[1]]}\n",
            &["dashboards[0].tables"],
        );
        refused("[1, 2", &[""]);
    }

    #[test]
    fn json_and_yaml_give_the_same_rows() {
        let (_a, y) = write("dashboards:\n  - id: w\n    name: Weekly\n    folder: Finance\n    tags: [b, a, b]\n    tables: [db.s.t, ' s.u ']\n");
        let (_b, j) = write(
            r#"{"dashboards": [{"id": "w", "name": "Weekly", "folder": "Finance", "tags": ["b", "a", "b"], "tables": ["db.s.t", " s.u "]}]}"#,
        );
        let rows = |p: &Path| {
            let mut r = Read {
                integration: "inv".into(),
                path: p.to_path_buf(),
                ..read(p, 64).unwrap()
            };
            let x = r.take_rows();
            (format!("{:?}", x.assets), format!("{:?}", x.relations))
        };
        assert_eq!(rows(&y), rows(&j));
        let (assets, relations) = rows(&y);
        assert!(assets.contains("tags: [\"a\", \"b\"]"), "{assets}");
        assert!(
            relations.contains("relation_id: \"s.u\"") && relations.contains("via: Listed"),
            "{relations}"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_reading() {
        let (_d, p) = write(&format!(
            "dashboards: []\n#{}\n",
            "x".repeat(2 * 1024 * 1024)
        ));
        let err = format!("{:#}", read(&p, 1).err().unwrap());
        assert!(err.contains("max_file_mb (1 MB)"), "{err}");
    }
}
