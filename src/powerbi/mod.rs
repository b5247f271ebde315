//! The Power BI integration (issue #14): a service principal's token, the admin scanner API
//! (`client`, `extract`), the M reader (`m`), dataset refresh for active exposures (`refresh`),
//! how its rows are stored (its raw `powerbi_*`
//! tables and the neutral rows, `store`), and its words. Everything Power BI-specific lives
//! here; the stages reach it through `seam`.
//!
//! One config entry is one tenant: every report of its selected workspaces that is not an
//! app's copy becomes an asset, reading the tables of its dataset (wherever the dataset lives).

pub(crate) mod client;
pub(crate) mod extract;
pub(crate) mod m;
pub(crate) mod model;
pub(crate) mod refresh;
pub(crate) mod store;
pub(crate) mod sync;

use anyhow::{Context, Result};

use crate::config::PowerBiTenant;
use crate::http::{HttpMode, Live, Recorder, Replayer, Secrets, Transport};
use crate::seam::{Extraction, Source, Texts};
use crate::tags::MissReason;

/// Power BI's words in the generic stages' texts.
pub(crate) static TEXTS: Texts = Texts {
    tool: "Power BI",
    config_key: "powerbi",
    instance: "tenant",
    asset: "report",
    folder: "workspace",
    no_folder: "No workspace",
    meta_instance: "tenant",
    meta_ref: "report_id",
    meta_folder: "workspace",
    redacted_derivation: "the M expression named no table",
    redacted_advice: "Power BI gave this table without a name. Check the dataset's M query in powerbi_tables, and that metadata scanning is fully enabled on the tenant",
    unparsed_sql_advice: "This dataset table's source could not be traced to a warehouse table (native SQL that could not be parsed, or an M source autoexpose does not read: bi_relations.detail says which). Point the table at a dbt model through a supported connector; powerbi_tables holds the M query",
    unparseable_sql_advice: "autoexpose's SQL parser could not read this native query, so the tables it reads are unknown. Publish the query as a dbt model and point the dataset table at it, or fix the SQL where the parser says; powerbi_tables holds the M query",
    where_names_come_from: "the Power BI dataset's M query (connector database, schema and item)",
    no_lineage_advice,
};

/// What to do about a dataset table whose M names no warehouse table, by why.
fn no_lineage_advice(reason: MissReason) -> &'static str {
    match reason {
        MissReason::UnsupportedMFunction => "autoexpose does not read this M function's source, so it cannot tell which warehouse tables it reads. Read the table through a supported connector (Snowflake, SQL Server, PostgreSQL, BigQuery, Redshift, Databricks, Oracle, Athena, MySQL, or native SQL); powerbi_tables holds the M query",
        MissReason::UnresolvedParameter => "A name in the M comes from a parameter with no literal value in the dataset and no current value from Power BI's parameters call. Give the parameter a value in the dataset; powerbi_parameters holds what Power BI returned",
        MissReason::Dataflow => "The table comes from a Power BI dataflow, not from the warehouse. Point the dataset table at the warehouse table or dbt model the dataflow reads",
        MissReason::NoSource => "The table has no source to trace (a calculated table, or data typed into the dataset): there is nothing in dbt to depend on",
        MissReason::UnreadableM => "autoexpose could not read this M expression (the detail says where). Check the dataset's M query in powerbi_tables",
        _ => "This dataset table's source names no warehouse table; bi_relations.detail says what it is",
    }
}

/// Fields that hold a credential in the token endpoint's answer: blanked by field in every text
/// scrubbed (recordings are written before the client has read the token out of the body).
pub(crate) const CREDENTIAL_FIELDS: &[&str] =
    &["access_token", "refresh_token", "id_token", "client_secret"];

/// One configured tenant, its client ready (no token yet).
pub(crate) struct TenantSource<'c> {
    tenant: &'c PowerBiTenant,
    client: client::Client,
    from: sync::SyncFrom<'c>,
}

pub(crate) fn connect_source<'c>(
    tenant: &'c PowerBiTenant,
    config: &'c crate::config::Config,
    mode: &HttpMode,
) -> Result<TenantSource<'c>> {
    let from = sync::SyncFrom {
        db: &config.database,
        settings: &config.sync,
        replaying: matches!(mode, HttpMode::Replay(_)),
    };
    Ok(TenantSource {
        tenant,
        client: connect(tenant, mode)?,
        from,
    })
}

impl Source for TenantSource<'_> {
    fn describe(&self) -> String {
        format!(
            "powerbi {:?} (tenant {} on {})",
            self.tenant.name, self.tenant.tenant_id, self.tenant.api_url
        )
    }

    fn allow_partial(&self) -> bool {
        false
    }

    fn extract(&self) -> Result<Box<dyn Extraction>> {
        let x = extract::extract_tenant(self.tenant, &self.client, self.from)
            .with_context(|| self.describe())?;
        Ok(Box::new(store::Extracted {
            x,
            requests: self.client.requests_sent(),
            tokens: self.client.tokens_fetched(),
        }))
    }

    fn cancel(&self) {
        self.client.cancel();
    }
}

/// A client for one tenant, its transport chosen by the run's HTTP mode (recordings live in
/// `<dir>/<integration>/`), the service principal read from the environment.
pub(crate) fn connect(t: &PowerBiTenant, mode: &HttpMode) -> Result<client::Client> {
    let secrets = Secrets::for_run();
    secrets.add_credential_fields(CREDENTIAL_FIELDS);
    let (id, secret) = credentials(t, mode)?;
    // Before any transport exists: the secret is scrubbed from everything, and so is the
    // application id, so that recordings are keyed without it and replay needs none.
    if !secrets.add(&secret) {
        crate::log::warn(&format!(
            "powerbi {:?}: the client secret in {} is shorter than {} characters: an echo of it cannot be told from ordinary text and is not scrubbed",
            t.name,
            t.client_secret_env,
            crate::http::MIN_SECRET_LEN
        ));
    }
    secrets.add(&id);
    let transport: Box<dyn Transport> = match mode {
        HttpMode::Live => Box::new(Live::new(&t.limits)?),
        HttpMode::Record(dir) => Box::new(Recorder::new(
            Box::new(Live::new(&t.limits)?),
            &dir.join(&t.name),
            secrets.clone(),
        )?),
        HttpMode::Replay(dir) => {
            let d = dir.join(&t.name);
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
    Ok(client::Client::new(t, transport, secrets, id, secret))
}

/// The service principal from the environment. Replay reads none: recordings hold no
/// credentials, and a CI job's secrets must not change what a replay does.
fn credentials(t: &PowerBiTenant, mode: &HttpMode) -> Result<(String, String)> {
    if matches!(mode, HttpMode::Replay(_)) {
        return Ok(("replayed-client-id".into(), "replayed-client-secret".into()));
    }
    let get = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    match (get(&t.client_id_env), get(&t.client_secret_env)) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        (id, _) => {
            let missing = if id.is_none() {
                &t.client_id_env
            } else {
                &t.client_secret_env
            };
            anyhow::bail!(
                "powerbi {:?}: env var {missing} is not set. Set {} to the service principal's application (client) id and {} to its client secret (Entra ID: App registrations → Certificates & secrets) for tenant {}",
                t.name,
                t.client_id_env,
                t.client_secret_env,
                t.tenant_id
            )
        }
    }
}

#[cfg(test)]
mod tests {
    /// The token answer's credential fields are blanked by field, whatever their length.
    #[test]
    fn the_token_answer_is_blanked_by_field() {
        let s = crate::http::Secrets::default();
        s.add_credential_fields(super::CREDENTIAL_FIELDS);
        let body = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}"#;
        assert_eq!(
            s.scrub_secrets(body),
            r#"{"token_type":"Bearer","expires_in":3599,"access_token":"<redacted>"}"#
        );
    }
}
