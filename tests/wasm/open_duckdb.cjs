// Opens exported .duckdb files the way the dashboard does — DuckDB-WASM
// (@duckdb/duckdb-wasm, blocking Node build), registerFileBuffer, then
// ATTACH … (READ_ONLY) — and prints, as JSON, for each file: the DuckDB-WASM
// version, the tables it holds, and per table the row count and column types.
//   node tests/wasm/open_duckdb.cjs FILE.duckdb [FILE2.duckdb …]
// Exit status 1 (with the error on stderr) when a file cannot be opened.
'use strict';
const path = require('path');
const duckdb = require('@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs');

async function main() {
  const dist = path.dirname(require.resolve('@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs'));
  const bundles = {
    mvp: { mainModule: path.join(dist, 'duckdb-mvp.wasm'), mainWorker: path.join(dist, 'duckdb-node-mvp.worker.cjs') },
    eh: { mainModule: path.join(dist, 'duckdb-eh.wasm'), mainWorker: path.join(dist, 'duckdb-node-eh.worker.cjs') },
  };
  const logger = new duckdb.VoidLogger();
  const db = await duckdb.createDuckDB(bundles, logger, duckdb.NODE_RUNTIME);
  await db.instantiate(() => {});
  const conn = db.connect();
  const version = conn.query('SELECT version() AS v').toArray()[0].v;
  const out = { version, files: [] };
  const fs = require('fs');
  let i = 0;
  for (const file of process.argv.slice(2)) {
    const name = `f${i}.duckdb`;
    const alias = `db${i}`;
    i += 1;
    db.registerFileBuffer(name, new Uint8Array(fs.readFileSync(file)));
    conn.query(`ATTACH '${name}' AS ${alias} (READ_ONLY)`);
    const tables = conn
      .query(`SELECT table_name FROM duckdb_tables() WHERE database_name = '${alias}' ORDER BY 1`)
      .toArray()
      .map((r) => r.table_name);
    const entry = { file, tables: {} };
    for (const t of tables) {
      const rows = Number(conn.query(`SELECT count(*)::INTEGER AS n FROM ${alias}."${t}"`).toArray()[0].n);
      const columns = conn
        .query(`SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = '${alias}' AND table_name = '${t}' ORDER BY column_index`)
        .toArray()
        .map((r) => [r.column_name, r.data_type]);
      entry.tables[t] = { rows, columns };
    }
    out.files.push(entry);
    conn.query(`DETACH ${alias}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
