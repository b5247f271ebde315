//! The wiring: which BI integrations exist, and which one each config entry is. The only place
//! outside the integrations' own folders that names them; the stages reach them through
//! `seam` (extraction, texts) and `refresh` (its own seam).

use std::collections::BTreeMap;

use anyhow::Result;
use rusqlite::{Connection, Transaction};

use crate::config::Config;
use crate::http::HttpMode;
use crate::seam::{Source, Texts};

crate::tags::text_tag! {
    /// Which integration wrote a `bi_instances` row.
    pub(crate) enum Tool in "tool" {
        Tableau = "tableau",
        Inventory = "inventory",
        PowerBi = "powerbi",
    }
}

impl Tool {
    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Tool::Tableau => &crate::tableau::TEXTS,
            Tool::Inventory => &crate::inventory::TEXTS,
            Tool::PowerBi => &crate::powerbi::TEXTS,
        }
    }
}

/// Every configured integration, in config order, opened (credentials read, nothing sent).
pub(crate) fn sources<'c>(
    config: &'c Config,
    mode: &HttpMode,
) -> Result<Vec<Box<dyn Source + 'c>>> {
    let mut out: Vec<Box<dyn Source + 'c>> = Vec::new();
    for site in &config.tableau {
        out.push(Box::new(crate::tableau::connect_source(
            site, config, mode,
        )?));
    }
    for inv in &config.inventory {
        out.push(Box::new(crate::inventory::source(inv)));
    }
    for tenant in &config.powerbi {
        out.push(Box::new(crate::powerbi::connect_source(
            tenant, config, mode,
        )?));
    }
    Ok(out)
}

/// Deletes every integration's raw rows before extract writes the new ones: a tool's tables
/// go whole (an integration gone from the config goes with them), the shared tables only the
/// rows of that tool's integrations.
pub(crate) fn clear_raw(tx: &Transaction) -> Result<()> {
    crate::tableau::store::clear(tx)?;
    crate::inventory::clear(tx)?;
    crate::powerbi::store::clear(tx)
}

/// After every integration stored its rows: deletes what the next extraction of an
/// integration no longer in the config would have built on.
pub(crate) fn forget_removed(tx: &Transaction) -> Result<()> {
    // Every integration of this extraction has its bi_instances row by now; the refresh
    // targets each one replaced are its own, and any other integration's are of one gone.
    delete_gone(tx, ["bi_refresh_targets"], "bi_instances")?;
    crate::sync::forget_removed(tx)?;
    crate::tableau::sync::forget_removed(tx)?;
    crate::powerbi::sync::forget_removed(tx)
}

/// Deletes the rows of `tables` whose integration `listed_in` no longer lists: the tables an
/// extraction replaces per integration keep the rows of one gone from the config until here.
pub(crate) fn delete_gone<'a>(
    tx: &Transaction,
    tables: impl IntoIterator<Item = &'a str>,
    listed_in: &str,
) -> Result<()> {
    for t in tables {
        tx.execute(
            &format!(
                "DELETE FROM {t} WHERE integration NOT IN (SELECT integration FROM {listed_in})"
            ),
            [],
        )?;
    }
    Ok(())
}

/// `database_aliases` and `default_schemas` of an integration.
pub(crate) type NameRules<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>);

/// Each configured integration's name rules, by name.
pub(crate) fn name_rules(config: &Config) -> BTreeMap<&str, NameRules<'_>> {
    let tableau = config
        .tableau
        .iter()
        .map(|s| (s.name.as_str(), (&s.database_aliases, &s.default_schemas)));
    let inventory = config
        .inventory
        .iter()
        .map(|s| (s.name.as_str(), (&s.database_aliases, &s.default_schemas)));
    let powerbi = config
        .powerbi
        .iter()
        .map(|s| (s.name.as_str(), (&s.database_aliases, &s.default_schemas)));
    tableau.chain(inventory).chain(powerbi).collect()
}

/// The `config.meta` keys that hold an asset's ref in exposures autoexpose wrote, any tool's.
pub(crate) fn meta_ref_keys() -> impl Iterator<Item = &'static str> {
    <Tool as crate::tags::Tag>::ALL
        .iter()
        .map(|t| t.texts().meta_ref)
}

/// Lines for `run`'s summary about assets an integration read but left out, and why.
pub(crate) fn left_out_lines(conn: &Connection) -> Result<Vec<String>> {
    let mut lines = crate::tableau::store::left_out_lines(conn)?;
    lines.extend(crate::powerbi::store::left_out_lines(conn)?);
    Ok(lines)
}

// refresh

/// The configured integrations, as the refresh stage reaches them.
pub(crate) struct ConfiguredRefreshers<'a> {
    pub(crate) config: &'a Config,
    pub(crate) mode: &'a HttpMode,
    /// The run's clock (`--now`): Power BI matches its refresh history against our POST time.
    pub(crate) now: crate::clock::Instant,
}

impl crate::refresh::seam::Refreshers for ConfiguredRefreshers<'_> {
    fn texts(&self, integration: &str) -> &'static crate::refresh::seam::RefreshTexts {
        if self.config.tableau.iter().any(|s| s.name == integration) {
            &crate::tableau::refresh::TEXTS
        } else if self.config.powerbi.iter().any(|s| s.name == integration) {
            &crate::powerbi::refresh::TEXTS
        } else {
            &crate::refresh::seam::RefreshTexts::NEUTRAL
        }
    }

    fn open(&self, integration: &str) -> Result<Box<dyn crate::refresh::seam::Refresher>, String> {
        if let Some(site) = self.config.tableau.iter().find(|s| s.name == integration) {
            return crate::tableau::refresh::open(site, self.mode);
        }
        if self.config.inventory.iter().any(|s| s.name == integration) {
            // An inventory writes no refresh targets, so nothing asks; said plainly if it does.
            return Err(format!(
                "inventory {integration:?}: dashboards listed in a file have nothing to refresh"
            ));
        }
        if let Some(tenant) = self.config.powerbi.iter().find(|s| s.name == integration) {
            return crate::powerbi::refresh::open(tenant, self.mode, self.now);
        }
        Err(format!(
            "integration {integration:?} is not in the config any more"
        ))
    }
}
