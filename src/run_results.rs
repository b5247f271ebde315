//! The subset of dbt's run_results.json (schema v4–v6) that refresh and health need: which
//! nodes an invocation rebuilt, and which failed, warned or were skipped.
//!
//! Extract mirrors the file into `dbt_run_results` when it is there (health reads it), and
//! refresh writes the same table from the same file again (`store`) before it decides.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunResultsError {
    #[error("run results {path} not found: run `dbt build` first (active exposures refresh what a build rebuilt), or set dbt.run_results in the config")]
    Missing { path: PathBuf },
    #[error("run results {path}: cannot read it: {io}")]
    // `io`, not `source`: the text shows it, so it must not be the chain's cause too, or
    // `{:#}` prints the OS message twice.
    Read { path: PathBuf, io: std::io::Error },
    #[error("run results {path}: line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("run results {path}: metadata.dbt_schema_version {found:?} is not supported (autoexpose reads run-results v4, v5 and v6)")]
    Version { path: PathBuf, found: String },
}

#[derive(Deserialize, Debug)]
pub(crate) struct RunResults {
    pub(crate) metadata: Metadata,
    #[serde(default)]
    pub(crate) results: Vec<NodeResult>,
    #[serde(default)]
    pub(crate) args: Option<Args>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) dbt_schema_version: String,
    #[serde(default)]
    pub(crate) generated_at: Option<String>,
    #[serde(default)]
    pub(crate) invocation_id: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Args {
    #[serde(default)]
    pub(crate) which: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct NodeResult {
    pub(crate) unique_id: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) timing: Vec<Timing>,
    #[serde(default)]
    pub(crate) execution_time: Option<f64>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Timing {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) started_at: Option<String>,
    #[serde(default)]
    pub(crate) completed_at: Option<String>,
}

impl RunResults {
    /// The dbt command that wrote the file, when it says.
    pub(crate) fn command(&self) -> Option<&str> {
        self.args.as_ref().and_then(|a| a.which.as_deref())
    }

    /// Commands that never rebuild a relation: their results trigger nothing.
    pub(crate) fn rebuilds_nothing(&self) -> bool {
        matches!(
            self.command(),
            Some(
                "test"
                    | "compile"
                    | "docs"
                    | "generate"
                    | "list"
                    | "ls"
                    | "parse"
                    | "source"
                    | "freshness"
                    | "show"
            )
        )
    }
}

impl NodeResult {
    /// The resource type, from the `unique_id` prefix (run_results has no field for it).
    pub(crate) fn resource_type(&self) -> &str {
        self.unique_id.split('.').next().unwrap_or("")
    }

    /// A model, seed or snapshot whose data changed: `success`, or `partial success`
    /// (microbatch: some batches failed, but data changed).
    pub(crate) fn rebuilt(&self) -> bool {
        matches!(self.resource_type(), "model" | "seed" | "snapshot")
            && matches!(self.status.as_str(), "success" | "partial success")
    }

    pub(crate) fn failed_or_skipped(&self) -> bool {
        matches!(
            self.status.as_str(),
            "error" | "skipped" | "fail" | "runtime error"
        )
    }
}

pub(crate) fn load(path: &Path) -> Result<(RunResults, Vec<u8>), RunResultsError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            RunResultsError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            RunResultsError::Read {
                path: path.to_path_buf(),
                io: source,
            }
        }
    })?;
    let rr = parse(path, &bytes)?;
    Ok((rr, bytes))
}

/// Parses and checks the bytes of the run_results.json at `path` (named in errors).
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<RunResults, RunResultsError> {
    // A UTF-8 byte-order mark is skipped: serde_json refuses one.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let rr: RunResults = serde_json::from_slice(body).map_err(|e| RunResultsError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let v = &rr.metadata.dbt_schema_version;
    let ok = v.starts_with("https://schemas.getdbt.com/dbt/run-results/")
        && ["v4.json", "v5.json", "v6.json"]
            .iter()
            .any(|t| v.ends_with(t));
    if !ok {
        return Err(RunResultsError::Version {
            path: path.to_path_buf(),
            found: v.clone(),
        });
    }
    Ok(rr)
}

/// The run_results.json at `path` if there is one: `None` when no file is there (a project
/// that was parsed, not built); a file that is there but unreadable or not run results is an
/// error naming it.
pub(crate) fn load_if_there(path: &Path) -> Result<Option<(RunResults, Vec<u8>)>, RunResultsError> {
    match load(path) {
        Ok(found) => Ok(Some(found)),
        Err(RunResultsError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `dbt_run_results` with `rr`'s results (emptied when there are none), inside the
/// caller's transaction.
pub(crate) fn store(tx: &rusqlite::Transaction, rr: Option<&RunResults>) -> anyhow::Result<()> {
    tx.execute("DELETE FROM dbt_run_results", [])?;
    let Some(rr) = rr else { return Ok(()) };
    let mut ins = tx.prepare_cached(
        "INSERT OR REPLACE INTO dbt_run_results (invocation_id, generated_at, command, unique_id, resource_type, status, started_at,
            completed_at, execution_time, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for r in &rr.results {
        let exec = r.timing.iter().find(|t| t.name == "execute");
        ins.execute(rusqlite::params![
            rr.metadata.invocation_id,
            rr.metadata.generated_at,
            rr.command(),
            r.unique_id,
            r.resource_type(),
            r.status,
            exec.and_then(|t| t.started_at.clone()),
            exec.and_then(|t| t.completed_at.clone()),
            r.execution_time,
            r.message
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_means_a_relation_whose_data_changed() {
        let r = |id: &str, status: &str| NodeResult {
            unique_id: id.into(),
            status: status.into(),
            timing: vec![],
            execution_time: None,
            message: None,
        };
        assert!(r("model.p.m", "success").rebuilt());
        assert!(r("seed.p.s", "success").rebuilt());
        assert!(r("snapshot.p.s", "partial success").rebuilt());
        assert!(!r("model.p.m", "no-op").rebuilt());
        assert!(!r("test.p.t", "pass").rebuilt());
        assert!(!r("model.p.m", "error").rebuilt());
        assert!(r("model.p.m", "skipped").failed_or_skipped());
    }

    #[test]
    fn old_versions_are_read_and_unknown_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rr.json");
        std::fs::write(&p, r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v4.json"}, "results": [{"unique_id": "model.p.m", "status": "success"}]}"#).unwrap();
        assert_eq!(load(&p).unwrap().0.results.len(), 1);
        std::fs::write(&p, r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v3.json"}}"#).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("v3.json"));
    }
}
