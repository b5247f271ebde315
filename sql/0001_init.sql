-- 0001_init: the tables every stage reads and writes.
--
-- The tables are the contracts between stages: a stage reads only the tables of the stages
-- before it and replaces its own rows in one transaction. Forward-only: never edit a
-- migration that has shipped, add a new numbered file instead.
--
-- Tables keyed by several columns and holding short rows are WITHOUT ROWID: one B-tree per
-- table instead of a table plus its primary-key index, which halves the work of the bulk
-- inserts every stage does and keeps rows in key order for the next stage's scans.

-- Every stage execution, kept forever: what ran, on what inputs, with what result.
CREATE TABLE runs (
    run_id        INTEGER PRIMARY KEY,
    stage         TEXT NOT NULL,              -- extract | normalize | match | emit | refresh
    started_at    TEXT NOT NULL,              -- RFC 3339, UTC
    finished_at   TEXT,
    tool_version  TEXT NOT NULL,
    config_hash   TEXT NOT NULL,              -- sha256 of the config file's bytes
    inputs        TEXT NOT NULL DEFAULT '{}', -- JSON {path: sha256} of every input file
    row_counts    TEXT NOT NULL DEFAULT '{}', -- JSON {table: rows written}
    status        TEXT NOT NULL,              -- running | ok | incomplete | failed
    error         TEXT                        -- the error chain, secrets scrubbed
);

-- extract: manifest.json -------------------------------------------------------------------

CREATE TABLE dbt_manifest (
    path            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    schema_version  TEXT NOT NULL,
    dbt_version     TEXT,
    project_name    TEXT NOT NULL,
    adapter_type    TEXT
);

-- Models, seeds, snapshots and sources: the relations a dashboard can read.
CREATE TABLE dbt_nodes (
    unique_id       TEXT PRIMARY KEY,
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
    enabled         INTEGER NOT NULL          -- 0 for nodes under manifest "disabled"
);

-- Exposures the manifest already declares, ours (a previous emit) and hand-written ones.
CREATE TABLE dbt_exposures (
    unique_id       TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    package_name    TEXT NOT NULL,
    original_file_path TEXT,
    autoexpose_luid TEXT                      -- config.meta.workbook_luid when we wrote it
);

-- extract: Tableau ------------------------------------------------------------------------

CREATE TABLE tableau_sites (
    integration     TEXT PRIMARY KEY,         -- the config's tableau[].name
    server_url      TEXT NOT NULL,            -- after any sign-in redirect
    content_url     TEXT NOT NULL,
    site_luid       TEXT,
    api_version     TEXT,
    product_version TEXT,
    projects_filter TEXT NOT NULL,            -- JSON list of selected project names ([] = all)
    workbooks_total INTEGER,                  -- totalCount as Tableau reported it
    complete        INTEGER NOT NULL          -- 0 when any warning made the extraction partial
);

CREATE TABLE tableau_projects (
    integration     TEXT NOT NULL,
    luid            TEXT NOT NULL,
    name            TEXT NOT NULL,
    parent_luid     TEXT,
    selected        INTEGER NOT NULL,
    PRIMARY KEY (integration, luid)
) WITHOUT ROWID;

CREATE TABLE tableau_workbooks (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,            -- Metadata API id
    luid            TEXT NOT NULL,            -- REST id: refresh, URLs, exposure identity
    name            TEXT NOT NULL,
    project_luid    TEXT,
    project_name    TEXT,
    description     TEXT,
    owner_name      TEXT,
    owner_email     TEXT,
    owner_username  TEXT,
    uri             TEXT,
    vizportal_url_id TEXT,
    url             TEXT,                     -- the workbook's page in a browser
    created_at      TEXT,
    updated_at      TEXT,
    tags            TEXT NOT NULL DEFAULT '[]', -- JSON list
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

-- Embedded data sources (no luid; refreshed through their workbook) and published ones.
CREATE TABLE tableau_datasources (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,            -- embedded | published
    luid            TEXT,                     -- published only
    name            TEXT,
    has_extracts    INTEGER,
    workbook_id     TEXT,                     -- embedded only: the owning workbook
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

-- Which published data sources a workbook reads, through which embedded data source.
CREATE TABLE tableau_workbook_datasources (
    integration     TEXT NOT NULL,
    workbook_id     TEXT NOT NULL,
    embedded_id     TEXT NOT NULL,
    published_id    TEXT NOT NULL,
    PRIMARY KEY (integration, workbook_id, embedded_id, published_id)
) WITHOUT ROWID;

-- Every upstream table a workbook reads, once per path it is read through.
CREATE TABLE tableau_tables (
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
    connection_type TEXT,
    PRIMARY KEY (integration, workbook_id, via, via_id, table_id)
) WITHOUT ROWID;

CREATE TABLE tableau_custom_sql (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT,
    query           TEXT,
    is_unsupported  INTEGER NOT NULL,
    connection_type TEXT,
    database_name   TEXT,
    workbook_ids    TEXT NOT NULL DEFAULT '[]', -- JSON list of Metadata workbook ids
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

-- Warnings and errors Tableau sent next to data: why an extraction is incomplete.
CREATE TABLE extract_warnings (
    integration     TEXT NOT NULL,
    query           TEXT NOT NULL,            -- Workbooks | CustomSql | projects | …
    page            INTEGER NOT NULL,
    code            TEXT,
    severity        TEXT,
    message         TEXT NOT NULL,
    action          TEXT NOT NULL             -- what the extractor did about it
);

-- Responses as received, secrets scrubbed, in request order.
CREATE TABLE raw_responses (
    integration     TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (integration, seq)
);

-- normalize -------------------------------------------------------------------------------

-- One comparable key per relation. side = dbt (ref = unique_id) or tableau (ref = table id).
CREATE TABLE relation_keys (
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

-- match -----------------------------------------------------------------------------------

CREATE TABLE exposure_dependencies (
    integration     TEXT NOT NULL,
    workbook_id     TEXT NOT NULL,
    unique_id       TEXT NOT NULL,
    table_id        TEXT NOT NULL,            -- the Tableau table it came through (first in id order)
    via             TEXT NOT NULL,
    key             TEXT NOT NULL,
    PRIMARY KEY (integration, workbook_id, unique_id)
) WITHOUT ROWID;

CREATE TABLE unmatched_tables (
    integration     TEXT NOT NULL,
    workbook_id     TEXT NOT NULL,
    table_id        TEXT NOT NULL,
    via             TEXT NOT NULL,
    via_id          TEXT NOT NULL,
    table_name      TEXT,
    key             TEXT,
    reason          TEXT NOT NULL,            -- not_in_manifest | database_mismatch | ambiguous | custom_sql
                                              -- | file_connection | disabled_node | private_model | redacted_name
    candidates      TEXT NOT NULL DEFAULT '[]', -- JSON list of dbt unique_ids that nearly matched
    suggestion      TEXT NOT NULL,
    PRIMARY KEY (integration, workbook_id, via, via_id, table_id)
) WITHOUT ROWID;

-- emit ------------------------------------------------------------------------------------

CREATE TABLE exposures (
    integration     TEXT NOT NULL,
    workbook_luid   TEXT NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    file            TEXT,                     -- relative to dbt.project_dir; NULL when not written
    status          TEXT NOT NULL,            -- written | no_dependencies
    depends_on      TEXT NOT NULL,            -- JSON list of unique_ids
    body            TEXT NOT NULL,            -- JSON of the exposure as written (values as Tableau sent them)
    PRIMARY KEY (integration, workbook_luid)
);

CREATE TABLE emitted_files (
    path            TEXT PRIMARY KEY,         -- relative to dbt.project_dir
    action          TEXT NOT NULL,            -- written | unchanged | deleted | kept_incomplete
    exposures       INTEGER NOT NULL
);
