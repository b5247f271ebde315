//! The Tableau integration: its protocol client, its extraction, how its rows are stored
//! (its raw `tableau_*` tables and the neutral rows), its refresh, and its words. Everything
//! Tableau-specific lives here; the stages reach it through `seam` and `refresh`'s seam.

pub(crate) mod client;
pub(crate) mod extract;
pub(crate) mod model;
pub(crate) mod refresh;
#[cfg(test)]
mod schema_check;
pub(crate) mod store;

use anyhow::{Context, Result};

use crate::config::TableauSite;
use crate::http::{HttpMode, Live, Recorder, Replayer, Secrets, Transport};
use crate::seam::{Extraction, Source, Texts};

/// Tableau's words in the generic stages' texts.
pub(crate) static TEXTS: Texts = Texts {
    tool: "Tableau",
    config_key: "tableau",
    instance: "site",
    asset: "workbook",
    folder: "project",
    no_folder: extract::PERSONAL_SPACE,
    meta_instance: "site",
    meta_ref: "workbook_luid",
    meta_folder: "project",
    redacted_derivation: "name, fullName, schema and database.name are all null: redacted by Tableau permissions",
    redacted_advice: "Tableau returned this table without its name (Catalog permissions). Give the PAT's user the Site Administrator Explorer role, or Catalog view rights, and extract again",
    unparsed_sql_advice: "Tableau could not parse this custom SQL (isUnsupportedCustomSql), so the tables it reads are unknown. Move the query into a dbt model and point the workbook at that model; table tableau_custom_sql holds the query text",
    where_names_come_from: "the Tableau connection's database and schema",
};

/// One configured site, its client ready (not signed in yet).
pub(crate) struct SiteSource<'c> {
    site: &'c TableauSite,
    client: client::Client,
}

pub(crate) fn connect_source<'c>(site: &'c TableauSite, mode: &HttpMode) -> Result<SiteSource<'c>> {
    Ok(SiteSource { site, client: connect(site, mode)? })
}

impl Source for SiteSource<'_> {
    fn describe(&self) -> String {
        format!("tableau {:?} (site {:?} on {})", self.site.name, self.site.site, self.site.server_url)
    }

    fn allow_partial(&self) -> bool {
        self.site.allow_partial
    }

    fn extract(&self) -> Result<Box<dyn Extraction>> {
        let x = extract::extract_site(self.site, &self.client).with_context(|| self.describe())?;
        Ok(Box::new(store::Extracted {
            x,
            requests: self.client.requests_sent(),
            max_in_flight: self.client.max_in_flight(),
            details: Vec::new(),
        }))
    }

    fn cancel(&self) {
        self.client.cancel();
    }
}

/// A client for one site, its transport chosen by the run's HTTP mode (recordings live in
/// `<dir>/<integration>/`), its PAT read from the environment. Not signed in yet.
pub(crate) fn connect(site: &TableauSite, mode: &HttpMode) -> Result<client::Client> {
    // The run's one set (`Secrets::for_run`), which every boundary scrubs with.
    let secrets = Secrets::for_run();
    let transport: Box<dyn Transport> = match mode {
        HttpMode::Live => Box::new(Live::new(&site.limits)?),
        HttpMode::Record(dir) => Box::new(Recorder::new(Box::new(Live::new(&site.limits)?), &dir.join(&site.name), secrets.clone())?),
        HttpMode::Replay(dir) => {
            let d = dir.join(&site.name);
            if !d.is_dir() {
                anyhow::bail!("replay folder {} does not exist (record it with --record {})", d.display(), dir.display());
            }
            Box::new(Replayer::new(&d, secrets.clone()))
        }
    };
    let (name, secret) = credentials(site, mode)?;
    // One session per PAT (see `lock`): held from here to the end of the run; replays sign in
    // nowhere.
    if !matches!(mode, HttpMode::Replay(_)) {
        crate::lock::acquire_pat(&site.server_url, &name, &site.name, &site.token_name_env)?;
    }
    secrets.add_name(&name);
    if !secrets.add(&secret) {
        crate::log::warn(&format!(
            "tableau {:?}: the PAT secret in {} is shorter than {} characters: it is blanked in the sign-in request, but an echo of it elsewhere cannot be told from ordinary text and is not scrubbed",
            site.name,
            site.token_secret_env,
            crate::http::MIN_SECRET_LEN
        ));
    }
    Ok(client::Client::new(site, transport, secrets, name, secret))
}

/// The PAT from the environment. Replay reads none, whatever the environment holds: recordings
/// hold no credentials (they are blanked by field before a request is keyed), and a CI job's
/// secrets must not change what a replay does.
fn credentials(site: &TableauSite, mode: &HttpMode) -> Result<(String, String)> {
    if matches!(mode, HttpMode::Replay(_)) {
        return Ok(("replayed-pat-name".into(), "replayed-pat-secret".into()));
    }
    let get = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    match (get(&site.token_name_env), get(&site.token_secret_env)) {
        (Some(n), Some(s)) => Ok((n, s)),
        (n, _) => {
            let missing = if n.is_none() { &site.token_name_env } else { &site.token_secret_env };
            anyhow::bail!(
                "tableau {:?}: env var {missing} is not set. Set {} to the personal access token's name and {} to its secret (Tableau: My Account Settings → Personal Access Tokens) for site {:?} on {}",
                site.name,
                site.token_name_env,
                site.token_secret_env,
                site.site,
                site.server_url
            )
        }
    }
}
