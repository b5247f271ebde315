-- 0008_neutral_rows: the contract between extract and the later stages, the same for every
-- BI tool.
--
-- Each integration's extract writes its own raw tables (tableau_* stay the record of what
-- Tableau said) and, beside them, the neutral rows normalize, match and emit read:
--   bi_instances  one per configured integration: a Tableau site, later a Power BI tenant
--   bi_assets     what becomes an exposure: a Tableau workbook, later a Power BI report
--   bi_relations  each relation an asset reads, once per path it reads it through
-- The generic stages never read an integration's raw tables.
--
-- tableau_tables becomes a view over bi_relations and tableau_table_details (the part only
-- Tableau has, once per table rather than once per use), so the queries people have keep
-- working. The match and emit tables' columns take neutral names; `relation_keys.side` is
-- `dbt` or `bi`. Rows already in the file are carried over, so every stage can still run on
-- its own after the upgrade.

CREATE TABLE bi_instances (
    integration     TEXT PRIMARY KEY,         -- the config's name for it
    tool            TEXT NOT NULL,            -- which integration wrote it: tableau | inventory
    label           TEXT NOT NULL,            -- how the tool names the instance (Tableau: the site's content URL)
    complete        INTEGER NOT NULL          -- 0 when extraction was partial: its files are never deleted
);

CREATE TABLE bi_assets (
    integration     TEXT NOT NULL,
    asset_id        TEXT NOT NULL,            -- the id bi_relations refer to (Tableau: Metadata API id)
    asset_ref       TEXT NOT NULL,            -- the exposure's identity and refresh key (Tableau: REST luid)
    name            TEXT NOT NULL,
    folder_ref      TEXT,                     -- the folder it lives in (Tableau: project luid)
    folder          TEXT,                     -- its name (Tableau: project name); NULL when none
    description     TEXT,
    owner_name      TEXT,
    owner_email     TEXT,
    url             TEXT,                     -- the asset's page in a browser
    tags            TEXT NOT NULL DEFAULT '[]', -- JSON list, sorted
    PRIMARY KEY (integration, asset_id)
) WITHOUT ROWID;

-- Append-only, no key index, written in key order (see 0004):
--   key (integration, asset_id, via, via_id, relation_id)
CREATE TABLE bi_relations (
    integration     TEXT NOT NULL,
    asset_id        TEXT NOT NULL,
    via             TEXT NOT NULL,            -- embedded | published | custom_sql | listed
    via_id          TEXT NOT NULL,            -- the data source, query or list entry it is read through
    relation_id     TEXT NOT NULL,            -- the tool's id of the relation ('' for SQL nobody could read)
    name            TEXT,
    full_name       TEXT,                     -- as the tool spells it: db.schema.table, quoted or bracketed
    schema          TEXT,
    database        TEXT,
    kind            TEXT NOT NULL,            -- table | file | unparsed_sql
    detail          TEXT                      -- file: what the tool calls the connection
);

CREATE TABLE tableau_table_details (
    integration     TEXT NOT NULL,
    table_id        TEXT NOT NULL,
    table_luid      TEXT,
    database_type   TEXT,                     -- __typename: Database, File, CloudFile, WebDataConnector…
    connection_type TEXT,
    PRIMARY KEY (integration, table_id)
) WITHOUT ROWID;

INSERT INTO bi_instances (integration, tool, label, complete)
SELECT integration, 'tableau', content_url, complete FROM tableau_sites;

INSERT INTO bi_assets (integration, asset_id, asset_ref, name, folder_ref, folder, description, owner_name, owner_email, url, tags)
SELECT integration, id, luid, name, project_luid, project_name, description,
       CASE WHEN trim(coalesce(owner_name, '')) = '' THEN owner_username ELSE owner_name END,
       owner_email, url, tags
FROM tableau_workbooks;

-- The file rules as extract applied them when this migration was written (src/tableau/store.rs
-- holds them now).
INSERT INTO bi_relations (integration, asset_id, via, via_id, relation_id, name, full_name, schema, database, kind, detail)
SELECT integration, workbook_id, via, via_id, table_id, name, full_name, schema, database_name,
       CASE
         WHEN via = 'custom_sql' AND table_id = '' THEN 'unparsed_sql'
         WHEN database_type IN ('File', 'CloudFile', 'WebDataConnector')
           OR connection_type IN ('excel-direct', 'excel', 'textscan', 'hyper', 'dataengine', 'csv', 'google-sheets', 'box', 'dropbox', 'onedrive')
           THEN 'file'
         ELSE 'table'
       END,
       CASE
         WHEN database_type IN ('File', 'CloudFile', 'WebDataConnector')
           OR connection_type IN ('excel-direct', 'excel', 'textscan', 'hyper', 'dataengine', 'csv', 'google-sheets', 'box', 'dropbox', 'onedrive')
           THEN coalesce(database_type, connection_type)
       END
FROM tableau_tables ORDER BY integration, workbook_id, via, via_id, table_id;

INSERT OR IGNORE INTO tableau_table_details (integration, table_id, table_luid, database_type, connection_type)
SELECT integration, table_id, table_luid, database_type, connection_type FROM tableau_tables
WHERE table_id <> '' ORDER BY integration, workbook_id, via, via_id, table_id;

DROP TABLE tableau_tables;
CREATE VIEW tableau_tables AS
SELECT r.integration, r.asset_id AS workbook_id, r.via, r.via_id, r.relation_id AS table_id, d.table_luid, r.name,
       r.full_name, r.schema, r.database AS database_name, d.database_type, d.connection_type
FROM bi_relations r
JOIN bi_instances i ON i.integration = r.integration AND i.tool = 'tableau'
LEFT JOIN tableau_table_details d ON d.integration = r.integration AND d.table_id = r.relation_id;

UPDATE relation_keys SET side = 'bi' WHERE side = 'tableau';

ALTER TABLE exposure_dependencies RENAME COLUMN workbook_id TO asset_id;
ALTER TABLE exposure_dependencies RENAME COLUMN table_id TO relation_id;
ALTER TABLE unmatched_tables RENAME COLUMN workbook_id TO asset_id;
ALTER TABLE unmatched_tables RENAME COLUMN table_id TO relation_id;
ALTER TABLE unmatched_tables RENAME COLUMN table_name TO relation_name;
ALTER TABLE exposures RENAME COLUMN workbook_luid TO asset_ref;
