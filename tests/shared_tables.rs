//! Patterns of real dbt projects (jaffle shop, Fivetran packages): a source declared over a
//! seed's table, tables Tableau records without a schema, and manifests of old dbt versions.
//! Fixtures: testdata/dbt/seed_source (parsed by dbt-duckdb) and
//! testdata/tableau/seed_source.site.json.

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "shop-ci"),
    ("AE_TEST_PAT_SECRET", "shop-ci-secret"),
];

fn seed_source_manifest() -> std::path::PathBuf {
    repo().join("testdata/dbt/seed_source/artifacts/manifest.json")
}

fn site(server: &TableauServer, extra: &str) -> SiteConfig {
    let mut site = SiteConfig::demo(&server.base_url);
    site.name = "shop".into();
    site.site = "shop".into();
    site.projects = vec!["Shop".into()];
    site.extra = extra.into();
    site
}

fn start() -> TableauServer {
    TableauServer::start(
        &repo().join("testdata/tableau/seed_source.site.json"),
        Faults::default(),
    )
}

/// The unique_ids a workbook depends on, in the table's order.
fn dependencies(conn: &rusqlite::Connection, workbook: &str) -> Vec<String> {
    let mut st = conn
        .prepare("SELECT d.unique_id FROM exposure_dependencies d JOIN tableau_workbooks w ON w.integration = d.integration AND w.id = d.asset_id WHERE w.name = ?1")
        .unwrap();
    st.query_map([workbook], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_source_over_a_seed_is_a_dependency_beside_the_seed() {
    let server = start();
    let ws = Workspace::with_manifest(&[site(&server, "")], None, &seed_source_manifest());
    assert_ok(&ws.run(&[], "run", &PAT));
    server.stop();
    let conn = ws.conn();
    // Both nodes on "shop"."main"."raw_customers", each through the one Tableau table.
    assert_eq!(
        dependencies(&conn, "Customer List"),
        [
            "seed.seed_source.raw_customers",
            "source.seed_source.crm.customers"
        ]
    );
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT relation_id) FROM exposure_dependencies WHERE relation_id = '5e000000-0000-4000-9000-000000000001'"),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM unmatched_tables WHERE reason = 'ambiguous'"
        ),
        0
    );
    let yaml: String = ws.yaml_files().into_values().collect();
    assert!(
        yaml.contains("- ref('raw_customers')\n  - source('crm', 'customers')\n"),
        "{yaml}"
    );

    let settings = settings();
    let _guard = settings.bind_to_scope();
    insta::assert_yaml_snapshot!(
        "seed_source_match",
        dump_query(
            &conn,
            "SELECT asset_id, unique_id, relation_id, via, key FROM exposure_dependencies"
        )
    );
}

/// `[shop]..[customers]`: no schema. The miss names the dbt node with that database and name;
/// `default_schemas` then makes it match, and relation_keys says why.
#[test]
fn a_table_without_a_schema_gets_candidates_then_default_schemas() {
    let server = start();
    let ws = Workspace::with_manifest(&[site(&server, "")], None, &seed_source_manifest());
    assert_ok(&ws.run(&[], "run", &PAT));
    let conn = ws.conn();
    assert!(dependencies(&conn, "Customer Board").is_empty());
    let (reason, candidates, suggestion): (String, String, String) = conn
        .query_row("SELECT reason, candidates, suggestion FROM unmatched_tables WHERE relation_name = 'customers'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(reason, "missing_schema");
    assert_eq!(candidates, r#"["model.seed_source.customers"]"#);
    assert!(
        suggestion.contains("shop.main.customers")
            && suggestion.contains("`default_schemas: {shop: main}`"),
        "{suggestion}"
    );

    let ws = Workspace::with_manifest(
        &[site(&server, "    default_schemas: {shop: main}\n")],
        None,
        &seed_source_manifest(),
    );
    assert_ok(&ws.run(&[], "run", &PAT));
    server.stop();
    let conn = ws.conn();
    assert_eq!(
        dependencies(&conn, "Customer Board"),
        ["model.seed_source.customers"]
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM unmatched_tables"), 0);
    let derivation: String = conn
        .query_row("SELECT derivation FROM relation_keys WHERE side = 'bi' AND key = 'shop.main.customers'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        derivation,
        "fullName (3 parts); no schema, default_schemas shop → main"
    );
}

/// A dbt 0.21 manifest (v3, `"disabled": []`): the version, what is read, what to do; not a
/// decoding error about the body.
#[test]
fn an_old_manifest_gets_the_version_message() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("manifest.json");
    let body = r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v3.json", "dbt_version": "0.21.1",
  "adapter_type": "postgres"},
 "nodes": {}, "sources": {}, "exposures": {}, "disabled": []}"#;
    std::fs::write(&old, body).unwrap();
    let ws = Workspace::with_manifest(&[site(&server, "")], None, &old);
    let out = ws.run(&[], "run", &PAT);
    server.stop();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    for want in [
        r#"metadata.dbt_schema_version is "https://schemas.getdbt.com/dbt/manifest/v3.json" (written by dbt 0.21.1)"#,
        "it reads manifest v10, v11 and v12 (dbt 1.6 and later)",
        "Upgrade dbt in the dbt project to 1.6 or later and run `dbt parse` again",
    ] {
        assert!(err.contains(want), "stderr lacks {want:?}:\n{err}");
    }
    assert!(
        !err.contains("invalid type") && !err.contains("line "),
        "{err}"
    );
}
