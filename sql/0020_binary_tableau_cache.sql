-- 0020_binary_tableau_cache: issue #17. The Tableau cache keeps each workbook's and custom SQL
-- query's details in postcard, serde's compact binary encoding (`tableau::sync::encode`),
-- instead of JSON: at 20k workbooks the JSON was 144 MB, written by every first run. What the
-- details say is in the tableau_* tables and bi_relations, readable; the cache is only what the
-- next extraction reuses. The JSON rows cannot be read as postcard, and a new schema makes the
-- next sync full (`crate::sync`), which writes the cache again: the old rows go.

DROP TABLE tableau_workbook_cache;
CREATE TABLE tableau_workbook_cache (
    integration    TEXT NOT NULL,
    id             TEXT NOT NULL,
    updated_at     TEXT,
    datasources    TEXT NOT NULL,             -- JSON [[published data source id, updatedAt|null], …]
    details        BLOB NOT NULL,             -- the Workbooks node, postcard
    PRIMARY KEY (integration, id)
);

DROP TABLE tableau_custom_sql_cache;
CREATE TABLE tableau_custom_sql_cache (
    integration    TEXT NOT NULL,
    id             TEXT NOT NULL,
    workbooks      TEXT NOT NULL,             -- JSON [workbook id, …], sorted
    details        BLOB NOT NULL,             -- the CustomSql node, postcard
    PRIMARY KEY (integration, id)
);
