-- 0006_left_out_workbooks: the workbooks a site holds that extract read but did not import.
--
-- With `projects: []` every workbook the PAT's user can see came in, those in users'
-- personal spaces too: one person's sandbox became an exposure in the team's dbt project.
-- They are now left out unless the site says `include_personal_spaces: true`, and each one
-- left out is a row here, so "why is my dashboard not an exposure?" has an answer in the file.
-- Written by extract, replaced wholesale with the other tableau_* tables.

CREATE TABLE tableau_left_out_workbooks (
    integration     TEXT NOT NULL,
    id              TEXT NOT NULL,            -- Metadata API id
    luid            TEXT,
    name            TEXT,
    project_luid    TEXT,                     -- as Tableau sent them (NULL for a personal space)
    project_name    TEXT,
    owner_username  TEXT,
    reason          TEXT NOT NULL,            -- personal_space
    detail          TEXT NOT NULL,            -- how it was recognised, and what brings it in
    PRIMARY KEY (integration, id)
) WITHOUT ROWID;
