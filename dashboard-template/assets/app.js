// The dashboard page: DuckDB-WASM in the browser over the exported .duckdb
// files. Every query is built from the `dashboard:` configuration that the
// site renderer embedded in index.html (#page-config), so column names live in
// analytics.yml, not here.
//
// Data files are fetched once and kept in the Cache API under their sha256
// from manifest.json: a revisit downloads only files whose hash changed, and
// manifest.json itself is revalidated (ETag) on every visit. Period files
// (e.g. hourly half-years) are attached only when the date range needs them.
// Anything that goes wrong shows a message on the page; it never goes blank.
//
// The view (range, filters, tab, toggled measures) lives in the URL's hash,
// so a copied address reopens the same view.

const PAGE = JSON.parse(document.getElementById('page-config').textContent);
const CFG = PAGE.config;
const CACHE_NAME = 'analytics-data-v1';
const TZ = CFG.time_zone || '';

// What the browser tests and the benchmark read.
const probe = (window.__dashboard = {
  started: performance.now(),
  ready: false,
  renders: 0,
  firstChartMs: null,
  lastRefreshMs: null,
  grain: null,
  downloaded: [],
  fromCache: [],
  missing: [],
  bundle: null,
  errors: [],
  marks: {},
  queries: [],
  statusLog: [],
  unmatchedColors: {},
  charts: {},
  lastCsv: null,
  drawMs: {},
  attachMs: {},
});
const mark = (name) => (probe.marks[name] = Math.round(performance.now()));
// When this script starts (an async module: it does not wait for the chart
// library, which it runs itself after the first paint).
mark('app');

const state = {
  manifest: null,
  db: null,
  conn: null,
  files: new Map(), // path -> Promise<alias|null>
  from: null,
  to: null,
  days: null, // a preset (relative to the newest data), or null for explicit dates
  filters: {}, // dimension name -> [values]
  measures: {}, // chart index -> the measure shown (toggle)
  lookups: {},
  combos: null, // distinct dimension combinations of the current range
  generation: 0,
  dataMin: null,
  dataMax: null,
  tab: 'overview',
  unclipped: {}, // chart index -> the reader asked for the whole scale
  lastDay: null, // {date, last, complete}: the newest day at the finest grain
};

// ---------------------------------------------------------------- messages

const shown = new Set();
// `scope: 'range'` messages describe the current selection and go away when
// it changes; the others (a missing file, a failed library) stay.
function message(text, kind = 'warning', key = text, scope = 'page') {
  if (kind === 'error') probe.errors.push(text);
  if (shown.has(key)) return;
  shown.add(key);
  const box = document.getElementById('messages');
  const div = document.createElement('div');
  div.className = 'message ' + kind;
  div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  div.dataset.key = key;
  div.dataset.scope = scope;
  div.textContent = text;
  box.appendChild(div);
}
function clearRangeMessages() {
  for (const div of document.querySelectorAll('#messages .message[data-scope="range"]')) {
    shown.delete(div.dataset.key);
    div.remove();
  }
}

window.addEventListener('unhandledrejection', (e) => {
  message('Something went wrong: ' + errorText(e.reason), 'error');
});

function errorText(e) {
  if (!e) return 'unknown error';
  return (e.message || String(e)).replace(/\s+/g, ' ').slice(0, 400);
}

// The status line names the phase the page is in (downloading, compiling,
// querying…); `busy` dims the numbers and charts while a query runs.
function status(text, busy = true) {
  const el = document.getElementById('status');
  document.getElementById('status-text').textContent = text;
  el.classList.toggle('idle', !busy);
  probe.statusLog.push(text);
  if (probe.statusLog.length > 200) probe.statusLog.shift();
}
function setBusy(on) {
  document.body.classList.toggle('busy', on);
  const charts = document.getElementById('charts');
  if (charts) charts.setAttribute('aria-busy', on ? 'true' : 'false');
}

// ---------------------------------------------------------------- helpers

const $ = (id) => document.getElementById(id);
const sqlString = (s) => "'" + String(s).replaceAll("'", "''") + "'";
const ident = (s) => '"' + String(s).replaceAll('"', '""') + '"';

function dayNumber(iso) {
  const [y, m, d] = iso.split('-').map(Number);
  return Date.UTC(y, m - 1, d) / 86400000;
}
function isoDay(n) {
  return new Date(n * 86400000).toISOString().slice(0, 10);
}
function rangeDays(from, to) {
  return dayNumber(to) - dayNumber(from) + 1;
}
function fmtBytes(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  if (n >= 1e3) return (n / 1e3).toFixed(0) + ' kB';
  return n + ' B';
}
// One formatter per number of decimals (toLocaleString with options builds
// a new one on every call: tens of milliseconds over a chart's labels).
const numberFormats = new Map();
function fmtNumber(v, decimals = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!numberFormats.has(decimals)) {
    numberFormats.set(decimals, new Intl.NumberFormat('en-AU', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }));
  }
  return numberFormats.get(decimals).format(Number(v));
}
// Times are naive market timestamps: shown as stored (UTC formatting of the
// epoch value, no browser time zone applied).
function fmtTime(ms, grain) {
  const iso = new Date(ms).toISOString();
  return grain === 'day' ? iso.slice(0, 10) : iso.slice(0, 16).replace('T', ' ');
}
const tzNote = TZ ? ` (${TZ})` : '';
const dimension = (name) => CFG.dimensions.find((d) => d.name === name);
const measure = (name) => CFG.measures.find((m) => m.name === name);
const dimLabel = (d) => d.label || d.name;
const measureLabel = (m) => m.label || m.name;
function measureSql(m, grain) {
  const sql = typeof m.sql === 'string' ? m.sql : m.sql[grain];
  return `CAST((${sql}) AS DOUBLE)`;
}
function absolute(url) {
  return url ? new URL(url, document.baseURI).href : url;
}
function withUnit(m, v, decimals = m.decimals ?? 1) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : fmtNumber(v, decimals) + (m.unit ? ' ' + m.unit : '');
}
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
const isPhone = () => window.matchMedia('(max-width: 900px)').matches;

function rows(table) {
  return table.toArray().map((r) => r.toJSON());
}

function logQuery(sql, t0, t1, n) {
  probe.queries.push({ sql: sql.slice(0, 70), query_ms: Math.round(t1 - t0), rows: n, convert_ms: Math.round(performance.now() - t1), t0, t1, seq: (probe.querySeq = (probe.querySeq || 0) + 1) });
  if (probe.queries.length > 40) probe.queries.shift();
}

// The data cannot change while the page is open (the manifest is read once),
// so a query's result is kept under its SQL text: going back to a range or a
// filter already seen costs no query. Results are never modified by callers.
const RESULTS_KEPT = 120;
const resultCache = new Map();
async function cached(kind, sql, run) {
  const key = kind + '\u0000' + sql;
  if (resultCache.has(key)) {
    const hit = resultCache.get(key);
    resultCache.delete(key);
    resultCache.set(key, hit); // most recently used last
    probe.keptHits = (probe.keptHits || 0) + 1;
    probe.queries.push({ sql: sql.slice(0, 70), cached: true });
    if (probe.queries.length > 40) probe.queries.shift();
    return hit;
  }
  probe.ran = (probe.ran || 0) + 1;
  const p = run();
  resultCache.set(key, p);
  p.catch(() => resultCache.delete(key));
  while (resultCache.size > RESULTS_KEPT) resultCache.delete(resultCache.keys().next().value);
  return p;
}

// Column arrays of a result (typed arrays for numbers): much cheaper than
// row objects for the thousands of points of a time chart.
function queryColumns(sql) {
  return cached('c', sql, async () => {
    const t0 = performance.now();
    const table = await state.conn.query(sql);
    const t1 = performance.now();
    const out = {};
    for (const f of table.schema.fields) out[f.name] = table.getChild(f.name).toArray();
    logQuery(sql, t0, t1, table.numRows);
    return { n: table.numRows, ...out };
  });
}

function query(sql) {
  return cached('r', sql, async () => {
    const t0 = performance.now();
    const table = await state.conn.query(sql);
    const t1 = performance.now();
    const out = rows(table);
    logQuery(sql, t0, t1, out.length);
    return out;
  });
}

// ---------------------------------------------------------------- manifest

async function loadManifest() {
  // `no-cache` revalidates with the server (ETag / Last-Modified): a 304
  // costs no download, and a new export is seen at once.
  const early = window.__early && window.__early.manifest;
  const resp = await (early || fetch('manifest.json', { cache: 'no-cache' }));
  if (!resp.ok) throw new Error(`manifest.json could not be loaded (HTTP ${resp.status}): no data has been exported here yet`);
  const manifest = await resp.json();
  if (!Array.isArray(manifest.files)) throw new Error('manifest.json has no `files` list');
  return manifest;
}

function datasetFiles(dataset) {
  return state.manifest.files.filter((f) => f.dataset === dataset);
}

function showFreshness() {
  const m = state.manifest;
  const exported = new Date(m.exported_at);
  const age = Math.round((Date.now() - exported.getTime()) / 60000);
  const ago = Number.isNaN(age) ? '' : age < 90 ? ` (${age} min ago)` : age < 48 * 60 ? ` (${Math.round(age / 60)} h ago)` : ` (${Math.round(age / 1440)} days ago)`;
  const newest = m.files.map((f) => f.max_date).filter(Boolean).sort().pop();
  $('freshness').innerHTML = '';
  const add = (label, value) => {
    const span = document.createElement('span');
    span.append(label + ' ');
    const b = document.createElement('b');
    b.textContent = value;
    span.append(b);
    $('freshness').append(span, document.createElement('br'));
  };
  add('Data to', newest || '–');
  add('Exported', (Number.isNaN(exported.getTime()) ? m.exported_at : exported.toISOString().replace('T', ' ').slice(0, 16) + ' UTC') + ago);
}

function showFiles() {
  const body = $('files').querySelector('tbody');
  body.innerHTML = '';
  for (const f of state.manifest.files) {
    const tr = document.createElement('tr');
    tr.dataset.path = f.path;
    const cells = [f.dataset, f.path, f.grain || '', f.period || '', `${f.min_date || ''} – ${f.max_date || ''}`, (f.rows ?? 0).toLocaleString('en-AU'), fmtBytes(f.bytes ?? 0)];
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i >= 5) td.className = 'num';
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

// ---------------------------------------------------------------- DuckDB

// Apache Arrow (DuckDB-WASM's result format, a classic script the import
// map's shim re-exports) loads with DuckDB, not before the first paint.
function loadArrow() {
  if (globalThis.Arrow) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = absolute(PAGE.assets.arrow_script);
    s.onload = resolve;
    s.onerror = () => reject(new Error('could not load ' + s.src));
    document.head.appendChild(s);
  });
}

// Run in the threaded (`coi`) build's worker before its script: the
// Emscripten module's views of the WebAssembly memory (Module.HEAPU8 and the
// others) renewed whenever the memory has grown. DuckDB-WASM 1.32 copies
// query texts in and results out through Module.HEAPU8, which only the
// thread growing the memory renews. When one of DuckDB's own threads grows
// it during a query, the worker's view stays the old, shorter one, and a
// result the worker then places beyond it is copied short: an empty table
// (a chart "empty", a KPI '–') or an Arrow error (duckdb-wasm#2256; still so
// in 1.33). The module is the object that gets `wasmMemory` assigned, caught
// by a setter on Object.prototype that is removed as soon as it has fired.
function freshHeapViews() {
  const kinds = { HEAP8: Int8Array, HEAPU8: Uint8Array, HEAP16: Int16Array, HEAPU16: Uint16Array, HEAP32: Int32Array, HEAPU32: Uint32Array, HEAPF32: Float32Array, HEAPF64: Float64Array, HEAP64: globalThis.BigInt64Array, HEAPU64: globalThis.BigUint64Array };
  Object.defineProperty(Object.prototype, 'wasmMemory', {
    configurable: true,
    get() {
      return undefined;
    },
    set(memory) {
      Object.defineProperty(this, 'wasmMemory', { value: memory, writable: true, enumerable: true, configurable: true });
      if (!(memory instanceof WebAssembly.Memory) || !(this.HEAPU8 instanceof Uint8Array)) return;
      delete Object.prototype.wasmMemory;
      for (const [name, Kind] of Object.entries(kinds)) {
        let view = this[name];
        if (!Kind || !(view instanceof Kind)) continue;
        Object.defineProperty(this, name, {
          enumerable: true,
          configurable: true,
          get() {
            if (view.buffer !== memory.buffer) view = new Kind(memory.buffer);
            return view;
          },
          set(v) {
            view = v;
          },
        });
      }
    },
  });
}

async function startDuckDB() {
  await loadArrow();
  const duckdb = await import(absolute(PAGE.assets.duckdb_module));
  const bundles = PAGE.assets.bundles;
  const features = await duckdb.getPlatformFeatures();
  // Multi-threaded when the page is cross-origin isolated, else single-threaded.
  const order = [];
  if (bundles.coi && self.crossOriginIsolated && features.crossOriginIsolated) order.push('coi');
  if (bundles.eh && features.wasmExceptions) order.push('eh');
  if (bundles.mvp) order.push('mvp');
  for (const n of Object.keys(bundles)) if (!order.includes(n)) order.push(n);
  let last;
  // The worker index.html started before the chart library was parsed
  // (it has been downloading and compiling the engine since).
  const early = window.__early && window.__early.duck;
  if (early && order[0] === early.name) {
    try {
      await early.ready;
      // When the worker had the engine instantiated (before the page could use it).
      probe.marks.engine = Math.round(early.at);
      const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), early.worker);
      state.db = db;
      state.conn = await db.connect();
      probe.bundle = early.name;
      probe.earlyWorker = true;
      return;
    } catch (e) {
      last = e;
      early.worker.terminate();
      state.db = null;
      state.conn = null;
    }
  } else if (early) early.worker.terminate();
  for (const name of order) {
    const bundle = bundles[name];
    const workerUrl = URL.createObjectURL(
      new Blob([`${name === 'coi' ? `(${freshHeapViews})();\n` : ''}importScripts(${JSON.stringify(absolute(bundle.mainWorker))});`], { type: 'text/javascript' }),
    );
    const worker = new Worker(workerUrl);
    try {
      const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
      await db.instantiate(absolute(bundle.mainModule), absolute(bundle.pthreadWorker));
      state.db = db;
      state.conn = await db.connect();
      probe.bundle = name;
      if (name === 'coi') {
        const threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
        await state.conn.query(`SET threads = ${threads}`).catch(() => {});
        probe.threads = threads;
      }
      return;
    } catch (e) {
      // Try the next build (e.g. the threaded one where threads are refused).
      last = e;
      worker.terminate();
    } finally {
      URL.revokeObjectURL(workerUrl);
    }
  }
  throw last || new Error('no DuckDB-WASM build is configured');
}

async function fileBytes(file) {
  const url = new URL(file.path, document.baseURI);
  const key = new URL(url);
  key.searchParams.set('sha256', file.sha256);
  const cache = 'caches' in self ? await caches.open(CACHE_NAME).catch(() => null) : null;
  if (cache) {
    const hit = await cache.match(key.href);
    if (hit) {
      probe.fromCache.push(file.path);
      return new Uint8Array(await hit.arrayBuffer());
    }
  }
  pending.add(file.path);
  showLoading();
  let buf;
  let spare;
  try {
    const resp = await fetch(url.href, { cache: 'no-store' });
    if (!resp.ok) {
      const err = new Error(`HTTP ${resp.status}`);
      err.missing = true;
      throw err;
    }
    // A second reading of the same response (the browser keeps its bytes),
    // for the check and the Cache API below.
    spare = resp.clone();
    buf = await resp.arrayBuffer();
  } finally {
    pending.delete(file.path);
    showLoading();
  }
  probe.downloaded.push(file.path);
  // Checked against the manifest and kept in the Cache API in the
  // background, once the view being drawn is done: DuckDB gets the bytes at
  // once, and the copy, the hash and the cache write (~40 ms of CPU for a
  // few MB) do not compete with the change's queries and drawing.
  const keep = (async () => {
    await whenIdle();
    const copy = await spare.arrayBuffer();
    if (crypto.subtle && file.sha256) {
      const digest = await crypto.subtle.digest('SHA-256', copy);
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      if (hex !== file.sha256.toLowerCase()) {
        message(`${file.path} does not match manifest.json (a newer export is being published?): reload in a minute to see consistent data.`, 'warning');
        return;
      }
    }
    if (!cache) return;
    await cache.put(key.href, new Response(copy, { headers: { 'content-type': 'application/octet-stream' } }));
    // Drop older versions of the same file.
    for (const req of await cache.keys()) {
      const u = new URL(req.url);
      if (u.pathname === url.pathname && u.searchParams.get('sha256') !== file.sha256) await cache.delete(req);
    }
  })();
  keep.catch(() => {});
  keeping.push(keep);
  return new Uint8Array(buf);
}
// The background checks and cache writes (the tests wait for them).
const keeping = [];
// Resolves when no view is being drawn (at most 5 s later: a page that never
// draws one still keeps its files).
const idleWaiters = [];
function whenIdle() {
  if (probe.ready) return Promise.resolve();
  return new Promise((resolve) => {
    idleWaiters.push(resolve);
    setTimeout(resolve, 5000);
  });
}
probe.kept = () => Promise.allSettled(keeping);

// Downloads in flight, named on the status line while DuckDB is not the
// thing being waited for.
const pending = new Set();
let duckReady = false;
function showLoading() {
  if (!pending.size) {
    if (!duckReady) status('Starting DuckDB-WASM (compiling the database engine)…');
    return;
  }
  const files = [...pending].map((p) => {
    const f = state.manifest.files.find((x) => x.path === p);
    return `${p.split('/').pop()}${f && f.bytes ? ' (' + fmtBytes(f.bytes) + ')' : ''}`;
  });
  status(`${duckReady ? '' : 'Starting DuckDB-WASM · '}Downloading ${files.join(', ')}…`);
}

// Drops cached files that the manifest no longer lists at that hash (an old
// period, a replaced export), so the cache holds one copy of the current site.
async function pruneCache() {
  if (!('caches' in self)) return;
  const cache = await caches.open(CACHE_NAME);
  const current = new Set(state.manifest.files.map((f) => {
    const key = new URL(f.path, document.baseURI);
    key.searchParams.set('sha256', f.sha256);
    return key.href;
  }));
  const dirs = new Set(state.manifest.files.map((f) => new URL('.', new URL(f.path, document.baseURI)).pathname));
  for (const req of await cache.keys()) {
    const u = new URL(req.url);
    if (dirs.has(new URL('.', u).pathname) && !current.has(req.url)) await cache.delete(req);
  }
}

// Attaches one manifest file (once); resolves to its alias, or null when the
// file is missing (after showing a message).
const bytesByPath = new Map();
// Starts (once) fetching a file's bytes, before DuckDB is even ready.
function prefetch(file) {
  if (!bytesByPath.has(file.path)) {
    const p = fileBytes(file);
    p.catch(() => {}); // reported by attach()
    bytesByPath.set(file.path, p);
  }
  return bytesByPath.get(file.path);
}

function filesInRange(dataset, from, to) {
  return datasetFiles(dataset).filter(
    (f) => !from || !f.min_date || !f.max_date || (f.max_date >= from && f.min_date <= to),
  );
}

// `quiet`: a missing file is not reported (the caller reads another).
function attach(file, quiet = false) {
  if (!state.files.has(file.path)) {
    const alias = 'f_' + file.path.replace(/[^A-Za-z0-9]/g, '_');
    state.files.set(
      file.path,
      (async () => {
        try {
          const t0 = performance.now();
          const bytes = await prefetch(file);
          const t1 = performance.now();
          bytesByPath.delete(file.path); // the worker owns them now
          status(`Attaching ${file.path.split('/').pop()}…`);
          const name = alias + '.duckdb';
          await state.db.registerFileBuffer(name, bytes);
          await state.conn.query(`ATTACH ${sqlString(name)} AS ${ident(alias)} (READ_ONLY)`);
          // Waiting for the bytes, then registering and attaching them (ms).
          probe.attachMs[file.path] = [Math.round(t1 - t0), Math.round(performance.now() - t1)];
          return alias;
        } catch (e) {
          probe.missing.push(file.path);
          if (quiet) return null;
          const dates = file.min_date ? ` (${file.min_date} – ${file.max_date})` : '';
          message(`Data file ${file.path}${dates} could not be loaded (${errorText(e)}): ${file.period ? 'those dates are left out' : 'the views that need it are empty'}.`, 'warning', 'missing:' + file.path);
          const row = document.querySelector(`#files tr[data-path="${CSS.escape(file.path)}"]`);
          if (row) row.classList.add('missing');
          return null;
        }
      })(),
    );
  }
  return state.files.get(file.path);
}

// SQL for a dataset's rows over [from, to]: the union of the files it needs
// (or of another `table` those files hold, e.g. a stored rollup).
async function relation(dataset, from, to, table = null) {
  return relationOf(filesInRange(dataset, from, to), table);
}
async function relationOf(files, table = null) {
  if (files.length === 0) return null;
  const aliases = (await Promise.all(files.map(attach)))
    .map((a, i) => (a ? `SELECT * FROM ${ident(a)}.${ident(table || files[i].table)}` : null))
    .filter(Boolean);
  if (aliases.length === 0) return null;
  return aliases.length === 1 ? `(${aliases[0]})` : `(${aliases.join(' UNION ALL BY NAME ')})`;
}

// The rows of a dataset over [from, to], attached only when a view needs
// them (`get()`, once): a view the stored rollups serve downloads the
// rollups files and never the rows (a unit filter, a drill-down, Analyze or
// the CSV then fetch them). `key` names the files, for the kept results.
function rowsOf(dataset, from, to) {
  const files = filesInRange(dataset, from, to);
  let p = null;
  return {
    dataset,
    key: `${dataset}|${from}|${to}|${files.map((f) => f.path).join(',')}`,
    get() {
      if (!p) p = relation(dataset, from, to);
      return p;
    },
  };
}
// The rollups file the exporter writes next to each rows file of a grain's
// dataset (src/dashboard/rollups.rs: `data/x.duckdb` → `data/x.rollups.duckdb`,
// dataset `<dataset>.rollups`).
const ROLLUPS = '.rollups';
const rollupsPath = (path) => path.replace(/\.duckdb$/, '') + '.rollups.duckdb';
// Whether every rows file of the range has its rollups file listed (a site
// exported before they were separate files has none: the rows are read).
function rollupsCover(dataset, from, to) {
  if (!probe.useStoredRollups || !((PAGE.stored_rollups || {})[dataset] || []).length) return false;
  const paths = new Set(datasetFiles(dataset + ROLLUPS).map((f) => f.path));
  const files = filesInRange(dataset, from, to);
  return files.length > 0 && files.every((f) => paths.has(rollupsPath(f.path)));
}

function coverage(dataset) {
  const files = datasetFiles(dataset);
  const mins = files.map((f) => f.min_date).filter(Boolean).sort();
  const maxs = files.map((f) => f.max_date).filter(Boolean).sort();
  return files.length ? { min: mins[0], max: maxs[maxs.length - 1] } : null;
}

function datasetHasColumns(dataset, names) {
  const files = datasetFiles(dataset);
  if (!files.length) return false;
  const cols = files[0].columns;
  // An older manifest without column lists: assume they are there.
  if (!Array.isArray(cols) || !cols.length) return true;
  return names.every((n) => cols.some((c) => c.name === n));
}

// ---------------------------------------------------------------- grain

function chooseGrain(from, to) {
  const days = rangeDays(from, to);
  const grains = CFG.grains;
  for (const g of grains) {
    const cov = coverage(g.dataset);
    if (!cov) continue;
    if (g.max_days != null && days > g.max_days) continue;
    // The grain must hold the whole range (clamped to the data we have).
    const end = to < state.dataMax ? to : state.dataMax;
    if (cov.min <= from && cov.max >= end) return g;
  }
  return [...grains].reverse().find((g) => coverage(g.dataset)) || grains[grains.length - 1];
}

// ---------------------------------------------------------------- filters

const selected = (name) => state.filters[name] || [];

function filterSql(except = null) {
  const parts = [];
  for (const d of CFG.dimensions) {
    if (d.name === except || (Array.isArray(except) && except.includes(d.name))) continue;
    const v = selected(d.name);
    if (v.length === 1) parts.push(`${ident(d.column)} = ${sqlString(v[0])}`);
    else if (v.length > 1) parts.push(`${ident(d.column)} IN (${v.map(sqlString).join(', ')})`);
  }
  return parts;
}

function baseSql(grain, rel, except = null) {
  const where = [`${ident(CFG.date_column)} BETWEEN DATE ${sqlString(state.from)} AND DATE ${sqlString(state.to)}`, ...filterSql(except)];
  return `(SELECT *, ${grain.time} AS _time FROM ${rel} WHERE ${where.join(' AND ')}) AS t`;
}

// ---------------------------------------------------------------- rollups

// The rows of the current range aggregated once (per range and grain) into
// the rollups `dashboard.rollups` declares, as temporary tables: a view whose
// dimensions (grouped by or filtered on) a rollup keeps, and whose measures
// declare how they roll up (`rollup: {columns, sql}`), reads the rollup, a
// few thousand rows instead of every unit's rows. A filter change then scans
// no data file. `window.__dashboard.setRollups(false)` draws from the rows
// (the browser test compares both).
probe.useRollups = true;
probe.sources = {};
probe.setRollups = (on) => {
  probe.useRollups = !!on;
  refresh();
};
const escapeRe = (s) => String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const mentions = (sql, name) => new RegExp(`(^|[^A-Za-z0-9_])${escapeRe(name)}([^A-Za-z0-9_]|$)`).test(sql);
// Whether rollup `r` can give measure `m`: it declares how, and its SQL
// names no dimension column (or `_time`) the rollup drops.
function rollupServes(r, m) {
  if (!m.rollup) return false;
  const sql = m.rollup.sql;
  if (r.time === false && mentions(sql, '_time')) return false;
  return CFG.dimensions.every((d) => r.by.includes(d.name) || !mentions(sql, d.column));
}
// The rollup's aggregate columns: those of every measure it can give.
function rollupColumns(r) {
  const cols = new Map();
  for (const m of CFG.measures) if (rollupServes(r, m)) for (const [c, sql] of Object.entries(m.rollup.columns)) cols.set(c, sql);
  return cols;
}
// The dataset's columns the grain's timestamp is made from (e.g. date and
// time): the build groups by them and makes the timestamp once per group,
// not once per row. Null when the manifest has no column list.
function timeColumns(grain) {
  const cols = datasetFiles(grain.dataset)[0]?.columns;
  if (!Array.isArray(cols) || !cols.length) return null;
  const names = cols.map((c) => c.name).filter((n) => mentions(grain.time, n));
  return names.length ? names : null;
}
// Below this many rows in the range (e.g. a year of daily rows) the panels
// read the rows: building the rollups would cost more than it saves
// (bench/dashboard_changes). The browser test sets it to 0.
probe.rollupMinRows = 200000;
function rowsInRange(grain) {
  let n = 0;
  for (const f of filesInRange(grain.dataset, state.from, state.to)) {
    if (!f.rows) continue;
    if (!f.min_date || !f.max_date) {
      n += f.rows;
      continue;
    }
    const days = rangeDays(f.min_date, f.max_date);
    const lo = f.min_date > state.from ? f.min_date : state.from;
    const hi = f.max_date < state.to ? f.max_date : state.to;
    n += (f.rows * Math.max(0, rangeDays(lo, hi))) / days;
  }
  return n;
}
const rollupTables = new Map(); // index|grain|range|files -> Promise<table name | null>
const ROLLUP_RANGES_KEPT = 12;
let rollupCount = 0;
// The rollups the exporter stored in each file of a dataset
// (src/dashboard/rollups.rs): per date (and per timestamp when they keep
// the time), so a range's rollup is read from them, a few thousand rows,
// instead of aggregated from the rows. `setStoredRollups(false)` builds
// them from the rows as before (bench/dashboard_changes compares both).
probe.useStoredRollups = true;
probe.setStoredRollups = (on) => {
  probe.useStoredRollups = !!on;
  refresh();
};
const storedRollupTables = new Set(); // temp tables made from stored rollups
function storedRollup(idx, grain) {
  if (!rollupsCover(grain.dataset, state.from, state.to)) return null;
  return ((PAGE.stored_rollups || {})[grain.dataset] || []).find((s) => s.index === idx) || null;
}
// The range's rollup from the stored one: its rows as they are when it
// keeps the time (one per timestamp and dimensions), else its per-date
// values merged (sums summed, counts summed, min of mins, max of maxes).
// A rollup stored per period (`period`: per unit at the day grain, where per
// date it would be the rows) is read from the files whose dates the range
// covers whole; a file the range covers in part is aggregated from its rows.
function wholeIn(f, from, to) {
  return !!(f.min_date && f.max_date && f.min_date >= from && f.max_date <= to);
}
function storedRollupSql(s, r, grain, srel, where) {
  const dims = r.by.map((n) => ident(dimension(n).column));
  if (r.time !== false) {
    return `SELECT ${[`${grain.time} AS _time`, ...dims, ...s.columns.map((c) => ident(c.name))].join(', ')} FROM ${srel} WHERE ${where}`;
  }
  const merged = s.columns.map((c) => {
    const m = `${c.merge}(${ident(c.name)})`;
    return `${/^\s*count\s*\(/i.test(c.sql) ? `CAST(${m} AS BIGINT)` : m} AS ${ident(c.name)}`;
  });
  return `SELECT ${[...dims, ...merged].join(', ')} FROM ${srel} WHERE ${where}${dims.length ? ' GROUP BY ALL' : ''}`;
}
function ensureRollup(idx, grain, rel) {
  const range = `${grain.grain}|${grain.dataset}|${state.from}|${state.to}|${rel.key}|${probe.useStoredRollups}`;
  const key = `${idx}|${range}`;
  if (!rollupTables.has(key)) {
    const r = CFG.rollups[idx];
    const name = `_rollup_${++rollupCount}`;
    const dims = r.by.map((n) => ident(dimension(n).column));
    const aggs = [...rollupColumns(r)].map(([c, sql]) => [ident(c), sql]);
    const where = `${ident(CFG.date_column)} BETWEEN DATE ${sqlString(state.from)} AND DATE ${sqlString(state.to)}`;
    let sql;
    const rowsSql = (rows) => {
    const raw = r.time !== false ? (timeColumns(grain) || []).filter((c) => !r.by.some((n) => dimension(n).column === c)).map(ident) : [];
    if (r.time !== false && raw.length) {
      const inner = `SELECT ${[...raw, ...dims, ...aggs.map(([c, a]) => `${a} AS ${c}`)].join(', ')} FROM ${rows} WHERE ${where} GROUP BY ALL`;
      sql = `SELECT ${[`${grain.time} AS _time`, ...dims, ...aggs.map(([c]) => c)].join(', ')} FROM (${inner})`;
    } else {
      const time = r.time !== false ? [`${grain.time} AS _time`] : [];
      sql = `SELECT ${[...time, ...dims, ...aggs.map(([c, a]) => `${a} AS ${c}`)].join(', ')} FROM ${rows} WHERE ${where}${time.length || dims.length ? ' GROUP BY ALL' : ''}`;
    }
    return sql;
    };
    const stored = storedRollup(idx, grain);
    const p = (async () => {
      const t0 = performance.now();
      if (stored) {
        // Files exported before the rollups were stored lack the table:
        // then the rows, as below.
        try {
          // Every rollups file of the range, or the rows (a missing one
          // would leave its dates out).
          const whole = (f) => !stored.period || wholeIn(f, state.from, state.to);
          const files = filesInRange(grain.dataset + ROLLUPS, state.from, state.to).filter(whole);
          const partial = stored.period ? filesInRange(grain.dataset, state.from, state.to).filter((f) => !whole(f)) : [];
          if (stored.period) probe.periodRows = partial.map((f) => f.path); // (for the tests)
          const [aliases, prel] = await Promise.all([Promise.all(files.map((f) => attach(f, true))), relationOf(partial)]);
          if (aliases.some((a) => !a)) throw new Error('a rollups file could not be loaded');
          const parts = aliases.map((a) => `SELECT * FROM ${ident(a)}.${ident(stored.table)}`);
          if (partial.length) {
            if (!prel) throw new Error('a rows file could not be loaded');
            parts.push(`SELECT ${[...dims, ...stored.columns.map((c) => `${c.sql} AS ${ident(c.name)}`)].join(', ')} FROM ${prel} WHERE ${where}${dims.length ? ' GROUP BY ALL' : ''}`);
          }
          const srel = `(${parts.join(' UNION ALL BY NAME ')})`;
          {
            const ssql = storedRollupSql(stored, r, grain, srel, stored.period ? 'true' : where);
            await state.conn.query(`CREATE TEMP TABLE ${ident(name)} AS ${ssql}`);
            probe.storedRollupReads = (probe.storedRollupReads || 0) + 1;
            storedRollupTables.add(ident(name));
            logQuery(`CREATE ${name} ` + ssql, t0, performance.now(), 0);
            return ident(name);
          }
        } catch (e) {
          console.info(`dashboard: the files hold no stored rollup ${stored.table}; built from the rows (${errorText(e)})`);
        }
      }
      const rows = await rel.get();
      if (!rows) throw new Error(`the ${grain.dataset} files for ${state.from} – ${state.to} are missing`);
      sql = rowsSql(rows);
      await state.conn.query(`CREATE TEMP TABLE ${ident(name)} AS ${sql}`);
      probe.rollupBuilds = (probe.rollupBuilds || 0) + 1;
      logQuery(`CREATE ${name} ` + sql, t0, performance.now(), 0);
      return ident(name);
    })();
    p.catch((e) => {
      rollupTables.delete(key);
      console.warn(`dashboard: rollup by ${r.by.join(', ')} could not be built (views read the rows): ${errorText(e)}`);
    });
    rollupTables.set(key, p);
    // Tables of ranges left long ago are dropped (their results stay kept).
    const ranges = [...new Set([...rollupTables.keys()].map((k) => k.slice(k.indexOf('|') + 1)))];
    for (const old of ranges.slice(0, Math.max(0, ranges.length - ROLLUP_RANGES_KEPT))) {
      for (const k of [...rollupTables.keys()].filter((k) => k.slice(k.indexOf('|') + 1) === old)) {
        const t = rollupTables.get(k);
        rollupTables.delete(k);
        t.then((n) => n && state.conn.query(`DROP TABLE IF EXISTS ${n}`)).catch(() => {});
      }
    }
  }
  return rollupTables.get(key).catch(() => null);
}

// Where a view reads its rows and how its measures are computed there:
// `dims` it groups by, `measures`, `time` (grouped by the timestamp),
// `except` (a dimension whose filter does not apply), `filters: false` (no
// filter at all). The first rollup that fits, else the rows of the range.
async function source(grain, rel, { dims = [], measures = [], time = false, except = null, filters = true, panel = null }) {
  const filtered = filters ? CFG.dimensions.filter((d) => d.name !== except && selected(d.name).length).map((d) => d.name) : [];
  const need = new Set([...dims, ...filtered]);
  if (probe.useRollups) {
    // Stored rollups cost no build, so they serve any range; built ones
    // only ranges with enough rows.
    const many = rowsInRange(grain) >= probe.rollupMinRows;
    for (const [idx, r] of (CFG.rollups || []).entries()) {
      if (![...need].every((n) => r.by.includes(n))) continue;
      if (time && r.time === false) continue;
      if (!measures.every((m) => rollupServes(r, m))) continue;
      if (!many && !storedRollup(idx, grain)) continue;
      const table = await ensureRollup(idx, grain, rel);
      if (!table) break;
      const where = filters ? filterSql(except) : [];
      if (panel !== null) probe.sources[panel] = `rollup ${idx}${storedRollupTables.has(table) ? ' (stored)' : ''}`;
      return {
        base: `(SELECT * FROM ${table}${where.length ? ' WHERE ' + where.join(' AND ') : ''}) AS t`,
        msql: (m) => `CAST((${m.rollup.sql}) AS DOUBLE)`,
        rollup: idx,
      };
    }
  }
  if (panel !== null) probe.sources[panel] = 'rows';
  const rows = await rel.get();
  if (!rows) throw new Error(`the ${grain.dataset} files for ${state.from} – ${state.to} could not be loaded`);
  const base = filters ? baseSql(grain, rows, except) : baseSql(grain, rows, CFG.dimensions.map((d) => d.name));
  return { base, msql: (m) => measureSql(m, grain.grain), rollup: null };
}

// The distinct combinations of the dimensions over the current range (a few
// thousand rows at most): every list is narrowed from them by the other
// filters, so no list offers a value that would give an empty page.
async function loadCombos(rel, key) {
  if (state.combos && state.combos.key === key) return;
  const cols = CFG.dimensions.map((d, i) => `CAST(${ident(d.column)} AS VARCHAR) AS d${i}`);
  if (!cols.length) return;
  const src = await source(state.grainNow, rel, { dims: CFG.dimensions.map((d) => d.name), filters: false, panel: 'lists' });
  const data = await queryColumns(`SELECT DISTINCT ${cols.join(', ')} FROM ${src.base}`);
  const list = [];
  for (let k = 0; k < data.n; k++) list.push(CFG.dimensions.map((d, i) => data['d' + i][k]));
  state.combos = { key, list };
  reportUnmatchedColors();
}

// Values of a dimension that exist under the other dimensions' filters.
function facet(name) {
  if (!state.combos) return [];
  const idx = CFG.dimensions.findIndex((d) => d.name === name);
  const others = CFG.dimensions
    .map((d, i) => [i, new Set(selected(d.name))])
    .filter(([i, s]) => i !== idx && s.size);
  const out = new Set();
  for (const row of state.combos.list) {
    if (others.every(([i, s]) => s.has(row[i]))) out.add(row[idx]);
  }
  out.delete(null);
  out.delete(undefined);
  return [...out].sort((a, b) => a.localeCompare(b));
}

function updateOptions() {
  for (const d of CFG.dimensions) {
    const el = $('filter-' + d.name);
    if (!el) continue;
    const values = facet(d.name);
    if (d.search) {
      multiOptions[d.name] = values;
      renderMultiList(d);
    } else {
      const current = selected(d.name)[0] || '';
      const keep = current && !values.includes(current) ? [current, ...values] : values;
      const opts = [new Option('All', '')];
      for (const v of keep) opts.push(new Option(v, v));
      el.replaceChildren(...opts);
      el.value = current;
    }
  }
}

async function loadLookups() {
  for (const d of CFG.dimensions) {
    if (!d.lookup) continue;
    const rel = await relation(d.lookup.dataset);
    if (!rel) continue;
    const list = await query(`SELECT CAST(${ident(d.lookup.key)} AS VARCHAR) AS k, any_value(CAST(${ident(d.lookup.label)} AS VARCHAR)) AS l FROM ${rel} GROUP BY 1 ORDER BY 1`);
    state.lookups[d.name] = new Map(list.map((r) => [r.k, r.l]));
  }
}
const labelOf = (d, v) => {
  const l = d && state.lookups[d.name] && state.lookups[d.name].get(v);
  return l ? `${v} · ${l}` : v;
};

// Sets a dimension's selection (and redraws, keeping the URL in step).
function setFilter(name, values) {
  const list = [...new Set(values.filter((v) => v !== '' && v !== null && v !== undefined))];
  if (list.length) state.filters[name] = list;
  else delete state.filters[name];
  const d = dimension(name);
  const el = $('filter-' + name);
  if (el && !d.search) el.value = list.length === 1 ? list[0] : '';
  renderChips();
  refresh();
}
function toggleValue(name, v) {
  const cur = selected(name);
  setFilter(name, cur.includes(v) ? cur.filter((x) => x !== v) : [...cur, v]);
}

function renderChips() {
  const box = $('chips');
  if (!box) return;
  const chips = [];
  for (const d of CFG.dimensions) {
    for (const v of selected(d.name)) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.dimension = d.name;
      b.dataset.value = v;
      b.setAttribute('aria-label', `Remove filter ${dimLabel(d)}: ${v}`);
      b.innerHTML = `<span class="chip-dim">${escapeHtml(dimLabel(d))}</span> ${escapeHtml(labelOf(d, v))} <span aria-hidden="true" class="chip-x">×</span>`;
      b.addEventListener('click', () => setFilter(d.name, selected(d.name).filter((x) => x !== v)));
      chips.push(b);
    }
  }
  if (chips.length > 1) {
    const all = document.createElement('button');
    all.type = 'button';
    all.className = 'chip clear';
    all.textContent = 'Clear all';
    all.addEventListener('click', () => {
      state.filters = {};
      for (const d of CFG.dimensions) if (!d.search && $('filter-' + d.name)) $('filter-' + d.name).value = '';
      renderChips();
      refresh();
    });
    chips.push(all);
  }
  box.replaceChildren(...chips);
}

// A searchable multi-select (combobox + listbox): type to narrow by value or
// display name, arrows to move, Enter or click to toggle, Escape to close.
const multiOptions = {};
const multiActive = {};
function multiMatches(d) {
  const text = $('filter-' + d.name).value.trim().toLowerCase();
  const all = multiOptions[d.name] || [];
  const sel = new Set(selected(d.name));
  const hit = (v) => !text || v.toLowerCase().includes(text) || (labelOf(d, v) || '').toLowerCase().includes(text);
  // Selected values first, then matches.
  return [...all.filter((v) => sel.has(v)), ...all.filter((v) => !sel.has(v) && hit(v))];
}
function renderMultiList(d) {
  const list = $('list-' + d.name);
  const input = $('filter-' + d.name);
  const values = multiMatches(d);
  const sel = new Set(selected(d.name));
  const shownValues = values.slice(0, 60);
  if (multiActive[d.name] >= shownValues.length) multiActive[d.name] = shownValues.length - 1;
  const items = shownValues.map((v, i) => {
    const li = document.createElement('li');
    li.id = `opt-${d.name}-${i}`;
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', sel.has(v) ? 'true' : 'false');
    li.dataset.value = v;
    li.className = (sel.has(v) ? 'on' : '') + (i === multiActive[d.name] ? ' active' : '');
    li.innerHTML = `<span class="check" aria-hidden="true">${sel.has(v) ? '✓' : ''}</span><span class="opt-key">${escapeHtml(v)}</span>${state.lookups[d.name]?.get(v) ? `<span class="opt-label">${escapeHtml(state.lookups[d.name].get(v))}</span>` : ''}`;
    li.addEventListener('mousedown', (e) => e.preventDefault()); // keep the focus in the input
    li.addEventListener('click', () => {
      multiActive[d.name] = i;
      toggleValue(d.name, v);
      renderMultiList(d);
    });
    return li;
  });
  if (!items.length) {
    const li = document.createElement('li');
    li.className = 'none';
    li.textContent = (multiOptions[d.name] || []).length ? 'No match' : 'No values for these filters';
    items.push(li);
  } else if (values.length > shownValues.length) {
    const li = document.createElement('li');
    li.className = 'none';
    li.textContent = `${values.length - shownValues.length} more: type to narrow`;
    items.push(li);
  }
  list.replaceChildren(...items);
  const active = multiActive[d.name] >= 0 ? `opt-${d.name}-${multiActive[d.name]}` : '';
  if (active) input.setAttribute('aria-activedescendant', active);
  else input.removeAttribute('aria-activedescendant');
  const el = active && $(active);
  if (el) el.scrollIntoView({ block: 'nearest' });
}
function openMulti(d, open) {
  const list = $('list-' + d.name);
  const input = $('filter-' + d.name);
  list.hidden = !open;
  input.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (open) renderMultiList(d);
  else {
    multiActive[d.name] = -1;
    input.removeAttribute('aria-activedescendant');
  }
}
function wireMulti(d) {
  const input = $('filter-' + d.name);
  multiActive[d.name] = -1;
  input.addEventListener('focus', () => openMulti(d, true));
  input.addEventListener('input', () => {
    multiActive[d.name] = input.value.trim() ? 0 : -1;
    openMulti(d, true);
  });
  input.addEventListener('blur', () => setTimeout(() => openMulti(d, false), 120));
  input.addEventListener('keydown', (e) => {
    const n = Math.min(60, multiMatches(d).length);
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if ($('list-' + d.name).hidden) openMulti(d, true);
      multiActive[d.name] = Math.min(n - 1, (multiActive[d.name] ?? -1) + 1);
      renderMultiList(d);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      multiActive[d.name] = Math.max(0, (multiActive[d.name] ?? 0) - 1);
      renderMultiList(d);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const values = multiMatches(d);
      const v = values[multiActive[d.name] >= 0 ? multiActive[d.name] : 0];
      if (v === undefined) return;
      toggleValue(d.name, v);
      input.value = '';
      multiActive[d.name] = -1;
      renderMultiList(d);
    } else if (e.key === 'Escape') {
      openMulti(d, false);
    } else if (e.key === 'Backspace' && !input.value && selected(d.name).length) {
      setFilter(d.name, selected(d.name).slice(0, -1));
    }
  });
  // A search committed without the list (e.g. pasted, then Enter elsewhere):
  // the best match is added.
  input.addEventListener('change', () => {
    const t = input.value.trim();
    if (!t) return;
    const v = multiMatches(d).find((x) => !selected(d.name).includes(x));
    input.value = '';
    if (v !== undefined) toggleValue(d.name, v);
  });
}

function wireFilters() {
  for (const d of CFG.dimensions) {
    const el = $('filter-' + d.name);
    if (!el) continue;
    if (d.search) wireMulti(d);
    else el.addEventListener('change', () => setFilter(d.name, el.value ? [el.value] : []));
  }
  const from = $('date-from');
  const to = $('date-to');
  if (!from) return;
  const onDate = () => {
    if (!from.value || !to.value) return;
    if (from.value > to.value) [from.value, to.value] = [to.value, from.value];
    state.from = from.value;
    state.to = to.value;
    state.days = null;
    markPreset(null);
    refresh();
  };
  from.addEventListener('change', onDate);
  to.addEventListener('change', onDate);
  for (const b of document.querySelectorAll('.presets button')) {
    b.addEventListener('click', () => {
      const days = Number(b.dataset.days);
      setRange(days);
      markPreset(b);
      refresh();
    });
  }
  $('download').addEventListener('click', () => download().catch((e) => message('Download failed: ' + errorText(e), 'error')));
  for (const g of document.querySelectorAll('.toggle')) {
    const i = Number(g.dataset.chart);
    for (const b of g.querySelectorAll('button')) {
      b.addEventListener('click', () => {
        state.measures[i] = b.dataset.measure;
        markToggles();
        refresh();
      });
    }
  }
}

function markToggles() {
  for (const g of document.querySelectorAll('.toggle')) {
    const i = Number(g.dataset.chart);
    const m = state.measures[i] || CFG.charts[i].measure;
    for (const b of g.querySelectorAll('button')) b.setAttribute('aria-pressed', b.dataset.measure === m ? 'true' : 'false');
  }
}

function markPreset(button) {
  for (const b of document.querySelectorAll('.presets button')) {
    b.classList.toggle('active', b === button);
    b.setAttribute('aria-pressed', b === button ? 'true' : 'false');
  }
}

function setRange(days) {
  state.days = days;
  state.to = state.dataMax;
  state.from = days > 0 ? isoDay(Math.max(dayNumber(state.dataMax) - days + 1, dayNumber(state.dataMin))) : state.dataMin;
  $('date-from').value = state.from;
  $('date-to').value = state.to;
}

// ---------------------------------------------------------------- URL state

// `#days=7&fuel=Wind&unit=A,B&tab=analyze&m0=energy` (or from=…&to=… for
// explicit dates): written on every redraw, read once at start.
function writeUrl() {
  const p = new URLSearchParams();
  if (state.days !== null && state.days !== undefined) p.set('days', String(state.days));
  else if (state.from) {
    p.set('from', state.from);
    p.set('to', state.to);
  }
  if (probe.grain) p.set('grain', probe.grain);
  for (const d of CFG.dimensions) if (selected(d.name).length) p.set(d.name, selected(d.name).join(','));
  for (const [i, m] of Object.entries(state.measures)) if (m && m !== CFG.charts[i]?.measure) p.set('m' + i, m);
  if (state.tab !== 'overview') p.set('tab', state.tab);
  const hash = '#' + p.toString().replaceAll('%2C', ',');
  if (location.hash !== hash) history.replaceState(null, '', hash);
}
function readUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  const out = { filters: {}, measures: {} };
  if (p.has('days')) out.days = Number(p.get('days'));
  if (p.has('from') && p.has('to') && /^\d{4}-\d\d-\d\d$/.test(p.get('from')) && /^\d{4}-\d\d-\d\d$/.test(p.get('to'))) {
    out.from = p.get('from');
    out.to = p.get('to');
  }
  for (const d of CFG.dimensions) if (p.get(d.name)) out.filters[d.name] = p.get(d.name).split(',').filter(Boolean);
  CFG.charts.forEach((c, i) => {
    const m = p.get('m' + i);
    if (m && (m === c.measure || m === c.toggle)) out.measures[i] = m;
  });
  if (p.get('tab') === 'analyze') out.tab = 'analyze';
  return out;
}

// ---------------------------------------------------------------- colours

const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4', '#ea7ccc', '#2f4554', '#c23531', '#61a0a8', '#d48265', '#749f83', '#ca8622', '#6e7074', '#bda29a', '#546570'];
const colorMaps = new Map();
const normKey = (s) => String(s).trim().toLowerCase();
// A series keeps its colour whatever the filters: configured (matched
// ignoring case and spaces, e.g. `Battery storage` and `Battery Storage`),
// else the next palette colour no configured value uses.
function colorFor(d, value) {
  if (!d) return undefined;
  if (!colorMaps.has(d.name)) {
    const conf = new Map(Object.entries(d.colors || {}).map(([k, c]) => [normKey(k), c]));
    colorMaps.set(d.name, { conf, used: new Set([...conf.values()].map((c) => c.toLowerCase())), given: new Map() });
  }
  const m = colorMaps.get(d.name);
  const c = m.conf.get(normKey(value));
  if (c) return c;
  if (!m.given.has(value)) {
    // The palette colour farthest from every colour in use (so an unknown
    // category never looks like a configured one).
    const used = [...m.used].map(rgb).filter(Boolean);
    let pick = PALETTE[m.given.size % PALETTE.length];
    let best = -1;
    // Without configured colours: the palette in order.
    for (const p of m.conf.size ? PALETTE : [pick]) {
      if (m.used.has(p.toLowerCase())) continue;
      const q = rgb(p);
      const dist = used.length ? Math.min(...used.map((u) => Math.hypot(u[0] - q[0], u[1] - q[1], u[2] - q[2]))) : 1e9;
      if (dist > best) {
        best = dist;
        pick = p;
      }
    }
    m.given.set(value, pick);
    m.used.add(pick.toLowerCase());
  }
  return m.given.get(value);
}

function rgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(hex).trim());
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
}

// A colour key that matches no value in the data is most likely a typo or a
// renamed category: said once in the console (and kept for the tests).
function reportUnmatchedColors() {
  if (!state.combos) return;
  CFG.dimensions.forEach((d, i) => {
    const keys = Object.keys(d.colors || {});
    if (!keys.length) return;
    const values = new Set(state.combos.list.map((r) => normKey(r[i])));
    const unmatched = keys.filter((k) => !values.has(normKey(k)));
    const prev = probe.unmatchedColors[d.name];
    // Per range the data changes; report only what matches nothing seen yet.
    const still = prev ? unmatched.filter((k) => prev.includes(k)) : unmatched;
    probe.unmatchedColors[d.name] = still;
    const uncoloured = [...new Set(state.combos.list.map((r) => r[i]))].filter((v) => v && !keys.some((k) => normKey(k) === normKey(v)));
    probe.uncoloured = probe.uncoloured || {};
    probe.uncoloured[d.name] = uncoloured;
    if (!prev && unmatched.length) {
      console.warn(`dashboard: colours configured for ${dimLabel(d)} values that are not in the data: ${unmatched.join(', ')}. Values in the data without a configured colour (palette colours): ${uncoloured.join(', ') || 'none'}.`);
    }
  });
}

// ---------------------------------------------------------------- theme

function themeIsDark() {
  const t = document.documentElement.dataset.theme;
  if (t === 'dark') return true;
  if (t === 'light') return false;
  return window.matchMedia('(prefers-color-scheme: dark)').matches;
}
function wireTheme() {
  const b = $('theme-toggle');
  const label = () => {
    const t = document.documentElement.dataset.theme || 'auto';
    b.textContent = t === 'dark' ? '☾ Dark' : t === 'light' ? '☀ Light' : '◐ Auto';
    b.setAttribute('aria-label', `Colour theme: ${t === 'auto' ? 'follows the system' : t}`);
  };
  label();
  b.addEventListener('click', () => {
    const order = ['auto', 'dark', 'light'];
    const cur = document.documentElement.dataset.theme || 'auto';
    const next = order[(order.indexOf(cur) + 1) % order.length];
    if (next === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = next;
    try {
      if (next === 'auto') localStorage.removeItem('dashboard-theme');
      else localStorage.setItem('dashboard-theme', next);
    } catch {}
    label();
    restyleCharts();
  });
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', restyleCharts);
  // Crossing the phone breakpoint changes chart layouts (legend, label widths).
  window.matchMedia('(max-width: 900px)').addEventListener('change', () => {
    if (state.conn && charts.size && drawnForPhone !== isPhone()) refresh();
  });
}
function restyleCharts() {
  drawn.clear();
  for (const [key, c] of charts) {
    c.dispose();
    delete probe.charts[key];
  }
  charts.clear();
  if (state.conn) refresh();
  else if (probe.previewShown && state.summary) drawPreview(state.summary);
}
// The theme's colours, read once per theme (they depend on nothing else):
// getComputedStyle after the page changed forces a style recalculation,
// several per chart drawn.
const cssVars = new Map();
function cssVar(name) {
  const key = `${themeIsDark()}|${name}`;
  if (!cssVars.has(key)) cssVars.set(key, getComputedStyle(document.documentElement).getPropertyValue(name).trim());
  return cssVars.get(key);
}

// ---------------------------------------------------------------- map outline

// Australia's coastline (mainland, Tasmania and the larger islands), shipped with
// the page so the map never fetches from a third party: Natural Earth 1:50m
// admin-0 (public domain) as packaged by the npm package world-atlas@2.0.2
// (countries-50m.json, ISC), decoded from TopoJSON, simplified (Douglas-Peucker,
// 0.04°) and rounded to 0.01°.
const AUSTRALIA = {"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"Australia"},"geometry":{"type":"MultiPolygon","coordinates":[[[[143.18,-11.96],[143.11,-12.3],[143.25,-12.4],[143.4,-12.64],[143.59,-13.44],[143.55,-13.74],[143.75,-14.35],[143.96,-14.46],[144.21,-14.3],[144.47,-14.23],[144.65,-14.49],[145.29,-14.94],[145.27,-15.48],[145.46,-16.06],[145.43,-16.41],[145.76,-16.88],[145.91,-16.91],[145.9,-17.07],[146.13,-17.64],[146.03,-18.27],[146.22,-18.51],[146.33,-18.55],[146.3,-18.84],[146.38,-18.98],[146.69,-19.19],[147.0,-19.26],[147.14,-19.39],[147.42,-19.38],[147.74,-19.77],[148.6,-20.15],[148.76,-20.29],[148.88,-20.48],[148.73,-20.47],[148.68,-20.58],[149.21,-21.12],[149.33,-21.48],[149.45,-21.58],[149.59,-22.26],[149.71,-22.44],[149.82,-22.39],[149.98,-22.55],[149.94,-22.31],[149.98,-22.18],[150.08,-22.16],[150.23,-22.37],[150.54,-22.56],[150.57,-22.38],[150.67,-22.42],[150.76,-22.58],[150.84,-23.46],[151.15,-23.78],[151.5,-24.01],[151.83,-24.12],[152.13,-24.6],[152.46,-24.8],[152.65,-25.2],[152.91,-25.43],[152.92,-25.69],[153.03,-25.87],[153.17,-25.96],[153.08,-26.3],[153.16,-26.98],[153.12,-27.19],[153.58,-28.24],[153.62,-28.67],[153.6,-28.86],[153.35,-29.29],[153.27,-29.89],[153.03,-30.56],[153.05,-30.91],[152.95,-31.43],[152.79,-31.79],[152.56,-32.05],[152.47,-32.44],[152.21,-32.68],[152.14,-32.68],[152.16,-32.76],[151.81,-32.9],[151.48,-33.35],[151.43,-33.52],[151.29,-33.58],[151.28,-33.93],[151.12,-34.01],[151.23,-34.03],[150.96,-34.3],[150.87,-34.5],[150.8,-35.01],[150.7,-35.04],[150.69,-35.18],[150.57,-35.21],[150.2,-35.83],[149.96,-36.85],[149.99,-37.26],[149.93,-37.53],[149.81,-37.55],[149.48,-37.77],[148.26,-37.83],[147.88,-37.93],[147.39,-38.22],[146.86,-38.66],[146.22,-38.73],[146.34,-38.89],[146.47,-38.84],[146.48,-39.06],[146.4,-39.15],[146.16,-38.87],[146.07,-38.83],[145.94,-38.9],[145.79,-38.67],[145.61,-38.66],[145.4,-38.54],[145.54,-38.39],[145.48,-38.24],[145.29,-38.24],[145.19,-38.38],[144.96,-38.5],[144.72,-38.34],[144.91,-38.34],[145.12,-38.09],[144.89,-37.9],[144.4,-38.14],[144.67,-38.21],[144.1,-38.46],[143.81,-38.7],[143.54,-38.82],[143.23,-38.74],[142.46,-38.39],[142.19,-38.4],[141.93,-38.28],[141.72,-38.27],[141.59,-38.39],[141.43,-38.36],[141.01,-38.08],[140.63,-38.03],[140.39,-37.9],[140.21,-37.64],[139.78,-37.25],[139.74,-37.06],[139.86,-36.66],[139.73,-36.37],[139.55,-36.1],[138.97,-35.58],[139.07,-35.6],[139.18,-35.52],[139.29,-35.61],[139.33,-35.43],[139.28,-35.38],[139.19,-35.35],[138.88,-35.54],[138.52,-35.64],[138.19,-35.61],[138.4,-35.33],[138.51,-35.02],[138.49,-34.76],[138.09,-34.17],[137.92,-34.46],[137.87,-34.73],[137.69,-35.14],[136.88,-35.24],[137.02,-34.92],[137.39,-34.91],[137.49,-34.6],[137.49,-34.16],[137.65,-33.86],[137.93,-33.58],[137.85,-33.2],[137.99,-33.09],[137.91,-32.77],[137.78,-32.58],[137.79,-32.82],[137.44,-33.19],[137.24,-33.63],[136.43,-34.03],[135.89,-34.66],[135.97,-34.98],[135.79,-34.86],[135.65,-34.94],[135.32,-34.64],[135.12,-34.59],[135.22,-34.49],[135.38,-34.6],[135.45,-34.58],[135.22,-33.96],[134.89,-33.63],[134.72,-33.26],[134.61,-33.19],[134.3,-33.17],[134.1,-32.75],[134.23,-32.73],[134.23,-32.55],[133.66,-32.21],[133.21,-32.18],[132.76,-31.96],[132.21,-32.01],[131.72,-31.7],[131.14,-31.5],[130.78,-31.6],[130.13,-31.58],[128.95,-31.7],[128.07,-32.07],[127.32,-32.26],[125.92,-32.3],[124.76,-32.88],[124.24,-33.01],[123.87,-33.6],[123.51,-33.92],[123.36,-33.91],[123.21,-33.99],[123.07,-33.9],[122.78,-33.89],[122.15,-33.99],[122.06,-33.87],[121.41,-33.83],[120.42,-33.96],[119.85,-33.97],[119.63,-34.1],[119.45,-34.37],[119.25,-34.46],[118.9,-34.48],[118.14,-34.99],[117.86,-35.05],[117.58,-35.1],[116.52,-34.99],[115.99,-34.8],[115.57,-34.43],[115.28,-34.3],[115.13,-34.34],[115.01,-34.26],[114.99,-33.51],[115.18,-33.64],[115.36,-33.64],[115.52,-33.53],[115.68,-33.19],[115.62,-32.67],[115.71,-32.57],[115.72,-32.4],[115.7,-31.7],[115.08,-30.56],[114.97,-30.04],[114.96,-29.43],[114.86,-29.14],[114.63,-28.87],[114.54,-28.54],[114.17,-28.08],[114.03,-27.35],[113.18,-26.18],[113.32,-26.24],[113.36,-26.08],[113.58,-26.56],[113.73,-26.59],[113.83,-26.5],[113.85,-26.33],[113.59,-26.1],[113.4,-25.71],[113.45,-25.6],[113.54,-25.62],[113.71,-25.83],[113.72,-26.13],[113.77,-26.16],[113.85,-26.02],[113.99,-26.32],[114.09,-26.39],[114.22,-26.29],[114.21,-25.85],[113.67,-24.98],[113.42,-24.44],[113.49,-23.87],[113.76,-23.42],[113.8,-22.91],[113.68,-22.64],[114.02,-21.88],[114.12,-21.83],[114.14,-21.91],[114.09,-22.18],[114.16,-22.32],[114.14,-22.48],[114.38,-22.34],[114.71,-21.82],[115.45,-21.49],[116.01,-21.03],[116.71,-20.65],[117.14,-20.64],[117.41,-20.72],[118.2,-20.37],[118.75,-20.26],[119.11,-19.99],[119.58,-20.04],[120.43,-19.84],[121.0,-19.6],[121.34,-19.32],[121.83,-18.48],[122.35,-18.11],[122.36,-18.04],[122.24,-17.97],[122.14,-17.43],[122.33,-17.06],[122.72,-16.79],[122.92,-16.43],[122.97,-16.44],[123.14,-16.86],[123.56,-17.52],[123.59,-17.03],[123.83,-17.12],[123.88,-16.92],[123.49,-16.49],[123.63,-16.42],[123.61,-16.22],[123.73,-16.19],[123.86,-16.38],[124.04,-16.27],[124.3,-16.39],[124.77,-16.4],[124.4,-16.3],[124.42,-16.13],[124.58,-16.11],[124.65,-15.87],[124.65,-15.81],[124.61,-15.82],[124.51,-15.97],[124.38,-15.76],[124.44,-15.49],[124.56,-15.5],[124.69,-15.36],[124.69,-15.27],[125.02,-15.47],[125.06,-15.44],[125.07,-15.31],[124.91,-15.31],[124.84,-15.16],[125.02,-15.07],[125.04,-15.0],[125.36,-15.12],[125.38,-15.02],[125.24,-14.94],[125.18,-14.72],[125.28,-14.58],[125.58,-14.48],[125.63,-14.26],[125.7,-14.29],[125.66,-14.53],[125.74,-14.44],[125.82,-14.47],[125.89,-14.62],[126.02,-14.5],[126.11,-14.11],[126.05,-13.98],[126.18,-14.0],[126.26,-14.16],[126.4,-14.02],[126.57,-14.16],[126.78,-13.96],[126.78,-13.79],[126.9,-13.74],[127.46,-14.03],[128.18,-14.71],[128.07,-15.33],[128.16,-15.23],[128.25,-15.3],[128.17,-15.1],[128.22,-14.99],[128.48,-14.79],[128.58,-14.77],[129.06,-14.88],[129.16,-14.99],[129.21,-15.16],[129.27,-14.87],[129.46,-14.93],[129.64,-15.14],[129.64,-14.85],[129.85,-14.83],[129.6,-14.65],[129.7,-14.56],[129.61,-14.56],[129.38,-14.39],[129.46,-14.21],[129.71,-13.98],[129.84,-13.57],[130.14,-13.45],[130.26,-13.3],[130.14,-13.15],[130.17,-12.96],[130.32,-12.88],[130.4,-12.69],[130.62,-12.65],[130.62,-12.43],[130.74,-12.43],[130.87,-12.56],[130.87,-12.37],[131.03,-12.34],[131.02,-12.21],[131.22,-12.18],[131.29,-12.07],[131.34,-12.21],[131.44,-12.28],[131.89,-12.23],[132.07,-12.28],[132.25,-12.19],[132.41,-12.3],[132.51,-12.13],[132.71,-12.12],[132.63,-12.04],[132.67,-11.65],[132.48,-11.49],[132.07,-11.47],[131.82,-11.3],[131.96,-11.18],[132.16,-11.31],[132.26,-11.2],[132.34,-11.22],[132.68,-11.51],[132.86,-11.39],[132.96,-11.41],[133.19,-11.71],[133.53,-11.82],[133.91,-11.83],[134.42,-12.05],[134.73,-11.98],[135.03,-12.19],[135.22,-12.22],[135.92,-11.83],[135.84,-11.9],[135.89,-11.99],[135.7,-12.15],[135.71,-12.21],[135.94,-12.15],[136.01,-12.19],[136.08,-12.42],[136.26,-12.43],[136.33,-12.31],[136.27,-12.13],[136.44,-11.95],[136.54,-11.96],[136.61,-12.13],[136.72,-12.23],[136.9,-12.24],[136.95,-12.35],[136.54,-12.79],[136.59,-13.0],[136.46,-13.23],[136.3,-13.14],[135.93,-13.3],[135.99,-13.81],[135.95,-13.93],[135.89,-14.15],[135.41,-14.76],[135.45,-14.92],[136.21,-15.4],[136.29,-15.57],[136.58,-15.71],[136.71,-15.69],[136.7,-15.84],[136.79,-15.89],[137.0,-15.88],[137.7,-16.23],[137.91,-16.48],[138.25,-16.72],[139.01,-16.9],[139.25,-17.33],[140.04,-17.7],[140.51,-17.63],[140.83,-17.41],[140.96,-17.01],[141.22,-16.65],[141.41,-16.07],[141.45,-15.61],[141.63,-15.06],[141.52,-14.47],[141.59,-14.15],[141.47,-13.8],[141.65,-13.26],[141.61,-12.94],[141.78,-12.78],[141.92,-12.8],[141.88,-12.61],[141.68,-12.49],[141.69,-12.35],[141.87,-11.98],[141.96,-12.05],[142.17,-10.95],[142.33,-10.88],[142.46,-10.71],[142.61,-10.75],[142.55,-10.87],[142.72,-11.01],[142.84,-11.31],[142.87,-11.82],[142.99,-11.92],[143.18,-11.96]]],[[[130.62,-11.38],[131.02,-11.33],[131.27,-11.19],[131.54,-11.44],[131.46,-11.59],[131.38,-11.58],[131.29,-11.71],[130.95,-11.93],[130.51,-11.62],[130.37,-11.22],[130.43,-11.18],[130.62,-11.38]]],[[[137.6,-35.74],[137.93,-35.73],[138.12,-35.85],[138.01,-35.91],[137.67,-35.9],[137.59,-36.03],[137.45,-36.08],[137.21,-35.98],[137.15,-36.04],[136.76,-36.03],[136.54,-35.89],[136.64,-35.75],[137.33,-35.59],[137.58,-35.62],[137.63,-35.66],[137.6,-35.74]]],[[[145.04,-40.79],[145.28,-40.77],[145.82,-41.02],[146.32,-41.16],[146.72,-41.08],[146.85,-41.17],[146.86,-41.06],[146.99,-40.99],[147.32,-40.96],[147.46,-41.0],[147.62,-40.84],[147.87,-40.87],[147.97,-40.78],[148.22,-40.85],[148.29,-40.95],[148.34,-42.22],[148.29,-42.26],[148.28,-42.14],[148.18,-42.06],[148.24,-42.02],[148.22,-41.97],[148.02,-42.26],[147.91,-42.66],[147.98,-43.16],[147.79,-43.22],[147.65,-43.02],[147.77,-43.0],[147.8,-42.93],[147.57,-42.85],[147.54,-43.0],[147.45,-43.03],[147.3,-42.79],[147.34,-42.96],[147.24,-43.22],[147.17,-43.26],[147.0,-43.16],[146.99,-43.22],[147.08,-43.28],[146.87,-43.61],[146.7,-43.6],[146.55,-43.51],[146.04,-43.55],[145.99,-43.38],[146.23,-43.36],[146.21,-43.32],[145.87,-43.29],[145.49,-42.93],[145.27,-42.54],[145.2,-42.23],[145.37,-42.34],[145.47,-42.49],[145.52,-42.35],[145.33,-42.15],[145.23,-42.2],[145.24,-42.02],[144.77,-41.39],[144.65,-40.98],[144.72,-40.67],[145.04,-40.79]]]]}}]};

// ---------------------------------------------------------------- rendering

const charts = new Map();
function chartFor(key) {
  let c = charts.get(key);
  if (!c) {
    $('chart-' + key).querySelector('canvas.sketch')?.remove();
    c = echarts.init($('chart-' + key), themeIsDark() ? 'dark' : null, { renderer: 'canvas' });
    charts.set(key, c);
    probe.charts[key] = c;
  }
  return c;
}
window.addEventListener('resize', () => {
  for (const c of charts.values()) c.resize();
});

function chartState(key, stateName, points, text) {
  const el = $('chart-' + key);
  if (!el) return;
  if (stateName !== 'ready') drawn.delete(key);
  if (stateName !== 'ready' && charts.has(key)) charts.get(key).clear();
  if (stateName !== 'ready') el.querySelector('canvas.sketch')?.remove();
  el.dataset.state = stateName;
  el.dataset.points = String(points);
  let empty = el.querySelector('.chart-empty');
  if (text) {
    if (!empty) {
      empty = document.createElement('div');
      empty.className = 'chart-empty';
      el.appendChild(empty);
    }
    empty.textContent = text;
  } else if (empty) empty.remove();
}

function unitLabel(m) {
  return m.unit ? ` (${m.unit})` : '';
}
function axisText() {
  return { color: cssVar('--muted') || '#5f6b7a' };
}

// The layout the charts were last drawn for (phone or not).
let drawnForPhone = null;

// The zoom window of the time charts (percent of the range), kept across
// filter changes and reset when the range changes.
let zoom = { start: 0, end: 100, key: '' };

async function renderTimeChart(i, chart, grain, rel, gen) {
  const m = measure(state.measures[i] || chart.measure);
  const sd = chart.series ? dimension(chart.series) : null;
  // Drill-down: the series dimension filtered to one value is split by the
  // drill dimension (its top `limit`, the rest as "Other").
  const drill = chart.drill && sd && selected(sd.name).length === 1 ? dimension(chart.drill) : null;
  let seriesSql = drill || sd ? `CAST(${ident((drill || sd).column)} AS VARCHAR)` : "''";
  let order = null;
  const limit = Number(chart.limit || 15);
  if (drill) {
    const src = await source(grain, rel, { dims: [drill.name], measures: [m], panel: `${i}:top` });
    const top = await query(`SELECT CAST(${ident(drill.column)} AS VARCHAR) AS k FROM ${src.base} GROUP BY 1 ORDER BY ${src.msql(m)} DESC NULLS LAST LIMIT ${limit + 1}`);
    if (gen !== state.generation) return;
    order = top.map((r) => r.k);
    if (order.length > limit) {
      order = order.slice(0, limit);
      seriesSql = `CASE WHEN ${seriesSql} IN (${order.map(sqlString).join(', ')}) THEN ${seriesSql} ELSE 'Other' END`;
      order.push('Other');
    }
  }
  const title = $('chart-title-' + i);
  if (title) title.textContent = drill ? `${selected(sd.name)[0]} by ${dimLabel(drill).toLowerCase()} (top ${limit})` : chart.title;
  const d = drill || sd;
  const src = await source(grain, rel, { dims: d ? [d.name] : [], measures: [m], time: true, panel: i });
  // Grouped by the timestamp itself; its epoch milliseconds are computed once
  // per point, not once per row.
  const data = await queryColumns(`SELECT CAST(epoch_ms(t) AS DOUBLE) AS t, s, v FROM (SELECT _time AS t, ${seriesSql} AS s, ${src.msql(m)} AS v FROM ${src.base} GROUP BY ALL) ORDER BY 1, 2`);
  if (gen !== state.generation) return;
  drawTimeChart(i, chart, grain, m, d, drill, order, data);
}

// What each chart last drew: its result (kept results are the same object)
// and how it was drawn; a chart cleared or disposed since is drawn again.
const drawn = new Map();
// Every value of each time chart (the drawing may hold fewer points), as
// getOption() lists series: [{name, data: [[t, v], …]}] (for the tests).
const fullSeries = new Map();
probe.seriesData = (key) => {
  const f = fullSeries.get(key);
  return f ? f.names.map((name) => ({ name: name || f.label, data: f.times.map((t, k) => [t, f.bySeries.get(name)[k]]) })) : null;
};
function unchanged(key, data, sig) {
  const last = drawn.get(key);
  if (!last || last.data !== data || last.sig !== sig || !charts.has(key)) return false;
  probe.drawMs[key] = 0;
  probe.skipped = (probe.skipped || 0) + 1;
  return true;
}
// The indices of `n` of the points (k, ys[k]) that keep the shape of the
// curve (largest-triangle-three-buckets, as ECharts' 'lttb' sampling): the
// first and last, then per bucket the point making the largest triangle
// with the one kept before and the mean of the next bucket.
function lttbIndices(ys, n) {
  const len = ys.length;
  if (n >= len || n < 3) return null;
  const out = new Uint32Array(n);
  const every = (len - 2) / (n - 2);
  let a = 0;
  out[0] = 0;
  for (let j = 0; j < n - 2; j++) {
    const lo = Math.floor(j * every) + 1;
    const hi = Math.min(Math.floor((j + 1) * every) + 1, len - 1);
    const nextHi = Math.min(Math.floor((j + 2) * every) + 1, len);
    let mx = 0;
    let my = 0;
    for (let k = hi; k < nextHi; k++) {
      mx += k;
      my += ys[k];
    }
    const cnt = Math.max(1, nextHi - hi);
    mx /= cnt;
    my /= cnt;
    let best = -1;
    let pick = lo;
    for (let k = lo; k < hi; k++) {
      const area = Math.abs((a - mx) * (ys[k] - ys[a]) - (a - k) * (my - ys[a]));
      if (area > best) {
        best = area;
        pick = k;
      }
    }
    out[j + 1] = pick;
    a = pick;
  }
  out[n - 1] = len - 1;
  return out;
}

// The index of the value in ascending `xs` nearest to `x`.
function nearestIndex(xs, x) {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x) ? lo - 1 : lo;
}

// Draws a time chart from columns {n, t, s, v} (the query's or the summary's).
function drawTimeChart(i, chart, grain, m, d, drill, order, data) {
  const drawStart = performance.now();
  // The same result drawn the same way is on screen already (e.g. the other
  // chart's measure toggled, or a view whose results were kept).
  const sig = [m.name, d?.name, drill?.name, order?.join('\u0001'), isPhone(), !!state.unclipped[i], JSON.stringify(state.lastDay), state.from, state.to, grain.grain].join('|');
  if (unchanged(i, data, sig)) return;
  const decimals = m.decimals ?? 1;
  // Every series gets every timestamp (0 in a stack, a gap in a line), so the
  // tooltip lists every series at any point and stacks add up.
  const stacked = chart.type === 'area';
  const times = [];
  const at = new Map();
  for (let k = 0; k < data.n; k++) {
    const t = data.t[k];
    if (!at.has(t)) {
      at.set(t, times.length);
      times.push(t);
    }
  }
  const bySeries = new Map();
  const totals = new Map();
  for (let k = 0; k < data.n; k++) {
    const name = data.s[k];
    if (!bySeries.has(name)) {
      bySeries.set(name, new Array(times.length).fill(stacked ? 0 : null));
      totals.set(name, 0);
    }
    const v = data.v[k];
    bySeries.get(name)[at.get(data.t[k])] = v === null || Number.isNaN(v) ? (stacked ? 0 : null) : v;
    totals.set(name, totals.get(name) + (Number.isFinite(v) ? v : 0));
  }
  let names = [...bySeries.keys()];
  if (order) names = order.filter((n) => bySeries.has(n));
  else if (stacked) names.sort((a, b) => totals.get(b) - totals.get(a));
  else names.sort((a, b) => String(a).localeCompare(String(b)));
  const points = data.rows ?? data.n;
  // Drawn: the points the eye can tell apart in the zoomed window, chosen
  // by the largest-triangle method (extremes such as a price spike stay): a
  // line at most one per pixel, a stack one per two pixels, the same
  // intervals in every layer (chosen on the total) so the layers stay
  // stacked. Zooming in draws more of them, down to every interval; the
  // tooltip reads every value.
  const plotWidth = Math.max(100, ($('chart-' + i)?.clientWidth || 600) - 90);
  let total = null;
  if (stacked) {
    total = new Float64Array(times.length);
    for (const arr of bySeries.values()) for (let k = 0; k < arr.length; k++) total[k] += Number.isFinite(arr[k]) ? arr[k] : 0;
  }
  const thinned = (start, end) => {
    const target = Math.ceil((stacked ? plotWidth / 2 : plotWidth) / Math.max(0.01, (end - start) / 100));
    if (target >= times.length) return null;
    if (stacked) {
      const idx = lttbIndices(total, target);
      return new Map(names.map((n) => [n, idx]));
    }
    // A line with gaps is drawn whole (thinning would bridge them).
    return new Map(names.map((n) => [n, bySeries.get(n).some((v) => v === null) ? null : lttbIndices(bySeries.get(n), target)]));
  };
  let shown = null;
  const count = () => names.reduce((a, n) => a + (shown?.get(n)?.length ?? times.length), 0);
  const seriesData = (name) => {
    const arr = bySeries.get(name);
    const idx = shown?.get(name);
    return idx ? Array.from(idx, (k) => [times[k], arr[k]]) : times.map((t, k) => [t, arr[k]]);
  };
  const colors = names.map((name, j) => (name === 'Other' ? '#a0a7b1' : drill ? PALETTE[j % PALETTE.length] : colorFor(d, name)));
  const phone = isPhone();
  drawnForPhone = phone;
  const fmt = (v) => withUnit(m, v, decimals);
  const zoomKey = `${state.from}|${state.to}`;
  if (zoom.key !== zoomKey) zoom = { start: 0, end: 100, key: zoomKey };
  shown = thinned(zoom.start, zoom.end);
  probe.drawnPoints = probe.drawnPoints || {};
  probe.drawnPoints[i] = count();
  // A few extreme values (a $15 000 price spike) would flatten every normal
  // value to a line: a line chart's axis stops above the 99th percentile and
  // each clipped point is marked with its value; the caption's button shows
  // the whole scale.
  const clip = stacked ? null : spikeClip(bySeries);
  const clipped = clip && !state.unclipped[i] ? clip : null;
  clipButton(i, clip, fmt);
  // The newest day when it is not complete (fewer intervals than a day): a
  // dashed line at its last point, labelled.
  const ld = state.lastDay;
  const partial = ld && !ld.complete && state.from <= ld.date && state.to >= ld.date && times.length ? ld : null;
  partialNote(i, partial);
  const option = {
    useUTC: true,
    backgroundColor: 'transparent',
    animation: false,
    grid: { left: 8, right: phone ? 8 : 18, top: 62, bottom: 58, containLabel: true },
    legend: { type: 'scroll', top: 0, textStyle: axisText() },
    tooltip: {
      trigger: 'axis',
      confine: true,
      className: 'chart-tip',
      order: 'valueDesc',
      // Every series at the interval under the pointer, from the query's
      // own values (the drawing may keep fewer points, see `thinned`).
      formatter: (params) => {
        if (!params.length || !times.length) return '';
        const k = nearestIndex(times, Number(params[0].axisValue));
        const head = `<div class="tip-head">${escapeHtml(fmtTime(times[k], grain.grain))}${escapeHtml(tzNote)}</div>`;
        const list = names.map((name, j) => ({ name: name || measureLabel(m), color: colors[j], v: bySeries.get(name)[k] }));
        list.sort((a, b) => (b.v ?? -Infinity) - (a.v ?? -Infinity));
        const body = list
          .map((p) => `<div class="tip-row" data-series="${escapeHtml(p.name)}">${echarts.format.getTooltipMarker(p.color)}<span class="tip-name">${escapeHtml(labelOf(d, p.name))}</span><b>${escapeHtml(fmt(p.v))}</b></div>`)
          .join('');
        const total = stacked && list.length > 1 ? `<div class="tip-row tip-total"><span class="tip-name">Total</span><b>${escapeHtml(fmt(list.reduce((s, p) => s + (p.v || 0), 0)))}</b></div>` : '';
        return head + body + total;
      },
    },
    xAxis: {
      type: 'time',
      name: TZ ? `Time (${TZ})` : 'Time',
      nameLocation: 'middle',
      nameGap: 26,
      nameTextStyle: axisText(),
      axisLabel: { hideOverlap: true, ...axisText() },
    },
    yAxis: {
      type: 'value',
      name: measureLabel(m) + unitLabel(m),
      nameTextStyle: { align: 'left', ...axisText() },
      axisLabel: { ...axisText(), ...(clipped ? { showMaxLabel: clipped.max === undefined, showMinLabel: clipped.min === undefined } : {}) },
      ...(clipped ? { max: clipped.max, min: clipped.min } : {}),
    },
    dataZoom: [
      { type: 'inside', filterMode: 'weakFilter', start: zoom.start, end: zoom.end, zoomOnMouseWheel: true, moveOnMouseWheel: false, moveOnMouseMove: !phone, preventDefaultMouseMove: !phone },
      // No data shadow in the slider: ECharts draws it from the first
      // series over the whole range on every redraw, ~40 % of a stacked
      // chart's drawing (bench/RESULTS.md, 2026-11-30 07:40–08:50).
      { type: 'slider', filterMode: 'weakFilter', start: zoom.start, end: zoom.end, height: 16, bottom: 4, showDetail: false, showDataShadow: false, brushSelect: false },
    ],
    series: names.map((name, j) => ({
      name: name || measureLabel(m),
      type: 'line',
      color: colors[j],
      stack: stacked ? 'total' : undefined,
      areaStyle: stacked ? { opacity: 0.85 } : undefined,
      showSymbol: false,
      symbolSize: 6,
      triggerLineEvent: true,
      connectNulls: false,
      lineStyle: { width: stacked ? 0.5 : 1.5 },
      emphasis: { focus: 'series' },
      data: seriesData(name),
      markPoint: clipped ? clippedMarks(clipped, name, times, bySeries.get(name), m) : undefined,
      markLine: partial && name === names[0] ? partialMark(partial, times, grain) : undefined,
    })),
  };
  const c = chartFor(i);
  c.setOption(option, true);
  drawn.set(i, { data, sig });
  fullSeries.set(i, { names, bySeries, times, label: measureLabel(m) });
  c.group = 'time';
  echarts.connect('time');
  c.off('click');
  c.on('click', (p) => {
    if (p.componentType !== 'series' || !d || !p.seriesName || p.seriesName === 'Other') return;
    setFilter(d.name, [p.seriesName]);
  });
  c.off('datazoom');
  c.on('datazoom', (e) => {
    const b = e && e.batch ? e.batch[0] : e;
    const z = b && Number.isFinite(b.start) && Number.isFinite(b.end) ? b : c.getOption().dataZoom?.[0];
    if (!z) return;
    zoom = { start: z.start, end: z.end, key: zoomKey };
    // The points the new window needs (redrawn only when their number
    // changes by a quarter or more).
    const before = count();
    const prev = shown;
    shown = thinned(z.start, z.end);
    const after = count();
    if (after === before || Math.abs(after - before) < before / 4) {
      shown = prev;
      return;
    }
    probe.drawnPoints[i] = after;
    c.setOption({ series: names.map((name) => ({ data: seriesData(name) })) });
  });
  chartState(i, points ? 'ready' : 'empty', points, points ? '' : 'No data for this selection');
  probe.drawMs[i] = Math.round(performance.now() - drawStart);
  $('chart-' + i).dataset.series = String(names.length);
  $('chart-' + i).dataset.clipped = clipped ? String(clipped.max) : '';
}

// The axis range that leaves out extreme values, or null when there are none:
// values beyond the 1st–99th percentile span by more than 4 spans.
function spikeClip(bySeries) {
  let n = 0;
  for (const arr of bySeries.values()) for (const v of arr) if (Number.isFinite(v)) n += 1;
  if (n < 20) return null;
  // A typed array sorts numerically, natively (a comparator costs ~10 ms here).
  const vals = new Float64Array(n);
  n = 0;
  for (const arr of bySeries.values()) for (const v of arr) if (Number.isFinite(v)) vals[n++] = v;
  vals.sort();
  const lo = vals[Math.floor(vals.length * 0.01)];
  const hi = vals[Math.min(vals.length - 1, Math.floor(vals.length * 0.99))];
  const span = Math.max(hi - lo, 1e-9);
  const top = vals[vals.length - 1] > hi + 4 * span;
  const bottom = vals[0] < lo - 4 * span;
  if (!top && !bottom) return null;
  const step = 10 ** Math.floor(Math.log10(span / 2));
  return {
    max: top ? Math.ceil((hi + 0.25 * span) / step) * step : undefined,
    min: bottom ? Math.floor((lo - 0.25 * span) / step) * step : undefined,
  };
}
// Markers on the clipped points (the largest 6 of a series), with their values.
function clippedMarks(clip, name, times, values, m) {
  const out = [];
  values.forEach((v, k) => {
    if (!Number.isFinite(v)) return;
    if (clip.max !== undefined && v > clip.max) out.push({ coord: [times[k], clip.max], value: v, up: true });
    else if (clip.min !== undefined && v < clip.min) out.push({ coord: [times[k], clip.min], value: v, up: false });
  });
  out.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  return {
    symbol: 'triangle',
    symbolSize: 9,
    silent: true,
    data: out.slice(0, 6).map((p) => ({
      coord: p.coord,
      value: p.value,
      symbolRotate: p.up ? 0 : 180,
      label: { show: true, position: p.up ? 'bottom' : 'top', fontSize: 10, color: cssVar('--ink') || '#222', formatter: () => `${p.up ? '↑' : '↓'} ${fmtNumber(p.value, 0)}${m.unit ? ' ' + m.unit : ''}` },
    })),
  };
}
function clipButton(i, clip, fmt) {
  const cap = $('chart-' + i)?.closest('figure')?.querySelector('figcaption');
  if (!cap) return;
  let b = cap.querySelector('.clip-toggle');
  if (!clip) {
    if (b) b.remove();
    return;
  }
  if (!b) {
    b = document.createElement('button');
    b.type = 'button';
    b.className = 'clip-toggle';
    b.id = 'clip-' + i;
    b.addEventListener('click', () => {
      state.unclipped[i] = !state.unclipped[i];
      refresh();
    });
    cap.appendChild(b);
  }
  const on = !state.unclipped[i];
  const limit = [clip.min, clip.max].filter((x) => x !== undefined).map(fmt).join(' – ');
  b.textContent = on ? `Spikes clipped at ${limit} · show all` : 'Clip spikes';
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
}
function partialNote(i, partial) {
  const cap = $('chart-' + i)?.closest('figure')?.querySelector('figcaption');
  if (!cap) return;
  let n = cap.querySelector('.partial-note');
  if (!partial) {
    if (n) n.remove();
    return;
  }
  if (!n) {
    n = document.createElement('span');
    n.className = 'partial-note';
    cap.insertBefore(n, cap.children[1] || null);
  }
  n.textContent = `${partial.date} is a partial day: data to ${partial.last}${TZ ? ' (' + TZ + ')' : ''}`;
}
function partialMark(partial, times, grain) {
  const x = grain.grain === 'day' ? dayNumber(partial.date) * 86400000 : times[times.length - 1];
  return {
    symbol: 'none',
    silent: true,
    lineStyle: { type: 'dashed', color: cssVar('--muted') || '#888', width: 1.5 },
    label: { formatter: grain.grain === 'day' ? 'partial day' : `partial day (to ${partial.last})`, position: 'insideEndTop', color: cssVar('--muted') || '#888' },
    data: [{ xAxis: x }],
  };
}

async function renderBarChart(i, chart, grain, rel, gen) {
  const m = measure(chart.measure);
  const d = dimension(chart.category);
  const src = await source(grain, rel, { dims: [d.name], measures: [m], panel: i });
  const data = await query(`SELECT CAST(${ident(d.column)} AS VARCHAR) AS c, ${src.msql(m)} AS v FROM ${src.base} GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT ${Number(chart.limit || 10)}`);
  if (gen !== state.generation) return;
  drawBarChart(i, chart, data);
}

// Draws a bar chart from rows [{c, v}] (the query's or the summary's).
function drawBarChart(i, chart, data) {
  const drawStart = performance.now();
  if (unchanged(i, data, `${isPhone()}|${chart.measure}`)) return;
  const m = measure(chart.measure);
  const decimals = m.decimals ?? 1;
  const d = dimension(chart.category);
  const keys = data.map((r) => r.c).reverse();
  const labels = keys.map((k) => labelOf(d, k));
  const phone = isPhone();
  const option = {
    backgroundColor: 'transparent',
    animation: false,
    grid: { left: 8, right: 56, top: 8, bottom: 30, containLabel: true },
    tooltip: { trigger: 'axis', confine: true, axisPointer: { type: 'shadow' }, valueFormatter: (v) => withUnit(m, v, decimals) },
    xAxis: { type: 'value', name: measureLabel(m) + unitLabel(m), nameLocation: 'middle', nameGap: 22, nameTextStyle: axisText(), axisLabel: { hideOverlap: true, ...axisText() } },
    yAxis: { type: 'category', data: labels, axisLabel: { width: phone ? 120 : 220, overflow: 'truncate', ...axisText() } },
    series: [{
      type: 'bar',
      data: data.map((r) => r.v).reverse(),
      itemStyle: { color: cssVar('--accent') || '#3b7dd8' },
      label: { show: true, position: 'right', formatter: (p) => fmtNumber(p.value, 0), ...axisText() },
    }],
  };
  const c = chartFor(i);
  c.setOption(option, true);
  drawn.set(i, { data, sig: `${isPhone()}|${chart.measure}` });
  c.off('click');
  c.on('click', (p) => {
    const k = keys[p.dataIndex];
    if (k !== undefined) setFilter(d.name, [k]);
  });
  chartState(i, data.length ? 'ready' : 'empty', data.length, data.length ? '' : 'No data for this selection');
  probe.drawMs[i] = Math.round(performance.now() - drawStart);
}

// The map: one point per value of the map's dimension that has coordinates,
// under every filter but its own (so more points can be picked), sized by a
// measure and coloured like the charts.
let mapRegistered = false;
async function renderMap(grain, rel, gen) {
  const mc = CFG.map;
  if (!mc || !$('chart-map')) return;
  if (!datasetHasColumns(mc.dataset, [mc.key, mc.latitude, mc.longitude])) {
    chartState('map', 'empty', 0, `No coordinates: \`${mc.dataset}\` has no ${mc.latitude}/${mc.longitude} columns`);
    return;
  }
  if (!state.coords) {
    const crel = await relation(mc.dataset);
    if (!crel) {
      chartState('map', 'empty', 0, `No coordinates: \`${mc.dataset}\` is not available`);
      return;
    }
    const r = await query(`SELECT CAST(${ident(mc.key)} AS VARCHAR) AS k, CAST(${ident(mc.latitude)} AS DOUBLE) AS la, CAST(${ident(mc.longitude)} AS DOUBLE) AS lo FROM ${crel} WHERE ${ident(mc.latitude)} IS NOT NULL AND ${ident(mc.longitude)} IS NOT NULL`);
    state.coords = new Map(r.map((x) => [x.k, [x.lo, x.la]]));
  }
  const d = dimension(mc.dimension);
  const cd = mc.color ? dimension(mc.color) : null;
  const sm = mc.size ? measure(mc.size) : null;
  const src = await source(grain, rel, { dims: [d.name, ...(cd ? [cd.name] : [])], measures: sm ? [sm] : [], except: d.name, panel: 'map' });
  const data = await query(`SELECT CAST(${ident(d.column)} AS VARCHAR) AS k, ${cd ? `any_value(CAST(${ident(cd.column)} AS VARCHAR))` : 'NULL'} AS c, ${sm ? src.msql(sm) : '1'} AS v FROM ${src.base} GROUP BY 1 ORDER BY 1`);
  if (gen !== state.generation) return;
  const mapSig = `${selected(d.name).join('\u0001')}|${themeIsDark()}`;
  if (unchanged('map', data, mapSig)) return;
  const drawStart = performance.now();
  if (!mapRegistered) {
    echarts.registerMap('australia', AUSTRALIA);
    mapRegistered = true;
  }
  const sel = new Set(selected(d.name));
  const max = Math.max(1, ...data.map((r) => Math.abs(r.v || 0)));
  const groups = new Map();
  let placed = 0;
  for (const r of data) {
    const xy = state.coords.get(r.k);
    if (!xy) continue;
    placed += 1;
    const g = cd ? r.c ?? '' : '';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push({ name: r.k, value: [xy[0], xy[1], r.v] });
  }
  const dark = themeIsDark();
  const option = {
    backgroundColor: 'transparent',
    animation: false,
    legend: { type: 'scroll', top: 0, textStyle: axisText() },
    tooltip: {
      trigger: 'item',
      confine: true,
      formatter: (p) => `<b>${escapeHtml(labelOf(d, p.name))}</b>${cd ? '<br>' + escapeHtml(p.seriesName) : ''}${sm ? '<br>' + escapeHtml(measureLabel(sm) + ': ' + withUnit(sm, p.value[2])) : ''}`,
    },
    geo: {
      map: 'australia',
      roam: true,
      top: 36,
      bottom: 8,
      scaleLimit: { min: 0.8, max: 20 },
      itemStyle: { areaColor: dark ? '#263241' : '#e9edf2', borderColor: dark ? '#4b5a6c' : '#aab4c0' },
      emphasis: { disabled: true },
      selectedMode: false,
      silent: true,
    },
    series: [...groups.entries()].map(([g, pts]) => ({
      name: g || (sm ? measureLabel(sm) : 'points'),
      type: 'scatter',
      coordinateSystem: 'geo',
      color: cd ? colorFor(cd, g) : cssVar('--accent'),
      symbolSize: (v) => 4 + 18 * Math.sqrt(Math.abs(v[2] || 0) / max),
      itemStyle: { opacity: 0.85, borderColor: dark ? '#0d1117' : '#fff', borderWidth: 0.5 },
      data: pts.map((p) => (sel.has(p.name) ? { ...p, itemStyle: { borderColor: cssVar('--ink') || '#000', borderWidth: 2.5, opacity: 1 } } : p)),
    })),
  };
  const c = chartFor('map');
  c.setOption(option, true);
  drawn.set('map', { data, sig: mapSig });
  c.off('click');
  c.on('click', (p) => {
    if (p.componentType === 'series' && p.name) toggleValue(d.name, p.name);
  });
  chartState('map', placed ? 'ready' : 'empty', placed, placed ? '' : 'No unit of this selection has coordinates');
  probe.drawMs.map = Math.round(performance.now() - drawStart);
}

async function renderKpis(grain, rel, gen) {
  const fmt = grain.grain === 'day' ? '%Y-%m-%d' : '%Y-%m-%d %H:%M';
  // Every card is one row (its key, a number or a text) of one query over
  // the source it reads (a rollup or the rows): one round trip to
  // DuckDB-WASM, not one per card. A UNION ALL of plain aggregates: DuckDB
  // plans it in about half the time of the same cards as scalar subqueries
  // cross joined (bench/RESULTS.md, 2026-11-30 11:15–12:30).
  const items = [];
  const num = (key, sql, from) => items.push(`SELECT '${key}' AS k, ${sql} AS n, CAST(NULL AS VARCHAR) AS s FROM ${from}`);
  const text = (key, sql, from) => items.push(`SELECT '${key}' AS k, CAST(NULL AS DOUBLE) AS n, ${sql} AS s FROM ${from}`);
  let latestAt = null;
  const latest = CFG.kpis.map((k, i) => [i, k]).filter(([, k]) => k.measure && k.latest);
  if (latest.length) {
    const ms = latest.map(([, k]) => measure(k.measure));
    const src = await source(grain, rel, { measures: ms, time: true, panel: 'kpi-latest' });
    latest.forEach(([i], j) => num(`k${i}`, src.msql(ms[j]), `${src.base} WHERE _time = (SELECT max(_time) FROM ${src.base})`));
    text('at', `strftime(max(_time), '${fmt}')`, src.base);
  }
  for (const [i, k] of CFG.kpis.entries()) {
    if (k.measure && k.latest) continue;
    if (k.measure || k.latest) {
      const m = k.measure ? measure(k.measure) : null;
      const src = await source(grain, rel, { measures: m ? [m] : [], time: !m, panel: `kpi${i}` });
      if (m) num(`k${i}`, src.msql(m), src.base);
      else text(`k${i}`, `strftime(max(_time), '${fmt}')`, src.base);
    } else if (k.top) {
      const d = dimension(k.top);
      const by = measure(k.by);
      const src = await source(grain, rel, { dims: [d.name], measures: [by], panel: `kpi${i}` });
      text(`k${i}`, 'v', `(SELECT CAST(${ident(d.column)} AS VARCHAR) AS v FROM ${src.base} GROUP BY 1 ORDER BY ${src.msql(by)} DESC NULLS LAST LIMIT 1)`);
    }
  }
  const values = {};
  if (items.length) {
    // A card with no row (a top value of no data) stays empty.
    for (const r of await query(items.join(' UNION ALL '))) values[r.k] = r.n ?? r.s ?? null;
    latestAt = values.at ?? null;
  }
  if (gen !== state.generation) return;
  drawKpis(values, latestAt, grain);
}

// Fills the KPI cards from `values` (k0, k1…: the query's or the summary's).
function drawKpis(values, latestAt, grain) {
  const grainWord = { '5min': '5-minute interval', hour: 'hour', day: 'day' }[grain.grain] || grain.grain;
  for (const [i, k] of CFG.kpis.entries()) {
    const box = $('kpi-' + i);
    const el = box.querySelector('.kpi-value');
    const note = box.querySelector('.kpi-note');
    const v = values['k' + i];
    if (k.measure) {
      const m = measure(k.measure);
      el.textContent = withUnit(m, v);
      note.textContent = k.latest ? (latestAt ? `${grainWord} starting ${latestAt}${TZ ? ' ' + TZ : ''}` : '') : `${state.from} – ${state.to}`;
    } else {
      el.textContent = v ?? '–';
      note.textContent = k.latest && v ? TZ : k.top ? `by ${measureLabel(measure(k.by)).toLowerCase()}` : '';
    }
    el.dataset.value = v === null || v === undefined ? '' : String(v);
    if (k.latest && latestAt) box.dataset.at = latestAt;
  }
}

async function refresh() {
  if (!state.conn || !CFG.grains.length) return;
  const gen = ++state.generation;
  const t0 = performance.now();
  probe.ready = false;
  probe.sources = {};
  probe.drawMs = {}; // chart -> ms drawing it (ECharts included)
  setBusy(true);
  status('Querying…');
  clearRangeMessages();
  let grain = chooseGrain(state.from, state.to);
  try {
    // A grain whose rollups files cover the range is drawn from them; its
    // rows are fetched only when a view needs them. Otherwise the rows now
    // (null when its files are missing).
    const usable = async (g) => {
      const rows = rowsOf(g.dataset, state.from, state.to);
      if (rollupsCover(g.dataset, state.from, state.to)) {
        const files = filesInRange(g.dataset + ROLLUPS, state.from, state.to);
        if ((await Promise.all(files.map((f) => attach(f, true)))).every(Boolean)) return rows;
      }
      return (await rows.get()) ? rows : null;
    };
    let rel = await usable(grain);
    if (gen !== state.generation) return;
    if (!rel) {
      // The chosen grain's files are missing: a coarser grain may still
      // hold these dates.
      for (const g of CFG.grains.slice(CFG.grains.indexOf(grain) + 1)) {
        const cov = coverage(g.dataset);
        if (!cov || cov.max < state.from || cov.min > state.to) continue;
        const r = await usable(g);
        if (gen !== state.generation) return;
        if (r) {
          message(`The ${grain.grain} data for ${state.from} – ${state.to} is missing: showing ${g.grain} data instead.`, 'warning', `fallback:${state.from}:${state.to}`, 'range');
          grain = g;
          rel = r;
          break;
        }
      }
    }
    probe.grain = grain.grain;
    $('grain').textContent = `grain: ${grain.grain} (${rangeDays(state.from, state.to)} days)`;
    if (!rel) {
      message(`No data file of \`${grain.dataset}\` covers ${state.from} – ${state.to}.`, 'warning', `nodata:${grain.dataset}:${state.from}:${state.to}`, 'range');
      CFG.charts.forEach((c, i) => chartState(i, 'empty', 0, 'No data for these dates'));
      chartState('map', 'empty', 0, 'No data for these dates');
      for (const [i] of CFG.kpis.entries()) {
        const el = $('kpi-' + i).querySelector('.kpi-value');
        el.textContent = '–';
        el.dataset.value = '';
      }
      return;
    }
    state.rel = rel;
    state.grainNow = grain;
    // Every panel at once: DuckDB-WASM runs the queries one after another in
    // its worker while this thread draws each panel whose result came back
    // (a filter change costs about the longer of the two, not their sum).
    const panels = [];
    const run = (text, work, onError) => {
      status(`Querying: ${text}…`);
      panels.push(work().catch(onError));
    };
    // The charts first (time charts, then bars): the worker answers them
    // while this thread draws the ones already back, and the lists and the
    // KPIs (cheap to draw) come last, instead of delaying the first drawing.
    const order = [...CFG.charts.entries()].sort(([, a], [, b]) => (a.type === 'bar') - (b.type === 'bar'));
    for (const [i, c] of order) {
      run(c.title, async () => {
        if (c.type === 'bar') await renderBarChart(i, c, grain, rel, gen);
        else await renderTimeChart(i, c, grain, rel, gen);
        if (gen === state.generation && probe.firstChartMs === null) {
          probe.firstChartMs = performance.now();
          mark('first_chart');
        }
      }, (e) => {
        if (gen !== state.generation) return;
        chartState(i, 'error', 0, 'This chart could not be drawn: ' + errorText(e));
        message(`Chart “${c.title}”: ${errorText(e)}`, 'error');
      });
    }
    if (CFG.map) {
      run(CFG.map.title || 'map', () => renderMap(grain, rel, gen), (e) => {
        if (gen !== state.generation) return;
        chartState('map', 'error', 0, 'The map could not be drawn: ' + errorText(e));
        message(`Map: ${errorText(e)}`, 'error');
      });
    }
    run('filter lists', async () => {
      await loadCombos(rel, `${grain.dataset}|${state.from}|${state.to}|${rel.key}|${probe.useRollups}|${probe.useStoredRollups}`);
      if (gen === state.generation) updateOptions();
    }, (e) => message('The filter lists could not be loaded: ' + errorText(e), 'warning'));
    run('KPIs', () => renderKpis(grain, rel, gen), (e) => message('The KPIs could not be computed: ' + errorText(e), 'error'));
    await Promise.all(panels);
  } catch (e) {
    message('The dashboard could not query its data: ' + errorText(e), 'error');
  } finally {
    if (gen === state.generation) {
      probe.lastRefreshMs = performance.now() - t0;
      if (probe.firstChartMs === null) probe.firstChartMs = performance.now();
      renderChips();
      writeUrl();
      setBusy(false);
      status(`Showing ${state.from} – ${state.to} (${rangeDays(state.from, state.to)} days) at ${grain.grain} grain · ${Math.round(probe.lastRefreshMs)} ms`, false);
      probe.renders += 1;
      probe.ready = true;
      for (const resolve of idleWaiters.splice(0)) resolve();
      if (probe.previewShown) markPreview(false);
    }
  }
}

// ---------------------------------------------------------------- last day

// Whether the newest day is complete: its last interval at the finest grain
// that has it ends at midnight (the exporter's summary computes the same).
const STEP_MINUTES = { '5min': 5, '15min': 15, '30min': 30, hour: 60 };
async function checkLastDay() {
  const g = CFG.grains.find((x) => STEP_MINUTES[x.grain] && coverage(x.dataset)?.max === state.dataMax);
  if (!g) {
    state.lastDay = null;
    return;
  }
  // The stored rollup that keeps the time holds the same timestamps: read
  // from its file when there is one (the newest day's rows stay unfetched).
  const timed = ((PAGE.stored_rollups || {})[g.dataset] || []).find((s) => s.time);
  const rows = datasetFiles(g.dataset).filter((f) => f.max_date === state.dataMax);
  const rollupsFiles = rows.map((f) => state.manifest.files.find((x) => x.path === rollupsPath(f.path) && x.dataset === g.dataset + ROLLUPS));
  const fromRollups = probe.useStoredRollups && timed && rollupsFiles.length && rollupsFiles.every(Boolean);
  const files = fromRollups ? rollupsFiles : rows;
  const parts = (await Promise.all(files.map((f) => attach(f))))
    .map((a, i) => (a ? `SELECT * FROM ${ident(a)}.${ident(fromRollups ? timed.table : files[i].table)}` : null))
    .filter(Boolean);
  if (!parts.length) return;
  const day = `DATE ${sqlString(state.dataMax)}`;
  const r = (await query(`SELECT strftime(max(_time), '%H:%M') AS last, max(_time) + INTERVAL ${STEP_MINUTES[g.grain]} MINUTE >= ${day} + INTERVAL 1 DAY AS complete FROM (SELECT ${g.time} AS _time FROM (${parts.join(' UNION ALL BY NAME ')}) WHERE ${ident(CFG.date_column)} = ${day})`))[0];
  state.lastDay = r && r.last ? { date: state.dataMax, last: r.last, complete: !!r.complete } : null;
  probe.lastDay = state.lastDay;
}

// ---------------------------------------------------------------- first paint

// The exporter's summary (in manifest.json) holds the KPIs and charts of the
// view the page opens with, computed with DuckDB from the same configuration:
// drawn at once, marked "preview", and replaced by the page's own queries
// once DuckDB-WASM is ready. Used only for that view, and dropped when the
// manifest no longer lists the files it was computed from.
function isDefaultView(url) {
  return (
    !Object.keys(url.filters).length &&
    !Object.keys(url.measures).length &&
    !url.from &&
    (url.days === undefined || url.days === (CFG.default_days || 7))
  );
}
// The summary travels in manifest.json (read fresh on every visit), so the
// page itself does not change when only the data does.
async function loadSummary(manifestP) {
  const sum = (await manifestP).summary;
  if (!sum) return null;
  if (sum.version !== 1) throw new Error('unknown summary version');
  return sum;
}
// Columns {n, t, s, v} of a summary chart, as the page's query returns them
// (a missing value and a null one draw the same: 0 in a stack, a gap in a line).
function summaryColumns(c) {
  const t = [];
  for (const [first, step, count] of c.times) for (let k = 0; k < count; k++) t.push(first + step * k);
  const out = { n: 0, rows: c.rows, t: [], s: [], v: [] };
  t.forEach((time, k) => {
    for (const se of c.series) {
      const v = se.values[k] ?? null;
      out.t.push(time);
      out.s.push(se.name);
      out.v.push(v);
      out.n += 1;
    }
  });
  return out;
}
// The chart library (1 MB of script) is only preloaded by index.html: it is
// run from here, after the summary's first paint, so parsing it never holds
// that paint back. Resolves once it has run (or failed to load: the page
// says so, see index.html).
let chartLibraryP = null;
function chartLibrary() {
  if (window.echarts) return Promise.resolve();
  if (!chartLibraryP) {
    chartLibraryP = new Promise((resolve) => {
      const s = document.createElement('script');
      s.src = absolute(PAGE.assets.echarts_script);
      s.onload = s.onerror = () => resolve();
      document.head.appendChild(s);
    });
  }
  return chartLibraryP;
}

// A light drawing of a time chart of the summary on a canvas (areas or
// lines in the series' colours, value and time labels, legend), shown while
// ECharts is still being parsed; ECharts redraws the chart in place.
function sketchTimeChart(i, chart, data) {
  const el = $('chart-' + i);
  const w = el && el.clientWidth;
  const h = el && el.clientHeight;
  if (!w || !h || !data || !data.times || !data.series) return false;
  const m = measure(chart.measure);
  const d = chart.series ? dimension(chart.series) : null;
  const stacked = chart.type === 'area';
  const times = [];
  for (const [first, step, count] of data.times) for (let k = 0; k < count; k++) times.push(first + step * k);
  if (times.length < 2) return false;
  const total = (se) => se.values.reduce((a, v) => a + (Number.isFinite(v) ? v : 0), 0);
  const series = [...data.series].sort(stacked ? (a, b) => total(b) - total(a) : (a, b) => String(a.name).localeCompare(String(b.name)));
  // Stacked: running sums from the first series up (as ECharts stacks).
  const base = new Float64Array(times.length);
  const layers = series.map((se) => {
    const lo = Float64Array.from(base);
    const hi = times.map((_, k) => {
      const v = se.values[k];
      if (!Number.isFinite(v)) return stacked ? base[k] : NaN;
      return stacked ? (base[k] += v) : v;
    });
    return { name: se.name, lo, hi };
  });
  let min = Infinity;
  let max = -Infinity;
  for (const l of layers) for (let k = 0; k < times.length; k++) {
    if (Number.isFinite(l.hi[k])) {
      min = Math.min(min, l.hi[k], stacked ? l.lo[k] : l.hi[k]);
      max = Math.max(max, l.hi[k]);
    }
  }
  if (!Number.isFinite(min)) return false;
  if (stacked || min > 0) min = Math.min(0, min);
  const step = 10 ** Math.floor(Math.log10((max - min) / 4 || 1));
  const tick = [1, 2, 2.5, 5, 10].map((f) => f * step).find((t) => (max - min) / t <= 5) || step * 10;
  const y0 = Math.floor(min / tick) * tick;
  const y1 = Math.ceil(max / tick) * tick || tick;
  const canvas = document.createElement('canvas');
  canvas.className = 'sketch';
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.cssText = `position:absolute;left:0;top:0;width:${w}px;height:${h}px`;
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  const muted = cssVar('--muted') || '#5f6b7a';
  g.font = '12px sans-serif';
  const labels = [];
  for (let v = y0; v <= y1 + tick / 2; v += tick) labels.push([v, fmtNumber(v, tick < 1 ? 2 : 0)]);
  const left = 14 + Math.max(...labels.map(([, t]) => g.measureText(t).width));
  const top = 62;
  const bottom = h - 58;
  const right = w - (isPhone() ? 8 : 18);
  const x = (t) => left + ((t - times[0]) / (times[times.length - 1] - times[0])) * (right - left);
  const y = (v) => bottom - ((v - y0) / (y1 - y0)) * (bottom - top);
  g.fillStyle = muted;
  g.strokeStyle = 'rgba(128,128,128,0.25)';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const [v, t] of labels) {
    g.fillText(t, left - 8, y(v));
    g.beginPath();
    g.moveTo(left, Math.round(y(v)) + 0.5);
    g.lineTo(right, Math.round(y(v)) + 0.5);
    g.stroke();
  }
  g.textAlign = 'left';
  g.textBaseline = 'alphabetic';
  g.fillText(measureLabel(m) + unitLabel(m), 8, top - 12);
  // A label at each midnight (market time, as stored) that has room.
  g.textAlign = 'center';
  g.textBaseline = 'top';
  let lastX = -Infinity;
  for (const t of times) {
    if (t % 86400000 !== 0 || x(t) - lastX < 70) continue;
    g.fillText(fmtTime(t, 'day').slice(5), x(t), bottom + 8);
    lastX = x(t);
  }
  g.fillText(TZ ? `Time (${TZ})` : 'Time', (left + right) / 2, bottom + 28);
  for (const l of layers) {
    const color = colorFor(d, l.name) || cssVar('--accent') || '#3b7dd8';
    g.beginPath();
    let on = false;
    for (let k = 0; k < times.length; k++) {
      if (!Number.isFinite(l.hi[k])) {
        on = false;
        continue;
      }
      if (on) g.lineTo(x(times[k]), y(l.hi[k]));
      else g.moveTo(x(times[k]), y(l.hi[k]));
      on = true;
    }
    if (stacked) {
      for (let k = times.length - 1; k >= 0; k--) g.lineTo(x(times[k]), y(l.lo[k]));
      g.closePath();
      g.globalAlpha = 0.85;
      g.fillStyle = color;
      g.fill();
      g.globalAlpha = 1;
    } else {
      g.lineWidth = 1.5;
      g.strokeStyle = color;
      g.stroke();
    }
  }
  // The legend, centred on top.
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  const items = layers.map((l) => [l.name || measureLabel(m), colorFor(d, l.name) || cssVar('--accent') || '#3b7dd8']);
  const widths = items.map(([t]) => 25 + g.measureText(String(t)).width + 10);
  let lx = Math.max(4, (w - widths.reduce((a, b) => a + b, 0)) / 2);
  items.forEach(([t, c], k) => {
    if (lx + widths[k] > w) return;
    g.fillStyle = c;
    g.fillRect(lx, 7, 25, 14);
    g.fillStyle = muted;
    g.fillText(String(t), lx + 30, 14);
    lx += widths[k];
  });
  el.querySelector('canvas.sketch')?.remove();
  el.appendChild(canvas);
  el.dataset.state = 'ready';
  el.dataset.points = String(data.rows ?? times.length * series.length);
  return true;
}

function drawPreview(sum) {
  const grain = CFG.grains.find((g) => g.grain === sum.grain);
  if (!grain) return false;
  state.from = sum.from;
  state.to = sum.to;
  state.lastDay = sum.last_day || null;
  if ($('date-from')) {
    $('date-from').value = sum.from;
    $('date-to').value = sum.to;
  }
  for (const [name, labels] of Object.entries(sum.lookups || {})) {
    if (!state.lookups[name]) state.lookups[name] = new Map(Object.entries(labels));
  }
  $('grain').textContent = `grain: ${grain.grain} (${rangeDays(sum.from, sum.to)} days)`;
  const draw = (i) => {
    const c = CFG.charts[i];
    const data = sum.charts[i];
    if (!data || (!probe.previewShown && i > 0)) return;
    if (c.type === 'bar') drawBarChart(i, c, data.keys.map((k, j) => ({ c: k, v: data.values[j] })));
    else drawTimeChart(i, c, grain, measure(c.measure), c.series ? dimension(c.series) : null, null, null, summaryColumns(data));
  };
  // The KPIs and the first chart, then the page can paint (and DuckDB-WASM
  // start) while the other charts are drawn.
  mark('summary');
  drawKpis(sum.kpis, sum.latest_at, grain);
  if (!charts.has(0) && CFG.charts.length && CFG.charts[0].type !== 'bar' && sketchTimeChart(0, CFG.charts[0], sum.charts[0])) {
    // On screen at once: before the chart library has been parsed, and
    // before its first drawing (slow: its code runs for the first time).
    // ECharts redraws it once it is there and the sketch has been painted.
    markPreview(true);
    probe.sketch = true;
    if (probe.marks.preview === undefined) mark('preview');
    (async () => {
      await new Promise((resolve) => {
        requestAnimationFrame(() => setTimeout(resolve, 0));
        setTimeout(resolve, 100);
      });
      await chartLibrary();
      // Not when the live numbers (or a newer export) came first.
      if (probe.previewShown && state.summary === sum && state.generation === 0 && window.echarts) previewCharts(sum, grain, draw);
    })();
    return true;
  }
  if (window.echarts) previewCharts(sum, grain, draw);
  else {
    // No sketch (a bar chart first, a hidden panel): the charts once the
    // library has run, unless the live numbers came first.
    chartLibrary().then(() => {
      if (state.summary === sum && state.generation === 0 && window.echarts) previewCharts(sum, grain, draw);
    });
  }
  return true;
}
// The summary's charts drawn by ECharts: the first at once, the others next.
function previewCharts(sum, grain, draw) {
  if (CFG.charts.length) draw(0);
  if (probe.marks.preview_echarts === undefined) mark('preview_echarts');
  markPreview(true);
  probe.preview = {
    ms: Math.round(performance.now()),
    kpis: [...document.querySelectorAll('.kpi-value')].map((e) => e.textContent),
    grain: sum.grain,
  };
  if (probe.marks.preview === undefined) mark('preview');
  status('Preview from the export’s summary · starting DuckDB-WASM for the rest…');
  setTimeout(() => {
    for (let i = 1; i < CFG.charts.length; i++) draw(i);
    if (probe.previewShown) {
      probe.previewDone = true;
      if (probe.marks.preview_all === undefined) mark('preview_all');
    }
  }, 0);
  return true;
}
function markPreview(on) {
  probe.previewShown = on;
  document.body.classList.toggle('preview', on);
  for (const el of document.querySelectorAll('#kpis, figure.chart:not(.map)')) {
    let badge = el.querySelector(':scope > .preview-badge, :scope > figcaption > .preview-badge');
    if (on && !badge) {
      badge = document.createElement('span');
      badge.className = 'preview-badge';
      badge.textContent = 'preview';
      badge.title = 'Computed when the data was exported; live numbers once the database engine has started';
      (el.querySelector('figcaption') || el).appendChild(badge);
    } else if (!on && badge) badge.remove();
  }
}
// The summary no longer matches the data (a newer export): back to "loading".
function dropPreview() {
  markPreview(false);
  state.summary = null;
  probe.previewDropped = true;
  for (const el of document.querySelectorAll('.kpi-value')) el.textContent = '…';
  CFG.charts.forEach((c, i) => chartState(i, 'loading', 0, ''));
}
function summaryCurrent(sum) {
  const files = new Map(state.manifest.files.map((f) => [f.path, f.sha256]));
  return (
    sum.files.every((f) => files.get(f.path) === f.sha256) &&
    sum.from === state.from &&
    sum.to === state.to &&
    chooseGrain(state.from, state.to).grain === sum.grain
  );
}

// ---------------------------------------------------------------- download

function csvDecimals(m) {
  return Math.max(m.decimals ?? 1, 2);
}
function csvText(header, data, keys) {
  const esc = (v) => {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'bigint' ? v.toString() : String(v);
    return /[",\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
  };
  return [header.map(esc).join(','), ...data.map((r) => keys.map((h) => esc(r[h])).join(','))].join('\n') + '\n';
}
function saveFile(name, text, type = 'text/csv') {
  const blob = new Blob([text], { type });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
const slug = (s) => String(s).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');

// Rows at the current grain; values rounded (no float noise); headers carry
// units and the time zone; the file name carries the range and the filters.
async function download() {
  const spec = CFG.download;
  const grain = state.grainNow;
  if (!spec || !grain || !state.rel) return;
  status('Preparing the CSV…');
  const rows = await state.rel.get();
  if (!rows) return;
  const base = baseSql(grain, rows);
  const dims = spec.by.map((n) => `CAST(${ident(dimension(n).column)} AS VARCHAR) AS ${ident(n)}`);
  const ms = spec.measures.map((n) => `round(${measureSql(measure(n), grain.grain)}, ${csvDecimals(measure(n))}) AS ${ident(n)}`);
  const fmt = grain.grain === 'day' ? '%Y-%m-%d' : '%Y-%m-%d %H:%M';
  const sql = `SELECT strftime(_time, '${fmt}') AS time, ${[...dims, ...ms].join(', ')} FROM ${base} GROUP BY ALL ORDER BY ALL`;
  const data = await query(sql);
  const timeHeader = (grain.grain === 'day' ? 'date' : 'time') + (TZ ? ` (${TZ.replaceAll(',', '')})` : '');
  const header = [timeHeader, ...spec.by, ...spec.measures.map((n) => n + (measure(n).unit ? ` (${measure(n).unit})` : ''))];
  const keys = ['time', ...spec.by, ...spec.measures];
  const filters = CFG.dimensions
    .filter((d) => selected(d.name).length)
    .map((d) => (selected(d.name).length > 3 ? `${selected(d.name).length}-${d.name}s` : selected(d.name).map(slug).join('+')));
  const name = [PAGE.project, grain.grain, state.from, state.to, ...filters].map(slug).join('_') + '.csv';
  probe.lastCsv = { name, header, rows: data.length };
  saveFile(name, csvText(header, data, keys));
  status(`Downloaded ${name} (${data.length.toLocaleString('en-AU')} rows)`, false);
}

// ---------------------------------------------------------------- analyze

function showTab(name) {
  state.tab = name === 'analyze' ? 'analyze' : 'overview';
  for (const x of document.querySelectorAll('button.tab')) {
    const on = x.dataset.tab === state.tab;
    x.classList.toggle('active', on);
    x.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== state.tab;
  if (state.tab === 'overview') for (const c of charts.values()) c.resize();
  if (state.manifest) writeUrl();
}

function wireTabs() {
  for (const b of document.querySelectorAll('button.tab')) b.addEventListener('click', () => showTab(b.dataset.tab));
  // Arrow keys move between the tabs (the tab pattern).
  const tabs = [...document.querySelectorAll('button.tab')];
  for (const b of tabs) {
    b.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const next = tabs[(tabs.indexOf(b) + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      next.click();
    });
  }
  const first = CFG.grains[CFG.grains.length - 1]?.dataset || state.manifest?.files[0]?.dataset;
  $('sql').value = CFG.analyze_sql || (first ? `SELECT *\nFROM ${first}\nLIMIT 100` : 'SELECT 42 AS answer');
  $('run-sql').addEventListener('click', () => runSql());
  $('explain-sql').addEventListener('click', () => runSql(true));
  if ($('pick-sql')) $('pick-sql').addEventListener('click', () => ($('sql').value = pickerSql()));
  $('sql-csv').addEventListener('click', () => {
    if (!lastResult) return;
    saveFile('query.csv', csvText(lastResult.names, lastResult.data, lastResult.names));
  });
  $('sql').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSql();
  });
}

// A cell as text: dates as dates, timestamps as timestamps (Arrow hands
// both over as epoch milliseconds), numbers without float noise.
function cellText(v, type) {
  if (v === null || v === undefined) return 'NULL';
  const t = String(type);
  if (/^Date/.test(t) || /^Timestamp/.test(t)) {
    const ms = v instanceof Date ? v.getTime() : typeof v === 'bigint' ? Number(v) : Number(v);
    if (!Number.isFinite(ms)) return String(v);
    const iso = new Date(ms).toISOString();
    if (/^Date/.test(t)) return iso.slice(0, 10);
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) + ' 00:00:00' : iso.replace('T', ' ').replace(/\.000Z$/, '').replace('Z', '');
  }
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object') return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x));
  return String(v);
}

// The picker's query: the ticked measures grouped by time and the ticked
// dimensions at the chosen grain, over the current date range and filters
// (the SQL the charts run, written out to edit).
function pickerSql() {
  const grain = CFG.grains.find((g) => g.grain === $('pick-grain').value) || CFG.grains[0];
  const ms = [...document.querySelectorAll('input[name=pick-measure]:checked')].map((e) => measure(e.value));
  const ds = [...document.querySelectorAll('input[name=pick-dim]:checked')].map((e) => dimension(e.value));
  const cols = [];
  if ($('pick-time').checked) cols.push(`_time AS ${ident('time' + (TZ ? ` (${TZ.replaceAll(',', '')})` : ''))}`);
  for (const d of ds) cols.push(`CAST(${ident(d.column)} AS VARCHAR) AS ${ident(d.name)}`);
  for (const m of ms) cols.push(`round(${measureSql(m, grain.grain)}, ${csvDecimals(m)}) AS ${ident(m.name + (m.unit ? ` (${m.unit})` : ''))}`);
  if (!cols.length) cols.push('count(*) AS rows');
  const where = [`${ident(CFG.date_column)} BETWEEN DATE ${sqlString(state.from || state.dataMin || '1970-01-01')} AND DATE ${sqlString(state.to || state.dataMax || '2999-12-31')}`, ...filterSql()];
  const grouped = $('pick-time').checked || ds.length;
  return `SELECT ${cols.join(',\n       ')}\nFROM (SELECT *, ${grain.time} AS _time\n      FROM ${grain.dataset}\n      WHERE ${where.join('\n        AND ')}) AS t${grouped ? '\nGROUP BY ALL\nORDER BY ALL' : ''}`;
}

const PREVIEW_ROWS = 500;
let lastResult = null;
async function runSql(explain = false) {
  const st = $('sql-status');
  const out = $('sql-result');
  if (!state.conn) {
    st.textContent = 'DuckDB is still loading…';
    return;
  }
  const sql = $('sql').value;
  const t0 = performance.now();
  st.textContent = 'Running…';
  st.className = '';
  out.classList.add('running');
  status('Analyze: running the query…');
  try {
    const datasets = [...new Set(state.manifest.files.map((f) => f.dataset))].filter((d) => !d.endsWith(ROLLUPS));
    for (const ds of datasets) {
      if (!new RegExp(`\\b${ds.replace(/[^A-Za-z0-9_]/g, '')}\\b`, 'i').test(sql)) continue;
      const rel = await relation(ds);
      if (rel) await state.conn.query(`CREATE OR REPLACE TEMP VIEW ${ident(ds)} AS SELECT * FROM ${rel}`);
    }
    if (explain) {
      const plan = rows(await state.conn.query('EXPLAIN ' + sql));
      const pre = document.createElement('pre');
      pre.className = 'plan';
      pre.id = 'sql-plan';
      pre.textContent = plan.map((r) => r.explain_value ?? Object.values(r).join('\n')).join('\n');
      out.replaceChildren(pre);
      st.textContent = `Query plan (EXPLAIN) in ${Math.round(performance.now() - t0)} ms`;
      out.dataset.rows = '';
      status('Analyze: query plan shown', false);
      return;
    }
    const table = await state.conn.query(sql);
    const fields = table.schema.fields;
    const names = fields.map((f) => f.name);
    const data = rows(table);
    const shownRows = data.slice(0, PREVIEW_ROWS);
    const t = document.createElement('table');
    const head = t.createTHead().insertRow();
    for (const f of fields) {
      const th = document.createElement('th');
      th.textContent = f.name;
      th.title = String(f.type);
      head.appendChild(th);
    }
    const body = t.createTBody();
    for (const r of shownRows) {
      const tr = body.insertRow();
      for (const f of fields) {
        const td = tr.insertCell();
        const v = r[f.name];
        td.textContent = cellText(v, f.type);
        if ((typeof v === 'number' || typeof v === 'bigint') && !/^(Date|Timestamp)/.test(String(f.type))) td.className = 'num';
      }
    }
    out.replaceChildren(t);
    lastResult = { names, data: data.map((r) => Object.fromEntries(fields.map((f) => [f.name, r[f.name] === null || r[f.name] === undefined ? null : cellText(r[f.name], f.type)]))) };
    $('sql-csv').disabled = false;
    st.textContent = `${data.length.toLocaleString('en-AU')} rows${data.length > shownRows.length ? ` (first ${PREVIEW_ROWS.toLocaleString('en-AU')} shown)` : ''} in ${Math.round(performance.now() - t0)} ms`;
    out.dataset.rows = String(data.length);
    status(`Analyze: ${st.textContent}`, false);
  } catch (e) {
    // The old result goes: an error never sits over numbers it did not make.
    const box = document.createElement('div');
    box.className = 'sql-error';
    box.setAttribute('role', 'alert');
    const b = document.createElement('b');
    b.textContent = 'Query failed';
    const pre = document.createElement('pre');
    pre.textContent = (e && e.message) || String(e);
    box.append(b, pre);
    out.replaceChildren(box);
    lastResult = null;
    $('sql-csv').disabled = true;
    st.textContent = errorText(e);
    st.className = 'error';
    out.dataset.rows = '';
    status('Analyze: the query failed (see below)', false);
  } finally {
    out.classList.remove('running');
  }
}

// ---------------------------------------------------------------- start

async function main() {
  wireTabs();
  wireTheme();
  status('Loading manifest.json…');
  const manifestP = loadManifest();
  manifestP.catch(() => {});
  // The exporter's summary first (a few requests, no engine): KPIs and charts
  // on screen before DuckDB-WASM has even been downloaded.
  let summary = null;
  if (CFG.grains.length && isDefaultView(readUrl())) {
    try {
      summary = await loadSummary(manifestP);
      state.summary = summary;
      if (summary && !drawPreview(summary)) summary = null;
    } catch (e) {
      summary = null;
      probe.summaryError = errorText(e);
    }
  }
  // The chart library: now, unless the sketch's continuation loads it once
  // the sketch is painted.
  if (!probe.sketch) chartLibrary();
  // DuckDB-WASM compiles while the manifest and the first data files download.
  const duck = startDuckDB();
  duck.then(() => {
    duckReady = true;
    mark('duckdb_ready');
  }, () => {});
  try {
    state.manifest = await manifestP;
  } catch (e) {
    if (summary) dropPreview();
    message(errorText(e), 'error');
    probe.failed = true;
    $('freshness').textContent = 'No data';
    status('No data', false);
    CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'No data'));
    chartState('map', 'error', 0, 'No data');
    return;
  }
  mark('manifest');
  status('Starting DuckDB-WASM (downloading and compiling the database engine)…');
  pruneCache().catch(() => {}); // housekeeping only
  showFreshness();
  showFiles();
  const url = readUrl();
  if (url.tab) showTab(url.tab);
  if (CFG.grains.length) {
    const covs = CFG.grains.map((g) => coverage(g.dataset)).filter(Boolean);
    if (!covs.length) {
      message(`manifest.json lists none of the datasets this dashboard reads (${CFG.grains.map((g) => g.dataset).join(', ')}).`, 'error');
      status('No data for this dashboard', false);
      CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'No data'));
      chartState('map', 'error', 0, 'No data');
      return;
    }
    state.dataMin = covs.map((c) => c.min).sort()[0];
    state.dataMax = covs.map((c) => c.max).sort().pop();
    const from = $('date-from');
    from.min = $('date-to').min = state.dataMin;
    from.max = $('date-to').max = state.dataMax;
    if (url.from && url.to) {
      state.from = url.from < state.dataMin ? state.dataMin : url.from;
      state.to = url.to > state.dataMax ? state.dataMax : url.to;
      if (state.from > state.to) setRange(CFG.default_days || 7);
      state.days = null;
      from.value = state.from;
      $('date-to').value = state.to;
      markPreset(null);
    } else {
      const days = url.days !== undefined && Number.isFinite(url.days) ? url.days : CFG.default_days || 7;
      setRange(days);
      markPreset(document.querySelector(`.presets button[data-days="${days}"]`));
    }
    state.filters = url.filters;
    state.measures = url.measures;
    for (const d of CFG.dimensions) {
      const el = $('filter-' + d.name);
      if (el && !d.search && selected(d.name).length) {
        el.replaceChildren(new Option('All', ''), ...selected(d.name).map((v) => new Option(v, v)));
        el.value = selected(d.name)[0];
      }
    }
    markToggles();
    renderChips();
    wireFilters();
    const first = chooseGrain(state.from, state.to);
    // What the first view reads: the rollups files when they cover it.
    if (rollupsCover(first.dataset, state.from, state.to)) filesInRange(first.dataset + ROLLUPS, state.from, state.to).forEach(prefetch);
    else filesInRange(first.dataset, state.from, state.to).forEach(prefetch);
    if (summary && !summaryCurrent(summary)) dropPreview();
  }
  for (const d of CFG.dimensions) if (d.lookup) datasetFiles(d.lookup.dataset).forEach(prefetch);
  try {
    await duck;
  } catch (e) {
    message('DuckDB-WASM could not start in this browser: ' + errorText(e), 'error');
    probe.failed = true;
    status('DuckDB-WASM did not start', false);
    CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'DuckDB-WASM did not start'));
    chartState('map', 'error', 0, 'DuckDB-WASM did not start');
    return;
  }
  mark('duckdb');
  status('Loading names…');
  // The first view's files are attached now (their bytes were prefetched),
  // while the names and the newest day load: the worker runs them in the
  // order asked, with no gap for the page's own work in between.
  if (CFG.grains.length) {
    const first = chooseGrain(state.from, state.to);
    const stored = rollupsCover(first.dataset, state.from, state.to);
    for (const f of filesInRange(first.dataset + (stored ? ROLLUPS : ''), state.from, state.to)) attach(f, stored);
  }
  // The newest day: from the exporter's summary when it was computed from
  // these very files (the same query), else asked of DuckDB-WASM.
  let lastDay = null;
  if (state.summary && state.summary.last_day && summaryCurrent(state.summary)) {
    state.lastDay = state.summary.last_day;
    probe.lastDay = state.lastDay;
    probe.lastDayFromSummary = true;
  } else if (CFG.grains.length) lastDay = checkLastDay().catch((e) => message('The newest day could not be checked: ' + errorText(e), 'warning'));
  await loadLookups().catch((e) => message('Lookup data could not be loaded: ' + errorText(e), 'warning'));
  mark('lookups');
  await lastDay;
  await chartLibrary();
  await refresh();
  mark('first_render');
  if (!CFG.grains.length) {
    status('Ready: query the data files in the Analyze tab', false);
    probe.ready = true;
  }
}

main().catch((e) => {
  probe.failed = true;
  message('The dashboard failed to start: ' + errorText(e), 'error');
});
