-- Issue #14: what a Power BI report needs in its exposure beyond the common fields, and the
-- sources that name no table.
--   bi_assets.meta   JSON object of the integration's own `config.meta` keys, written beside
--                    integration / instance / ref / folder / exposure_mode (Power BI:
--                    dataset_id). Sorted keys; never overrides the common ones.
--   bi_relations.kind gains `no_lineage`: a source the integration read that names no
--                    warehouse table; `detail` starts with the reason (unsupported_m_function,
--                    unresolved_parameter, dataflow, no_source, unreadable_m), which becomes
--                    `unmatched_tables.reason`.
ALTER TABLE bi_assets ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
