//! The subset of dbt's manifest.json (schema v10–v12) that matching needs.
//!
//! Typed structs over only the fields we use, parsed with `serde_json::from_slice` from the
//! file's bytes: unknown fields are skipped without building a `Value` tree, which keeps a
//! several-hundred-MB manifest fast and small. No `deny_unknown_fields`: dbt adds fields in
//! minor releases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("manifest {path} not found: run `dbt parse` or `dbt build` in the dbt project first, or set dbt.manifest in the config")]
    Missing { path: PathBuf },
    #[error("manifest {path}: cannot read it: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("manifest {path}: line {line}, column {column}: {message}")]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("manifest {path}: metadata.dbt_schema_version {found:?} is not supported (autoexpose reads manifest v10, v11 and v12)")]
    Version { path: PathBuf, found: String },
}

#[derive(Deserialize, Debug)]
pub(crate) struct Manifest {
    pub(crate) metadata: Metadata,
    /// Models, seeds and snapshots only: tests, analyses and operations (most of a large
    /// manifest's nodes) are skipped as they are read, so they never take memory.
    #[serde(default, deserialize_with = "relation_nodes")]
    pub(crate) nodes: BTreeMap<String, Node>,
    #[serde(default)]
    pub(crate) sources: BTreeMap<String, Source>,
    #[serde(default)]
    pub(crate) exposures: BTreeMap<String, Exposure>,
    #[serde(default)]
    /// `unique_id → [node, …]`: models, seeds, snapshots and sources alike.
    pub(crate) disabled: BTreeMap<String, Vec<Node>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) dbt_schema_version: String,
    #[serde(default)]
    pub(crate) dbt_version: Option<String>,
    #[serde(default)]
    pub(crate) project_name: Option<String>,
    #[serde(default)]
    pub(crate) adapter_type: Option<String>,
}

/// A string or a number in the manifest (model versions are either).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub(crate) enum StrOrNum {
    Str(String),
    Int(i64),
    Float(f64),
}

impl StrOrNum {
    pub(crate) fn to_text(&self) -> String {
        match self {
            StrOrNum::Str(s) => s.clone(),
            StrOrNum::Int(i) => i.to_string(),
            StrOrNum::Float(f) => f.to_string(),
        }
    }
}

#[derive(Deserialize, Debug, Default)]
pub(crate) struct NodeConfig {
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) materialized: Option<String>,
}

/// A node of `nodes`, or an entry of `disabled` (which may also be a source: hence the
/// source fields).
#[derive(Deserialize, Debug)]
pub(crate) struct Node {
    #[serde(default)]
    pub(crate) unique_id: Option<String>,
    pub(crate) resource_type: String,
    #[serde(default)]
    pub(crate) source_name: Option<String>,
    #[serde(default)]
    pub(crate) identifier: Option<String>,
    #[serde(default)]
    pub(crate) package_name: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) alias: Option<String>,
    #[serde(default)]
    pub(crate) database: Option<String>,
    #[serde(default)]
    pub(crate) schema: Option<String>,
    #[serde(default)]
    pub(crate) relation_name: Option<String>,
    #[serde(default)]
    pub(crate) version: Option<StrOrNum>,
    #[serde(default)]
    pub(crate) latest_version: Option<StrOrNum>,
    #[serde(default)]
    pub(crate) access: Option<String>,
    #[serde(default)]
    pub(crate) config: NodeConfig,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Source {
    #[serde(default)]
    pub(crate) package_name: String,
    pub(crate) source_name: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) identifier: Option<String>,
    #[serde(default)]
    pub(crate) database: Option<String>,
    #[serde(default)]
    pub(crate) schema: Option<String>,
    #[serde(default)]
    pub(crate) relation_name: Option<String>,
    #[serde(default)]
    pub(crate) config: NodeConfig,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Exposure {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) package_name: String,
    #[serde(default)]
    pub(crate) original_file_path: Option<String>,
    #[serde(default)]
    pub(crate) config: ExposureConfig,
    #[serde(default)]
    pub(crate) meta: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Debug, Default)]
pub(crate) struct ExposureConfig {
    #[serde(default)]
    pub(crate) meta: BTreeMap<String, serde_json::Value>,
}

impl Exposure {
    /// The workbook luid when autoexpose wrote this exposure.
    pub(crate) fn autoexpose_luid(&self) -> Option<String> {
        let meta = if self.config.meta.is_empty() { &self.meta } else { &self.config.meta };
        if meta.get("exposure_mode").and_then(|v| v.as_str()) != Some("auto") {
            return None;
        }
        meta.get("workbook_luid").and_then(|v| v.as_str()).map(str::to_string)
    }
}

fn relation_nodes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Node>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = BTreeMap<String, Node>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of unique_id to node")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((id, node)) = map.next_entry::<String, Node>()? {
                if matches!(node.resource_type.as_str(), "model" | "seed" | "snapshot") {
                    out.insert(id, node);
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit)
}

/// Reads and checks a manifest; the bytes are returned too, for hashing.
pub(crate) fn load(path: &Path) -> Result<(Manifest, Bytes), ManifestError> {
    let bytes = read(path)?;
    let manifest = parse(path, &bytes)?;
    Ok((manifest, bytes))
}

/// A manifest's bytes: mapped, or read when the file cannot be mapped.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Read(v) => v,
        }
    }
}

/// The file's bytes, whole (`from_slice` on them is far faster than `from_reader`), mapped
/// into memory rather than copied into a buffer: that saves the copy and the zeroing of a
/// fresh buffer as large as the file, the slowest part of reading on machines that hand out
/// fresh memory slowly (0.2 to 1.5 s for 684 MB on the benchmark machine). The catch is
/// ripgrep's: if another process truncates the file while it is mapped, this one dies with
/// SIGBUS, so autoexpose must not run while dbt rewrites the same manifest. Files that cannot
/// be mapped (empty ones, pipes) are read.
pub(crate) fn read(path: &Path) -> Result<Bytes, ManifestError> {
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ManifestError::Missing { path: path.to_path_buf() }
        } else {
            ManifestError::Read { path: path.to_path_buf(), source }
        }
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read-only and private; the only hazard is another process
        // truncating the file meanwhile (SIGBUS), documented above.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&file) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(err)?;
    Ok(Bytes::Read(bytes))
}

pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let v = &manifest.metadata.dbt_schema_version;
    let supported = ["v10.json", "v11.json", "v12.json"]
        .iter()
        .any(|tail| v.starts_with("https://schemas.getdbt.com/dbt/manifest/") && v.ends_with(tail));
    if !supported {
        return Err(ManifestError::Version { path: path.to_path_buf(), found: v.clone() });
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_names_line_and_column() {
        let err = parse(Path::new("m.json"), b"{\n  \"metadata\": {\n  oops\n}").unwrap_err().to_string();
        assert!(err.starts_with("manifest m.json: line 3, column 3"), "{err}");
    }

    #[test]
    fn unknown_version_is_refused() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v9.json"}}"#;
        let err = parse(Path::new("m.json"), body).unwrap_err().to_string();
        assert!(err.contains("v9.json"), "{err}");
    }

    #[test]
    fn v10_to_v12_are_read() {
        for v in ["v10", "v11", "v12"] {
            let body = format!(r#"{{"metadata": {{"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/{v}.json"}},
              "nodes": {{}}, "sources": {{}}, "disabled": {{"model.p.old": [{{"resource_type": "model", "name": "old",
              "config": {{"enabled": false}}}}]}}}}"#);
            let m = parse(Path::new("m.json"), body.as_bytes()).unwrap();
            assert_eq!(m.disabled["model.p.old"][0].config.enabled, Some(false), "{v}");
        }
    }

    #[test]
    fn versions_may_be_numbers_or_strings() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
          "nodes": {"model.p.m.v2": {"resource_type": "model", "name": "m", "version": 2, "latest_version": "2",
                    "unknown_field": {"deep": [1, 2]}}}}"#;
        let m = parse(Path::new("m.json"), body).unwrap();
        let n = &m.nodes["model.p.m.v2"];
        assert_eq!(n.version.as_ref().unwrap().to_text(), "2");
        assert_eq!(n.latest_version.as_ref().unwrap().to_text(), "2");
    }
}
