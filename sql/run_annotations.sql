-- Tags and notes per study, run, selection or backtest (`hptune tag`, `hptune note`): its tags as key=value, its notes in order.
CREATE OR REPLACE VIEW run_annotations AS
WITH t AS (
    SELECT id, min(kind) AS kind, string_agg(key || '=' || value, ', ' ORDER BY key) AS tags, max(tagged_at) AS tagged_at
    FROM tags GROUP BY id
), n AS (
    SELECT id, min(kind) AS kind, count(*) AS notes, string_agg(text, ' | ' ORDER BY number) AS note_texts,
           max(written_at) AS written_at
    FROM notes GROUP BY id
)
SELECT coalesce(t.kind, n.kind) AS kind,
       id,
       t.tags,
       coalesce(n.notes, 0)     AS notes,
       n.note_texts,
       greatest(t.tagged_at, n.written_at) AS last_changed
FROM t FULL JOIN n USING (id)
ORDER BY last_changed DESC, id;
