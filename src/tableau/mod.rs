//! The Tableau integration: its protocol client, its extraction, how its rows are stored
//! (its raw `tableau_*` tables and the neutral rows), its refresh, and its words. Everything
//! Tableau-specific lives here; the stages reach it through `seam` and `refresh`'s seam.

pub(crate) mod client;
mod custom_sql;
pub(crate) mod extract;
pub(crate) mod model;
#[cfg(test)]
mod proptests;
pub(crate) mod refresh;
#[cfg(test)]
mod schema_check;
pub(crate) mod session_lock;
pub(crate) mod store;
pub(crate) mod sync;

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
    unparsed_sql_advice: "Tableau gave no text for this custom SQL and listed no tables for it, so the tables it reads are unknown. Check the PAT user's rights to the workbook's data source, or move the query into a dbt model and point the workbook at that model",
    unparseable_sql_advice: "autoexpose's SQL parser could not read this custom SQL and Tableau listed no tables for it (isUnsupportedCustomSql), so the tables it reads are unknown. Publish the query as a dbt model and point the workbook at that model, or fix the SQL where the parser says; table tableau_custom_sql holds the query and the parser's message (parse_error)",
    where_names_come_from: "the Tableau connection's database and schema",
    no_lineage_advice: crate::seam::no_lineage_advice,
};

/// One configured site, its client ready (not signed in yet).
pub(crate) struct SiteSource<'c> {
    site: &'c TableauSite,
    client: client::Client,
    from: extract::SyncFrom<'c>,
}

pub(crate) fn connect_source<'c>(
    site: &'c TableauSite,
    config: &'c crate::config::Config,
    mode: &HttpMode,
) -> Result<SiteSource<'c>> {
    let from = extract::SyncFrom {
        db: &config.database,
        settings: &config.sync,
    };
    Ok(SiteSource {
        site,
        client: connect(site, mode)?,
        from,
    })
}

impl Source for SiteSource<'_> {
    fn describe(&self) -> String {
        format!(
            "tableau {:?} (site {:?} on {})",
            self.site.name, self.site.site, self.site.server_url
        )
    }

    fn allow_partial(&self) -> bool {
        self.site.allow_partial
    }

    fn extract(&self) -> Result<Box<dyn Extraction>> {
        let x = extract::extract_site(self.site, &self.client, self.from)
            .with_context(|| self.describe())?;
        Ok(Box::new(store::Extracted {
            x,
            requests: self.client.requests_sent(),
            max_in_flight: self.client.max_in_flight(),
            details: Vec::new(),
            reads: Vec::new(),
        }))
    }

    fn cancel(&self) {
        self.client.cancel();
    }
}

/// The fields that hold a credential in Tableau's sign-in request and response, JSON
/// (`"name":"…"`) or XML (`name="…"`): the PAT's name and secret, a password, the session token.
/// `connect` registers them with the run's `Secrets` before it makes a transport, so they are
/// blanked by field in every request keyed or recorded, and in every text scrubbed after.
pub(crate) const CREDENTIAL_FIELDS: &[&str] = &[
    "personalAccessTokenName",
    "personalAccessTokenSecret",
    "password",
    "token",
];

/// A client for one site, its transport chosen by the run's HTTP mode (recordings live in
/// `<dir>/<integration>/`), its PAT read from the environment. Not signed in yet.
pub(crate) fn connect(site: &TableauSite, mode: &HttpMode) -> Result<client::Client> {
    // The run's one set (`Secrets::for_run`), which every boundary scrubs with.
    let secrets = Secrets::for_run();
    secrets.add_credential_fields(CREDENTIAL_FIELDS);
    let transport: Box<dyn Transport> = match mode {
        HttpMode::Live => Box::new(Live::new(&site.limits)?),
        HttpMode::Record(dir) => Box::new(Recorder::new(
            Box::new(Live::new(&site.limits)?),
            &dir.join(&site.name),
            secrets.clone(),
        )?),
        HttpMode::Replay(dir) => {
            let d = dir.join(&site.name);
            if !d.is_dir() {
                anyhow::bail!(
                    "replay folder {} does not exist (record it with --record {})",
                    d.display(),
                    dir.display()
                );
            }
            Box::new(Replayer::new(&d, secrets.clone()))
        }
    };
    let (name, secret) = credentials(site, mode)?;
    // One session per PAT (see `session_lock`): held from here to the end of the run; replays
    // sign in nowhere.
    if !matches!(mode, HttpMode::Replay(_)) {
        session_lock::acquire(&site.server_url, &name, &site.name, &site.token_name_env)?;
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
            let missing = if n.is_none() {
                &site.token_name_env
            } else {
                &site.token_secret_env
            };
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

#[cfg(test)]
mod tests {
    /// A site's HTTP bounds are set under its `limits`, the others keeping their defaults.
    #[test]
    fn a_site_sets_its_limits() {
        let site: crate::config::TableauSite = serde_yaml::from_str(
            "name: t\nserver_url: https://h\nlimits: {read_idle_timeout_secs: 5}\n",
        )
        .unwrap();
        assert_eq!(
            (
                site.limits.read_idle_timeout_secs,
                site.limits.request_timeout_secs
            ),
            (5, 120)
        );
    }

    /// The PAT's name and secret, a password and the session token are blanked once
    /// `connect` has registered them, in a JSON and an XML sign-in alike.
    #[test]
    fn credential_fields_blank_the_sign_in() {
        let s = crate::http::Secrets::default();
        s.add_credential_fields(super::CREDENTIAL_FIELDS);
        let json = r#"{"credentials":{"personalAccessTokenName":"n","personalAccessTokenSecret":"s","site":{"contentUrl":"demo"}}}"#;
        assert_eq!(
            s.scrub_secrets(json),
            r#"{"credentials":{"personalAccessTokenName":"<redacted>","personalAccessTokenSecret":"<redacted>","site":{"contentUrl":"demo"}}}"#
        );
        let xml = r#"<tsResponse><credentials token="t" password="p"><site contentUrl="demo"/></credentials></tsResponse>"#;
        assert_eq!(
            s.scrub(xml),
            r#"<tsResponse><credentials token="&lt;redacted&gt;" password="&lt;redacted&gt;"><site contentUrl="demo"/></credentials></tsResponse>"#
        );
    }
}
