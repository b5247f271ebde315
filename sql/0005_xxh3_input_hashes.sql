-- 0005_xxh3_input_hashes: input files are identified by XXH3-128, not SHA-256.
--
-- Hashing a 684 MB manifest with SHA-256 took 0.38 s of CPU, more than half of what parsing
-- it takes, on the parse's own thread; XXH3-128 takes a few hundredths of a second. The hash
-- says which file a run read; it guards against no one, so it need not be cryptographic.
-- `xxh128sum manifest.json` (xxHash 0.8 and later) prints the same hex.
--
-- dbt_manifest.sha256 becomes dbt_manifest.xxh3. In runs.inputs ({path: hash}), rows
-- written from this migration on hold "xxh3:<hex>"; older rows keep their bare SHA-256 hex.
-- runs.config_hash stays SHA-256 (the config file is small).

ALTER TABLE dbt_manifest RENAME COLUMN sha256 TO xxh3;
