//! The seam between the generic stages and the BI integrations.
//!
//! An integration (a BI tool's API, an inventory file) is reached only through what is
//! here: extract opens every configured integration as a [`Source`], reads each into an
//! [`Extraction`], takes its neutral rows (`rows::Instance`, `Asset`, `RelationUse`: the
//! contract normalize, match and emit read) and lets it store its own raw tables. Its words
//! for messages and defaults are its [`Texts`]. Which integrations exist, and which one a
//! config entry is, is the wiring's business (`integrations`); nothing here names one.

use anyhow::Result;
use rusqlite::Transaction;

use crate::rows::Extracted;
use crate::tags::MissReason;

/// One configured integration, ready to read (credentials checked, nothing sent yet).
pub(crate) trait Source: Sync {
    /// For progress lines and errors, e.g. `<config key> "prod" (site "acme" on https://…)`.
    fn describe(&self) -> String;
    /// Its config accepts an incomplete extraction (warnings recorded, files kept).
    fn allow_partial(&self) -> bool;
    /// Reads everything the integration holds for this config.
    fn extract(&self) -> Result<Box<dyn Extraction>>;
    /// Asks a read in progress to stop soon (another half of extract failed); a no-op for a
    /// source that reads nothing remote.
    fn cancel(&self);
}

/// What one integration read, before anything is written.
pub(crate) trait Extraction: Send {
    /// Nothing was lost: no warning made the read partial.
    fn complete(&self) -> bool;
    /// One line of what was read, for the progress log.
    fn summary(&self) -> String;
    /// The neutral rows (instances, assets, relations; the dbt fields empty), in any order.
    /// Called once: the rows move out, so they exist once in memory.
    fn take_rows(&mut self) -> Extracted;
    /// Its own raw tables, and its rows of the shared ones (`extract_warnings`,
    /// `raw_responses`), inside the extract stage's transaction, after `take_rows`.
    fn store(&self, tx: &Transaction) -> Result<()>;
}

/// An integration's own words, for the texts the generic stages write: exposure defaults,
/// reasons' advice, file headers. Each tool has one, `'static`.
#[derive(Debug)]
pub(crate) struct Texts {
    /// The tool's name, as its users write it (capitalised), as in `"<Tool> workbook"`.
    pub(crate) tool: &'static str,
    /// The config key of its integrations (the key in the config file), as in `"<tool>"`.
    pub(crate) config_key: &'static str,
    /// What its instance, asset and folder are called: "site", "workbook", "project".
    pub(crate) instance: &'static str,
    pub(crate) asset: &'static str,
    pub(crate) folder: &'static str,
    /// The folder of an asset in none.
    pub(crate) no_folder: &'static str,
    /// The keys of `config.meta` that hold the instance label, the asset ref (the exposure's
    /// identity, read back from the manifest: `manifest::Exposure::autoexpose_ref`) and the folder.
    pub(crate) meta_instance: &'static str,
    pub(crate) meta_ref: &'static str,
    pub(crate) meta_folder: &'static str,
    /// `relation_keys.derivation` of a relation whose every name part is missing.
    pub(crate) redacted_derivation: &'static str,
    /// The advice for `redacted_name`.
    pub(crate) redacted_advice: &'static str,
    /// The advice for `custom_sql`: SQL the tool gave no text for, and no tables.
    pub(crate) unparsed_sql_advice: &'static str,
    /// The advice for `unparseable_sql`: SQL our parser could not read (after the parser's
    /// message), and the tool listed no tables for.
    pub(crate) unparseable_sql_advice: &'static str,
    /// Where to look when a relation is not in the manifest, as in `"the <Tool>
    /// connection's database and schema"`.
    pub(crate) where_names_come_from: &'static str,
    /// The advice for a `no_lineage` relation (a source that names no table), by the reason
    /// its detail starts with.
    pub(crate) no_lineage_advice: fn(MissReason) -> &'static str,
}

/// The advice for a source that names no table, for tools that have no words of their own.
pub(crate) fn no_lineage_advice(_: MissReason) -> &'static str {
    "This source names no warehouse table, so there is nothing in dbt to depend on; bi_relations.detail says what it is"
}

impl Texts {
    /// `<Tool> workbook in project Finance (site "acme", integration prod).`
    pub(crate) fn default_description(
        &self,
        folder: &str,
        instance: &str,
        integration: &str,
    ) -> String {
        format!(
            "{} {} in {} {folder} ({} {instance:?}, integration {integration}).",
            self.tool, self.asset, self.folder, self.instance
        )
    }

    /// `"Untitled <Tool> workbook {ref}"`.
    pub(crate) fn untitled(&self, asset_ref: &str) -> String {
        format!("Untitled {} {} {asset_ref}", self.tool, self.asset)
    }

    /// `"Unknown <Tool> owner"`.
    pub(crate) fn unknown_owner(&self) -> String {
        format!("Unknown {} owner", self.tool)
    }
}

/// The words for rows whose integration has no `bi_instances` row (a database edited by
/// hand): every integration writes one, so only a broken file shows these.
pub(crate) static UNKNOWN: Texts = Texts {
    tool: "the BI tool",
    config_key: "BI",
    instance: "instance",
    asset: "asset",
    folder: "folder",
    no_folder: "No folder",
    meta_instance: "instance",
    meta_ref: "asset_ref",
    meta_folder: "folder",
    redacted_derivation: "every name part is null",
    redacted_advice: "This relation has no name and its integration has no bi_instances row; run extract again",
    unparsed_sql_advice: "The SQL could not be read, so the tables it reads are unknown; its integration has no bi_instances row; run extract again",
    unparseable_sql_advice: "The SQL parser could not read this SQL, so the tables it reads are unknown; its integration has no bi_instances row; run extract again",
    where_names_come_from: "the connection's database and schema",
    no_lineage_advice,
};
