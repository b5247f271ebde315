-- 0019_keyed_stage_tables: the stages' big tables get their keys back, as WITHOUT ROWID
-- tables, so a rerun rewrites only the rows that changed (issue #17 item 4, `bulk::Replace`).
--
-- 0004 made bi_relations' predecessor, exposure_dependencies and relation_keys plain rowid
-- tables without a key index, because a first run's inserts searched B-trees of text keys.
-- Their rows are still written in key order, so a first run appends to the key's B-tree; a
-- rerun then compares its rows with the stored ones by key and writes only the difference.
-- dbt_nodes and exposures had keys on rowid tables: as WITHOUT ROWID tables their rows are
-- stored (and `SELECT *` returns them) in key order, whatever order they were written in,
-- which is what lets a partial rewrite give the same table as a whole one.

-- The view over bi_relations (0008) goes while its table is rebuilt, and comes back as it was.
DROP VIEW tableau_tables;

CREATE TABLE bi_relations_0019 (
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
    detail          TEXT,                     -- file: what the tool calls the connection
    PRIMARY KEY (integration, asset_id, via, via_id, relation_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO bi_relations_0019 SELECT integration, asset_id, via, via_id, relation_id, name, full_name, schema, database, kind, detail FROM bi_relations;
DROP TABLE bi_relations;
ALTER TABLE bi_relations_0019 RENAME TO bi_relations;

CREATE TABLE relation_keys_0019 (
    side            TEXT NOT NULL,
    integration     TEXT NOT NULL,            -- '' for dbt
    ref             TEXT NOT NULL,
    key             TEXT,                     -- database.schema.identifier, folded; NULL when none
    database        TEXT,
    schema          TEXT,
    identifier      TEXT,
    derivation      TEXT NOT NULL,            -- how the key was derived, for people reading it
    status          TEXT NOT NULL,            -- ok | redacted | file | no_relation
    PRIMARY KEY (side, integration, ref)
) WITHOUT ROWID;
INSERT OR IGNORE INTO relation_keys_0019 SELECT side, integration, ref, key, database, schema, identifier, derivation, status FROM relation_keys;
DROP TABLE relation_keys;
ALTER TABLE relation_keys_0019 RENAME TO relation_keys;

CREATE TABLE exposure_dependencies_0019 (
    integration     TEXT NOT NULL,
    asset_id        TEXT NOT NULL,
    unique_id       TEXT NOT NULL,
    relation_id     TEXT NOT NULL,            -- the relation it came through (first in key order)
    via             TEXT NOT NULL,
    key             TEXT NOT NULL,
    PRIMARY KEY (integration, asset_id, unique_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO exposure_dependencies_0019 SELECT integration, asset_id, unique_id, relation_id, via, key FROM exposure_dependencies;
DROP TABLE exposure_dependencies;
ALTER TABLE exposure_dependencies_0019 RENAME TO exposure_dependencies;

CREATE TABLE dbt_nodes_0019 (
    unique_id       TEXT NOT NULL PRIMARY KEY,
    resource_type   TEXT NOT NULL,            -- model | seed | snapshot | source
    package_name    TEXT NOT NULL,
    name            TEXT NOT NULL,            -- model/seed/snapshot name, or the source table's name
    source_name     TEXT,                     -- sources only
    version         TEXT,                     -- versioned models only
    latest_version  TEXT,
    database        TEXT,
    schema          TEXT,
    identifier      TEXT,                     -- alias (models, seeds, snapshots) or identifier (sources)
    relation_name   TEXT,                     -- NULL for ephemeral models: nothing to match
    materialized    TEXT,
    access          TEXT,                     -- private | protected | public (models)
    enabled         INTEGER NOT NULL,         -- 0 for nodes under manifest "disabled"
    depends_on      TEXT NOT NULL DEFAULT '[]',
    tests           TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
INSERT OR IGNORE INTO dbt_nodes_0019 SELECT unique_id, resource_type, package_name, name, source_name, version, latest_version, database,
    schema, identifier, relation_name, materialized, access, enabled, depends_on, tests FROM dbt_nodes;
DROP TABLE dbt_nodes;
ALTER TABLE dbt_nodes_0019 RENAME TO dbt_nodes;

CREATE TABLE exposures_0019 (
    integration     TEXT NOT NULL,
    asset_ref       TEXT NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    file            TEXT,                     -- relative to dbt.project_dir; NULL when not written
    status          TEXT NOT NULL,            -- written | no_dependencies
    depends_on      TEXT NOT NULL,            -- JSON list of unique_ids
    body            TEXT NOT NULL,            -- JSON of the exposure as written (values as the tool sent them)
    PRIMARY KEY (integration, asset_ref)
) WITHOUT ROWID;
INSERT OR IGNORE INTO exposures_0019 SELECT integration, asset_ref, name, file, status, depends_on, body FROM exposures;
DROP TABLE exposures;
ALTER TABLE exposures_0019 RENAME TO exposures;

CREATE VIEW tableau_tables AS
SELECT r.integration, r.asset_id AS workbook_id, r.via, r.via_id, r.relation_id AS table_id, d.table_luid, r.name,
       r.full_name, r.schema, r.database AS database_name, d.database_type, d.connection_type
FROM bi_relations r
JOIN bi_instances i ON i.integration = r.integration AND i.tool = 'tableau'
LEFT JOIN tableau_table_details d ON d.integration = r.integration AND d.table_id = r.relation_id;
