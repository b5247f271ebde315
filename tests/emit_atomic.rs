//! The exposures set commits once (src/emit_pending.rs): killed at any point of `run` or
//! `emit`, or out of disk space, the exposures folder, exposures.json and the
//! `exposures`/`emitted_files` tables are wholly old or wholly new (after the next command
//! finishes a committed emit), and no temporary file is left behind.
//!
//! The walks start every step from the same old state (a first run over the mini site), with
//! the site changed so that the second emit deletes a file, adds one, changes one and
//! rewrites exposures.json.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

/// A walk ends by itself long before this; reaching it fails the test.
const WALK_CAP: u64 = 200;

/// What must be all old or all new: every file in the exposures folder and exposures.json,
/// byte for byte, and the rows of `exposures` and `emitted_files`.
#[derive(Debug, Clone, PartialEq)]
struct ExposureSet {
    files: BTreeMap<String, Vec<u8>>,
    rows: Vec<Vec<BTreeMap<String, Value>>>,
}

fn exposure_set(ws: &Workspace) -> ExposureSet {
    let mut files = BTreeMap::new();
    let dir = ws.exposures_dir();
    if dir.is_dir() {
        for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() && !is_temp(e.path()) {
                files.insert(
                    e.path().strip_prefix(&dir).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    if let Ok(json) = std::fs::read(ws.path("exposures.json")) {
        files.insert("<exposures.json>".into(), json);
    }
    let conn = ws.conn();
    let rows = ["exposures", "emitted_files"]
        .iter()
        .map(|t| dump(&conn, t))
        .collect();
    ExposureSet { files, rows }
}

impl ExposureSet {
    /// What differs from `other`, briefly (file names and table names, not contents).
    fn differences(&self, other: &ExposureSet) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.files.keys().chain(other.files.keys()).collect();
        for name in names {
            match (self.files.get(name), other.files.get(name)) {
                (Some(a), Some(b)) if a != b => out.push(format!(
                    "{name}: {} bytes vs {} bytes, different",
                    a.len(),
                    b.len()
                )),
                (Some(_), None) => out.push(format!("{name}: only in the first")),
                (None, Some(_)) => out.push(format!("{name}: only in the second")),
                _ => {}
            }
        }
        for (i, table) in ["exposures", "emitted_files"].iter().enumerate() {
            if self.rows[i] != other.rows[i] {
                out.push(format!(
                    "table {table}: {} rows vs {} rows, different",
                    self.rows[i].len(),
                    other.rows[i].len()
                ));
            }
        }
        out
    }
}

#[track_caller]
fn assert_same(a: &ExposureSet, b: &ExposureSet, what: &str) {
    let d = a.differences(b);
    assert!(d.is_empty(), "{what}:\n  {}", d.join("\n  "));
}

fn is_temp(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.contains(".autoexpose-") && name.ends_with(".tmp")
}

fn pending(ws: &Workspace) -> i64 {
    count(&ws.conn(), "SELECT count(*) FROM emit_pending")
}

/// Every file anywhere in the workspace whose name looks like one of our temporary files.
fn temps(ws: &Workspace) -> Vec<PathBuf> {
    walkdir::WalkDir::new(ws.dir.path())
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| is_temp(e.path()))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A copy of the whole workspace (database, dbt project, exposures.json, config).
fn save(ws: &Workspace) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(ws.dir.path(), copy.path());
    copy
}

/// Puts the workspace back as `saved` holds it: everything else goes first (a killed
/// process's lock file, SQLite journal, temporary files).
fn restore(ws: &Workspace, saved: &Path) {
    for e in std::fs::read_dir(ws.dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    copy_tree(saved, ws.dir.path());
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// The point a fault run aborted at, or `None` when it ran to its end (exit 0).
fn aborted_at(out: &Output, what: &str) -> Option<String> {
    if out.status.success() {
        return None;
    }
    let err = stderr(out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{what}: neither a clean exit nor the fault's abort; stderr:\n{err}"
    );
    let point = err
        .lines()
        .find_map(|l| l.split("AUTOEXPOSE_FAULT: aborting at ").nth(1))
        .unwrap_or_else(|| panic!("{what}: aborted without naming the point; stderr:\n{err}"));
    Some(point.trim().to_string())
}

/// The mini site as the second run sees it: "Ops Daily" gone and "Ops Weekly" moved to a new
/// project "Support" (Operations' file goes, Support's arrives), "Pipeline" renamed (Sales'
/// file changes).
fn changed_fixture(dir: &Path) -> PathBuf {
    let mut f: Value = serde_json::from_slice(
        &std::fs::read(repo().join("testdata/tableau/mini.site.json")).unwrap(),
    )
    .unwrap();
    let site = &mut f["sites"][0];
    site["projects"].as_array_mut().unwrap().push(json!({
        "id": "e0000000-0000-4000-8000-000000000013", "name": "Support", "parentProjectId": null
    }));
    let workbooks = site["workbooks"].as_array_mut().unwrap();
    workbooks.retain(|w| w["name"] != "Ops Daily");
    for w in workbooks.iter_mut() {
        if w["name"] == "Ops Weekly" {
            w["projectLuid"] = json!("e0000000-0000-4000-8000-000000000013");
            w["projectName"] = json!("Support");
        }
        if w["name"] == "Pipeline" {
            // Renamed: Tableau stamps the change (the incremental sync fetches it again).
            w["name"] = json!("Pipeline v2");
            w["updatedAt"] = json!("2026-11-30T09:00:00Z");
        }
    }
    let p = dir.join("changed.site.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&f).unwrap()).unwrap();
    p
}

/// A workspace after a first run over the mini site, and the server, now serving the changed
/// site.
struct Setup {
    server: TableauServer,
    ws: Workspace,
    _fixtures: tempfile::TempDir,
    /// The workspace after the first run.
    old_state: tempfile::TempDir,
    old: ExposureSet,
}

fn setup() -> Setup {
    let server = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &MINI_PAT));
    let old = exposure_set(&ws);
    let names: Vec<&String> = old.files.keys().collect();
    assert_eq!(
        names,
        [
            "<exposures.json>",
            "mini__operations.yml",
            "mini__sales.yml"
        ],
        "the mini site's first emit"
    );
    let fixtures = tempfile::tempdir().unwrap();
    server.set_fixture(&changed_fixture(fixtures.path()));
    let old_state = save(&ws);
    Setup {
        server,
        ws,
        _fixtures: fixtures,
        old_state,
        old,
    }
}

/// The second emit's set, made without faults from `start`, and the set a `run` after it
/// leaves (the same files and exposures, `emitted_files` saying "unchanged"); the state is
/// restored after.
fn new_set(s: &Setup, start: &Path, command: &str) -> (ExposureSet, ExposureSet) {
    restore(&s.ws, start);
    assert_ok(&s.ws.run(&[], command, &MINI_PAT));
    let new = exposure_set(&s.ws);
    assert_agree(&new, command);
    assert_ok(&s.ws.run(&[], "run", &MINI_PAT));
    let steady = exposure_set(&s.ws);
    assert_eq!(new.files, steady.files);
    assert_eq!(new.rows[0], steady.rows[0]);
    let actions: Vec<&Value> = steady.rows[1].iter().map(|r| &r["action"]).collect();
    assert!(actions.iter().all(|a| *a == "unchanged"), "{actions:?}");
    restore(&s.ws, start);
    (new, steady)
}

/// The tables agree with the folder: the files `emitted_files` says are in place (written or
/// unchanged) are exactly the YAML files there, and every written exposure's file is one.
#[track_caller]
fn assert_agree(set: &ExposureSet, what: &str) {
    let prefix = "models/imported_from_tableau/";
    let in_folder: std::collections::BTreeSet<String> = set
        .files
        .keys()
        .filter(|k| !k.starts_with('<'))
        .map(|k| format!("{prefix}{k}"))
        .collect();
    let placed: std::collections::BTreeSet<String> = set.rows[1]
        .iter()
        .filter(|r| r["action"] == "written" || r["action"] == "unchanged")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        placed, in_folder,
        "{what}: emitted_files disagrees with the folder"
    );
    for r in &set.rows[0] {
        if r["status"] == "written" {
            assert!(
                in_folder.contains(r["file"].as_str().unwrap()),
                "{what}: exposure {} names a file not in the folder",
                r["name"]
            );
        }
    }
}

fn check_new_differs_as_planned(old: &ExposureSet, new: &ExposureSet) {
    let names: Vec<&String> = new.files.keys().collect();
    assert_eq!(
        names,
        ["<exposures.json>", "mini__sales.yml", "mini__support.yml"],
        "the second emit's files"
    );
    assert_ne!(
        old.files["mini__sales.yml"], new.files["mini__sales.yml"],
        "Sales' file should change"
    );
    assert_ne!(old.files["<exposures.json>"], new.files["<exposures.json>"]);
    assert_ne!(old.rows, new.rows);
}

/// What the kills of one walk met, to show the walk went through every step.
#[derive(Default, Debug)]
struct Seen {
    points: std::collections::BTreeSet<String>,
    /// Kills after which a temporary file, named by no record, was left (rolled back next).
    strays: usize,
    /// Kills after which a record was left (finished next).
    pending: usize,
    /// Of those, kills that left the folder neither old nor new (between two renames).
    mixed: usize,
    /// Kills after which the next run found the new set in place (not written by itself).
    found_in_place: usize,
}

/// Walks `AUTOEXPOSE_FAULT=*@1, *@2, …` over `command` from `start`; after each kill checks
/// the exposures set is old or new (or, with a record left, that a plain command makes it new),
/// then that a normal `run` ends with the new set, tables agreeing, nothing left over.
fn walk(
    s: &Setup,
    start: &Path,
    command: &str,
    old: &ExposureSet,
    (new, steady): (&ExposureSet, &ExposureSet),
) -> Seen {
    let ws = &s.ws;
    let mut seen = Seen::default();
    let mut n = 1;
    loop {
        assert!(
            n < WALK_CAP,
            "{command}: still aborting at *@{n}; the walk never ended"
        );
        restore(ws, start);
        let fault = format!("*@{n}");
        let out = ws.run(
            &[],
            command,
            &[MINI_PAT[0], MINI_PAT[1], ("AUTOEXPOSE_FAULT", &fault)],
        );
        let what = format!("{command} {fault}");
        let Some(point) = aborted_at(&out, &what) else {
            assert_same(
                &exposure_set(ws),
                new,
                &format!("{what}: ran to its end without the new set"),
            );
            assert_eq!(pending(ws), 0, "{what}");
            assert!(temps(ws).is_empty(), "{what}: {:?}", temps(ws));
            break;
        };
        seen.points.insert(point.clone());
        let what = format!("{what} ({point})");
        let left = temps(ws);
        let now = exposure_set(ws);
        let had_pending = pending(ws) > 0;
        if had_pending {
            seen.pending += 1;
            if now.files != old.files && now.files != new.files {
                seen.mixed += 1;
            }
            assert_eq!(
                now.rows, new.rows,
                "{what}: a record is left, so the tables must already be new"
            );
            // Any command finishes it; `refresh` (active exposures off) runs no stage.
            let out = ws.run(&[], "refresh", &MINI_PAT);
            assert_ok(&out);
            assert!(
                stderr(&out).contains("finished it:"),
                "{what}: the finishing was not logged:\n{}",
                stderr(&out)
            );
            assert_same(
                &exposure_set(ws),
                new,
                &format!("{what}: the next command did not finish the new set"),
            );
            assert_eq!(pending(ws), 0, "{what}");
            assert!(
                temps(ws).is_empty(),
                "{what}: finishing left {:?}",
                temps(ws)
            );
        } else if now == *old {
            if !left.is_empty() {
                seen.strays += 1;
            }
        } else {
            assert_same(
                &now,
                new,
                &format!(
                    "{what}: the files and tables are neither wholly old nor wholly new (vs new)"
                ),
            );
            assert!(
                left.is_empty(),
                "{what}: the new set is in place, yet temporary files are left: {left:?}"
            );
        }
        let out = ws.run(&[], "run", &MINI_PAT);
        assert_ok(&out);
        let after = exposure_set(ws);
        // `emitted_files` says what the last emit did: the new set written, or found in place.
        if after.differences(steady).is_empty() {
            seen.found_in_place += 1;
        } else {
            assert_same(&after, new, &format!("{what}: the next run ended with neither the new set written nor found in place"));
        }
        assert_agree(&after, &what);
        assert!(
            temps(ws).is_empty(),
            "{what}: the next run left {:?}",
            temps(ws)
        );
        assert_eq!(pending(ws), 0, "{what}");
        if !left.is_empty() && !had_pending {
            assert!(
                stderr(&out).contains("Removed "),
                "{what}: removing {left:?} was not logged:\n{}",
                stderr(&out)
            );
        }
        let conn = ws.conn();
        assert_eq!(
            count(&conn, "SELECT count(*) FROM runs WHERE status = 'running'"),
            0,
            "{what}"
        );
        n += 1;
    }
    seen
}

fn assert_walked_every_step(seen: &Seen, command: &str) {
    for p in [
        "atomic.write",
        "atomic.sync",
        "emit.staged",
        "emit.commit",
        "emit.committed",
        "emit.apply",
        "emit.applied",
    ] {
        assert!(
            seen.points.contains(p),
            "{command}: the walk never stopped at {p}: {seen:?}"
        );
    }
    assert!(
        seen.strays > 0,
        "{command}: no kill left a temporary file to roll back: {seen:?}"
    );
    assert!(
        seen.pending > 0,
        "{command}: no kill left a record to finish: {seen:?}"
    );
    assert!(
        seen.mixed > 0,
        "{command}: no kill fell between two renames: {seen:?}"
    );
    assert!(
        seen.found_in_place > 0,
        "{command}: no kill came after the new set was in place: {seen:?}"
    );
}

#[test]
fn run_killed_anywhere_leaves_the_old_set_or_the_new_one() {
    let s = setup();
    let (new, steady) = new_set(&s, s.old_state.path(), "run");
    check_new_differs_as_planned(&s.old, &new);
    let seen = walk(&s, s.old_state.path(), "run", &s.old, (&new, &steady));
    assert_walked_every_step(&seen, "run");
    for p in ["extract.commit", "normalize.commit", "match.commit"] {
        assert!(
            seen.points.contains(p),
            "run: the walk never stopped at {p}: {seen:?}"
        );
    }
    s.server.stop();
}

/// The old state, then the stages before emit over the changed site: emit has not run on it.
fn emit_start(s: &Setup) -> tempfile::TempDir {
    restore(&s.ws, s.old_state.path());
    for stage in ["extract", "normalize", "match"] {
        assert_ok(&s.ws.run(&[], stage, &MINI_PAT));
    }
    assert_same(
        &exposure_set(&s.ws),
        &s.old,
        "the stages before emit changed the exposures set",
    );
    save(&s.ws)
}

#[test]
fn emit_killed_anywhere_leaves_the_old_set_or_the_new_one() {
    let s = setup();
    let start = emit_start(&s);
    let (new, steady) = new_set(&s, start.path(), "emit");
    check_new_differs_as_planned(&s.old, &new);
    let seen = walk(&s, start.path(), "emit", &s.old, (&new, &steady));
    assert_walked_every_step(&seen, "emit");
    assert!(!seen.points.contains("extract.commit"), "{seen:?}");
    s.server.stop();
}

/// Finishing a committed emit can itself be killed anywhere: the record stays until every
/// change is made, so the command after finishes it.
#[test]
fn a_killed_finishing_is_finished_by_the_next_command() {
    let s = setup();
    let (new, _) = new_set(&s, s.old_state.path(), "run");
    // Killed after the first rename: the folder is half new, the record says what is left.
    restore(&s.ws, s.old_state.path());
    let out = s.ws.run(
        &[],
        "run",
        &[
            MINI_PAT[0],
            MINI_PAT[1],
            ("AUTOEXPOSE_FAULT", "emit.apply@2"),
        ],
    );
    assert_eq!(
        aborted_at(&out, "run emit.apply@2").as_deref(),
        Some("emit.apply")
    );
    assert!(pending(&s.ws) > 0);
    let mixed = exposure_set(&s.ws);
    assert!(
        mixed.files != s.old.files && mixed.files != new.files,
        "{:?}",
        mixed.differences(&new)
    );
    let start = save(&s.ws);
    let mut points = std::collections::BTreeSet::new();
    let mut n = 1;
    loop {
        assert!(n < WALK_CAP, "refresh: still aborting at *@{n}");
        restore(&s.ws, start.path());
        let fault = format!("*@{n}");
        let out = s.ws.run(
            &[],
            "refresh",
            &[MINI_PAT[0], MINI_PAT[1], ("AUTOEXPOSE_FAULT", &fault)],
        );
        let what = format!("refresh {fault}");
        match aborted_at(&out, &what) {
            None => {
                assert_same(&exposure_set(&s.ws), &new, &what);
                assert_eq!(pending(&s.ws), 0, "{what}");
                assert!(temps(&s.ws).is_empty(), "{what}: {:?}", temps(&s.ws));
                break;
            }
            Some(point) => {
                let what = format!("{what} ({point})");
                assert!(
                    pending(&s.ws) > 0,
                    "{what}: the record went before the files were in place"
                );
                assert_eq!(exposure_set(&s.ws).rows, new.rows, "{what}");
                points.insert(point);
                assert_ok(&s.ws.run(&[], "refresh", &MINI_PAT));
                assert_same(
                    &exposure_set(&s.ws),
                    &new,
                    &format!("{what}: the command after did not finish it"),
                );
                assert_eq!(pending(&s.ws), 0, "{what}");
                assert!(temps(&s.ws).is_empty(), "{what}: {:?}", temps(&s.ws));
            }
        }
        n += 1;
    }
    let want: std::collections::BTreeSet<String> =
        ["emit.recover", "emit.recovered"].map(String::from).into();
    assert_eq!(points, want);
    assert!(n > 4, "finishing stopped at only {} points", n - 1);
    s.server.stop();
}

/// A full disk at any write of the second emit (each piece of each file, each sync), in `run`
/// and in `emit`: exit 1, an error naming the file, the folder and tables wholly old, no
/// temporary file; the next run writes the new set.
#[test]
fn a_full_disk_leaves_the_old_set_and_no_temporary_files() {
    let s = setup();
    full_disk_walk(&s, s.old_state.path(), "run");
    let start = emit_start(&s);
    full_disk_walk(&s, start.path(), "emit");
    s.server.stop();
}

fn full_disk_walk(s: &Setup, start: &Path, command: &str) {
    let (new, _) = new_set(s, start, command);
    let mut named = std::collections::BTreeSet::new();
    for point in ["atomic.write", "atomic.sync"] {
        let mut n = 1;
        loop {
            assert!(n < WALK_CAP, "{command} {point}: still failing at @{n}");
            restore(&s.ws, start);
            let fault = format!("{point}@{n}:enospc");
            let out = s.ws.run(
                &[],
                command,
                &[MINI_PAT[0], MINI_PAT[1], ("AUTOEXPOSE_FAULT", &fault)],
            );
            let what = format!("{command} {fault}");
            if out.status.success() {
                assert!(n > 3, "{what}: the second emit writes more than {n} times");
                assert_same(&exposure_set(&s.ws), &new, &what);
                break;
            }
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what}: stderr:\n{err}");
            let file = ["mini__sales.yml", "mini__support.yml", "exposures.json"]
                .into_iter()
                .find(|f| {
                    err.contains(&format!(
                        "{f}: cannot write it: No space left on device (os error 28)"
                    ))
                })
                .unwrap_or_else(|| panic!("{what}: the error names no file:\n{err}"));
            named.insert(file);
            assert_same(
                &exposure_set(&s.ws),
                &s.old,
                &format!("{what}: the exposures set changed"),
            );
            assert!(temps(&s.ws).is_empty(), "{what}: left {:?}", temps(&s.ws));
            assert_eq!(pending(&s.ws), 0, "{what}");
            let conn = s.ws.conn();
            let last: String = conn
                .query_row(
                    "SELECT status FROM runs WHERE stage = 'emit' ORDER BY run_id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(last, "failed", "{what}");
            drop(conn);
            assert_ok(&s.ws.run(&[], command, &MINI_PAT));
            assert_same(
                &exposure_set(&s.ws),
                &new,
                &format!("{what}: the run after the full disk"),
            );
            n += 1;
        }
    }
    assert_eq!(
        named.len(),
        3,
        "{command}: every new file met the full disk: {named:?}"
    );
}

/// Our temporary files of a process that is gone are removed by the next run, in the
/// exposures folder and in exposures.json's; a live process's, and anything merely alike,
/// stay.
#[test]
fn stray_temporary_files_of_dead_processes_are_removed_and_nothing_else() {
    let s = setup();
    let ws = &s.ws;
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live = std::process::id();
    let dir = ws.exposures_dir();
    let root = ws.dir.path().to_path_buf();
    let gone = [
        dir.join(format!(".mini__sales.yml.autoexpose-{dead}.tmp")),
        dir.join(format!(".mini__orphan.yml.autoexpose-{dead}.tmp")),
        dir.join(".mini__sales.yml.autoexpose-999999.tmp"),
        root.join(format!(".exposures.json.autoexpose-{dead}.tmp")),
    ];
    let kept = [
        dir.join(format!(".mini__sales.yml.autoexpose-{live}.tmp")),
        dir.join(format!("mini__sales.yml.autoexpose-{dead}.tmp")),
        dir.join(format!(".mini__sales.yml.autoexpose-{dead}.tmp.bak")),
        dir.join(".notes.autoexpose-abc.tmp"),
        dir.join(format!(".mini__sales.yml.autoexpose-{dead}.TMP")),
        root.join(format!(".exposures.json.autoexpose-{live}.tmp")),
        root.join(format!("exposures.json.autoexpose-{dead}.tmp")),
    ];
    for p in gone.iter().chain(&kept) {
        std::fs::write(p, "half a file").unwrap();
    }
    // Same site as the first run: nothing else changes.
    s.server
        .set_fixture(&repo().join("testdata/tableau/mini.site.json"));
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_ok(&out);
    for p in &gone {
        assert!(!p.exists(), "{} is still there", p.display());
        assert!(
            stderr(&out).contains(&format!("Removed {}", p.display())),
            "removing {} was not logged:\n{}",
            p.display(),
            stderr(&out)
        );
    }
    for p in &kept {
        assert_eq!(
            std::fs::read_to_string(p).unwrap(),
            "half a file",
            "{} was touched",
            p.display()
        );
    }
    let mut now = exposure_set(ws);
    for p in &kept {
        if let Ok(rel) = p.strip_prefix(&dir) {
            now.files.remove(&rel.display().to_string());
        }
    }
    assert_eq!(
        now.files, s.old.files,
        "the run over the same site changed the files"
    );
    assert_eq!(
        now.rows[0], s.old.rows[0],
        "the run over the same site changed the exposures"
    );
    assert_agree(&now, "stray");
    s.server.stop();
}

/// A record whose "temporary file" is not one of ours beside its target (a database edited by
/// hand, or a bug) is refused, touching neither file.
#[test]
fn a_record_naming_a_foreign_file_is_refused() {
    let s = setup();
    let ws = &s.ws;
    let victim = ws.path("dbt/keep.yml");
    std::fs::write(&victim, "mine\n").unwrap();
    let other = ws.path("dbt/other.yml");
    std::fs::write(&other, "other\n").unwrap();
    ws.conn()
        .execute(
            "INSERT INTO emit_pending (seq, action, tmp, target) VALUES (0, 'rename', ?1, ?2)",
            [other.display().to_string(), victim.display().to_string()],
        )
        .unwrap();
    let out = ws.run(&[], "refresh", &MINI_PAT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not an autoexpose temporary file beside it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "other\n");
    s.server.stop();
}
