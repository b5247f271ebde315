-- 0015_dbt_graph: issue #16, the dbt side of lineage and health.
--
-- dbt_nodes keeps one row per model, seed, snapshot and source; the graph between them rides
-- on those rows rather than in an edge table, so a manifest of 100k nodes writes no more rows
-- than before (the rows only grow by two short JSON lists).
--   dbt_nodes.depends_on  JSON list, sorted: the node's depends_on.nodes that are themselves
--                         dbt_nodes rows (models, seeds, snapshots, sources); [] for sources
--   dbt_nodes.tests       JSON list, sorted: the unique_ids of the manifest's test nodes whose
--                         depends_on.nodes name this node (a relationships test is on both)
-- A database made before keeps [] until the next extract reads the manifest again.
ALTER TABLE dbt_nodes ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dbt_nodes ADD COLUMN tests TEXT NOT NULL DEFAULT '[]';
