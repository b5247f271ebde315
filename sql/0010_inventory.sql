-- 0010_inventory: the raw tables of the inventory integration (src/inventory/): dashboards
-- listed by hand in a YAML or JSON file. Like tableau_*, the record of what the source said;
-- the stages read the neutral bi_* rows written beside them. Replaced whole by every extract.

CREATE TABLE inventory_files (
    integration     TEXT PRIMARY KEY,         -- the config's inventory[].name
    path            TEXT NOT NULL,            -- the file read
    xxh3            TEXT NOT NULL,            -- of its bytes
    dashboards      INTEGER NOT NULL
);

CREATE TABLE inventory_dashboards (
    integration     TEXT NOT NULL,
    seq             INTEGER NOT NULL,         -- its place in the file, from 0
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    folder          TEXT,
    url             TEXT,
    owner_name      TEXT,
    owner_email     TEXT,
    description     TEXT,
    tags            TEXT NOT NULL,            -- JSON list, as listed
    tables          TEXT NOT NULL,            -- JSON list, as listed
    PRIMARY KEY (integration, seq)
) WITHOUT ROWID;
