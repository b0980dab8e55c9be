-- Wikidata ids corrected, and entities found by any spelling of their name.
-- Never edit once landed: add 0006_*.sql.

-- 1. Wikidata ids the gazetteer had wrong (pipeline/data/wikidata_reference.tsv holds the checked
--    ones): Recep Tayyip Erdoğan is Q39259, not Q39723. An entity stored under a wrong id takes the
--    right one (entities are keyed by their Wikidata id); if the right one is already stored (the
--    tag stage ran with the corrected gazetteer first), the two rows merge into that one: mentions
--    re-pointed (article_entities' key is the span, (article_id, start_char, end_char), so re-pointing
--    never collides), names and aliases pooled, the wrong row deleted. Nothing to do: no change.
--    Only a row that is the person named (a custom gazetteer may use Q39723 for what it is).
CREATE TEMP TABLE wikidata_fix ON COMMIT DROP AS
SELECT o.id AS old_id, n.id AS new_id, f.new_qid
  FROM (VALUES ('Q39723', 'Q39259', 'name:recep tayyip erdogan')) AS f (old_qid, new_qid, name_key)
  JOIN entities o ON o.wikidata_id = f.old_qid AND newsroom_entity_key(o.name, NULL) = f.name_key
  LEFT JOIN entities n ON n.wikidata_id = f.new_qid;

UPDATE entities e SET aliases = ARRAY(SELECT DISTINCT x FROM unnest(e.aliases || o.aliases || o.name) x
                                       WHERE x <> e.name ORDER BY 1),
                      updated_at = now()
  FROM wikidata_fix f JOIN entities o ON o.id = f.old_id
 WHERE e.id = f.new_id;
UPDATE article_entities ae SET entity_id = f.new_id
  FROM wikidata_fix f WHERE ae.entity_id = f.old_id AND f.new_id IS NOT NULL;
DELETE FROM entities e USING wikidata_fix f WHERE e.id = f.old_id AND f.new_id IS NOT NULL;
UPDATE entities e SET key = f.new_qid, wikidata_id = f.new_qid, updated_at = now()
  FROM wikidata_fix f WHERE e.id = f.old_id AND f.new_id IS NULL;

-- 2. Every name an entity goes by, as look-up keys: its canonical name and its aliases (the
--    spellings seen in text, and since this release the gazetteer's names and aliases, which the
--    tag stage merges in), each folded like an entity key (newsroom_entity_key: accents and case
--    folded, whitespace collapsed). `newsroom search --entity Erdogan` finds "Recep Tayyip
--    Erdoğan" through his alias "Erdoğan"; in SQL:
--      WHERE newsroom_entity_names(name, aliases) @> ARRAY[newsroom_entity_key('Erdogan', NULL)]
--    The functions keep the search_path they were created with: an index expression is also
--    computed by maintenance commands that run with a minimal search_path.
CREATE FUNCTION newsroom_entity_names(name text, aliases text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT
    AS $$ SELECT array_agg(DISTINCT newsroom_entity_key(x, NULL)) FROM unnest($2 || $1) x $$;
CREATE INDEX entities_names_idx ON entities USING gin (newsroom_entity_names(name, aliases));

-- 3. A person's surname, for `--entity Assad` where no spelling is "Assad": the last word of a name,
--    folded and lower-cased, without an Arabic article ("Bashar al-Assad" -> "assad", "al-Assad" ->
--    "assad"). pipeline/queries.py resolve_entity uses it only when the name and the aliases
--    matched nothing, for a one-word name typed, among PERSONs whose name has two words or more,
--    and only when exactly one has that surname.
CREATE FUNCTION newsroom_surname_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path FROM CURRENT
    AS $$ SELECT nullif(regexp_replace(lower(newsroom_fold(substring(btrim($1) FROM '(\S+)$'))),
                                       '^(al|el|ad|ar|as|an|at|ash|az)-', ''), '') $$;
CREATE INDEX entities_surname_idx ON entities (newsroom_surname_key(name)) WHERE label = 'PERSON';
