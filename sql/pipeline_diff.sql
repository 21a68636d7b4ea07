-- Per pipeline (selection), what differs from the one before it in the file: each fact of `run_facts` whose value changed, with the earlier and the later value (adapt the pairs to compare any two runs).
CREATE OR REPLACE VIEW pipeline_diff AS
WITH pairs AS (
    SELECT * FROM (SELECT selection_id, lag(selection_id) OVER (ORDER BY selected_at, selection_id) AS previous_id
                   FROM selections)
    WHERE previous_id IS NOT NULL
),
facts AS (SELECT * FROM run_facts WHERE kind = 'selection'),
later AS (SELECT p.selection_id, p.previous_id, f.section, f.key, f.value FROM pairs p JOIN facts f ON f.id = p.selection_id),
earlier AS (SELECT p.selection_id, p.previous_id, f.section, f.key, f.value FROM pairs p JOIN facts f ON f.id = p.previous_id)
SELECT coalesce(l.selection_id, e.selection_id) AS selection_id,
       coalesce(l.previous_id, e.previous_id)   AS previous_id,
       coalesce(l.section, e.section)           AS section,
       coalesce(l.key, e.key)                   AS key,
       e.value                                  AS previous_value,
       l.value                                  AS value
FROM later l
FULL JOIN earlier e ON e.selection_id = l.selection_id AND e.section = l.section AND e.key = l.key
WHERE e.value IS DISTINCT FROM l.value
ORDER BY selection_id DESC, section, key;
