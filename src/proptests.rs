//! Property tests for every generic parser of outside text: RFC 3339 times (`--now`, SQLite,
//! a BI tool's API), dotted and bracketed table names, names and values that reach dbt, the
//! YAML scalar writer, manifest.json and run_results.json; each integration tests the parsers
//! of its own answers with the strategies here (`text`, `mutated`, `json_value_with`). The
//! first property of each is that no input panics; the others say what the parser promises on
//! top of that.
//!
//! Case counts are kept small (the suite runs on every push, on 2 shared cores); the inputs
//! are drawn from alphabets heavy in the characters each parser treats specially, so a few
//! hundred cases reach the corners that uniform random text would not. A failing case is
//! shrunk and printed; proptest also stores its seed under `proptest-regressions/`.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::clock::Instant;
use crate::keys;
use crate::naming;
use crate::yaml;

/// Text from an alphabet of `special` characters mixed with arbitrary ones (any `char`,
/// multi-byte ones included), up to `max` characters.
pub(crate) fn text(special: &'static str, max: usize) -> impl Strategy<Value = String> {
    let special: Vec<char> = special.chars().collect();
    let c = prop_oneof![
        4 => proptest::sample::select(special),
        1 => any::<char>(),
    ];
    proptest::collection::vec(c, 0..=max).prop_map(|v| v.into_iter().collect())
}

/// Characters that mean something to YAML, Jinja, JSON or a line reader, and some that look
/// like nothing but are (NEL, LS, PS, BOM, NBSP), plus multi-byte letters.
pub(crate) const HOSTILE: &str = "aZ_0 9.-:#'\"\\\n\r\t{}[]|>&*!%@`,?~=$;/<\u{0}\u{7}\u{1b}\u{7f}\u{85}\u{a0}\u{2028}\u{2029}\u{feff}\u{fffe}é📈ה";

/// The bytes of a valid text with one edit: a byte replaced, a range removed, bytes inserted,
/// or the tail cut off. Most results are invalid in a way a careless parser trips on.
pub(crate) fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    (
        0..4u8,
        0..len,
        0..len,
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(kind, a, b, bytes)| {
            let mut v = valid.clone();
            let (lo, hi) = (a.min(b).min(v.len()), a.max(b).min(v.len()));
            match kind {
                0 if !v.is_empty() => {
                    let at = lo.min(v.len() - 1);
                    v[at] = bytes.first().copied().unwrap_or(b'"');
                }
                1 => {
                    v.drain(lo..hi);
                }
                2 => {
                    v.splice(lo..lo, bytes);
                }
                _ => v.truncate(lo),
            }
            v
        })
}

/// Arbitrary JSON, a few levels deep, with hostile strings and extreme numbers; object keys
/// are mostly `names` (the ones the parser's typed structs look for, so values land in typed
/// fields).
pub(crate) fn json_value_with(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text(HOSTILE, 12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(names), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Object keys: mostly `names`, sometimes anything.
fn field_name(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(names).prop_map(str::to_string), 1 => text(HOSTILE, 6)]
}

/// The keys manifest.json and run_results.json's readers look for.
const DBT_NAMES: &[&str] = &[
    "metadata",
    "dbt_schema_version",
    "adapter_type",
    "nodes",
    "resource_type",
    "name",
    "package_name",
    "database",
    "schema",
    "alias",
    "identifier",
    "relation_name",
    "version",
    "latest_version",
    "access",
    "config",
    "enabled",
    "meta",
    "sources",
    "source_name",
    "exposures",
    "exposure_mode",
    "disabled",
    "results",
    "unique_id",
    "status",
    "timing",
    "started_at",
    "execution_time",
    "message",
    "args",
    "which",
    "invocation_id",
];

/// Arbitrary JSON keyed mostly by `DBT_NAMES`.
fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(DBT_NAMES)
}

pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// --- times ---------------------------------------------------------------------------------

/// A valid RFC 3339 time, in the many spellings the parser accepts.
fn rfc3339_text() -> impl Strategy<Value = String> {
    (
        1i64..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        proptest::option::of("[0-9]{1,9}"),
        prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            (prop_oneof![Just('+'), Just('-')], 0u32..24, 0u32..60)
                .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        ],
        proptest::sample::select(vec!['T', 't', ' ']),
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off, sep)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn times_never_panic(t in text("0123456789-:.+TZtz é", 40)) {
        let _ = Instant::parse(&t);
    }

    /// A valid time with up to three characters replaced by one from an alphabet of digits,
    /// separators and multi-byte letters: `+10:00` → `+1é00` (same byte length, a char
    /// boundary moved) was issue 10's panic.
    #[test]
    fn edited_times_never_panic(
        t in rfc3339_text(),
        at in any::<proptest::sample::Index>(),
        cut in 0usize..=3,
        c in proptest::sample::select("0:+-.Zé€📈".chars().collect::<Vec<_>>()),
    ) {
        let mut chars: Vec<char> = t.chars().collect();
        let i = at.index(chars.len());
        chars.splice(i..(i + cut).min(chars.len()), [c]);
        let _ = Instant::parse(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn mutated_times_never_panic(bytes in rfc3339_text().prop_flat_map(|t| mutated(t.into_bytes()))) {
        let _ = Instant::parse(&String::from_utf8_lossy(&bytes));
    }

    /// What we write (`rfc3339`) we read back; what we read, written and read again, is the
    /// same instant.
    #[test]
    fn times_round_trip(t in rfc3339_text(), secs in -62_135_596_800i64..253_402_300_799) {
        let first = Instant::parse(&t);
        prop_assert!(first.is_some(), "{t:?} refused");
        let again = Instant::parse(&first.unwrap().rfc3339());
        prop_assert_eq!(again, first);
        prop_assert_eq!(Instant::parse(&Instant(secs).rfc3339()), Some(Instant(secs)));
    }
}

// --- table names -----------------------------------------------------------------------------

const NAME_CHARS: &str = "ab.[]\"`  .]]\"\"é";

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn names_never_panic(full in text(NAME_CHARS, 24), schema in proptest::option::of(text(NAME_CHARS, 6)), db in proptest::option::of(text(NAME_CHARS, 6))) {
        let parts = keys::split_parts(&full);
        for p in &parts {
            let _ = keys::fold(p);
        }
        let t = keys::NamedRelation { name: Some(&full), full_name: Some(&full), schema: schema.as_deref(), database: db.as_deref() };
        let aliases = std::collections::BTreeMap::from([(full.clone(), "x".to_string()), ("[".to_string(), "\"".to_string())]);
        let defaults = std::collections::BTreeMap::from([(full.clone(), "s".to_string()), ("".to_string(), "]".to_string())]);
        if let Some(k) = keys::bi_key(&t, &aliases, &defaults) {
            let _ = k.text();
        }
        let _ = keys::dbt_key(db.as_deref(), schema.as_deref(), &full, false);
    }

    /// Names without quoting characters split exactly where the dots are.
    #[test]
    fn plain_names_split_on_dots(parts in proptest::collection::vec("[a-zA-Z0-9_ é]{0,6}", 1..5)) {
        let full = parts.join(".");
        // Empty parts stay in place (`db..t` is a database, no schema, a table).
        prop_assert_eq!(keys::split_parts(&full), parts);
    }

    /// Bracketed parts hold dots and escaped brackets and still come out as one part each.
    #[test]
    fn bracketed_parts_stay_whole(parts in proptest::collection::vec("[a-z.\\] ]{1,6}", 1..4)) {
        let full: Vec<String> = parts.iter().map(|p| format!("[{}]", p.replace(']', "]]"))).collect();
        let split = keys::split_parts(&full.join("."));
        prop_assert_eq!(&split, &full);
        for (s, p) in split.iter().zip(&parts) {
            prop_assert_eq!(keys::fold(s), p.to_lowercase());
        }
    }

    /// Names and references that reach dbt keep to their alphabets, whatever the BI tool sent.
    #[test]
    fn dbt_facing_names_keep_their_alphabets(name in text(HOSTILE, 30), luid in text(HOSTILE, 10), long in any::<bool>()) {
        let slug = naming::slug(&name, 48);
        prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{slug:?}");
        let n = naming::exposure_name("prod", &luid, &name, long);
        prop_assert!(n.starts_with(|c: char| c.is_ascii_lowercase()), "{n:?}");
        prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{n:?}");
        if let Some(r) = naming::reference("model", "p", "p", &name, None, Some(&luid)) {
            prop_assert!(!r.contains('{') && r.matches('\'').count() % 2 == 0, "{r:?}");
        }
    }
}

// --- YAML scalars --------------------------------------------------------------------------

/// `key: <scalar>` between two other keys of an exposure, as emit nests it, read back.
fn read_back(value: &str) -> Result<serde_yaml::Mapping, String> {
    let mut doc = String::from("exposures:\n  - name: before\n    label: ");
    yaml::scalar(&mut doc, value, 4);
    doc.push_str("\n    type: dashboard\n");
    let v: serde_yaml::Value = serde_yaml::from_str(&doc).map_err(|e| format!("{doc:?}: {e}"))?;
    let items = v["exposures"]
        .as_sequence()
        .ok_or_else(|| format!("{doc:?}: no list"))?;
    if items.len() != 1 {
        return Err(format!("{doc:?}: {} items", items.len()));
    }
    items[0]
        .as_mapping()
        .cloned()
        .ok_or_else(|| format!("{doc:?}: item is not a mapping"))
}

/// What Jinja makes of a neutralised value: each of the two expressions `neutralize` writes
/// becomes its character; any other `{` (which could start Jinja) gives `None`.
fn render(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{ '{' }}") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{{ '\\r' }}") {
            out.push('\r');
            rest = after;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

proptest! {
    #![proptest_config(config(512))]

    /// Any string is written as exactly one scalar that reads back as the same string: no
    /// text can add keys or items, or change the keys around it.
    #[test]
    fn yaml_scalars_read_back_and_stay_one_scalar(value in text(HOSTILE, 24)) {
        let item = read_back(&value).map_err(TestCaseError::fail)?;
        let keys: Vec<&str> = item.keys().filter_map(|k| k.as_str()).collect();
        prop_assert_eq!(keys, vec!["name", "label", "type"]);
        prop_assert_eq!(item["label"].as_str(), Some(value.as_str()));
        prop_assert_eq!(item["type"].as_str(), Some("dashboard"));
    }

    /// What emit writes (neutralised, then one scalar) renders in dbt's Jinja back to the
    /// workbook's text without its trailing whitespace, which dbt drops anyway.
    #[test]
    fn neutralised_values_render_back_to_the_text(value in text(HOSTILE, 24)) {
        let item = read_back(&naming::neutralize(&value)).map_err(TestCaseError::fail)?;
        let written = item["label"].as_str().unwrap_or_default();
        let rendered = render(written);
        prop_assert!(rendered.is_some(), "a `{{` outside our expressions in {written:?}");
        prop_assert_eq!(rendered.unwrap_or_default(), value.trim_end());
    }
}

// --- manifest.json and run_results.json ------------------------------------------------------

const MANIFEST: &str = r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "adapter_type": "duckdb"},
 "nodes": {"model.p.m": {"resource_type": "model", "name": "m", "package_name": "p", "database": "d", "schema": "s", "alias": "m",
   "relation_name": "\"d\".\"s\".\"m\"", "version": 2, "latest_version": "2", "access": "public", "config": {"enabled": true}},
   "test.p.t": {"resource_type": "test", "name": "t"}},
 "sources": {"source.p.raw.e": {"source_name": "raw", "name": "e", "identifier": "E", "database": "d", "schema": "raw"}},
 "exposures": {"exposure.p.x": {"name": "x", "config": {"meta": {"exposure_mode": "auto", "workbook_luid": "l"}}}},
 "disabled": {"model.p.old": [{"resource_type": "model", "name": "old", "config": {"enabled": false}}]}}"#;

const RUN_RESULTS: &str = r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json", "invocation_id": "i"},
 "results": [{"unique_id": "model.p.m", "status": "success", "timing": [{"name": "execute", "started_at": "2026-11-25T01:00:00Z"}],
   "execution_time": 1.5, "message": "OK"}], "args": {"which": "build"}}"#;

fn read_dbt_artifacts(bytes: &[u8]) {
    if let Ok(m) = crate::manifest::parse(Path::new("manifest.json"), bytes) {
        for e in m.exposures.values() {
            let _ = e.autoexpose_luid();
        }
        for n in m.nodes.values().chain(m.disabled.values().flatten()) {
            let _ = (
                n.version.as_ref().map(|v| v.to_text()),
                n.latest_version.as_ref().map(|v| v.to_text()),
            );
        }
    }
    if let Ok(rr) = crate::run_results::parse(Path::new("run_results.json"), bytes) {
        let _ = (rr.command(), rr.rebuilds_nothing());
        for r in &rr.results {
            let _ = (r.resource_type(), r.rebuilt(), r.failed_or_skipped());
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn dbt_artifacts_from_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        read_dbt_artifacts(&bytes);
    }

    #[test]
    fn mutated_dbt_artifacts_never_panic(m in mutated(MANIFEST.as_bytes().to_vec()), r in mutated(RUN_RESULTS.as_bytes().to_vec())) {
        read_dbt_artifacts(&m);
        read_dbt_artifacts(&r);
    }

    /// Arbitrary JSON in place of the whole file and of one node, source, exposure or result.
    #[test]
    fn dbt_artifacts_with_arbitrary_json_never_panic(v in json_value()) {
        let mut m: Value = serde_json::from_str(MANIFEST).unwrap_or_default();
        let mut r: Value = serde_json::from_str(RUN_RESULTS).unwrap_or_default();
        read_dbt_artifacts(&serde_json::to_vec(&v).unwrap_or_default());
        for pointer in ["/nodes/model.p.m", "/sources/source.p.raw.e", "/exposures/exposure.p.x/config/meta", "/disabled", "/metadata", "/nodes/model.p.m/version"] {
            let mut m = m.clone();
            if let Some(slot) = m.pointer_mut(pointer) {
                *slot = v.clone();
            }
            read_dbt_artifacts(&serde_json::to_vec(&m).unwrap_or_default());
        }
        for pointer in ["/results/0", "/results/0/timing", "/args", "/metadata/dbt_schema_version"] {
            let mut r = r.clone();
            if let Some(slot) = r.pointer_mut(pointer) {
                *slot = v.clone();
            }
            read_dbt_artifacts(&serde_json::to_vec(&r).unwrap_or_default());
        }
        m["metadata"] = v.clone();
        r["metadata"] = v;
        read_dbt_artifacts(&serde_json::to_vec(&m).unwrap_or_default());
        read_dbt_artifacts(&serde_json::to_vec(&r).unwrap_or_default());
    }
}

/// The fixtures above are valid: the mutations start from files the readers accept.
#[test]
fn fixtures_are_valid() {
    let m = crate::manifest::parse(Path::new("manifest.json"), MANIFEST.as_bytes()).unwrap();
    assert_eq!(
        (m.nodes.len(), m.sources.len(), m.disabled.len()),
        (1, 1, 1)
    );
    let r =
        crate::run_results::parse(Path::new("run_results.json"), RUN_RESULTS.as_bytes()).unwrap();
    assert!(r.results[0].rebuilt());
}
