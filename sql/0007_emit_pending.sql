-- 0007_emit_pending: the file changes an emit has committed but not yet made.
--
-- Emit writes each new file's content to a temporary file beside it and syncs it, then commits
-- its rows in `exposures` and `emitted_files` together with one row here per rename and
-- deletion still to do; only then does it rename and delete, and it clears these rows in a
-- transaction of its own when every change is on disk. A process killed in between leaves
-- rows here, and the next autoexpose on this database finishes them before anything else
-- (`emit_pending::recover`): the tables already say new, and every temporary file was synced
-- before the commit, so finishing is always possible. Empty between runs.

CREATE TABLE emit_pending (
    seq             INTEGER PRIMARY KEY,      -- the order the changes are made in
    action          TEXT NOT NULL,            -- rename | delete
    tmp             TEXT,                     -- rename: the synced temporary file (absolute path)
    target          TEXT NOT NULL             -- the file replaced or deleted (absolute path)
);
