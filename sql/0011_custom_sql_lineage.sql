-- Issue #13: custom SQL read by autoexpose's own parser. Beside the query text Tableau stored,
-- what each side made of it, so a data engineer can see where the two differ:
--   lineage        which list the query's rows in bi_relations come from: parsed (ours),
--                  tableau (ours failed, Tableau listed tables), none (neither: one
--                  unparsed_sql row, unmatched with reason unparseable_sql or custom_sql)
--   parsed_tables  JSON list of the tables our parser found (database.schema.name as written,
--                  `?` for a database nothing gave, an empty schema for none); NULL if it failed
--   parse_error    the parser's message and position; NULL if it parsed
--   tableau_tables JSON list of the fullNames Tableau listed (`tables`), as it gave them
ALTER TABLE tableau_custom_sql ADD COLUMN lineage TEXT NOT NULL DEFAULT 'tableau';
ALTER TABLE tableau_custom_sql ADD COLUMN parsed_tables TEXT;
ALTER TABLE tableau_custom_sql ADD COLUMN parse_error TEXT;
ALTER TABLE tableau_custom_sql ADD COLUMN tableau_tables TEXT NOT NULL DEFAULT '[]';
UPDATE tableau_custom_sql SET lineage = 'none' WHERE is_unsupported = 1;
