-- 0016_assets_by_ref: issue #16. Exposures name their asset by asset_ref (the exposure's
-- identity), while bi_assets is keyed by asset_id (what bi_relations refer to). Without an
-- index on the ref, `list` and `report` joined each exposure to its asset by scanning every
-- asset of the integration: 87 s for L's 20,000 exposures, where the rest of the report takes
-- about 2 s. Also for the data engineer's own `JOIN bi_assets USING (integration, asset_ref)`.
CREATE INDEX bi_assets_by_ref ON bi_assets (integration, asset_ref);
