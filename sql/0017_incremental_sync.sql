-- 0017_incremental_sync: issue #17. A nightly extract fetches only the assets that changed
-- since the last one and reuses the rest; these tables say what it built on and, for every
-- asset, what it did and why, so "why was this workbook (not) fetched?" is a query.

-- Per integration: how its last extraction read it, and what makes it a base for the next.
-- The next extract is incremental only when this row says the last one was complete and was
-- made by the same tool version, extraction settings and schema, and the last full sync is
-- recent enough (`full_sync_every_days`); otherwise it is full, and `why` says which.
CREATE TABLE sync_bases (
    integration    TEXT PRIMARY KEY,
    mode           TEXT NOT NULL,             -- full | incremental
    why            TEXT NOT NULL,             -- why that mode, in words
    full_sync_at   TEXT NOT NULL,             -- RFC 3339: the last full sync (the run's clock)
    tool_version   TEXT NOT NULL,
    settings_hash  TEXT NOT NULL,             -- the integration's extraction settings, hashed
    schema_version INTEGER NOT NULL,          -- user_version when it was written
    complete       INTEGER NOT NULL           -- 0: never a base (the next extract is full)
);

-- What the last extraction did with each asset: fetched (and why: new, changed, a published
-- data source it reads changed, a full sync), reused (unchanged since it was fetched), or
-- removed (no longer listed).
CREATE TABLE sync_state (
    integration    TEXT NOT NULL,
    kind           TEXT NOT NULL,             -- workbook | custom_sql | workspace
    id             TEXT NOT NULL,
    action         TEXT NOT NULL,             -- fetched | reused | removed
    reason         TEXT NOT NULL,
    PRIMARY KEY (integration, kind, id)
) WITHOUT ROWID;

-- Each Tableau workbook's details as they were fetched, and what they were fetched from: the
-- workbook's updatedAt and the updatedAt of every published data source it reads, as the
-- listings of that extraction gave them. A later extract reuses the details while all of
-- those are unchanged. Rowid tables: a row is kilobytes of JSON.
CREATE TABLE tableau_workbook_cache (
    integration    TEXT NOT NULL,
    id             TEXT NOT NULL,
    updated_at     TEXT,
    datasources    TEXT NOT NULL,             -- JSON [[published data source id, updatedAt|null], …]
    details        TEXT NOT NULL,             -- the Workbooks node, JSON
    PRIMARY KEY (integration, id)
);

-- Each custom SQL query's details as fetched, with the workbooks downstream of it then (a
-- change of those, or a change of one of them, fetches it again).
CREATE TABLE tableau_custom_sql_cache (
    integration    TEXT NOT NULL,
    id             TEXT NOT NULL,
    workbooks      TEXT NOT NULL,             -- JSON [workbook id, …], sorted
    details        TEXT NOT NULL,             -- the CustomSql node, JSON
    PRIMARY KEY (integration, id)
);
