//! `extract_warnings` and `raw_responses` hold the rows of every integration, keyed by
//! `integration`. Extract replaces the rows of the Tableau sites it writes (and of a site gone
//! from the config, with its `tableau_*` rows), and leaves every other integration's rows as
//! they are. It used to delete them all.

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const ENV: [(&str, &str); 4] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
    MINI_PAT[0],
    MINI_PAT[1],
];

/// (warnings, raw responses) of one integration.
fn counts(ws: &Workspace, integration: &str) -> (i64, i64) {
    let conn = ws.conn();
    let n = |t: &str| {
        conn.query_row(
            &format!("SELECT count(*) FROM {t} WHERE integration = ?1"),
            [integration],
            |r| r.get(0),
        )
        .unwrap()
    };
    (n("extract_warnings"), n("raw_responses"))
}

#[test]
fn extract_replaces_only_its_own_sites_warnings_and_responses() {
    // The demo site's pages hit a node limit: it has a warning row, the mini site none.
    let demo = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults {
            node_limit_above: Some(2),
            ..Faults::default()
        },
    );
    let mini = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let ws = Workspace::new(
        &[
            SiteConfig::demo(&demo.base_url),
            SiteConfig::mini(&mini.base_url),
        ],
        None,
    );
    assert_ok(&ws.run(&[], "extract", &ENV));
    let (demo_first, mini_first) = (counts(&ws, "demo"), counts(&ws, "mini"));
    assert!(demo_first.0 >= 1 && demo_first.1 > 3, "{demo_first:?}");
    assert!(mini_first.1 > 3, "{mini_first:?}");

    // Another integration's rows, as a second kind of integration would write them.
    let conn = ws.conn();
    conn.execute(
        "INSERT INTO extract_warnings (integration, query, page, code, severity, message, action) VALUES ('inventory', 'file', 0, NULL, 'WARNING', 'row 3: no tables', 'skipped')",
        [],
    )
    .unwrap();
    conn.execute("INSERT INTO raw_responses (integration, seq, method, path, status, bytes, body) VALUES ('inventory', 1, 'READ', 'dashboards.yml', 200, 2, '[]')", [])
        .unwrap();
    drop(conn);

    // Both Tableau sites extracted again, in full (an incremental rerun sends fewer requests):
    // their rows replaced (not doubled), the other kept.
    assert_ok(&ws.run_with(&[], "extract", &["--full"], &ENV));
    assert_eq!(counts(&ws, "demo"), demo_first);
    assert_eq!(counts(&ws, "mini"), mini_first);
    assert_eq!(counts(&ws, "inventory"), (1, 1));

    // The demo site leaves the config: its rows go with its tableau_* rows; the rest stay.
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let start = config.find("  - name: demo\n").unwrap();
    let end = config[start..].find("  - name: mini\n").unwrap() + start;
    std::fs::write(
        &ws.config,
        format!("{}{}", &config[..start], &config[end..]),
    )
    .unwrap();
    let sync_rows = |ws: &Workspace, i: &str| {
        let conn = ws.conn();
        [
            "sync_bases",
            "sync_state",
            "tableau_workbook_cache",
            "tableau_workbooks",
            "bi_refresh_targets",
        ]
        .map(|t| {
            count(
                &conn,
                &format!("SELECT count(*) FROM {t} WHERE integration = '{i}'"),
            )
        })
    };
    assert!(
        sync_rows(&ws, "demo").iter().all(|&n| n > 0),
        "{:?}",
        sync_rows(&ws, "demo")
    );
    assert_ok(&ws.run_with(&[], "extract", &["--full"], &ENV));
    // What the next extraction of it would have built on goes too.
    // Its keyed rows (replaced per site, not deleted whole) and its refresh targets too.
    assert_eq!(sync_rows(&ws, "demo"), [0; 5]);
    let mini_left = sync_rows(&ws, "mini");
    assert!(mini_left[..4].iter().all(|&n| n > 0), "{mini_left:?}");
    assert_eq!(counts(&ws, "demo"), (0, 0));
    assert_eq!(
        count(
            &ws.conn(),
            "SELECT count(*) FROM tableau_sites WHERE integration = 'demo'"
        ),
        0
    );
    assert_eq!(counts(&ws, "mini"), mini_first);
    assert_eq!(counts(&ws, "inventory"), (1, 1));
    let message: String = ws
        .conn()
        .query_row(
            "SELECT message FROM extract_warnings WHERE integration = 'inventory'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(message, "row 3: no tables");
    demo.stop();
    mini.stop();
}
