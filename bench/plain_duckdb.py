#!/usr/bin/env python3
"""The "plain DuckDB" side of bench/ci_vs_dbt: the SQL `analytics run --mode ci`
ran, executed directly with the DuckDB Python package (same DuckDB release),
without our binary around it. Run with the dbt venv's python (it needs duckdb,
and jinja2 + PyYAML for `prepare`).

    plain_duckdb.py prepare --project COPY --analytics BIN --out PLAN.json
    plain_duckdb.py run PLAN.json [--database FILE] [--counts COUNTS.json]

`prepare` (not timed) collects, after an `analytics` run of the project copy:

* the file log our ingest wrote (rebuilt from the archive folder: source and
  downloaded file name of every stored file);
* every model in DAG order (`analytics list`) with its rendered SQL
  (`COPY/target/compiled/**/<model>.sql`) and materialization: `view` becomes
  CREATE VIEW, `table` and a first-run `incremental` become CREATE TABLE AS;
  `post_hook`s from the model's config(...) rendered with the project macros;
* every data test: the generic ones (`unique`, `not_null`, `accepted_values`,
  `relationships`) written the way our engine writes them, the singular ones
  rendered from tests/*.sql; each run as `SELECT count(*) FROM (test)`.

`run` (timed by the harness) executes that plan in one in-memory connection
(or in --database FILE) and, with --counts, writes every model's row count.
`--engine LIB` runs it on a given libduckdb.so through DuckDB's C API (ctypes)
instead of the duckdb Python package: with the library our binary links, the
engine build is exactly ours.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def literal(text):
    return "'" + str(text).replace("'", "''") + "'"


# Same expression our ingest uses to turn a stored path back into the
# downloaded file's name.
SOURCE_FILE_RE = re.compile(r"([^/~]+)(~[^/]*)?\.gz$")


def list_project(analytics, project):
    out = subprocess.run(
        [analytics, "list", "--project", str(project)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    models = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "model":
            models.append(
                {"name": parts[1], "materialized": parts[2], "relation": " ".join(parts[3:])}
            )
    return models


def jinja_env():
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def macros_text(project):
    return "".join(p.read_text() for p in sorted((project / "macros").glob("*.sql")))


def generic_test_sql(kind, model_rel, column, args, relations):
    c = quote(column) if re.fullmatch(r"[A-Za-z0-9_]+", column) else column
    if kind == "unique":
        return (
            f"SELECT {c} AS unique_field, count(*) AS n_records FROM {model_rel} "
            f"WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
        )
    if kind == "not_null":
        return f"SELECT * FROM {model_rel} WHERE {c} IS NULL"
    if kind == "accepted_values":
        values = ", ".join(literal(v) for v in args["values"])
        return (
            f"SELECT {c} AS value_field, count(*) AS n_records FROM {model_rel} "
            f"WHERE {c} IS NOT NULL AND {c} NOT IN ({values}) GROUP BY {c}"
        )
    if kind == "relationships":
        m = re.fullmatch(r"""\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*""", args["to"])
        parent = relations[m.group(1) if m else args["to"].strip()]
        f = quote(args["field"])
        return (
            f"SELECT child.{c} AS from_field FROM {model_rel} AS child "
            f"LEFT JOIN {parent} AS parent ON child.{c} = parent.{f} "
            f"WHERE child.{c} IS NOT NULL AND parent.{f} IS NULL"
        )
    raise SystemExit(f"plain_duckdb: generic test `{kind}` is not handled")


def prepare(args):
    import yaml

    project = Path(args.project).resolve()
    dbt_project = yaml.safe_load((project / "dbt_project.yml").read_text())
    name = dbt_project["name"]
    vars_ = dbt_project.get("vars", {})
    models = list_project(args.analytics, project)
    relations = {m["name"]: m["relation"] for m in models}
    macros = macros_text(project)
    env = jinja_env()
    steps = []

    # The file log, as our ingest leaves it (source, downloaded file name).
    archive = project / "target" / "archive"
    logged = set()
    for path in archive.rglob("*.gz"):
        source = path.relative_to(archive).parts[0]
        logged.add((source, SOURCE_FILE_RE.search(path.name).group(1)))
    rows = ", ".join(f"({literal(s)}, {literal(f)})" for s, f in sorted(logged))
    steps.append(
        {
            "kind": "file_log",
            "name": "file_log",
            "sql": 'CREATE SCHEMA IF NOT EXISTS "_analytics"; '
            'CREATE TABLE "_analytics"."file_log" AS SELECT * FROM (VALUES '
            + rows
            + ") AS t(source, file_name)",
        }
    )

    compiled_root = project / "target" / "compiled" / name
    sources = {p.stem: p for p in (project / "models").rglob("*.sql")}
    for m in models:
        compiled = list(compiled_root.rglob(m["name"] + ".sql"))
        seeds = list((project / "seeds").rglob(m["name"] + ".csv"))
        if not compiled and len(seeds) == 1:
            # A seed: the CSV as a table, as our engine loads it.
            path = str(seeds[0].resolve()).replace("'", "''")
            body = f"SELECT * FROM read_csv('{path}', header = true)"
        elif len(compiled) != 1:
            raise SystemExit(f"plain_duckdb: no single compiled SQL for {m['name']}: {compiled}")
        else:
            body = compiled[0].read_text().strip().rstrip(";")
        schema = m["relation"].split(".")[0]
        ddl = "VIEW" if m["materialized"] == "view" else "TABLE"
        steps.append(
            {
                "kind": "model",
                "name": m["name"],
                "relation": m["relation"],
                "materialized": m["materialized"],
                "sql": f"CREATE SCHEMA IF NOT EXISTS {schema}; "
                f"CREATE OR REPLACE {ddl} {m['relation']} AS {body}",
            }
        )
        src = sources[m["name"]].read_text() if m["name"] in sources else ""
        for hook in re.findall(r"""post_hook\s*=\s*"([^"]*)\"""", src):
            sql = env.from_string(macros + hook).render(this=m["relation"]).strip()
            if sql:
                steps.append({"kind": "post_hook", "name": m["name"], "sql": sql})

    # Generic tests from models/**/*.yml.
    for yml in sorted((project / "models").rglob("*.yml")):
        doc = yaml.safe_load(yml.read_text()) or {}
        for model in doc.get("models", []) or []:
            rel = relations.get(model["name"])
            if rel is None:
                continue
            for col in model.get("columns", []) or []:
                for test in (col.get("data_tests") or []) + (col.get("tests") or []):
                    if isinstance(test, str):
                        kind, targs = test, {}
                    else:
                        kind, targs = next(iter(test.items()))
                        targs = dict(targs or {})
                        targs.update(targs.pop("arguments", None) or {})
                        targs.pop("config", None)
                    steps.append(
                        {
                            "kind": "test",
                            "name": f"{kind}_{model['name']}_{col['name']}",
                            "sql": "SELECT count(*) FROM ("
                            + generic_test_sql(kind, rel, col["name"], targs, relations)
                            + ") AS dbt_internal_test",
                        }
                    )

    # Singular tests.
    for test in sorted((project / "tests").glob("*.sql")):
        sql = (
            env.from_string(macros + test.read_text())
            .render(
                ref=lambda n: relations[n],
                # A ci run builds every model from scratch: its new rows are the model.
                new_rows=lambda n: relations[n],
                stored_on_new_dates=lambda n, column="date": relations[n],
                # The plain run's file log holds this run's files only.
                run_started_at=datetime.datetime(1970, 1, 1),
                var=lambda n, d=None: vars_.get(n, d),
                file_log=lambda: '"_analytics"."file_log"',
                config=lambda **_: "",
            )
            .strip()
            .rstrip(";")
        )
        steps.append(
            {
                "kind": "test",
                "name": test.stem,
                "sql": f"SELECT count(*) FROM ({sql}) AS dbt_internal_test",
            }
        )

    Path(args.out).write_text(json.dumps({"project": str(project), "steps": steps}, indent=1))
    print(
        f"plain plan: {sum(s['kind'] == 'model' for s in steps)} models, "
        f"{sum(s['kind'] == 'post_hook' for s in steps)} post-hooks, "
        f"{sum(s['kind'] == 'test' for s in steps)} tests"
    )


class PythonDuckDB:
    """The DuckDB Python package (the venv's duckdb==1.5.6)."""

    def __init__(self, database):
        import duckdb

        self.con = duckdb.connect(database)
        # The Python client draws a progress bar on long queries; our binary does not.
        self.con.execute("SET enable_progress_bar = false")

    def execute(self, sql):
        self.con.execute(sql)

    def count(self, sql):
        return self.con.execute(sql).fetchone()[0]

    def close(self):
        self.con.close()


class LibDuckDB:
    """The very libduckdb.so our binary links (.duckdb/, DuckDB's official 1.5.6
    build), driven through its C API with ctypes: the same engine build, none
    of our code."""

    def __init__(self, database, library):
        import ctypes

        self.c = ctypes
        lib = ctypes.CDLL(library)
        lib.duckdb_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_connect.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_query.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.duckdb_result_error.argtypes = [ctypes.c_void_p]
        lib.duckdb_result_error.restype = ctypes.c_char_p
        lib.duckdb_value_int64.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        lib.duckdb_value_int64.restype = ctypes.c_int64
        lib.duckdb_destroy_result.argtypes = [ctypes.c_void_p]
        lib.duckdb_disconnect.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_close.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        self.lib = lib
        self.db = ctypes.c_void_p()
        self.conn = ctypes.c_void_p()
        path = None if database == ":memory:" else database.encode()
        if lib.duckdb_open(path, ctypes.byref(self.db)) != 0:
            raise SystemExit(f"plain_duckdb: cannot open {database} with {library}")
        if lib.duckdb_connect(self.db, ctypes.byref(self.conn)) != 0:
            raise SystemExit("plain_duckdb: cannot connect")
        # duckdb_result is 48 bytes in DuckDB 1.x; leave room.
        self.result = ctypes.create_string_buffer(256)

    def _query(self, sql):
        if self.lib.duckdb_query(self.conn, sql.encode(), self.result) != 0:
            err = self.lib.duckdb_result_error(self.result)
            self.lib.duckdb_destroy_result(self.result)
            raise SystemExit(f"plain_duckdb: {err.decode() if err else 'query failed'}\n{sql[:500]}")

    def execute(self, sql):
        self._query(sql)
        self.lib.duckdb_destroy_result(self.result)

    def count(self, sql):
        self._query(sql)
        n = self.lib.duckdb_value_int64(self.result, 0, 0)
        self.lib.duckdb_destroy_result(self.result)
        return n

    def close(self):
        self.lib.duckdb_disconnect(self.c.byref(self.conn))
        self.lib.duckdb_close(self.c.byref(self.db))


def run(args):
    plan = json.loads(Path(args.plan).read_text())
    started = time.perf_counter()
    database = args.database or ":memory:"
    if args.engine == "python":
        con = PythonDuckDB(database)
    else:
        con = LibDuckDB(database, args.engine)
    stages = {"file_log": 0.0, "model": 0.0, "post_hook": 0.0, "test": 0.0}
    failing = []
    for step in plan["steps"]:
        t = time.perf_counter()
        if step["kind"] == "test":
            n = con.count(step["sql"])
            if n:
                failing.append((step["name"], n))
        else:
            con.execute(step["sql"])
        stages[step["kind"]] += time.perf_counter() - t
    total = time.perf_counter() - started
    print(
        "plain stages: "
        + "  ".join(f"{k} {v:.2f}s" for k, v in stages.items())
        + f"  total {total:.2f}s"
    )
    for name, n in failing:
        print(f"plain test {name}: {n} failing rows")
    if args.counts:
        counts = {}
        for step in plan["steps"]:
            if step["kind"] == "model":
                counts[step["name"]] = con.count(f"SELECT count(*) FROM {step['relation']}")
        Path(args.counts).write_text(json.dumps(counts, indent=1))
    con.close()
    sys.exit(1 if failing and args.strict else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--project", required=True)
    p.add_argument("--analytics", required=True)
    p.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("plan")
    r.add_argument("--database")
    r.add_argument("--counts")
    r.add_argument("--strict", action="store_true", help="exit 1 when a test fails")
    r.add_argument(
        "--engine",
        default="python",
        help="`python` (the duckdb package) or the path of a libduckdb.so to drive through its C API",
    )
    args = ap.parse_args()
    prepare(args) if args.cmd == "prepare" else run(args)


if __name__ == "__main__":
    main()
