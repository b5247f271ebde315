-- 0005_blake3_input_hashes: input files are identified by BLAKE3, not SHA-256.
--
-- Hashing a 684 MB manifest with SHA-256 took 0.38 s of CPU, more than half of what parsing
-- it takes; BLAKE3 takes about a quarter of that on the same core. `b3sum manifest.json`
-- prints the same hex, so the value can still be checked by hand.
--
-- dbt_manifest.sha256 becomes dbt_manifest.blake3. In runs.inputs ({path: hash}), rows
-- written from this migration on hold "blake3:<hex>"; older rows keep their bare SHA-256 hex.
-- runs.config_hash stays SHA-256 (the config file is small).

ALTER TABLE dbt_manifest RENAME COLUMN sha256 TO blake3;
