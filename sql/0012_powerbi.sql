-- 0012_powerbi: the raw tables of the Power BI integration (src/powerbi/): what the scanner
-- API said of each tenant, as it said it (shared/reference/powerbi.md sections 2-4, 6, 7, 11).
-- Like tableau_* and inventory_*, the record of what the source said; the stages read the
-- neutral bi_* rows written beside them (one bi_assets row per report that is not an app copy).
-- Replaced whole by every extract.

CREATE TABLE powerbi_tenants (
    integration     TEXT PRIMARY KEY,         -- the config's powerbi[].name
    tenant_id       TEXT NOT NULL,
    api_url         TEXT NOT NULL,
    workspaces_filter TEXT NOT NULL,          -- JSON list, as configured (names or ids; [] = all)
    workspaces_listed INTEGER NOT NULL,       -- ids admin/workspaces/modified gave
    complete        INTEGER NOT NULL
);

-- Every scan this extract ran (getInfo → scanStatus → scanResult), so a failure or a slow
-- tenant can be told from the record.
CREATE TABLE powerbi_scans (
    integration     TEXT NOT NULL,
    scan_id         TEXT NOT NULL,
    purpose         TEXT NOT NULL,            -- selection | datasets of other workspaces
    workspace_ids   TEXT NOT NULL,            -- JSON list, as sent (≤ 100)
    status          TEXT NOT NULL,            -- as the service spelled it
    polls           INTEGER NOT NULL,
    PRIMARY KEY (integration, scan_id)
) WITHOUT ROWID;

CREATE TABLE powerbi_workspaces (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT,                     -- inactive workspaces may have none
    type            TEXT,                     -- Workspace | PersonalGroup | …
    state           TEXT,                     -- Active | Deleted | …
    selected        INTEGER NOT NULL,         -- 1: its reports are exposures; 0: scanned for a dataset only, or left out
    left_out        TEXT,                     -- personal_workspace | inactive_workspace | not_selected; NULL when selected
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

CREATE TABLE powerbi_reports (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    name            TEXT,
    dataset_id      TEXT,
    dataset_workspace_id TEXT,                -- where the dataset lives, when the service says
    report_type     TEXT,                     -- PowerBIReport | PaginatedReport | …
    created_by      TEXT,
    modified_by     TEXT,
    created_at      TEXT,
    modified_at     TEXT,
    app_id          TEXT,
    original_report_id TEXT,                  -- an app copy's original (originalReportId or originalReportObjectId)
    url             TEXT,
    url_source      TEXT,                     -- api (groups/{id}/reports webUrl) | built
    left_out        TEXT,                     -- app_copy | not_selected; NULL for an exposure
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

CREATE TABLE powerbi_datasets (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    name            TEXT,
    configured_by   TEXT,
    target_storage_mode TEXT,
    datasource_ids  TEXT NOT NULL,            -- JSON list of datasourceUsages[].datasourceInstanceId
    misconfigured_datasource_ids TEXT NOT NULL,
    upstream_dataflows TEXT NOT NULL,         -- JSON, as the scan gave it
    schema_retrieval_error TEXT,              -- JSON, as the scan gave it
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;

-- Each table of a dataset and its M query (source[0].expression); NULL when the table has no
-- source (a calculated table, or datasetExpressions not enabled on the tenant).
CREATE TABLE powerbi_tables (
    integration     TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    is_hidden       INTEGER,
    m_expression    TEXT,
    PRIMARY KEY (integration, dataset_id, name)
) WITHOUT ROWID;

-- A dataset's shared expressions, parameters among them (`… meta [IsParameterQuery=true]`).
CREATE TABLE powerbi_expressions (
    integration     TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    m_expression    TEXT,
    is_parameter    INTEGER NOT NULL,
    PRIMARY KEY (integration, dataset_id, name)
) WITHOUT ROWID;

-- Parameters as datasets/{id}/parameters gave them (the second source, after the expressions).
CREATE TABLE powerbi_parameters (
    integration     TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    type            TEXT,
    current_value   TEXT,
    is_required     INTEGER,
    PRIMARY KEY (integration, dataset_id, name)
) WITHOUT ROWID;

-- The tenant's data source instances (datasourceInstances, misconfiguredDatasourceInstances).
CREATE TABLE powerbi_datasources (
    integration     TEXT NOT NULL,
    datasource_id   TEXT NOT NULL,
    datasource_type TEXT,
    gateway_id      TEXT,
    server          TEXT,                     -- connectionDetails.server
    database        TEXT,                     -- connectionDetails.database (may be odd: see the reference)
    connection_details TEXT,                  -- JSON, as the scan gave it
    misconfigured   INTEGER NOT NULL,
    PRIMARY KEY (integration, datasource_id, misconfigured)
) WITHOUT ROWID;
