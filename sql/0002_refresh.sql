-- 0002_refresh: active exposures. After a dbt build, refresh the BI extracts behind exposures
-- whose upstream nodes were rebuilt, no more often than a cadence per target.
-- (Value lists in the comments below were completed after release: comments only, no schema
-- change; db.rs tracks migrations by number, not by checksum, and a database made before keeps
-- the older comment text in sqlite_master.)

-- The run_results.json the last refresh read (replaced each time).
CREATE TABLE dbt_run_results (
    invocation_id   TEXT,
    generated_at    TEXT,
    command         TEXT,                     -- args.which: build | run | seed | snapshot | test …
    unique_id       TEXT NOT NULL,
    resource_type   TEXT NOT NULL,            -- from the unique_id prefix: run_results has no field for it
    status          TEXT NOT NULL,
    started_at      TEXT,                     -- timing[execute].started_at
    completed_at    TEXT,
    execution_time  REAL,
    message         TEXT,
    PRIMARY KEY (unique_id)
);

-- The last trigger per refresh target: what the cadence is measured from. The interval runs
-- from when autoexpose triggered the refresh (or found it already queued), per target, not
-- per exposure and not from the job's completion.
CREATE TABLE refresh_state (
    integration     TEXT NOT NULL,
    target_kind     TEXT NOT NULL,            -- datasource | workbook
    target_luid     TEXT NOT NULL,
    target_name     TEXT,
    last_triggered_at TEXT NOT NULL,          -- RFC 3339, from the run's clock (--now)
    last_decision   TEXT NOT NULL,            -- triggered | already_queued
    last_job_id     TEXT,
    last_run_id     INTEGER NOT NULL,
    PRIMARY KEY (integration, target_kind, target_luid)
) WITHOUT ROWID;

-- Every decision of every refresh run, one row per exposure and target.
CREATE TABLE refresh_events (
    run_id          INTEGER NOT NULL,         -- runs.run_id of the refresh stage
    seq             INTEGER NOT NULL,         -- order within the run
    dry_run         INTEGER NOT NULL,
    decided_at      TEXT NOT NULL,            -- the run's clock
    integration     TEXT NOT NULL,
    exposure        TEXT NOT NULL,            -- exposure name
    workbook_luid   TEXT NOT NULL,
    target_kind     TEXT,                     -- datasource | workbook; NULL when the exposure was not due
    target_luid     TEXT,
    target_name     TEXT,
    decision        TEXT NOT NULL,            -- triggered | skipped | already_queued | not_applicable | failed
                                              -- | sending (request in flight; settled by its run, or the next after a kill)
    reason          TEXT,                     -- too_soon | upstream_failed | not_rebuilt | refreshed_in_this_run
                                              -- | no_extracts | not_refreshable | not_found | forbidden | http_error
                                              -- | answer_unreadable (the answer to the POST was lost; see src/refresh/act.rs)
                                              -- | interrupted (its run was killed while the request was in flight)
    detail          TEXT,                     -- the nodes behind the reason, or a note
    eligible_at     TEXT,                     -- too_soon: when the target may be refreshed again
    job_id          TEXT,
    http_status     INTEGER,
    tableau_code    TEXT,
    tableau_message TEXT,
    job_status      TEXT,                     -- --wait: success | failed | cancelled | timeout | poll_failed
    job_finish_code INTEGER,
    job_notes       TEXT,
    job_completed_at TEXT,
    PRIMARY KEY (run_id, seq)
);
