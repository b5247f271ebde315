//! The subset of dbt's manifest.json (schema v10–v12) that matching needs.
//!
//! Typed structs over only the fields we use, parsed with `serde_json::from_slice` from the
//! file's bytes: unknown fields are skipped without building a `Value` tree, which keeps a
//! several-hundred-MB manifest fast and small. No `deny_unknown_fields`: dbt adds fields in
//! minor releases.
//!
//! A mapped manifest is parsed front to back, and the pages behind the parser are given back to
//! the kernel as it goes (`Cursor`): the file's size never counts whole towards the peak
//! memory, which leaves room to read the BI tools while the manifest is parsed. The same cursor
//! hashes the bytes it passes, so the file is read once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("manifest {path} not found: run `dbt parse` or `dbt build` in the dbt project first, or set dbt.manifest in the config")]
    Missing { path: PathBuf },
    #[error("manifest {path}: cannot read it: {io}")]
    // `io`, not `source`: the text shows it, so it must not be the chain's cause too, or
    // `{:#}` prints the OS message twice.
    Read { path: PathBuf, io: std::io::Error },
    #[error("manifest {path}: line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "manifest {path}: metadata.dbt_schema_version is {found}{by}, which autoexpose does not read: it reads manifest v10, v11 and v12 (dbt 1.6 and later). {next}",
        found = if found.is_empty() { "missing".to_string() } else { format!("{found:?}") },
        by = dbt_version.as_deref().map(|v| format!(" (written by dbt {v})")).unwrap_or_default(),
        next = if newer_than_v12(found) {
            "Upgrade autoexpose, or write the manifest with a dbt it reads"
        } else {
            "Upgrade dbt in the dbt project to 1.6 or later and run `dbt parse` again to write a new target/manifest.json"
        }
    )]
    Version {
        path: PathBuf,
        found: String,
        dbt_version: Option<String>,
    },
    /// dbt's manifest schema lists `nodes` and `sources` among its required top-level keys
    /// (dbt-labs/dbt-core `schemas/dbt/manifest/v12.json` at 7876edb, the top-level
    /// `"required"`: metadata, nodes, sources, macros, … unit_tests; v10 and v11 not checked here):
    /// a file without them is not a manifest, and reading it as one with no nodes would
    /// delete every generated exposure.
    #[error("manifest {path}: no `{key}` object at the top level, which every dbt manifest has: this is not a dbt manifest (or a damaged one). Run `dbt parse` in the dbt project to write target/manifest.json again")]
    MissingKey { path: PathBuf, key: &'static str },
    #[error("manifest {path}: not a regular file ({what}); dbt.manifest must name the manifest.json dbt wrote (target/manifest.json)")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("manifest {path}: {size_mb} MiB is larger than dbt.max_manifest_mb ({limit_mb} MiB); raise it in the config if this manifest is expected")]
    TooLarge {
        path: PathBuf,
        size_mb: u64,
        limit_mb: u64,
    },
}

/// `dbt.max_manifest_mb` when the config does not say: far above the largest manifests seen
/// (several hundred MB), far below what would exhaust a machine.
pub(crate) const DEFAULT_MAX_MANIFEST_MB: u64 = 4096;

#[derive(Deserialize, Debug)]
pub(crate) struct Manifest {
    pub(crate) metadata: Metadata,
    /// Models, seeds and snapshots only: tests (but for what they are on, `tests`), analyses
    /// and operations (most of a large manifest's nodes) are dropped as they are read, so they
    /// never take memory.
    #[serde(default, deserialize_with = "relation_nodes")]
    pub(crate) nodes: BTreeMap<String, Node>,
    #[serde(default, deserialize_with = "sources")]
    pub(crate) sources: BTreeMap<String, Source>,
    /// The test nodes of `nodes` (`resource_type: test`), reduced to what they are on, in
    /// the file's order. Filled beside `nodes` as it is read (`TESTS`).
    #[serde(skip)]
    pub(crate) tests: Vec<TestOn>,
    /// Which of the keys dbt's schema requires were there (`check_required`).
    #[serde(skip)]
    seen: Seen,
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
    /// What the node reads: `depends_on.nodes`, the unique_ids of its parents (models, seeds,
    /// snapshots, sources; for a test, the nodes it tests). Macros are not read.
    #[serde(default)]
    pub(crate) depends_on: DependsOn,
}

/// A node's `depends_on`, of which only `nodes` is read (its `macros` are skipped unparsed).
#[derive(Deserialize, Debug, Default)]
pub(crate) struct DependsOn {
    #[serde(default)]
    pub(crate) nodes: Vec<String>,
}

/// A test node of `nodes`, kept only for what it is on (the rest of it is dropped as it is
/// read): its unique_id and its `depends_on.nodes`, for `dbt_nodes.tests`.
#[derive(Debug)]
pub(crate) struct TestOn {
    pub(crate) unique_id: String,
    pub(crate) nodes: Vec<String>,
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
    /// The asset's ref when autoexpose wrote this exposure (under its tool's `meta_ref` key).
    pub(crate) fn autoexpose_luid(&self) -> Option<String> {
        let meta = if self.config.meta.is_empty() {
            &self.meta
        } else {
            &self.config.meta
        };
        if meta.get("exposure_mode").and_then(|v| v.as_str()) != Some("auto") {
            return None;
        }
        crate::integrations::meta_ref_keys()
            .find_map(|k| meta.get(k).and_then(|v| v.as_str()))
            .map(str::to_string)
    }
}

/// The required keys met by the parse that is going on (`Manifest::seen` once it is done): a
/// thread-local like `CURSOR`, since serde hands the field functions nothing else.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    nodes: bool,
    sources: bool,
}

thread_local! {
    static SEEN: std::cell::Cell<Seen> = const { std::cell::Cell::new(Seen { nodes: false, sources: false }) };
    /// The test nodes met by the parse that is going on (`Manifest::tests` once it is done).
    static TESTS: RefCell<Vec<TestOn>> = const { RefCell::new(Vec::new()) };
}

/// Models, seeds and snapshots are kept whole; of a test only its id and `depends_on.nodes`
/// (into `TESTS`); everything else (analyses, operations) is dropped as it is read.
fn relation_nodes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Node>, D::Error> {
    SEEN.with(|s| {
        s.set(Seen {
            nodes: true,
            ..s.get()
        })
    });
    followed_map(d, |id: &mut String, node: &mut Node| {
        match node.resource_type.as_str() {
            "model" | "seed" | "snapshot" => true,
            "test" => {
                let on = TestOn {
                    unique_id: std::mem::take(id),
                    nodes: std::mem::take(&mut node.depends_on.nodes),
                };
                TESTS.with(|t| t.borrow_mut().push(on));
                false
            }
            _ => false,
        }
    })
}

fn sources<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Source>, D::Error> {
    SEEN.with(|s| {
        s.set(Seen {
            sources: true,
            ..s.get()
        })
    });
    followed_map(d, |_: &mut String, _: &mut Source| true)
}

/// A map of `unique_id` to `T`, keeping the entries `keep` accepts (it may take what it wants
/// of the others, key included), and telling the cursor
/// where each key was: everything before it has been parsed.
fn followed_map<'de, D, T>(
    d: D,
    keep: fn(&mut String, &mut T) -> bool,
) -> Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Visit<T>(fn(&mut String, &mut T) -> bool);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
        type Value = BTreeMap<String, T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of unique_id to node")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((Key(mut id), mut value)) = map.next_entry::<Key, T>()? {
                if (self.0)(&mut id, &mut value) {
                    out.insert(id, value);
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit(keep))
}

/// A map key. When serde_json can lend it from the input (no escapes), where it lies tells
/// the cursor how far the parse has come.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key, E> {
                Cursor::passed(v.as_ptr());
                Ok(Key(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// How far apart the cursor hashes and releases: large enough that the system calls cost
/// nothing, small enough that the parsed part of the file never takes much memory.
const STEP: usize = 16 << 20;

/// The parse's companion over one manifest's bytes (see the module comment). It lives in a
/// thread-local for the length of one `parse_with`, because the map visitors that move it on
/// are called by serde and cannot be handed anything.
struct Cursor {
    base: *const u8,
    len: usize,
    /// Bytes before this offset are hashed and, when mapped, released.
    done: usize,
    /// The bytes are a read-only shared file mapping: their pages can be dropped and will
    /// read the file again if touched. Never true for memory of our own.
    mapped: bool,
    page: usize,
    hasher: Option<xxhash_rust::xxh3::Xxh3>,
}

thread_local! {
    static CURSOR: RefCell<Option<Cursor>> = const { RefCell::new(None) };
}

impl Cursor {
    /// The parse has reached `at`, a pointer into the input (or elsewhere, which is ignored).
    fn passed(at: *const u8) {
        CURSOR.with(|c| {
            if let Some(c) = c.borrow_mut().as_mut() {
                let offset = (at as usize).wrapping_sub(c.base as usize);
                if offset <= c.len && offset >= c.done + STEP {
                    c.advance(offset / c.page * c.page);
                }
            }
        })
    }

    fn advance(&mut self, end: usize) {
        // SAFETY: done <= end <= len, inside the input that outlives the parse.
        let passed =
            unsafe { std::slice::from_raw_parts(self.base.add(self.done), end - self.done) };
        if let Some(h) = &mut self.hasher {
            h.update(passed);
        }
        if self.mapped {
            // SAFETY: a read-only MAP_SHARED mapping of a file: MADV_DONTNEED only unmaps the
            // pages, whose contents stay the file's (a later touch reads them back from the
            // page cache). `done` and `end` are page multiples from the page-aligned base.
            unsafe {
                libc::madvise(
                    self.base.add(self.done) as *mut libc::c_void,
                    end - self.done,
                    libc::MADV_DONTNEED,
                )
            };
        }
        self.done = end;
    }
}

/// Reads and checks a manifest, and nothing else: the floor `parse-manifest` measures. The
/// bytes are returned too, for their length.
pub(crate) fn load(path: &Path) -> Result<(Manifest, Bytes), ManifestError> {
    let bytes = read(path, DEFAULT_MAX_MANIFEST_MB)?;
    let manifest = parse_with(path, &bytes, bytes.is_mapped(), false)?.0;
    Ok((manifest, bytes))
}

/// Parses and checks a manifest read by `read`, and hashes it (`config::hex_xxh3`) on the way.
pub(crate) fn parse_hashed(
    path: &Path,
    bytes: &Bytes,
) -> Result<(Manifest, String), ManifestError> {
    let (manifest, hash) = parse_with(path, bytes, bytes.is_mapped(), true)?;
    Ok((manifest, hash.unwrap_or_default()))
}

/// A manifest's bytes: mapped, or read when the file cannot be mapped.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Bytes {
    fn is_mapped(&self) -> bool {
        matches!(self, Bytes::Mapped(_))
    }
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
/// fresh memory slowly (0.2 to 1.5 s for 684 MB on the benchmark machine), and it lets the
/// parse give back what it has read (`Cursor`). The catch is
/// ripgrep's: if another process truncates the file while it is mapped, this one dies with
/// SIGBUS, so autoexpose must not run while dbt rewrites the same manifest. Files that cannot
/// be mapped (empty ones) are read.
///
/// Only a regular file of at most `max_mb` MiB is read: a symlink to `/dev/zero` or a FIFO
/// would be read without end (or block the open), so the path is looked at (`stat`, which
/// follows symlinks) before it is opened, and the open file again, in case it was swapped.
pub(crate) fn read(path: &Path, max_mb: u64) -> Result<Bytes, ManifestError> {
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ManifestError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            ManifestError::Read {
                path: path.to_path_buf(),
                io: source,
            }
        }
    };
    let max_bytes = max_mb.saturating_mul(1024 * 1024);
    let check = |meta: &std::fs::Metadata| -> Result<(), ManifestError> {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let what = if t.is_file() {
            None
        } else if t.is_dir() {
            // The OS says it best, once (`Read` shows its message, not as the chain's cause).
            return Err(ManifestError::Read {
                path: path.to_path_buf(),
                io: std::io::Error::from_raw_os_error(libc::EISDIR),
            });
        } else if t.is_fifo() {
            Some("a FIFO")
        } else if t.is_char_device() {
            Some("a character device")
        } else if t.is_block_device() {
            Some("a block device")
        } else if t.is_socket() {
            Some("a socket")
        } else {
            Some("not a file")
        };
        if let Some(what) = what {
            return Err(ManifestError::NotAFile {
                path: path.to_path_buf(),
                what,
            });
        }
        if meta.len() > max_bytes {
            let size_mb = meta.len().div_ceil(1024 * 1024);
            return Err(ManifestError::TooLarge {
                path: path.to_path_buf(),
                size_mb,
                limit_mb: max_mb,
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(err)?)?;
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    check(&meta)?;
    if meta.len() > 0 {
        // SAFETY: the map is read-only and private; the only hazard is another process
        // truncating the file meanwhile (SIGBUS), documented above.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().map(&file) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    // An empty (or unmappable) file, read: at most one byte past the limit, in case it grows.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, max_bytes.saturating_add(1)),
        &mut bytes,
    )
    .map_err(err)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
            size_mb: max_mb + 1,
            limit_mb: max_mb,
        });
    }
    Ok(Bytes::Read(bytes))
}

/// Parses `bytes` (in memory of our own: nothing is released).
#[cfg(test)]
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    Ok(parse_with(path, bytes, false, false)?.0)
}

/// `mapped`: `bytes` is a read-only shared mapping of the file (see `Cursor`).
fn parse_with(
    path: &Path,
    bytes: &[u8],
    mapped: bool,
    hash: bool,
) -> Result<(Manifest, Option<String>), ManifestError> {
    /// Takes the cursor down, and the tests a failed parse met, even when it fails or panics.
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            CURSOR.with(|c| c.borrow_mut().take());
            TESTS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        }
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .unwrap_or(4096)
        .max(1);
    CURSOR.with(|c| {
        *c.borrow_mut() = Some(Cursor {
            base: bytes.as_ptr(),
            len: bytes.len(),
            done: 0,
            mapped,
            page,
            hasher: hash.then(xxhash_rust::xxh3::Xxh3::new),
        })
    });
    let _guard = Guard;
    // The version first, from the few bytes before the nodes: the body of another version may
    // not decode as this one (v1 to v3 have `"disabled": []`), and its error would hide the
    // one that says what to do.
    // A UTF-8 byte-order mark (some Windows editors write one) is skipped, not parsed:
    // serde_json refuses it. The cursor and the hash still cover the whole file.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some(head) = head_metadata(body) {
        check_version(path, &head)?;
    }
    // Only an object is a manifest: serde would also read a JSON array into the struct, by
    // position.
    if !starts_as_object(body) {
        return Err(ManifestError::Parse {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: "not a JSON object: a dbt manifest is one object with `metadata`, `nodes` and `sources`; run `dbt parse` in the dbt project to write target/manifest.json again".into(),
        });
    }
    SEEN.with(|s| s.set(Seen::default()));
    TESTS.with(|t| t.borrow_mut().clear());
    let parsed: Result<Manifest, _> = serde_json::from_slice(body).map(|mut m: Manifest| {
        m.seen = SEEN.with(std::cell::Cell::get);
        m.tests = TESTS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        m
    });

    let hash = CURSOR.with(|c| c.borrow_mut().take()).and_then(|mut c| {
        let mut h = c.hasher.take()?;
        h.update(&bytes[c.done..]);
        Some(crate::config::xxh3_text(h.digest128()))
    });
    let manifest = parsed.map_err(|e| ManifestError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: without_location(&e),
    })?;
    check_version(path, &manifest.metadata)?;
    check_required(path, &manifest)?;
    Ok((manifest, hash))
}

/// `nodes` and `sources`, required by dbt's manifest schema (see `ManifestError::MissingKey`).
/// Checked after the version, whose message says more about a file of another dbt.
fn check_required(path: &Path, m: &Manifest) -> Result<(), ManifestError> {
    for (key, seen) in [("nodes", m.seen.nodes), ("sources", m.seen.sources)] {
        if !seen {
            return Err(ManifestError::MissingKey {
                path: path.to_path_buf(),
                key,
            });
        }
    }
    Ok(())
}

/// The first byte past whitespace (and a byte-order mark) opens an object.
fn starts_as_object(bytes: &[u8]) -> bool {
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The manifest versions whose fields are the ones we read. From the schemas dbt-core
/// publishes (`schemas/dbt/manifest/v5.json` … `v12.json`, branch 1.10.latest):
/// `metadata.project_name`, which `ref()`s of the root project need, first appears in v10;
/// v9 has model `access` and `version` but no project name, v8 and older neither, and v1 to v3
/// keep `disabled` as a list. dbt 1.6 writes v10, 1.7 v11, 1.8 and later v12
/// (docs.getdbt.com/reference/artifacts/manifest-json).
const SUPPORTED: [&str; 3] = ["v10", "v11", "v12"];
const SCHEMA_URL: &str = "https://schemas.getdbt.com/dbt/manifest/";

fn check_version(path: &Path, m: &Metadata) -> Result<(), ManifestError> {
    let v = &m.dbt_schema_version;
    if schema_version(v).is_some_and(|n| SUPPORTED.contains(&n)) {
        return Ok(());
    }
    Err(ManifestError::Version {
        path: path.to_path_buf(),
        found: v.clone(),
        dbt_version: m.dbt_version.clone(),
    })
}

/// `v12` of `https://schemas.getdbt.com/dbt/manifest/v12.json`.
fn schema_version(url: &str) -> Option<&str> {
    url.strip_prefix(SCHEMA_URL)?.strip_suffix(".json")
}

/// A version after the last one read (`v13` and on): dbt is newer than autoexpose.
fn newer_than_v12(url: &str) -> bool {
    schema_version(url)
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 12)
}

/// serde_json's message without the " at line L column C" it appends: `Parse` says where.
fn without_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&tail).map(str::to_string).unwrap_or(text)
}

/// `metadata`, read from the top of the file: dbt writes it first, so this reads a few
/// hundred bytes and stops, leaving the rest to the real parse. `None` when the file does
/// not start as a manifest (then the real parse says what is wrong) or has no `metadata`.
/// A file whose `metadata` comes later is skipped through up to it, once.
fn head_metadata(bytes: &[u8]) -> Option<Metadata> {
    struct Visit<'m>(&'m mut Option<Metadata>);
    impl<'de> serde::de::Visitor<'de> for Visit<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a manifest object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "metadata" {
                    *self.0 = Some(map.next_value()?);
                    // Stop here: the error ends the parse without reading the rest.
                    return Err(serde::de::Error::custom("metadata read"));
                }
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::Deserializer::deserialize_map(&mut de, Visit(&mut found));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_names_line_and_column() {
        let err = parse(Path::new("m.json"), b"{\n  \"metadata\": {\n  oops\n}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("manifest m.json: line 3, column 3"),
            "{err}"
        );
    }

    #[test]
    fn unknown_version_is_refused() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v9.json"}}"#;
        let err = parse(Path::new("m.json"), body).unwrap_err().to_string();
        assert!(
            err.contains("v9.json") && err.contains("run `dbt parse` again"),
            "{err}"
        );
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v13.json"}}"#;
        let err = parse(Path::new("m.json"), body).unwrap_err().to_string();
        assert!(
            err.contains("v13.json") && err.contains("Upgrade autoexpose"),
            "{err}"
        );
        let err = parse(Path::new("m.json"), br#"{"metadata": {}, "nodes": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dbt_schema_version is missing"), "{err}");
    }

    /// v1 to v3 keep `disabled` as a list, which does not decode as v12's map: the version
    /// must be what is said, whether `metadata` comes first (as dbt writes it) or last.
    #[test]
    fn an_old_body_gets_the_version_message() {
        let meta = r#""metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v3.json", "dbt_version": "0.21.1"}"#;
        for body in [
            format!(r#"{{{meta}, "nodes": {{}}, "disabled": []}}"#),
            format!(r#"{{"nodes": {{}}, "disabled": [], {meta}}}"#),
        ] {
            let err = parse(Path::new("m.json"), body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(r#"dbt_schema_version is "https://schemas.getdbt.com/dbt/manifest/v3.json" (written by dbt 0.21.1)"#), "{err}");
            assert!(
                err.contains("v10, v11 and v12")
                    && err.contains("Upgrade dbt in the dbt project to 1.6 or later"),
                "{err}"
            );
        }
    }

    /// What dbt's schema requires at the top: a file without it is refused, naming the key,
    /// rather than read as a project with no nodes.
    #[test]
    fn nodes_and_sources_are_required() {
        let meta = r#""metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}"#;
        for (body, key) in [
            (format!("{{{meta}}}"), "`nodes`"),
            (format!(r#"{{{meta}, "nodes": {{}}}}"#), "`sources`"),
            (format!(r#"{{"sources": {{}}, {meta}}}"#), "`nodes`"),
        ] {
            let err = parse(Path::new("m.json"), body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("manifest m.json: no ")
                    && err.contains(key)
                    && err.contains("`dbt parse`"),
                "{body}: {err}"
            );
        }
        for body in [
            "[]",
            format!("[{{{meta}}}, {{}}, {{}}]").as_str(),
            "  \"x\"",
            "",
        ] {
            let err = parse(Path::new("m.json"), body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not a JSON object") && err.contains("`dbt parse`"),
                "{body}: {err}"
            );
        }
        let m = parse(
            Path::new("m.json"),
            format!(r#"{{{meta}, "nodes": {{}}, "sources": {{}}}}"#).as_bytes(),
        )
        .unwrap();
        assert!(m.nodes.is_empty() && m.sources.is_empty());
    }

    #[test]
    fn a_parse_error_says_where_once() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
"nodes": []}"#;
        let err = parse(Path::new("m.json"), body).unwrap_err().to_string();
        assert_eq!(err.matches("line 2").count(), 1, "{err}");
        assert!(err.starts_with("manifest m.json: line 2, column "), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }

    #[test]
    fn v10_to_v12_are_read() {
        for v in ["v10", "v11", "v12"] {
            let body = format!(
                r#"{{"metadata": {{"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/{v}.json"}},
              "nodes": {{"model.p.m": {{"resource_type": "model", "name": "m", "depends_on": {{"macros": [], "nodes": ["model.p.old"]}}}},
                "test.p.t.1": {{"resource_type": "test", "name": "t", "depends_on": {{"macros": [], "nodes": ["model.p.m"]}}}}}},
              "sources": {{}}, "disabled": {{"model.p.old": [{{"resource_type": "model", "name": "old",
              "config": {{"enabled": false}}}}]}}}}"#
            );
            let m = parse(Path::new("m.json"), body.as_bytes()).unwrap();
            assert_eq!(
                m.disabled["model.p.old"][0].config.enabled,
                Some(false),
                "{v}"
            );
            assert_eq!(
                m.nodes["model.p.m"].depends_on.nodes,
                ["model.p.old"],
                "{v}"
            );
            assert_eq!(m.tests.len(), 1, "{v}");
        }
    }

    /// A manifest larger than a few cursor steps: nodes with long code, and keys with escapes
    /// (which serde_json cannot lend, so the cursor must skip them).
    fn big_manifest() -> String {
        let code = "select 1 as x -- padding\\n".repeat(400);
        let mut out = String::from(
            r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}, "nodes": {"#,
        );
        for i in 0..6000 {
            let key = if i % 7 == 0 {
                format!(r#"model.p.m\u005f{i}"#)
            } else {
                format!("model.p.m_{i}")
            };
            let kind = if i % 3 == 0 { "test" } else { "model" };
            out.push_str(&format!(r#"{}"{key}": {{"resource_type": "{kind}", "name": "m_{i}", "raw_code": "{code}"}}"#, if i > 0 { ", " } else { "" }));
        }
        out.push_str(r#"}, "sources": {"#);
        for i in 0..2000 {
            out.push_str(&format!(r#"{}"source.p.s.t{i}": {{"source_name": "s", "name": "t{i}", "description": "{code}"}}"#, if i > 0 { ", " } else { "" }));
        }
        out.push_str("}}");
        out
    }

    #[test]
    fn mapped_parse_releases_what_it_read_and_hashes_the_whole_file() {
        let text = big_manifest();
        assert!(text.len() > 4 * STEP, "{} bytes", text.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, &text).unwrap();
        let bytes = read(&path, DEFAULT_MAX_MANIFEST_MB).unwrap();
        assert!(bytes.is_mapped());
        let (mapped, hash) = parse_hashed(&path, &bytes).unwrap();
        let in_memory = parse(&path, text.as_bytes()).unwrap();
        assert_eq!(hash, crate::config::hex_xxh3(text.as_bytes()));
        assert_eq!(format!("{mapped:?}"), format!("{in_memory:?}"));
        assert_eq!((mapped.nodes.len(), mapped.sources.len()), (4000, 2000));
        #[cfg(target_os = "linux")]
        {
            // What of the mapping is still resident: at most the last step and the tail.
            let start = bytes.as_ptr() as usize;
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            let mut lines = smaps
                .lines()
                .skip_while(|l| !l.starts_with(&format!("{start:x}-")));
            assert!(lines.next().is_some(), "mapping not in smaps");
            let rss_kb: usize = lines
                .find_map(|l| l.strip_prefix("Rss:"))
                .unwrap()
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .unwrap();
            assert!(
                rss_kb * 1024 < 2 * STEP,
                "{rss_kb} kB of a {} byte file still mapped",
                text.len()
            );
        }
    }

    /// The graph's raw parts: a model's `depends_on.nodes`, and of a test only its id and
    /// what it is on; analyses and operations leave nothing.
    #[test]
    fn depends_on_and_tests_are_read() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
          "nodes": {
            "model.p.a": {"resource_type": "model", "name": "a", "depends_on": {"macros": ["macro.dbt.x"], "nodes": ["source.p.s.t", "seed.p.b"]}},
            "seed.p.b": {"resource_type": "seed", "name": "b", "depends_on": {"macros": []}},
            "analysis.p.z": {"resource_type": "analysis", "name": "z", "depends_on": {"nodes": ["model.p.a"]}},
            "test.p.not_null_a_id.1": {"resource_type": "test", "name": "not_null_a_id", "depends_on": {"macros": ["macro.dbt.test_not_null"], "nodes": ["model.p.a"]}},
            "test.p.rel.2": {"resource_type": "test", "name": "rel", "depends_on": {"nodes": ["model.p.a", "seed.p.b"]}}
          }, "sources": {"source.p.s.t": {"source_name": "s", "name": "t"}}}"#;
        let m = parse(Path::new("m.json"), body).unwrap();
        assert_eq!(
            m.nodes.keys().collect::<Vec<_>>(),
            ["model.p.a", "seed.p.b"]
        );
        assert_eq!(
            m.nodes["model.p.a"].depends_on.nodes,
            ["source.p.s.t", "seed.p.b"]
        );
        assert!(m.nodes["seed.p.b"].depends_on.nodes.is_empty());
        let tests: Vec<(&str, Vec<&str>)> = m
            .tests
            .iter()
            .map(|t| {
                (
                    t.unique_id.as_str(),
                    t.nodes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            tests,
            [
                ("test.p.not_null_a_id.1", vec!["model.p.a"]),
                ("test.p.rel.2", vec!["model.p.a", "seed.p.b"])
            ]
        );
        // The next parse on this thread starts from none, also after a failed one.
        assert!(parse(Path::new("m.json"), &body[..body.len() - 40]).is_err());
        let again = parse(Path::new("m.json"), body).unwrap();
        assert_eq!(again.tests.len(), 2);
    }

    #[test]
    fn versions_may_be_numbers_or_strings() {
        let body = br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
          "nodes": {"model.p.m.v2": {"resource_type": "model", "name": "m", "version": 2, "latest_version": "2",
                    "unknown_field": {"deep": [1, 2]}}}, "sources": {}}"#;
        let m = parse(Path::new("m.json"), body).unwrap();
        let n = &m.nodes["model.p.m.v2"];
        assert_eq!(n.version.as_ref().unwrap().to_text(), "2");
        assert_eq!(n.latest_version.as_ref().unwrap().to_text(), "2");
    }
}

#[cfg(test)]
mod read_bounds_tests {
    use super::*;

    /// Not a regular file, or above the limit: refused before a byte is read, naming the file.
    #[test]
    fn only_regular_files_under_the_limit_are_read() {
        let err = read(Path::new("/dev/null"), DEFAULT_MAX_MANIFEST_MB)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "manifest /dev/null: not a regular file (a character device); dbt.manifest must name the manifest.json dbt wrote (target/manifest.json)");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, vec![b' '; 1024 * 1024 + 1]).unwrap();
        let err = read(&path, 1).err().unwrap().to_string();
        assert!(err.ends_with("m.json: 2 MiB is larger than dbt.max_manifest_mb (1 MiB); raise it in the config if this manifest is expected"), "{err}");
        assert_eq!(read(&path, 2).unwrap().len(), 1024 * 1024 + 1);
        // An empty file is read, not mapped, under the same limit.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read(&path, 1).unwrap().len(), 0);
    }
}
