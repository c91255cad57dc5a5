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

const PAGE = JSON.parse(document.getElementById('page-config').textContent);
const CFG = PAGE.config;
const CACHE_NAME = 'analytics-data-v1';

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
});
const mark = (name) => (probe.marks[name] = Math.round(performance.now()));

const state = {
  manifest: null,
  db: null,
  conn: null,
  files: new Map(), // path -> Promise<alias|null>
  from: null,
  to: null,
  filters: {},
  lookups: {},
  generation: 0,
  dataMin: null,
  dataMax: null,
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
function fmtNumber(v, decimals = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return Number(v).toLocaleString('en-AU', {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}
const dimension = (name) => CFG.dimensions.find((d) => d.name === name);
const measure = (name) => CFG.measures.find((m) => m.name === name);
function measureSql(m, grain) {
  const sql = typeof m.sql === 'string' ? m.sql : m.sql[grain];
  return `CAST((${sql}) AS DOUBLE)`;
}
function absolute(url) {
  return url ? new URL(url, document.baseURI).href : url;
}

function rows(table) {
  return table.toArray().map((r) => r.toJSON());
}

// Column arrays of a result (typed arrays for numbers): much cheaper than
// row objects for the thousands of points of a time chart.
async function queryColumns(sql) {
  const t0 = performance.now();
  const table = await state.conn.query(sql);
  const t1 = performance.now();
  const out = {};
  for (const f of table.schema.fields) out[f.name] = table.getChild(f.name).toArray();
  probe.queries.push({ sql: sql.slice(0, 70), query_ms: Math.round(t1 - t0), rows: table.numRows, convert_ms: Math.round(performance.now() - t1) });
  if (probe.queries.length > 40) probe.queries.shift();
  return { n: table.numRows, ...out };
}

async function query(sql) {
  const t0 = performance.now();
  const table = await state.conn.query(sql);
  const t1 = performance.now();
  const out = rows(table);
  // Kept for the benchmark: where a refresh spends its time.
  probe.queries.push({ sql: sql.slice(0, 70), query_ms: Math.round(t1 - t0), rows: out.length, convert_ms: Math.round(performance.now() - t1) });
  if (probe.queries.length > 40) probe.queries.shift();
  return out;
}

// ---------------------------------------------------------------- manifest

async function loadManifest() {
  // `no-cache` revalidates with the server (ETag / Last-Modified): a 304
  // costs no download, and a new export is seen at once.
  const resp = await fetch('manifest.json', { cache: 'no-cache' });
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

async function startDuckDB() {
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
  for (const name of order) {
    const bundle = bundles[name];
    const workerUrl = URL.createObjectURL(
      new Blob([`importScripts(${JSON.stringify(absolute(bundle.mainWorker))});`], { type: 'text/javascript' }),
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
  const resp = await fetch(url.href, { cache: 'no-store' });
  if (!resp.ok) {
    const err = new Error(`HTTP ${resp.status}`);
    err.missing = true;
    throw err;
  }
  const buf = await resp.arrayBuffer();
  probe.downloaded.push(file.path);
  if (crypto.subtle && file.sha256) {
    const digest = await crypto.subtle.digest('SHA-256', buf);
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    if (hex !== file.sha256.toLowerCase()) {
      message(`${file.path} does not match manifest.json (a newer export is being published?): reload in a minute to see consistent data.`, 'warning');
      return new Uint8Array(buf);
    }
  }
  if (cache) {
    await cache.put(key.href, new Response(buf.slice(0), { headers: { 'content-type': 'application/octet-stream' } }));
    // Drop older versions of the same file.
    for (const req of await cache.keys()) {
      const u = new URL(req.url);
      if (u.pathname === url.pathname && u.searchParams.get('sha256') !== file.sha256) await cache.delete(req);
    }
  }
  return new Uint8Array(buf);
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

function attach(file) {
  if (!state.files.has(file.path)) {
    const alias = 'f_' + file.path.replace(/[^A-Za-z0-9]/g, '_');
    state.files.set(
      file.path,
      (async () => {
        try {
          const bytes = await prefetch(file);
          bytesByPath.delete(file.path); // the worker owns them now
          const name = alias + '.duckdb';
          await state.db.registerFileBuffer(name, bytes);
          await state.conn.query(`ATTACH ${sqlString(name)} AS ${ident(alias)} (READ_ONLY)`);
          return alias;
        } catch (e) {
          probe.missing.push(file.path);
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

// SQL for a dataset's rows over [from, to]: the union of the files it needs.
async function relation(dataset, from, to) {
  const files = filesInRange(dataset, from, to);
  if (files.length === 0) return null;
  const aliases = (await Promise.all(files.map(attach)))
    .map((a, i) => (a ? `SELECT * FROM ${ident(a)}.${ident(files[i].table)}` : null))
    .filter(Boolean);
  if (aliases.length === 0) return null;
  return aliases.length === 1 ? `(${aliases[0]})` : `(${aliases.join(' UNION ALL BY NAME ')})`;
}

function coverage(dataset) {
  const files = datasetFiles(dataset);
  const mins = files.map((f) => f.min_date).filter(Boolean).sort();
  const maxs = files.map((f) => f.max_date).filter(Boolean).sort();
  return files.length ? { min: mins[0], max: maxs[maxs.length - 1] } : null;
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

function filterSql() {
  const parts = [];
  for (const d of CFG.dimensions) {
    const v = state.filters[d.name];
    if (v) parts.push(`${ident(d.column)} = ${sqlString(v)}`);
  }
  return parts;
}

function baseSql(grain, rel) {
  const where = [`${ident(CFG.date_column)} BETWEEN DATE ${sqlString(state.from)} AND DATE ${sqlString(state.to)}`, ...filterSql()];
  return `(SELECT *, ${grain.time} AS _time FROM ${rel} WHERE ${where.join(' AND ')}) AS t`;
}

function setOptions(select, values) {
  const current = select.value;
  const have = new Set([...select.options].map((o) => o.value));
  for (const v of values) {
    if (v === null || v === undefined || have.has(String(v))) continue;
    const o = document.createElement('option');
    o.value = String(v);
    o.textContent = String(v);
    select.appendChild(o);
  }
  // Keep the list sorted after merging values from another grain.
  const opts = [...select.options].slice(1).sort((a, b) => a.value.localeCompare(b.value));
  for (const o of opts) select.appendChild(o);
  select.value = current;
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

async function updateOptions(rel) {
  for (const d of CFG.dimensions) {
    const el = $('filter-' + d.name);
    if (!el) continue;
    if (d.search) {
      const dl = $('values-' + d.name);
      if (dl.options.length) continue;
      let values = state.lookups[d.name] ? [...state.lookups[d.name].entries()] : null;
      if (!values) {
        const list = await query(`SELECT DISTINCT CAST(${ident(d.column)} AS VARCHAR) AS v FROM ${rel} ORDER BY 1`);
        values = list.map((r) => [r.v, null]);
      }
      for (const [k, l] of values) {
        const o = document.createElement('option');
        o.value = k;
        if (l) o.label = `${k} — ${l}`;
        dl.appendChild(o);
      }
    } else {
      const list = await query(`SELECT DISTINCT CAST(${ident(d.column)} AS VARCHAR) AS v FROM ${rel} WHERE ${ident(d.column)} IS NOT NULL ORDER BY 1`);
      setOptions(el, list.map((r) => r.v));
    }
  }
}

function resolveSearch(d, text) {
  const t = text.trim();
  if (!t) return '';
  const dl = $('values-' + d.name);
  const keys = [...dl.options].map((o) => o.value);
  const exact = keys.find((k) => k === t) || keys.find((k) => k.toLowerCase() === t.toLowerCase());
  if (exact) return exact;
  const lookup = state.lookups[d.name];
  const low = t.toLowerCase();
  const partial = keys.find((k) => k.toLowerCase().includes(low) || (lookup && (lookup.get(k) || '').toLowerCase().includes(low)));
  return partial || t;
}

function wireFilters() {
  for (const d of CFG.dimensions) {
    const el = $('filter-' + d.name);
    if (!el) continue;
    el.addEventListener('change', () => {
      const v = d.search ? resolveSearch(d, el.value) : el.value;
      if (d.search && v !== el.value) el.value = v;
      state.filters[d.name] = v;
      refresh();
    });
  }
  const from = $('date-from');
  const to = $('date-to');
  if (!from) return;
  const onDate = () => {
    if (!from.value || !to.value) return;
    if (from.value > to.value) [from.value, to.value] = [to.value, from.value];
    state.from = from.value;
    state.to = to.value;
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
}

function markPreset(button) {
  for (const b of document.querySelectorAll('.presets button')) b.classList.toggle('active', b === button);
}

function setRange(days) {
  state.to = state.dataMax;
  state.from = days > 0 ? isoDay(Math.max(dayNumber(state.dataMax) - days + 1, dayNumber(state.dataMin))) : state.dataMin;
  $('date-from').value = state.from;
  $('date-to').value = state.to;
}

// ---------------------------------------------------------------- rendering

const charts = new Map();
function chartFor(i) {
  let c = charts.get(i);
  if (!c) {
    c = echarts.init($('chart-' + i), null, { renderer: 'canvas' });
    charts.set(i, c);
    window.addEventListener('resize', () => c.resize());
  }
  return c;
}

function chartState(i, stateName, points, text) {
  const el = $('chart-' + i);
  if (stateName !== 'ready' && charts.has(i)) charts.get(i).clear();
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

const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4', '#ea7ccc', '#2f4554'];
const colorMaps = new Map();
// A series keeps its colour whatever the filters: configured, else the next
// palette colour the first time the value is seen.
function colorFor(d, value) {
  if (!d) return undefined;
  if (d.colors && d.colors[value]) return d.colors[value];
  if (!colorMaps.has(d.name)) colorMaps.set(d.name, new Map());
  const m = colorMaps.get(d.name);
  if (!m.has(value)) m.set(value, PALETTE[m.size % PALETTE.length]);
  return m.get(value);
}

function unitLabel(m) {
  return m.unit ? ` (${m.unit})` : '';
}

async function renderChart(i, chart, grain, base, gen) {
  const m = measure(chart.measure);
  const msql = measureSql(m, grain.grain);
  const decimals = m.decimals ?? 1;
  let option;
  let points = 0;
  if (chart.type === 'bar') {
    const d = dimension(chart.category);
    const data = await query(`SELECT CAST(${ident(d.column)} AS VARCHAR) AS c, ${msql} AS v FROM ${base} GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT ${Number(chart.limit || 10)}`);
    if (gen !== state.generation) return;
    const lookup = state.lookups[d.name];
    const labels = data.map((r) => (lookup && lookup.get(r.c) ? `${r.c} · ${lookup.get(r.c)}` : r.c)).reverse();
    points = data.length;
    option = {
      grid: { left: 8, right: 60, top: 8, bottom: 24, containLabel: true },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmtNumber(v, decimals) + (m.unit ? ' ' + m.unit : '') },
      xAxis: { type: 'value', name: (m.label || m.name) + unitLabel(m), nameLocation: 'middle', nameGap: 24 },
      yAxis: { type: 'category', data: labels, axisLabel: { width: 220, overflow: 'truncate' } },
      series: [{ type: 'bar', data: data.map((r) => r.v).reverse(), itemStyle: { color: '#3b7dd8' }, label: { show: true, position: 'right', formatter: (p) => fmtNumber(p.value, 0) } }],
    };
  } else {
    const d = chart.series ? dimension(chart.series) : null;
    const seriesSql = d ? `CAST(${ident(d.column)} AS VARCHAR)` : "''";
    const data = await queryColumns(`SELECT CAST(epoch_ms(_time) AS DOUBLE) AS t, ${seriesSql} AS s, ${msql} AS v FROM ${base} GROUP BY ALL ORDER BY 1, 2`);
    if (gen !== state.generation) return;
    const bySeries = new Map();
    for (let k = 0; k < data.n; k++) {
      const name = data.s[k];
      if (!bySeries.has(name)) bySeries.set(name, []);
      bySeries.get(name).push([data.t[k], data.v[k]]);
    }
    points = data.n;
    const stacked = chart.type === 'area';
    option = {
      useUTC: true,
      grid: { left: 8, right: 16, top: 56, bottom: 8, containLabel: true },
      legend: { type: 'scroll', top: 0 },
      tooltip: { trigger: 'axis', valueFormatter: (v) => fmtNumber(v, decimals) + (m.unit ? ' ' + m.unit : '') },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', name: (m.label || m.name) + unitLabel(m), nameTextStyle: { align: 'left' } },
      series: [...bySeries.entries()].map(([name, values]) => ({
        name: name || m.label || m.name,
        type: 'line',
        color: colorFor(d, name),
        stack: stacked ? 'total' : undefined,
        areaStyle: stacked ? { opacity: 0.85 } : undefined,
        showSymbol: false,
        lineStyle: { width: stacked ? 0.5 : 1.5 },
        sampling: 'lttb',
        data: values,
      })),
    };
  }
  const c = chartFor(i);
  c.setOption(option, true);
  chartState(i, points ? 'ready' : 'empty', points, points ? '' : 'No data for this selection');
}

async function renderKpis(grain, base, gen) {
  const simple = [];
  CFG.kpis.forEach((k, i) => {
    if (k.measure) simple.push(`${measureSql(measure(k.measure), grain.grain)} AS k${i}`);
    if (k.latest) simple.push(`strftime(max(_time), '${grain.grain === 'day' ? '%Y-%m-%d' : '%Y-%m-%d %H:%M'}') AS k${i}`);
  });
  const values = {};
  if (simple.length) Object.assign(values, (await query(`SELECT ${simple.join(', ')} FROM ${base}`))[0]);
  for (const [i, k] of CFG.kpis.entries()) {
    if (!k.top) continue;
    const d = dimension(k.top);
    const r = await query(`SELECT CAST(${ident(d.column)} AS VARCHAR) AS v FROM ${base} GROUP BY 1 ORDER BY ${measureSql(measure(k.by), grain.grain)} DESC NULLS LAST LIMIT 1`);
    values['k' + i] = r.length ? r[0].v : null;
  }
  if (gen !== state.generation) return;
  for (const [i, k] of CFG.kpis.entries()) {
    const el = $('kpi-' + i).querySelector('.kpi-value');
    const v = values['k' + i];
    if (k.measure) {
      const m = measure(k.measure);
      el.textContent = v === null || v === undefined ? '–' : fmtNumber(v, m.decimals ?? 1) + (m.unit ? ' ' + m.unit : '');
    } else {
      el.textContent = v ?? '–';
    }
    el.dataset.value = v === null || v === undefined ? '' : String(v);
  }
}

async function refresh() {
  if (!state.conn || !CFG.grains.length) return;
  const gen = ++state.generation;
  const t0 = performance.now();
  probe.ready = false;
  clearRangeMessages();
  let grain = chooseGrain(state.from, state.to);
  try {
    let rel = await relation(grain.dataset, state.from, state.to);
    if (gen !== state.generation) return;
    if (!rel) {
      // The chosen grain's files are missing: a coarser grain may still
      // hold these dates.
      for (const g of CFG.grains.slice(CFG.grains.indexOf(grain) + 1)) {
        const cov = coverage(g.dataset);
        if (!cov || cov.max < state.from || cov.min > state.to) continue;
        const r = await relation(g.dataset, state.from, state.to);
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
      for (const [i] of CFG.kpis.entries()) {
        const el = $('kpi-' + i).querySelector('.kpi-value');
        el.textContent = '–';
        el.dataset.value = '';
      }
      return;
    }
    state.rel = rel;
    state.grainNow = grain;
    const base = baseSql(grain, rel);
    await renderKpis(grain, base, gen);
    for (const [i, c] of CFG.charts.entries()) {
      try {
        await renderChart(i, c, grain, base, gen);
      } catch (e) {
        chartState(i, 'error', 0, 'This chart could not be drawn: ' + errorText(e));
        message(`Chart “${c.title}”: ${errorText(e)}`, 'error');
      }
      if (gen !== state.generation) return;
    }
    if (probe.firstChartMs === null) probe.firstChartMs = performance.now();
    await updateOptions(rel);
  } catch (e) {
    message('The dashboard could not query its data: ' + errorText(e), 'error');
  } finally {
    if (gen === state.generation) {
      probe.lastRefreshMs = performance.now() - t0;
      if (probe.firstChartMs === null) probe.firstChartMs = performance.now();
      probe.renders += 1;
      probe.ready = true;
    }
  }
}

// ---------------------------------------------------------------- download

async function download() {
  const spec = CFG.download;
  const grain = state.grainNow;
  if (!spec || !grain || !state.rel) return;
  const base = baseSql(grain, state.rel);
  const dims = spec.by.map((n) => `CAST(${ident(dimension(n).column)} AS VARCHAR) AS ${ident(n)}`);
  const ms = spec.measures.map((n) => `${measureSql(measure(n), grain.grain)} AS ${ident(n)}`);
  const fmt = grain.grain === 'day' ? '%Y-%m-%d' : '%Y-%m-%d %H:%M';
  const sql = `SELECT strftime(_time, '${fmt}') AS time, ${[...dims, ...ms].join(', ')} FROM ${base} GROUP BY ALL ORDER BY ALL`;
  const data = await query(sql);
  const header = ['time', ...spec.by, ...spec.measures];
  const esc = (v) => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
  };
  const lines = [header.join(','), ...data.map((r) => header.map((h) => esc(r[h])).join(','))];
  const blob = new Blob([lines.join('\n') + '\n'], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${PAGE.project}_${grain.grain}_${state.from}_${state.to}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---------------------------------------------------------------- analyze

function wireTabs() {
  for (const b of document.querySelectorAll('button.tab')) {
    b.addEventListener('click', () => {
      for (const x of document.querySelectorAll('button.tab')) x.classList.toggle('active', x === b);
      for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== b.dataset.tab;
      if (b.dataset.tab === 'overview') for (const c of charts.values()) c.resize();
    });
  }
  const first = CFG.grains[CFG.grains.length - 1]?.dataset || state.manifest?.files[0]?.dataset;
  $('sql').value = CFG.analyze_sql || (first ? `SELECT *\nFROM ${first}\nLIMIT 100` : 'SELECT 42 AS answer');
  $('run-sql').addEventListener('click', runSql);
  $('sql').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSql();
  });
}

async function runSql() {
  const status = $('sql-status');
  const out = $('sql-result');
  if (!state.conn) {
    status.textContent = 'DuckDB is still loading…';
    return;
  }
  const sql = $('sql').value;
  const t0 = performance.now();
  status.textContent = 'Running…';
  status.className = '';
  try {
    const datasets = [...new Set(state.manifest.files.map((f) => f.dataset))];
    for (const ds of datasets) {
      if (!new RegExp(`\\b${ds.replace(/[^A-Za-z0-9_]/g, '')}\\b`, 'i').test(sql)) continue;
      const rel = await relation(ds);
      if (rel) await state.conn.query(`CREATE OR REPLACE TEMP VIEW ${ident(ds)} AS SELECT * FROM ${rel}`);
    }
    const table = await state.conn.query(sql);
    const names = table.schema.fields.map((f) => f.name);
    const data = rows(table);
    const shownRows = data.slice(0, 1000);
    const t = document.createElement('table');
    const head = t.createTHead().insertRow();
    for (const n of names) {
      const th = document.createElement('th');
      th.textContent = n;
      head.appendChild(th);
    }
    const body = t.createTBody();
    for (const r of shownRows) {
      const tr = body.insertRow();
      for (const n of names) {
        const td = tr.insertCell();
        const v = r[n];
        td.textContent = v === null || v === undefined ? 'NULL' : typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x)) : String(v);
        if (typeof v === 'number' || typeof v === 'bigint') td.className = 'num';
      }
    }
    out.replaceChildren(t);
    status.textContent = `${data.length.toLocaleString('en-AU')} rows${data.length > shownRows.length ? ' (first 1,000 shown)' : ''} in ${Math.round(performance.now() - t0)} ms`;
    out.dataset.rows = String(data.length);
  } catch (e) {
    status.textContent = errorText(e);
    status.className = 'error';
    out.dataset.rows = '';
  }
}

// ---------------------------------------------------------------- start

async function main() {
  wireTabs();
  // DuckDB-WASM compiles while the manifest and the first data files download.
  const duck = startDuckDB();
  duck.catch(() => {}); // reported below
  try {
    state.manifest = await loadManifest();
  } catch (e) {
    message(errorText(e), 'error');
    probe.failed = true;
    $('freshness').textContent = 'No data';
    CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'No data'));
    return;
  }
  mark('manifest');
  pruneCache().catch(() => {}); // housekeeping only
  showFreshness();
  showFiles();
  if (CFG.grains.length) {
    const covs = CFG.grains.map((g) => coverage(g.dataset)).filter(Boolean);
    if (!covs.length) {
      message(`manifest.json lists none of the datasets this dashboard reads (${CFG.grains.map((g) => g.dataset).join(', ')}).`, 'error');
      CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'No data'));
      return;
    }
    state.dataMin = covs.map((c) => c.min).sort()[0];
    state.dataMax = covs.map((c) => c.max).sort().pop();
    const from = $('date-from');
    from.min = $('date-to').min = state.dataMin;
    from.max = $('date-to').max = state.dataMax;
    setRange(CFG.default_days || 7);
    markPreset(document.querySelector(`.presets button[data-days="${CFG.default_days || 7}"]`));
    wireFilters();
    const first = chooseGrain(state.from, state.to);
    filesInRange(first.dataset, state.from, state.to).forEach(prefetch);
  }
  for (const d of CFG.dimensions) if (d.lookup) datasetFiles(d.lookup.dataset).forEach(prefetch);
  try {
    await duck;
  } catch (e) {
    message('DuckDB-WASM could not start in this browser: ' + errorText(e), 'error');
    probe.failed = true;
    CFG.charts.forEach((c, i) => chartState(i, 'error', 0, 'DuckDB-WASM did not start'));
    return;
  }
  mark('duckdb');
  await loadLookups().catch((e) => message('Lookup data could not be loaded: ' + errorText(e), 'warning'));
  mark('lookups');
  await refresh();
  mark('first_render');
  if (!CFG.grains.length) probe.ready = true;
}

main().catch((e) => {
  probe.failed = true;
  message('The dashboard failed to start: ' + errorText(e), 'error');
});
