-- 0003_raw_response_bodies: a row for every response, its body only when kept.
--
-- Keeping every body made the file as large as the site's whole Metadata output (146 MB for
-- 20k workbooks) and cost a third of extract's writes. Error bodies are small and explain
-- failures, so they are always kept; successful ones when the integration sets
-- `raw_responses: all` (or use --record, which keeps every exchange in files).

CREATE TABLE raw_responses_0003 (
    integration     TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,         -- size of the body as received
    body            TEXT,                     -- secrets scrubbed; NULL when not kept
    PRIMARY KEY (integration, seq)
);
INSERT INTO raw_responses_0003 (integration, seq, method, path, status, bytes, body)
    SELECT integration, seq, method, path, status, length(CAST(body AS BLOB)), body FROM raw_responses;
DROP TABLE raw_responses;
ALTER TABLE raw_responses_0003 RENAME TO raw_responses;
