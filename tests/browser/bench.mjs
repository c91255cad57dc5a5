// Dashboard speed in Debian's Chromium (playwright-core), bundled assets on a
// loopback server that gzips text files as GitHub Pages does. Per window size
// (1440×900 and 390×844), cold (empty profile) and warm (a second visit, same
// profile): when the KPIs and the first chart are drawn (from the exporter's
// summary), when DuckDB-WASM is ready and when its own numbers have replaced
// the preview (interactive); bytes received before the first chart; then the
// time of a date-range change over 7, 30 and 365 days and of a filter change,
// made in the cold visit's session. At both sizes the cold visit is the same
// normal visit (load, those range changes twice, a filter and back), so the
// warm visit is a returning user's, whose browser kept what such a visit
// leaves: the data in the Cache API, DuckDB-WASM in the HTTP cache and its
// compiled code in the code cache (written only after a visit that used the
// page: see wasmCodeCache).
// Figures are the page's own timings (performance.now, from the start of
// navigation; a change from the input event to the last chart drawn).
//   SITE_DIR=… RUNS=3 node tests/browser/bench.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, launch, waitReady, renders } from './harness.mjs';

// Bytes of compiled WebAssembly Chromium keeps in the profile's code cache
// (Default/Code Cache/wasm: one entry per module URL). V8 writes an entry
// once the visit has produced enough optimized (TurboFan) code: in Chromium
// 156 only when 1 MB of it has accumulated (--wasm-caching-hard-threshold);
// the write 2 s after tier-up stops (--wasm-caching-timeout-ms) never comes
// (bench/RESULTS.md, 2026-11-29 18:10). A visit whose profile has an entry skips the
// lazy compilation of the code it holds.
function wasmCodeCache(userDataDir) {
  const dir = path.join(userDataDir, 'Default', 'Code Cache', 'wasm');
  let bytes = 0;
  try {
    for (const f of fs.readdirSync(dir)) if (/^[0-9a-f]{16}_0$/.test(f)) bytes += fs.statSync(path.join(dir, f)).size;
  } catch {
    // no code cache folder yet
  }
  return bytes;
}

const SITE = process.env.SITE_DIR;
const RUNS = Number(process.env.RUNS || 3);
const manifest = JSON.parse(fs.readFileSync(path.join(SITE, 'manifest.json'), 'utf8'));
const server = await serve(SITE, { gzip: true });

// Where a change's time went (from the page's probe): the files downloaded
// (count, bytes, the longest wait for bytes), registering + ATTACH (the
// longest), the worker busy with queries (the union of the queries'
// intervals: they overlap in the queue), and drawing (ECharts, summed).
async function changeMark(page) {
  return page.evaluate(() => ({ seq: window.__dashboard.querySeq || 0, files: Object.keys(window.__dashboard.attachMs || {}), downloaded: window.__dashboard.downloaded.length }));
}
async function breakdown(page, mark) {
  return page.evaluate((mark) => {
    const d = window.__dashboard;
    const newFiles = Object.entries(d.attachMs || {}).filter(([k]) => !mark.files.includes(k));
    const got = d.downloaded.slice(mark.downloaded);
    const qs = d.queries.filter((q) => q.seq > mark.seq).sort((a, b) => a.t0 - b.t0);
    let busy = 0;
    let end = -Infinity;
    for (const q of qs) {
      const from = Math.max(q.t0, end);
      if (q.t1 > from) busy += q.t1 - from;
      end = Math.max(end, q.t1);
    }
    const start = qs.length ? qs[0].t0 : 0;
    return {
      detail: qs.map((q) => `${Math.round(q.t0 - start)}+${Math.round(q.t1 - q.t0)} ms ${q.rows} rows: ${q.sql}`).concat(Object.entries(d.drawMs || {}).map(([k, v]) => `draw ${k}: ${Math.round(v)} ms`)),
      files: got.length,
      fetch: Math.max(0, ...newFiles.map(([, v]) => v[0])),
      attach: Math.max(0, ...newFiles.map(([, v]) => v[1])),
      queries: qs.length,
      queryMs: Math.round(busy),
      draw: Object.values(d.drawMs || {}).reduce((a, b) => a + b, 0),
      names: got,
    };
  }, mark).then((r) => ({ ...r, bytes: r.names.reduce((n, p) => n + (manifest.files.find((f) => f.path === p)?.bytes || 0), 0), names: r.names.map((p) => p.split('/').pop()) }));
}

async function preset(page, days) {
  const mark = await changeMark(page);
  const n = await renders(page);
  await page.click(`.presets button[data-days="${days}"]`);
  await waitReady(page, n);
  const r = await page.evaluate(() => ({ ms: window.__dashboard.lastRefreshMs, grain: window.__dashboard.grain }));
  r.parts = await breakdown(page, mark);
  return r;
}

async function filter(page, id, value, keepParts = true) {
  const mark = await changeMark(page);
  const n = await renders(page);
  await page.selectOption(id, value);
  await waitReady(page, n);
  const took = await page.evaluate(() => window.__dashboard.lastRefreshMs);
  if (keepParts) parts.filter.push(await breakdown(page, mark));
  return took;
}
const parts = { filter: [], 7: [], 30: [], 365: [] };

// The floor of "DuckDB-WASM ready" (FLOOR=1): a blank page on the same
// server that only starts the engine as index.html's first script does (the
// same bundle, worker and flags), then connects and runs `SELECT 42`, visited
// in the same warm profile as the dashboard (alternating with it).
function writeFloorPage() {
  const html = fs.readFileSync(path.join(SITE, 'index.html'), 'utf8');
  const page = JSON.parse(/<script id="page-config" type="application\/json">([\s\S]*?)<\/script>/.exec(html)[1]);
  const b = page.assets.bundles.eh || page.assets.bundles.mvp;
  const abs = (u) => `new URL(${JSON.stringify(u)}, document.baseURI).href`;
  fs.writeFileSync(path.join(SITE, 'floor.html'), `<!doctype html><html><head><meta charset="utf-8"><title>floor</title>
<script>
(function () {
  var f = (window.__floor = {});
  var src = 'self.TransformStream = undefined; importScripts(' + JSON.stringify(${abs(b.mainWorker)}) + ');';
  var url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  f.worker = new Worker(url);
  f.worker.addEventListener('message', function (e) {
    if (e.data && e.data.requestId === 1e9) { f.ready = performance.now(); f.ok = e.data.type === 'OK'; }
  });
  f.worker.postMessage({ messageId: 1e9, type: 'INSTANTIATE', data: [${abs(b.mainModule)}, null] });
})();
</script>
<script type="importmap">{"imports": {"apache-arrow": "./assets/arrow-shim.mjs"}}</script>
<script defer src="${page.assets.arrow_script}"></script>
<script type="module">
const f = window.__floor;
await new Promise((r) => { const t = setInterval(() => { if (f.ready) { clearInterval(t); r(); } }, 2); });
const duckdb = await import(${abs(page.assets.duckdb_module)});
const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), f.worker);
const conn = await db.connect();
await conn.query('SELECT 42');
f.query = performance.now();
</script></head><body>floor</body></html>
`);
}
async function floorVisit(context, width, height) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  await page.goto(server.url + 'floor.html');
  await page.waitForFunction(() => window.__floor && window.__floor.query, null, { timeout: 120000 });
  const r = await page.evaluate(() => ({ ready: window.__floor.ready, query: window.__floor.query, ok: window.__floor.ok }));
  await page.close();
  return r;
}
const FLOOR = !!process.env.FLOOR;
if (FLOOR) writeFloorPage();

// One visit: the phases and the bytes the page received before its first chart.
async function visit(context, width, height, logStart) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  await page.goto(server.url);
  await waitReady(page);
  const r = await page.evaluate(() => {
    const m = window.__dashboard.marks;
    const first = m.preview ?? m.first_chart;
    const nav = performance.getEntriesByType('navigation')[0];
    // Bytes over the network (headers included; 0 for what the HTTP cache served).
    let bytes = nav ? nav.transferSize : 0;
    let files = nav && nav.transferSize ? 1 : 0;
    for (const e of performance.getEntriesByType('resource')) {
      if (e.responseEnd <= first && e.transferSize > 0) {
        bytes += e.transferSize;
        files += 1;
      }
    }
    return {
      first, duckdb: m.duckdb_ready, live: m.first_render, bytes, files, preview: m.preview !== undefined,
      // The breakdown: app.js starts (after the chart library when that was
      // parsed first); the first chart drawn by ECharts (after a light
      // canvas drawing when the library was not there yet); the engine
      // instantiated in the worker index.html starts.
      app: m.app, echarts: m.preview_echarts ?? m.preview, sketch: !!window.__dashboard.sketch, engine: m.engine,
      // DETAIL=1: the steps from "engine ready" to "interactive", and each
      // query of the start (start time since navigation + time to result).
      steps: { manifest: m.manifest, duckdb_ready: m.duckdb_ready, duckdb: m.duckdb, lookups: m.lookups, first_render: m.first_render },
      boot: (window.__dashboard.queries || []).filter((q) => q.t1 <= m.first_render + 1).map((q) => `${Math.round(q.t0)}+${Math.round(q.t1 - q.t0)} ms ${q.rows} rows: ${q.sql}`),
      attached: Object.entries(window.__dashboard.attachMs || {}).map(([k, v]) => `${k.split('/').pop()}: wait ${v[0]} ms, attach ${v[1]} ms`),
    };
  });
  r.dataFiles = server.log.slice(logStart).filter((e) => e.path.endsWith('.duckdb') && e.status === 200).length;
  return { page, r };
}

const sizes = { 1440: [1440, 900], 390: [390, 844] };
const changes = () => ({ first: { 7: [], 30: [], 365: [] }, again: { 7: [], 30: [], 365: [] }, filter: [], filterBack: [] });
const results = { ...changes(), grains: {}, narrow: changes() };
for (const [name] of Object.entries(sizes)) results[name] = { cold: [], warm: [], floor: [] };
const loads = [];
for (let run = 0; run < RUNS; run++) {
  for (const [name, [w, h]] of Object.entries(sizes)) {
    const b = await launch();
    const cold = await visit(b.context, w, h, server.log.length);
    results[name].cold.push(cold.r);
    // The cold visit is a normal visit at both sizes, so each warm visit is
    // a returning user's: the same range and filter changes in the same
    // session. They are also what makes Chromium keep DuckDB-WASM's compiled
    // code for the next visit: V8 writes the engine's code-cache entry once
    // a visit has produced 1 MB of optimized code (here after the third
    // range change); a visit that only loads the page writes none, even if
    // left open (bench/RESULTS.md, 2026-11-29 18:10 and 2026-11-30 14:05).
    // The tables report the changes' times at 1440×900 (breakdown included)
    // and, first time in the session, at 390×844.
    const at = name === '1440' ? results : results.narrow;
    // First change to each range: its files are fetched and attached on the way.
    for (const days of [30, 365, 7]) {
      const r = await preset(cold.page, days);
      at.first[days].push(r.ms);
      if (name === '1440') {
        parts[days].push(r.parts);
        results.grains[days] = r.grain;
      }
    }
    for (const days of [30, 365, 7]) at.again[days].push((await preset(cold.page, days)).ms);
    // A filter change on the default 7-day view (the lists narrow, chips,
    // map), then back to no filter (a view seen before: its results are
    // kept by the page, no query).
    at.filter.push(await filter(cold.page, '#filter-region', 'SA1', name === '1440'));
    at.filterBack.push(await filter(cold.page, '#filter-region', '', name === '1440'));
    // Downloaded files are checked and kept in the Cache API in the background.
    await cold.page.evaluate(() => window.__dashboard.kept && window.__dashboard.kept());
    await cold.page.close();
    const cache = wasmCodeCache(b.userDataDir);
    // FLOOR=1: the blank page before the warm visit on even runs, after it on odd ones.
    if (FLOOR && run % 2 === 0) results[name].floor.push(await floorVisit(b.context, w, h));
    const warm = await visit(b.context, w, h, server.log.length);
    warm.r.codeCache = cache;
    results[name].warm.push(warm.r);
    await warm.page.close();
    if (FLOOR && run % 2 === 1) results[name].floor.push(await floorVisit(b.context, w, h));
    await b.close();
    loads.push(os.loadavg()[0]);
  }
}
// CODE_CACHE=1: the engine's code cache alone. Two profiles, each opened
// once at 1440×900: one visit that used the page (ranges and filters: enough
// optimized code for V8 to write its cache entry), one that only waited for
// it (no entry); then warm visits to each, alternating, RUNS times.
const ab = { with: [], without: [], bytes: {} };
if (process.env.CODE_CACHE) {
  const profiles = {};
  for (const kind of ['with', 'without']) {
    const b = await launch();
    const first = await visit(b.context, 1440, 900, server.log.length);
    if (kind === 'with') {
      for (const days of [30, 365, 7]) await preset(first.page, days);
      for (const v of ['SA1', 'VIC1', '']) await filter(first.page, '#filter-region', v);
    }
    await first.page.waitForTimeout(3000);
    await first.page.close();
    ab.bytes[kind] = wasmCodeCache(b.userDataDir);
    profiles[kind] = b;
  }
  for (let run = 0; run < RUNS; run++) {
    for (const kind of ['with', 'without']) {
      const v = await visit(profiles[kind].context, 1440, 900, server.log.length);
      ab[kind].push(v.r);
      await v.page.close();
    }
  }
  for (const b of Object.values(profiles)) await b.close();
}
await server.close();

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined && x !== null).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const ms = (x) => `${Math.round(x)} ms`;
const rows = manifest.files.reduce((n, f) => n + (f.rows || 0), 0);
const bytes = manifest.files.reduce((n, f) => n + (f.bytes || 0), 0);
const summaryJson = JSON.stringify(manifest.summary ?? null);
const { gzipSync } = await import('node:zlib');
console.log(`first-paint summary in manifest.json: ${(summaryJson.length / 1e3).toFixed(1)} kB (${(gzipSync(summaryJson).length / 1e3).toFixed(1)} kB gzip)`);
console.log(`dashboard_speed: ${manifest.files.length} data files, ${rows.toLocaleString('en')} rows, ${(bytes / 1e6).toFixed(1)} MB; Chromium headless, bundled assets, loopback (gzip for text files); median of ${RUNS}`);
console.log('');
console.log('| visit | KPIs + first chart (summary) | DuckDB-WASM ready | interactive (live numbers) | bytes received before first chart | data files downloaded |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const name of Object.keys(sizes)) {
  for (const kind of ['cold', 'warm']) {
    const xs = results[name][kind];
    const pick = (k) => median(xs.map((x) => x[k]));
    console.log(`| ${kind}, ${sizes[name].join('×')} | ${ms(pick('first'))} | ${ms(pick('duckdb'))} | ${ms(pick('live'))} | ${(pick('bytes') / 1e3).toFixed(0)} kB (${pick('files')} files) | ${pick('dataFiles')} |`);
  }
}
console.log('');
console.log('| visit | app.js starts | first chart by ECharts | first paint was a light canvas drawing | engine instantiated in the early worker | engine code cache in the profile before the visit |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const name of Object.keys(sizes)) {
  for (const kind of ['cold', 'warm']) {
    const xs = results[name][kind];
    const pick = (k) => median(xs.map((x) => x[k]));
    const cache = kind === 'warm' ? xs.map((x) => `${(x.codeCache / 1e6).toFixed(1)} MB`).join(', ') : '';
    console.log(`| ${kind}, ${sizes[name].join('×')} | ${ms(pick('app'))} | ${ms(pick('echarts'))} | ${xs.filter((x) => x.sketch).length} of ${xs.length} | ${ms(pick('engine'))} | ${cache} |`);
  }
}
if (process.env.DETAIL) {
  for (const name of Object.keys(sizes)) {
    const w = results[name].warm[results[name].warm.length - 1];
    console.log('');
    console.log(`warm ${sizes[name].join('×')}, last run: marks (ms since navigation) ${JSON.stringify(Object.fromEntries(Object.entries(w.steps).map(([k, v]) => [k, Math.round(v)])))}`);
    for (const line of w.attached) console.log(`  file ${line}`);
    for (const line of w.boot) console.log(`  query ${line}`);
  }
}
console.log('');
console.log('| change (the cold visit\'s session) | 1440×900: first time in the session | again (results kept) | 390×844: first time | again |');
console.log('| --- | ---: | ---: | ---: | ---: |');
const nr = results.narrow;
for (const days of [7, 30, 365]) {
  const note = days === 7 ? ', the opening view' : '';
  console.log(`| range → ${days} days (${results.grains[days]} grain${note}) | ${ms(median(results.first[days]))} | ${ms(median(results.again[days]))} | ${ms(median(nr.first[days]))} | ${ms(median(nr.again[days]))} |`);
}
console.log(`| filter change (region SA1, 7 days at 5-minute grain) | ${ms(median(results.filter))} | | ${ms(median(nr.filter))} | |`);
console.log(`| filter back to none (seen before) | ${ms(median(results.filterBack))} | | ${ms(median(nr.filterBack))} | |`);
console.log('');
console.log('| first change (1440×900, medians) | page time | files fetched | bytes | wait for bytes (longest) | register + ATTACH (longest) | queries | worker busy with queries | drawing (summed) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const filterFirst = parts.filter.filter((_, i) => i % 2 === 0);
for (const [label, xs, times] of [['range → 30 days', parts[30], results.first[30]], ['range → 365 days', parts[365], results.first[365]], ['range → 7 days', parts[7], results.first[7]], ['filter region SA1', filterFirst, results.filter]]) {
  const pick = (k) => median(xs.map((x) => x[k]));
  console.log(`| ${label} | ${ms(median(times))} | ${pick('files')} (${xs[0]?.names.join(', ') || ''}) | ${(pick('bytes') / 1e3).toFixed(0)} kB | ${ms(pick('fetch'))} | ${ms(pick('attach'))} | ${pick('queries')} | ${ms(pick('queryMs'))} | ${ms(pick('draw'))} |`);
  // DETAIL=1: each query (start from the change's first query + time from
  // submit to result, in the worker's queue) and each panel's drawing, last run.
  if (process.env.DETAIL) for (const line of xs[xs.length - 1]?.detail || []) console.log(`|   ${line.replace(/\|/g, '/')} |`);
}
if (FLOOR) {
  console.log('');
  console.log('| warm visit (FLOOR=1, same profile, alternating) | blank page: engine instantiated in the early worker | blank page: + connect + SELECT 42 | dashboard: DuckDB-WASM ready | dashboard: interactive |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const name of Object.keys(sizes)) {
    const f = results[name].floor;
    const wv = results[name].warm;
    const all = (xs, k) => xs.map((x) => Math.round(x[k])).join(', ');
    console.log(`| ${sizes[name].join('×')} | ${ms(median(f.map((x) => x.ready)))} (${all(f, 'ready')}) | ${ms(median(f.map((x) => x.query)))} | ${ms(median(wv.map((x) => x.duckdb)))} (${all(wv, 'duckdb')}) | ${ms(median(wv.map((x) => x.live)))} (${all(wv, 'live')}) |`);
  }
}
console.log('');
console.log(`load average (1 min) after each browser: ${loads.map((x) => x.toFixed(1)).join(', ')}`);
if (process.env.CODE_CACHE) {
  console.log('');
  console.log('| warm visit, 1440×900 (CODE_CACHE=1, alternating) | engine code cache in the profile | engine instantiated | DuckDB-WASM ready | interactive |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const kind of ['with', 'without']) {
    const pick = (k) => median(ab[kind].map((x) => x[k]));
    const all = (k) => ab[kind].map((x) => Math.round(x[k])).join(', ');
    console.log(`| after a visit that ${kind === 'with' ? 'used the page' : 'only loaded it'} | ${(ab.bytes[kind] / 1e6).toFixed(1)} MB | ${ms(pick('engine'))} (${all('engine')}) | ${ms(pick('duckdb'))} | ${ms(pick('live'))} |`);
  }
}
