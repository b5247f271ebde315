-- 0018_powerbi_incremental: issue #17, Power BI. An incremental extract of a tenant asks
-- `workspaces/modified?modifiedSince=T` (shared/reference/powerbi.md section 2) with T the
-- start of the extraction it builds on, scans only the workspaces listed there (and new ones),
-- and takes the rest from the last extraction's cache.

-- When each extraction started (RFC 3339, the run's clock): T of the next one. NULL in rows
-- written before this migration (their schema_version makes the next extract full anyway).
ALTER TABLE sync_bases ADD COLUMN extracted_at TEXT;

-- Each scanned workspace as the last extraction assembled it: the workspace of the scan
-- result, the data source instances its datasets and dataflows use, what `groups/{id}/reports`
-- answered for it (when it was asked) and the `datasets/{id}/parameters` answers of its
-- datasets that were asked for. Rewritten whole by every extract of the tenant, so its rows
-- are what a full extract of the same state writes. A rowid table: a row is kilobytes of JSON.
CREATE TABLE powerbi_workspace_cache (
    integration    TEXT NOT NULL,
    id             TEXT NOT NULL,
    details        TEXT NOT NULL,             -- JSON (src/powerbi/sync.rs `Cached`)
    PRIMARY KEY (integration, id)
);
