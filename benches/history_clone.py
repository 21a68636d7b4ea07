"""Grows a history file for benches/history.sh: copies every row that one real pipeline wrote
(its study of trials with their parameters, epochs, checkpoints' rows, per-date outcomes and
baselines, its extended run, selection with its validity figures, final model, backtest and
provenance) as N-1 earlier weeks.

Usage: history_clone.py TEMPLATE.db OUT.db WEEKS

Nothing is invented: week k is the template's rows with every run id's timestamp and every
TIMESTAMP column moved k weeks back, so each week is a whole pipeline as hptune wrote it and the
template stays the newest. The data tables (datasets, tickers, prices), the checkpoint bytes
(content-addressed, so the weeks share them) and the file's own bookkeeping are not copied.
"""

import datetime as dt
import re
import shutil
import sys

import duckdb

NOT_COPIED = {
    "datasets", "dataset_tickers", "prices", "checkpoint_files",
    "hptune_migrations", "hptune_views", "moved_aside", "cleanups",
}
# Every id hptune makes from a time: kind-YYYYmmdd-HHMMSS.mmm (store::ids).
ID = re.compile(r"\b(study|extended|selection|train|backtest|process)-(\d{8})-(\d{6}\.\d{3})")


def main(template, out, weeks):
    shutil.copyfile(template, out)
    con = duckdb.connect(out)
    con.execute(f"ATTACH '{template}' AS tpl (READ_ONLY)")
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'tpl' ORDER BY table_name").fetchall()]
    tables = [t for t in tables if t not in NOT_COPIED]
    columns = {}
    ids = set()
    for t in tables:
        cols = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'tpl' AND table_name = ? "
            "ORDER BY column_index", [t]).fetchall()
        columns[t] = cols
        for name, kind in cols:
            if kind == "VARCHAR":
                for (v,) in con.execute(f'SELECT DISTINCT "{name}" FROM tpl."{t}" WHERE "{name}" IS NOT NULL').fetchall():
                    ids.update(m.group(0) for m in ID.finditer(v))
    ids = sorted(ids)
    print(f"{len(tables)} tables, {len(ids)} run ids in the template: {', '.join(ids)}", file=sys.stderr)
    con.execute("BEGIN")
    for k in range(1, weeks):
        mapping = [(i, shifted(i, k)) for i in ids]
        for t in tables:
            exprs = []
            for name, kind in columns[t]:
                e = f'"{name}"'
                if kind == "VARCHAR":
                    for old, new in mapping:
                        e = f"replace({e}, '{old}', '{new}')"
                elif kind.startswith("TIMESTAMP"):
                    e = f"{e} - INTERVAL {7 * k} DAY"
                exprs.append(f"{e} AS \"{name}\"")
            con.execute(f'INSERT INTO main."{t}" SELECT {", ".join(exprs)} FROM tpl."{t}"')
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    for t in ("studies", "trials", "epoch_metrics", "outcomes", "selections", "backtests"):
        print(f"{t}: {con.execute(f'SELECT count(*) FROM {t}').fetchone()[0]} rows", file=sys.stderr)


def shifted(run_id, weeks):
    kind, day, time = ID.match(run_id).groups()
    when = dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=7 * weeks)
    return f"{kind}-{when:%Y%m%d}-{time}"


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
