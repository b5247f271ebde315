-- 0009_refresh_targets: refresh targets as neutral rows, and refresh's columns in neutral names.
-- (0008 is the neutral contract of the other stages; this file depends on nothing in it.)
--
-- The refresh stage reads its targets only from bi_refresh_targets, written by each
-- integration's extract (Tableau: src/tableau/store.rs, write_refresh_targets), and no longer
-- from an integration's own tables.

-- What a refresh request names, per asset that becomes an exposure.
CREATE TABLE bi_refresh_targets (
    integration     TEXT NOT NULL,
    asset_ref       TEXT NOT NULL,            -- the exposure's identity (exposures.workbook_luid; Tableau: the workbook luid)
    target_kind     TEXT NOT NULL,            -- datasource | workbook
    target_ref      TEXT NOT NULL,            -- what the request names (Tableau: the data source's or workbook's luid)
    target_name     TEXT NOT NULL,
    PRIMARY KEY (integration, asset_ref, target_kind, target_ref)
) WITHOUT ROWID;

-- A database made before keeps its targets until the next extract rewrites them: the same
-- rows the refresh stage computed from the Tableau tables until now (published data sources
-- with extracts that a workbook reads; the workbook when one of its embedded data sources has
-- one). A data source of a kind neither embedded nor published keeps its kind text, which the
-- refresh stage refuses naming the row (it used to refuse it while reading these tables).
INSERT OR IGNORE INTO bi_refresh_targets (integration, asset_ref, target_kind, target_ref, target_name)
SELECT w.integration, w.luid, CASE d.kind WHEN 'published' THEN 'datasource' ELSE d.kind END, d.luid, coalesce(d.name, '')
FROM tableau_workbooks w
JOIN tableau_workbook_datasources l ON l.integration = w.integration AND l.workbook_id = w.id
JOIN tableau_datasources d ON d.integration = l.integration AND d.id = l.published_id
WHERE d.has_extracts = 1 AND d.luid IS NOT NULL;

INSERT OR IGNORE INTO bi_refresh_targets (integration, asset_ref, target_kind, target_ref, target_name)
SELECT w.integration, w.luid, 'workbook', w.luid, w.name
FROM tableau_workbooks w
WHERE EXISTS (
    SELECT 1 FROM tableau_datasources d
    WHERE d.integration = w.integration AND d.workbook_id = w.id AND d.kind = 'embedded' AND d.has_extracts = 1);

INSERT OR IGNORE INTO bi_refresh_targets (integration, asset_ref, target_kind, target_ref, target_name)
SELECT w.integration, w.luid, d.kind, d.id, coalesce(d.name, '')
FROM tableau_workbooks w
JOIN tableau_datasources d ON d.integration = w.integration AND (d.workbook_id = w.id OR d.id IN (
    SELECT l.published_id FROM tableau_workbook_datasources l WHERE l.integration = w.integration AND l.workbook_id = w.id))
WHERE d.kind NOT IN ('embedded', 'published');

-- refresh_events: the service's code and message (were tableau_code, tableau_message); the
-- exposure's asset (was workbook_luid) and the target's ref (was target_luid), as in
-- bi_refresh_targets. refresh_state likewise.
ALTER TABLE refresh_events RENAME COLUMN tableau_code TO service_code;
ALTER TABLE refresh_events RENAME COLUMN tableau_message TO service_message;
ALTER TABLE refresh_events RENAME COLUMN workbook_luid TO asset_ref;
ALTER TABLE refresh_events RENAME COLUMN target_luid TO target_ref;
ALTER TABLE refresh_state RENAME COLUMN target_luid TO target_ref;
