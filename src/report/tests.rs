//! Static checks of the page: escaping, the CSP hashes, the same bytes twice, and the data
//! block of a small database as an insta snapshot. tests/report_browser.rs checks it in
//! Chromium.

use super::*;

const HOSTILE: &str = "</script><script>alert(1)</script><img src=x onerror=alert(2)> {{ x }} & <!-- \u{2028}\u{2029}";

/// A database with two integrations, a graph of four nodes, and one exposure of each kind of
/// row: dependencies, an unmatched table, refresh events. One workbook has a hostile name.
fn small_db(dir: &Path) -> Connection {
    let conn = crate::db::open(&dir.join("a.db")).unwrap();
    conn.execute_batch(&format!(
        "
        INSERT INTO runs (run_id, stage, started_at, finished_at, tool_version, config_hash, status)
        VALUES (1, 'extract', '2026-11-25T01:00:00Z', '2026-11-25T01:00:05Z', 'x', 'h', 'ok'),
               (2, 'refresh', '2026-11-25T02:00:00Z', '2026-11-25T02:00:09Z', 'x', 'h', 'ok');
        INSERT INTO bi_instances (integration, tool, label, complete) VALUES ('demo', 'tableau', 'demo', 1), ('pbi', 'powerbi', 'tenant-1', 1);
        INSERT INTO bi_assets (integration, asset_id, asset_ref, name, folder, owner_name, owner_email, url) VALUES
          ('demo', 'w1', 'luid-1', {hostile}, 'Finance', 'Priya', 'priya@example.com', 'javascript:alert(3)'),
          ('demo', 'w2', 'luid-2', 'Sales', 'Marketing', NULL, NULL, 'https://tableau.example.com/#/views/sales'),
          ('pbi', 'r1', 'r1', 'Revenue', 'Workspace A', 'Ana', 'ana@example.com', 'https://app.powerbi.com/groups/a/reports/r1');
        INSERT INTO bi_relations (integration, asset_id, via, via_id, relation_id, name, full_name, schema, database, kind) VALUES
          ('demo', 'w1', 'embedded', 'ds1', 't1', 'fct_orders', '[demo].[main].[fct_orders]', 'main', 'demo', 'table'),
          ('demo', 'w2', 'published', 'ds2', 't1', 'fct_orders', '[demo].[main].[fct_orders]', 'main', 'demo', 'table');
        INSERT INTO exposures (integration, asset_ref, name, file, status, depends_on, body) VALUES
          ('demo', 'luid-1', 'hostile_wb', 'models/x.yml', 'written', '[]', json_object('label', {hostile}, 'type', 'dashboard', 'meta', json_object('exposure_mode', 'auto'))),
          ('demo', 'luid-2', 'sales', 'models/x.yml', 'written', '[]', json_object('label', 'Sales', 'type', 'dashboard')),
          ('pbi', 'r1', 'revenue', NULL, 'no_dependencies', '[]', json_object('label', 'Revenue', 'type', 'dashboard'));
        INSERT INTO exposure_dependencies (integration, asset_id, unique_id, relation_id, via, key) VALUES
          ('demo', 'w1', 'model.demo.fct_orders', 't1', 'embedded', 'demo.main.fct_orders'),
          ('demo', 'w2', 'model.demo.fct_orders', 't1', 'published', 'demo.main.fct_orders'),
          ('demo', 'w2', 'model.gone.old', 't9', 'published', 'demo.main.old');
        INSERT INTO unmatched_tables (integration, asset_id, relation_id, via, via_id, relation_name, key, reason, candidates, suggestion) VALUES
          ('pbi', 'r1', 'x1', 'm', 'q1', {hostile}, 'demo.main.nope', 'not_in_manifest', '[\"model.demo.fct_orders\"]', 'add a source');
        INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, asset_ref, target_kind, target_name, decision, reason, detail, job_status) VALUES
          (2, 1, 0, '2026-11-25T02:00:00Z', 'demo', 'sales', 'luid-2', 'datasource', 'Orders', 'triggered', NULL, NULL, 'success'),
          (2, 2, 0, '2026-11-25T02:00:00Z', 'demo', 'hostile_wb', 'luid-1', NULL, NULL, 'skipped', 'not_rebuilt', {hostile}, NULL);
        INSERT INTO dbt_nodes (unique_id, resource_type, package_name, name, source_name, enabled, depends_on, tests) VALUES
          ('source.demo.raw.orders', 'source', 'demo', 'orders', 'raw', 1, '[]', '[]'),
          ('seed.demo.countries', 'seed', 'demo', 'countries', NULL, 1, '[]', '[]'),
          ('model.demo.stg_orders', 'model', 'demo', 'stg_orders', NULL, 1, '[\"source.demo.raw.orders\"]', '[\"test.demo.not_null\"]'),
          ('model.demo.fct_orders', 'model', 'demo', 'fct_orders', NULL, 1, '[\"model.demo.stg_orders\", \"seed.demo.countries\"]', '[]');
        ",
        hostile = sql_text(HOSTILE)
    ))
    .unwrap();
    conn
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn page_of(conn: &Connection) -> String {
    let views = crate::list::judged(conn).unwrap();
    page(conn, &views).unwrap()
}

/// The text between `open` (which must be unique in the page) and the next `</script>`.
fn between<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    assert_eq!(page.matches(open).count(), 1, "{open} must occur once");
    let start = page.find(open).unwrap() + open.len();
    let len = page[start..].find(close).unwrap();
    &page[start..start + len]
}

fn data_block(page: &str) -> &str {
    between(
        page,
        "<script type=\"application/json\" id=\"autoexpose-data\">",
        "</script>",
    )
}

#[test]
fn data_block_is_escaped_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let page = page_of(&small_db(dir.path()));
    let block = data_block(&page);
    for c in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
        assert!(!block.contains(c), "{c:?} in the data block");
    }
    // Only the two script elements of the shell: the hostile name opened none.
    assert_eq!(page.matches("<script").count(), 2);
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<img"));
    let data: serde_json::Value = serde_json::from_str(block).unwrap();
    let strings: Vec<&str> = data["s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        strings.contains(&HOSTILE),
        "the hostile name reads back as itself: {strings:?}"
    );
}

#[test]
fn embed_json_escapes_exactly_those_characters() {
    let json =
        serde_json::to_string(&serde_json::json!({"a": HOSTILE, "b": "plain ü 😀"})).unwrap();
    let out = embed_json(&json);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::from_str::<serde_json::Value>(&json).unwrap()
    );
    assert!(
        out.contains("\\u003c/script\\u003e")
            && out.contains("\\u0026")
            && out.contains("\\u2028\\u2029"),
        "{out}"
    );
    assert!(
        out.contains("plain ü 😀"),
        "other text is left as it is: {out}"
    );
}

#[test]
fn csp_allows_exactly_the_inline_script_and_style() {
    let dir = tempfile::tempdir().unwrap();
    let page = page_of(&small_db(dir.path()));
    let csp = between(
        &page,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"",
        "\"",
    );
    let script = between(&page, "<script>", "</script>");
    let style = between(&page, "<style>", "</style>");
    use base64::Engine;
    let hash =
        |t: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(t.as_bytes()));
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'",
            hash(script),
            hash(style)
        )
    );
    assert_eq!(script, SCRIPT);
    assert_eq!(style, STYLE);
}

/// What page.js and page.css must never hold: a way to turn data into markup or code, a
/// closing tag that would end their element early, or a load from elsewhere.
#[test]
fn assets_hold_no_markup_sinks_or_loads() {
    for bad in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "</script",
        "<!--",
        "fetch(",
        "XMLHttpRequest",
        "import(",
    ] {
        assert!(!SCRIPT.contains(bad), "page.js holds {bad:?}");
    }
    for bad in ["</style", "url(", "@import"] {
        assert!(!STYLE.contains(bad), "page.css holds {bad:?}");
    }
    for marker in ["@CSP@", "@STYLE@", "@DATA@", "@SCRIPT@"] {
        assert_eq!(SHELL.matches(marker).count(), 1, "{marker}");
    }
    assert!(
        !SHELL.contains("http://") && !SHELL.contains("https://") && !SHELL.contains("src="),
        "the shell loads nothing"
    );
}

#[test]
fn same_database_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let conn = small_db(dir.path());
    let a = dir.path().join("a.html");
    let b = dir.path().join("b.html");
    let wa = write(&build(&conn).unwrap(), &a).unwrap();
    write(&build(&conn).unwrap(), &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(wa.exposures, 3);
    assert_eq!(wa.bytes as u64, std::fs::metadata(&a).unwrap().len());
}

#[test]
fn default_path_is_beside_the_database() {
    assert_eq!(
        default_path(Path::new("x/y/a.db"), None),
        Path::new("x/y/autoexpose-report.html")
    );
    assert_eq!(
        default_path(Path::new("a.db"), None),
        Path::new("./autoexpose-report.html")
    );
    assert_eq!(
        default_path(Path::new("a.db"), Some(Path::new("out/r.html"))),
        Path::new("out/r.html")
    );
}

#[test]
fn data_block_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let page = page_of(&small_db(dir.path()));
    let data: serde_json::Value = serde_json::from_str(data_block(&page)).unwrap();
    // One line per string, node and exposure (the block itself is one line), so a review
    // reads which index means what.
    let mut text = format!(
        "format: {}\ngenerated: {}\n",
        data["format"], data["generated"]
    );
    for (key, numbered) in [
        ("s", true),
        ("integrations", true),
        ("nodes", true),
        ("exposures", true),
    ] {
        text.push_str(&format!("{key}:\n"));
        for (i, v) in data[key].as_array().unwrap().iter().enumerate() {
            text.push_str(&if numbered {
                format!("  {i}: {v}\n")
            } else {
                format!("  {v}\n")
            });
        }
    }
    crate::corpus::snapshot_settings().bind(|| insta::assert_snapshot!("report_data", text));
}
