-- 0004_append_only_tables: the three largest tables become plain rowid tables without a key index.
--
-- tableau_tables (a row per workbook, path and table: 333k rows at 20k workbooks),
-- exposure_dependencies (235k) and relation_keys (134k) took a third of all SQLite time
-- keeping composite text primary keys: every insert searched a B-tree of text keys. Their
-- rows are unique by construction (the stages de-duplicate in memory) and are written in key
-- order, so `SELECT *` still returns them in that order. Queries by workbook, model or table
-- scan them (tens of milliseconds at that size); joins get SQLite's automatic indexes.
-- The keys, as before:
--   tableau_tables         (integration, workbook_id, via, via_id, table_id)
--   exposure_dependencies  (integration, workbook_id, unique_id)
--   relation_keys          (side, integration, ref)

CREATE TABLE tableau_tables_0004 (
    integration     TEXT NOT NULL,
    workbook_id     TEXT NOT NULL,
    via             TEXT NOT NULL,            -- embedded | published | custom_sql
    via_id          TEXT NOT NULL,            -- the data source or custom SQL id
    table_id        TEXT NOT NULL,            -- Metadata id of the table ('' for unsupported custom SQL)
    table_luid      TEXT,
    name            TEXT,
    full_name       TEXT,
    schema          TEXT,
    database_name   TEXT,
    database_type   TEXT,                     -- __typename: Database, File, CloudFile, WebDataConnector…
    connection_type TEXT
);
INSERT INTO tableau_tables_0004 SELECT * FROM tableau_tables ORDER BY integration, workbook_id, via, via_id, table_id;
DROP TABLE tableau_tables;
ALTER TABLE tableau_tables_0004 RENAME TO tableau_tables;

CREATE TABLE exposure_dependencies_0004 (
    integration     TEXT NOT NULL,
    workbook_id     TEXT NOT NULL,
    unique_id       TEXT NOT NULL,
    table_id        TEXT NOT NULL,            -- the Tableau table it came through (first in key order)
    via             TEXT NOT NULL,
    key             TEXT NOT NULL
);
INSERT INTO exposure_dependencies_0004 SELECT * FROM exposure_dependencies ORDER BY integration, workbook_id, unique_id;
DROP TABLE exposure_dependencies;
ALTER TABLE exposure_dependencies_0004 RENAME TO exposure_dependencies;

CREATE TABLE relation_keys_0004 (
    side            TEXT NOT NULL,
    integration     TEXT NOT NULL,            -- '' for dbt
    ref             TEXT NOT NULL,
    key             TEXT,                     -- database.schema.identifier, folded; NULL when none
    database        TEXT,
    schema          TEXT,
    identifier      TEXT,
    derivation      TEXT NOT NULL,            -- how the key was derived, for people reading it
    status          TEXT NOT NULL             -- ok | redacted | file | no_relation
);
INSERT INTO relation_keys_0004 SELECT * FROM relation_keys ORDER BY side, integration, ref;
DROP TABLE relation_keys;
ALTER TABLE relation_keys_0004 RENAME TO relation_keys;
