-- Equality indexes FerretDB v1 can use (applied by scripts/infra/up.sh to the 'ferretdb' database;
-- idempotent).
--
-- Why: FerretDB v1.24 pushes a scalar equality down to PostgreSQL as
--   _jsonb -> 'field' @> '<value>'
-- while the index it creates for a MongoDB index is a btree on (_jsonb -> 'field'), which cannot
-- answer `@>`. Every lookup by _id, team or status was a sequential scan: 7.5 ms for a find by _id
-- at 10,000 jobs, growing with the collection. A GIN (jsonb_path_ops) index on the same expression
-- answers `@>`; with custom plans (plan_cache_mode, set on the database by up.sh) the planner sees
-- the field name as a constant and matches it (find by _id: 1.1 ms at 10,000 jobs).
--
-- How: an event trigger gives each field of every index FerretDB creates a GIN "twin", once per
-- (table, field). Timestamp fields (names ending in "At") are left out: they are sorted and ranged,
-- never matched for equality, and a twin would only cost writes. ty_equality_index_backfill() does
-- the same for indexes created before the trigger existed.

CREATE OR REPLACE FUNCTION ty_equality_index_for(idx oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  tbl regclass;
  am text;
  def text;
  field text;
  twin text;
BEGIN
  SELECT i.indrelid::regclass, a.amname INTO tbl, am
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
   WHERE i.indexrelid = idx;
  IF tbl IS NULL OR am <> 'btree' THEN
    RETURN; -- not an index, or one of ours (gin)
  END IF;
  def := pg_get_indexdef(idx);
  -- FerretDB writes each key as (_jsonb -> 'field'::text); dotted keys use #> and are not pushed down.
  FOR field IN SELECT DISTINCT m[1] FROM regexp_matches(def, '_jsonb -> ''([^'']+)''::text', 'g') AS m LOOP
    CONTINUE WHEN field ~ 'At$';
    twin := left(split_part(tbl::text, '.', 2), 30) || '_ty_eq_' || left(md5(field), 8);
    BEGIN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops)', twin, tbl, field);
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
      NULL; -- another connection made the same twin at the same moment
    END;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ty_equality_index_trigger() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    PERFORM ty_equality_index_for(cmd.objid);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ty_equality_index_backfill() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  idx oid;
  n integer := 0;
BEGIN
  FOR idx IN
    SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
      JOIN pg_namespace s ON s.oid = c.relnamespace
     WHERE s.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND s.nspname NOT LIKE 'pg_toast%'
       AND pg_get_indexdef(i.indexrelid) LIKE '%_jsonb -> %'
  LOOP
    PERFORM ty_equality_index_for(idx);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

DROP EVENT TRIGGER IF EXISTS ty_equality_indexes;
CREATE EVENT TRIGGER ty_equality_indexes ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION ty_equality_index_trigger();
