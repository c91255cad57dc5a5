// The first paint and what the opening view costs, on a site given by
// SITE_DIR (the exporter's own output, or a dashboard-fixture site):
//  - with DuckDB-WASM's download held back, the KPIs and charts are drawn from
//    the exporter's summary (data/summary.json), marked "preview";
//  - on a cold profile, the numbers DuckDB computes after taking over equal
//    the preview's (as displayed), and the preview came first;
//  - the data files the default view downloads (only its days when the
//    intraday dataset is split by day);
//  - charts with data, the map with points, no console error;
//  - a partial last day is flagged (caption note, dashed line, the 1d preset
//    and the daily grain);
//  - a price spike does not flatten normal prices (axis clipped, marked);
//  - Analyze: the picker writes the SQL, 500-row preview with the total,
//    EXPLAIN, the CSV export.
//   SITE_DIR=… OUT_DIR=… EXPECT='{"split":true,"spike":true,"map":false}' node tests/browser/view.mjs
// Prints one line per check and exits non-zero if any fails; screenshots go
// to OUT_DIR (1440×900 and 390×844, light and dark).
import fs from 'node:fs';
import path from 'node:path';
import { serve, launch, waitReady, renders } from './harness.mjs';

const SITE = process.env.SITE_DIR;
const OUT = process.env.OUT_DIR;
const EXPECT = JSON.parse(process.env.EXPECT || '{}');
if (!SITE || !OUT) {
  console.error('SITE_DIR and OUT_DIR must be set');
  process.exit(2);
}
fs.mkdirSync(OUT, { recursive: true });

let failures = 0;
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} - ${what}${detail ? ': ' + detail : ''}`);
  if (!ok) failures += 1;
}

const manifest = JSON.parse(fs.readFileSync(path.join(SITE, 'manifest.json'), 'utf8'));
const server = await serve(SITE);
const consoleErrors = [];
function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
}

// What the page shows: KPI texts, and per chart its series' values as the
// tooltip formats them (the measure's decimals).
async function shown(page) {
  return page.evaluate(() => {
    const cfg = JSON.parse(document.getElementById('page-config').textContent).config;
    // As the page formats values (fmtNumber): en-AU, the measure's decimals.
    const fmt = (v, d) => (v === null || v === undefined ? '–' : Number(v).toLocaleString('en-AU', { minimumFractionDigits: d, maximumFractionDigits: d }));
    const charts = cfg.charts.map((c, i) => {
      const chart = window.__dashboard.charts[i];
      if (!chart) return null;
      const o = chart.getOption();
      const m = cfg.measures.find((x) => x.name === c.measure);
      const d = m.decimals ?? 1;
      if (c.type === 'bar') return { cats: o.yAxis[0].data, values: o.series[0].data.map((v) => fmt(v, d)) };
      const out = {};
      // Every value (the drawing may keep fewer points than the data has).
      for (const s of window.__dashboard.seriesData(i) || o.series) out[s.name] = s.data.map((p) => `${p[0]}=${fmt(p[1], d)}`).join(' ');
      return out;
    });
    return {
      kpis: [...document.querySelectorAll('.kpi')].map((k) => k.querySelector('.kpi-value').textContent + ' | ' + k.querySelector('.kpi-note').textContent),
      charts,
      points: [...document.querySelectorAll('.chart-body')].map((el) => [el.id, el.dataset.state, Number(el.dataset.points || 0)]),
      badges: document.querySelectorAll('.preview-badge').length,
    };
  });
}

async function shot(page, name, { width = 1440, height = 900, dark = false } = {}) {
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
  // A theme or layout change redraws the charts: wait for that redraw.
  await page.waitForTimeout(500);
  await page.waitForFunction(() => window.__dashboard.ready || !window.__dashboard.marks.duckdb_ready, null, { timeout: 60000 });
  await page.screenshot({ path: path.join(OUT, name), fullPage: true });
}

// ---- 1. DuckDB-WASM held back: the summary alone paints the page
{
  const b = await launch();
  const page = await b.context.newPage();
  watch(page);
  const held = [];
  await page.route('**/*.wasm', (route) => held.push(route));
  await page.goto(server.url);
  await page.waitForFunction(() => window.__dashboard.previewDone, null, { timeout: 60000 });
  for (let k = 0; k < 200 && !held.length; k++) await page.waitForTimeout(100);
  await page.waitForTimeout(300);
  const p = await shown(page);
  const probe = await page.evaluate(() => ({ ready: window.__dashboard.ready, duck: window.__dashboard.marks.duckdb_ready, asked: window.__dashboard.bundle }));
  check(held.length > 0 && !probe.ready && probe.duck === undefined, 'the WASM download is held: DuckDB is not ready', `${held.length} held, ${JSON.stringify(probe)}`);
  check(p.kpis.every((k) => !k.startsWith('…') && !k.startsWith('–')), 'KPIs drawn from the summary without DuckDB', p.kpis.join(' · '));
  const timeCharts = p.points.filter(([id]) => id !== 'chart-map');
  check(timeCharts.every(([, st, n]) => st === 'ready' && n > 0), 'every chart drawn from the summary', JSON.stringify(timeCharts));
  check(p.badges >= 2, 'KPIs and charts are marked "preview"', `${p.badges} badges`);
  await shot(page, 'preview-1440-light.png');
  await shot(page, 'preview-390-dark.png', { width: 390, height: 844, dark: true });
  fs.writeFileSync(path.join(OUT, 'preview.json'), JSON.stringify(p, null, 1));
  globalThis.previewShown = p;
  await page.close();
  await b.close();
}

// ---- 1b. The chart library held as well: KPIs and a sketch of the first
// chart are drawn without it; once it runs, ECharts redraws the chart in place
{
  const b = await launch();
  const page = await b.context.newPage();
  watch(page);
  const heldLib = [];
  await page.route('**/*.wasm', () => {});
  await page.route('**/echarts*.js', (route) => heldLib.push(route));
  // Not until "load": the held library's preload would keep that event
  // from firing (a race the loaded CI machine lost once, 2026-11-30).
  await page.goto(server.url, { waitUntil: 'commit' });
  // (a page that cannot paint without the library never marks its preview)
  await page.waitForFunction(() => window.__dashboard && window.__dashboard.marks.preview !== undefined, null, { timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(300);
  const s = await page.evaluate(() => ({
    echarts: typeof window.echarts,
    kpis: [...document.querySelectorAll('.kpi-value')].map((e) => e.textContent),
    sketch: (() => {
      const c = document.querySelector('#chart-0 canvas.sketch');
      if (!c) return null;
      // Painted pixels (not a blank canvas): some are neither transparent nor white.
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let k = 0; k < d.length; k += 4 * 97) if (d[k + 3] > 0 && (d[k] < 240 || d[k + 1] < 240 || d[k + 2] < 240)) painted += 1;
      return { painted, state: document.getElementById('chart-0').dataset.state };
    })(),
  }));
  check(s.echarts === 'undefined' && heldLib.length > 0, 'the chart library is held: ECharts has not run', `${heldLib.length} held, echarts ${s.echarts}`);
  check(s.kpis.every((k) => k !== '…' && k !== '–'), 'KPIs drawn from the summary without the chart library', s.kpis.join(' · '));
  check(s.sketch && s.sketch.painted > 100 && s.sketch.state === 'ready', 'the first chart is sketched from the summary without the chart library', JSON.stringify(s.sketch));
  await shot(page, 'preview-sketch-1440.png');
  for (const r of heldLib) await r.continue();
  await page.waitForFunction(() => window.__dashboard.previewDone, null, { timeout: 60000 });
  const after = await page.evaluate(() => ({ sketch: !!document.querySelector('canvas.sketch'), marks: window.__dashboard.marks, series: window.__dashboard.charts[0]?.getOption().series.length }));
  check(!after.sketch && after.series > 0 && after.marks.preview < after.marks.preview_echarts, 'once it runs, ECharts replaces the sketch', JSON.stringify(after));
  await page.close();
  await b.close();
}

// ---- 2. A cold profile: preview first, then DuckDB takes over with the same numbers
const b = await launch();
const page = await b.context.newPage();
watch(page);
const logStart = server.log.length;
await page.goto(server.url);
await waitReady(page);
await page.waitForTimeout(300);
const live = await shown(page);
const marks = await page.evaluate(() => window.__dashboard.marks);
const p = globalThis.previewShown;
check(marks.preview !== undefined && marks.duckdb_ready !== undefined && marks.preview < marks.duckdb_ready, 'the preview is drawn before DuckDB-WASM is ready', JSON.stringify(marks));
const early = await page.evaluate(() => ({ early: window.__dashboard.earlyWorker, bundle: window.__dashboard.bundle, engine: window.__dashboard.marks.engine, app: window.__dashboard.marks.app }));
check(early.early === true && early.engine !== undefined, 'DuckDB-WASM runs in the worker index.html started before the page script', JSON.stringify(early));
check(live.badges === 0, 'the "preview" marks go once DuckDB has taken over', `${live.badges} left`);
check(JSON.stringify(live.kpis) === JSON.stringify(p.kpis), 'KPIs from the summary equal DuckDB-WASM’s after take-over', `${p.kpis.join(' · ')} ⇔ ${live.kpis.join(' · ')}`);
// A time chart whose summary is coarser than the view's grain (the means of
// `every` intervals, 3 significant digits: what the first paint draws) is
// checked against the means of DuckDB-WASM's own values over the same
// intervals: within 0.5% of the series' largest value or one unit of the
// last decimal shown, whichever is larger.
const coarse = (sum) => sum.charts.map((c) => (c && c.every > 1 ? c.every : 1));
const every = coarse(manifest.summary || { charts: [] });
const parsePoints = (text) => text.split(' ').filter(Boolean).map((x) => { const [t, v] = x.split('='); return [Number(t), v === '–' ? null : Number(v.replace(/,/g, ''))]; });
function sameMeans(previewChart, liveChart) {
  for (const name of Object.keys(liveChart)) {
    if (!(name in previewChart)) return `series ${name} missing from the preview`;
    const pre = parsePoints(previewChart[name]);
    const lv = parsePoints(liveChart[name]);
    const step = pre.length > 1 ? pre[1][0] - pre[0][0] : Infinity;
    const top = Math.max(1e-9, ...lv.map(([, v]) => Math.abs(v ?? 0)));
    // The live values are read as displayed (rounded to the measure's
    // decimals), the preview is the rounded mean of unrounded values: they
    // may differ by one unit of the last displayed decimal.
    const decimals = Math.max(0, ...liveChart[name].split(' ').filter(Boolean).map((x) => (x.split('=')[1].split('.')[1] || '').length));
    const tolerance = Math.max(0.005 * top, 10 ** -decimals);
    for (const [t, v] of pre) {
      const inBucket = lv.filter(([x, y]) => x >= t && x < t + step && y !== null).map(([, y]) => y);
      const mean = inBucket.length ? inBucket.reduce((a, b) => a + b, 0) / inBucket.length : null;
      if ((mean === null) !== (v === null) || (mean !== null && Math.abs(mean - v) > tolerance)) return `${name} at ${t}: preview ${v}, mean of DuckDB-WASM's ${mean}`;
    }
  }
  return '';
}
live.charts.forEach((c, i) => {
  if (every[i] > 1 && c && p.charts[i]) {
    const diff = sameMeans(p.charts[i], c);
    check(!diff, `chart ${i}: the summary's series (means of ${every[i]} intervals) equal the means of DuckDB-WASM's`, diff);
    return;
  }
  const same = JSON.stringify(c) === JSON.stringify(p.charts[i]);
  let detail = '';
  if (!same && c && p.charts[i]) {
    const keys = Object.keys(c);
    const k = keys.find((x) => JSON.stringify(c[x]) !== JSON.stringify(p.charts[i][x]));
    detail = `first difference in ${k}: ${String(JSON.stringify(p.charts[i][k])).slice(0, 160)} ⇔ ${String(JSON.stringify(c[k])).slice(0, 160)}`;
  }
  check(same, `chart ${i}: the summary's series equal DuckDB-WASM’s (rounded as displayed)`, detail);
});
const requested = server.log.slice(logStart).filter((r) => r.path.startsWith('/data/') && r.path.endsWith('.duckdb') && r.status === 200).map((r) => r.path.slice(1));
const view = await page.evaluate(() => ({ from: document.getElementById('date-from').value, to: document.getElementById('date-to').value, grain: window.__dashboard.grain }));
const byPath = new Map(manifest.files.map((f) => [f.path, f]));
const bytes = requested.reduce((n, r) => n + (byPath.get(r)?.bytes || 0), 0);
console.log(`     default view ${view.from} – ${view.to} (${view.grain}): ${requested.length} data files, ${(bytes / 1e6).toFixed(2)} MB: ${requested.join(', ')}`);
const intraday = manifest.files.filter((f) => f.dataset === 'intraday');
if (EXPECT.split) {
  // Its rollups files serve every panel of the opening view: the rows files
  // stay on the server until a view needs them.
  const visible = manifest.files.filter((f) => f.dataset === 'intraday.rollups' && f.max_date >= view.from && f.min_date <= view.to).map((f) => f.path).sort();
  const got = requested.filter((r) => ['intraday', 'intraday.rollups'].includes(byPath.get(r)?.dataset)).sort();
  check(intraday.length > visible.length && JSON.stringify(got) === JSON.stringify(visible), `the default view downloads only its ${visible.length} intraday days' rollups files (of ${intraday.length} days), no rows file`, got.join(', '));
  const others = requested.filter((r) => !['intraday', 'intraday.rollups', 'units'].includes(byPath.get(r)?.dataset));
  check(others.length === 0, 'and no hourly or daily file', others.join(', '));
}
check(live.points.filter(([id]) => id !== 'chart-map').every(([, st, n]) => st === 'ready' && n > 0), 'every chart has data', JSON.stringify(live.points));
if (EXPECT.map) {
  const map = live.points.find(([id]) => id === 'chart-map');
  check(map && map[1] === 'ready' && map[2] > 0, 'the map has points', JSON.stringify(map));
}
await shot(page, 'live-1440-light.png');
await shot(page, 'live-1440-dark.png', { dark: true });
await shot(page, 'live-390-light.png', { width: 390, height: 844 });
await shot(page, 'live-390-dark.png', { width: 390, height: 844, dark: true });
await page.setViewportSize({ width: 1440, height: 900 });
await page.emulateMedia({ colorScheme: 'light' });
await page.waitForTimeout(500);
await page.waitForFunction(() => window.__dashboard.ready, null, { timeout: 60000 });

// ---- 2b. A view seen before is drawn from the results the page kept: no query
{
  const count = () => page.evaluate(() => ({ ran: window.__dashboard.ran || 0, kept: window.__dashboard.keptHits || 0, kpis: [...document.querySelectorAll('.kpi-value')].map((e) => e.textContent) }));
  const region = await page.evaluate(() => [...document.querySelectorAll('#filter-region option')].map((o) => o.value).find((v) => v));
  const c0 = await count();
  let n = await renders(page);
  await page.selectOption('#filter-region', region);
  await waitReady(page, n);
  const c1 = await count();
  n = await renders(page);
  await page.selectOption('#filter-region', '');
  await waitReady(page, n);
  const c2 = await count();
  check(c1.ran > c0.ran && JSON.stringify(c1.kpis) !== JSON.stringify(c0.kpis), `a new filter (${region}) runs its queries`, `${c1.ran - c0.ran} queries`);
  check(c2.ran === c1.ran && c2.kept > c1.kept && JSON.stringify(c2.kpis) === JSON.stringify(c0.kpis), 'back to no filter: drawn from kept results, no query, the same numbers', `${c2.ran - c1.ran} queries, ${c2.kept - c1.kept} kept results; ${c2.kpis.join(' · ')}`);
}

// ---- 2c. The opening view and a range change the stored rollups serve
// download the grain's rollups files (src/dashboard/rollups.rs), never its
// rows files; a unit filter (a view by unit and time: the rows) downloads
// the rows files of the range.
{
  const fetched = (at) => server.log.slice(at).filter((r) => r.path.startsWith('/data/') && r.path.endsWith('.duckdb') && r.status === 200).map((r) => r.path.slice(1)).sort();
  const cfg = JSON.parse(await page.$eval('#page-config', (e) => e.textContent)).config;
  const files = async (suffix) => {
    const grain = await page.evaluate(() => window.__dashboard.grain);
    const dataset = cfg.grains.find((x) => x.grain === grain).dataset;
    const range = await page.evaluate(() => [document.getElementById('date-from').value, document.getElementById('date-to').value]);
    return { grain, list: manifest.files.filter((f) => f.dataset === dataset + suffix && f.max_date >= range[0] && f.min_date <= range[1]).map((f) => f.path).sort() };
  };
  const open = await files('');
  const openRollups = await files('.rollups');
  const openGot = requested.filter((r) => open.list.includes(r) || openRollups.list.includes(r)).sort();
  check(openRollups.list.length > 0 && JSON.stringify(openGot) === JSON.stringify(openRollups.list), `the opening view (${open.grain}) downloads its ${openRollups.list.length} rollups file(s), no rows file`, openGot.join(', '));
  // A unit: its time chart needs the rows.
  let at = server.log.length;
  await page.focus('#filter-unit');
  let n = await renders(page);
  await page.click('#list-unit li[data-value]');
  await waitReady(page, n);
  const unit = await page.evaluate(() => [...document.querySelectorAll('#chips .chip[data-dimension="unit"]')].map((c) => c.dataset.value));
  const unitGot = fetched(at);
  check(unit.length === 1 && JSON.stringify(unitGot) === JSON.stringify(open.list), `a unit filter (${unit}) downloads the ${open.list.length} rows file(s) of the range`, unitGot.join(', '));
  await page.keyboard.press('Escape');
  n = await renders(page);
  await page.click('#chips .chip[data-dimension="unit"]');
  await waitReady(page, n);
  // 30 days: hourly where the hourly files cover them (the sample's few
  // days do not: the page shows its daily files, see 365 days below).
  at = server.log.length;
  n = await renders(page);
  await page.click('.presets button[data-days="30"]');
  await waitReady(page, n);
  const month = await files('.rollups');
  const monthGot = fetched(at);
  if (month.grain === 'hour') {
    check(month.list.length > 0 && JSON.stringify(monthGot) === JSON.stringify(month.list), `30 days (hour): the range change downloads the ${month.list.length} rollups file(s) of the range, no rows file`, monthGot.join(', '));
  } else {
    console.log(`     30 days at ${month.grain} grain: ${monthGot.join(', ')}`);
  }
  // 365 days (day grain, where the daily files hold more days than the
  // finer grains: not the sample's few days): the daily rollups files hold
  // the per-unit rollup per period (src/dashboard/rollups.rs, `period`), so
  // a range covering their periods whole reads no rows file: the bars, the
  // map, the lists and the unit KPIs read the stored rollups. A unit filter
  // then needs the rows.
  at = server.log.length;
  await preset(365);
  const year = await files('.rollups');
  if (year.grain === 'day') {
    const yearRows = await files('');
    const yearGot = fetched(at);
    const yearSources = await page.evaluate(() => ({ ...window.__dashboard.sources }));
    // (the map only where the site has unit coordinates)
    const perUnit = ['lists', '2', ...('map' in yearSources ? ['map'] : [])].map((k) => yearSources[k]);
    check(
      year.list.length > 0 && !yearGot.some((p) => yearRows.list.includes(p)) && yearGot.every((p) => year.list.includes(p)) && perUnit.every((s) => s === 'rollup 0 (stored)'),
      `365 days (day): the range change reads the ${year.list.length} rollups file(s) of the range, no rows file; lists, map and bars from the stored per-unit rollup`,
      `${yearGot.join(', ') || 'nothing new'}; ${JSON.stringify(yearSources)}`,
    );
    at = server.log.length;
    await page.focus('#filter-unit');
    n = await renders(page);
    await page.click('#list-unit li[data-value]');
    await waitReady(page, n);
    const yearUnitGot = fetched(at);
    check(JSON.stringify(yearUnitGot) === JSON.stringify(yearRows.list), `365 days, a unit filter downloads the ${yearRows.list.length} rows file(s) of the range`, yearUnitGot.join(', '));
    await page.keyboard.press('Escape');
    n = await renders(page);
    await page.click('#chips .chip[data-dimension="unit"]');
    await waitReady(page, n);
  } else {
    console.log(`     365 days at ${year.grain} grain: ${fetched(at).join(', ')}`);
  }
  await preset(7);
}

// ---- 3. The newest day is partial: flagged on the opening view, "1d" and the daily grain
const lastDay = await page.evaluate(() => window.__dashboard.lastDay);
const partialState = (p) =>
  p.evaluate(() => {
    const c = window.__dashboard.charts[0];
    const ml = c.getOption().series[0].markLine;
    const label = ml && ml.data && ml.data.length ? ml.label.formatter : null;
    return { note: document.querySelector('#figure-0 .partial-note')?.textContent || '', label, grain: window.__dashboard.grain };
  });
async function preset(days) {
  const n = await renders(page);
  await page.click(`.presets button[data-days="${days}"]`);
  await waitReady(page, n);
}
if (EXPECT.partial) {
  check(lastDay && lastDay.complete === false && lastDay.date === EXPECT.partial.date && lastDay.last === EXPECT.partial.last, 'the newest day is known to be partial', JSON.stringify(lastDay));
  // The summary was computed from these files: its newest day is taken, not asked again of DuckDB-WASM.
  const fromSummary = await page.evaluate(() => window.__dashboard.lastDayFromSummary === true);
  check(fromSummary, 'the newest day comes from the current summary (no query at start)', String(fromSummary));
  const open = await partialState(page);
  check(/partial day/.test(open.note) && /partial day/.test(open.label || ''), 'the opening view flags the partial day (caption and dashed line)', JSON.stringify(open));
  check(p.kpis.length && (await page.$('#figure-0 .partial-note')) !== null, 'the preview flagged it too', '');
  await preset(1);
  const one = await partialState(page);
  check(/partial day/.test(one.note) && one.label === `partial day (to ${EXPECT.partial.last})`, 'the 1d preset flags the partial day', JSON.stringify(one));
  await page.screenshot({ path: path.join(OUT, 'partial-1d.png'), fullPage: true });
  await preset(0);
  const all = await partialState(page);
  if (all.grain === 'day') {
    check(all.label === 'partial day' && /partial day/.test(all.note), 'the daily chart’s last point is flagged “partial day”', JSON.stringify(all));
    await page.screenshot({ path: path.join(OUT, 'partial-daily.png'), fullPage: true });
  }
  await preset(7);
}

// ---- 4. Price spikes do not flatten normal prices
const priceAxis = () =>
  page.evaluate(() => {
    const c = window.__dashboard.charts[1];
    const ext = c.getModel().getComponent('yAxis', 0).axis.scale.getExtent();
    const vals = window.__dashboard.seriesData(1).flatMap((s) => s.data.map((p) => p[1])).filter(Number.isFinite).sort((a, b) => a - b);
    const marks = c.getOption().series.flatMap((s) => (s.markPoint && s.markPoint.data) || []).map((m) => m.value);
    return { ext, p1: vals[Math.floor(vals.length * 0.01)], p99: vals[Math.floor(vals.length * 0.99)], max: vals[vals.length - 1], marks, button: document.querySelector('#figure-1 .clip-toggle')?.textContent || null };
  });
if (EXPECT.spike) {
  const a = await priceAxis();
  const share = (a.p99 - a.p1) / (a.ext[1] - a.ext[0]);
  check(a.max >= 15000 && share >= 0.3, 'with a $15 000 spike, normal prices (1st–99th percentile) span ≥ 30% of the price axis', `${JSON.stringify(a)}; share ${share.toFixed(2)}`);
  check(a.marks.some((v) => v >= 15000) && /clipped/.test(a.button || ''), 'the clipped spike is marked with its value and the caption says so', JSON.stringify(a.marks));
  await page.screenshot({ path: path.join(OUT, 'spike-clipped.png'), fullPage: true });
  const n = await renders(page);
  await page.click('#figure-1 .clip-toggle');
  await waitReady(page, n);
  const all = await priceAxis();
  check(all.ext[1] >= 15000, '“show all” puts the whole scale back', JSON.stringify(all.ext));
  const n2 = await renders(page);
  await page.click('#figure-1 .clip-toggle');
  await waitReady(page, n2);
} else {
  const a = await priceAxis();
  check(a.button === null && a.marks.length === 0, 'prices without spikes are not clipped', JSON.stringify(a));
}

// ---- 5. Analyze: picker → SQL, 500-row preview with the total, EXPLAIN, CSV
await page.click('#tab-analyze');
await page.selectOption('#pick-grain', view.grain);
await page.check('input[name=pick-dim][value=region]');
await page.click('#pick-sql');
const sql = await page.inputValue('#sql');
check(/GROUP BY ALL/.test(sql) && /sum\(mw\) \/ count\(DISTINCT _time\)/.test(sql) && /region_id/.test(sql), 'the picker writes the SQL (measure, dimension, grain, range)', sql.replace(/\s+/g, ' ').slice(0, 200));
await page.click('#run-sql');
await page.waitForFunction(() => /rows|fail/i.test(document.getElementById('sql-status').textContent), null, { timeout: 60000 });
const result = await page.evaluate(() => ({ status: document.getElementById('sql-status').textContent, shown: document.querySelectorAll('#sql-result tbody tr').length, total: Number(document.getElementById('sql-result').dataset.rows || 0), head: [...document.querySelectorAll('#sql-result thead th')].map((t) => t.textContent), first: [...(document.querySelector('#sql-result tbody tr')?.cells || [])].map((c) => c.textContent) }));
check(result.total > 500 && result.shown === 500 && result.status.includes(result.total.toLocaleString('en-AU')) && /first 500/.test(result.status), 'a 500-row preview with the total count', JSON.stringify(result).slice(0, 300));
check(/^\d{4}-\d\d-\d\d \d\d:\d\d/.test(result.first[0] || ''), 'times shown as times', result.first.join(' | '));
await page.screenshot({ path: path.join(OUT, 'analyze-picker.png'), fullPage: true });
const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
const csvPath = path.join(OUT, 'analyze.csv');
await dl.saveAs(csvPath);
const csvRows = fs.readFileSync(csvPath, 'utf8').trim().split('\n');
check(csvRows.length - 1 === result.total && csvRows[0].split(',').length === result.head.length, 'the CSV export holds every row of the result', `${csvRows.length - 1} rows, header ${csvRows[0]}`);
await page.click('#explain-sql');
await page.waitForFunction(() => /plan/i.test(document.getElementById('sql-status').textContent) || /fail/i.test(document.getElementById('sql-status').textContent), null, { timeout: 60000 });
const plan = await page.evaluate(() => document.getElementById('sql-plan')?.textContent || document.getElementById('sql-result').textContent);
check(/HASH_GROUP_BY|PROJECTION|SEQ_SCAN|READ/i.test(plan), 'EXPLAIN shows the query plan', plan.replace(/\s+/g, ' ').slice(0, 120));
await page.screenshot({ path: path.join(OUT, 'analyze-explain.png'), fullPage: true });

check(consoleErrors.length === 0, 'no console errors', consoleErrors.join(' | ').slice(0, 400));
await page.close();
await b.close();
await server.close();
console.log(`${failures === 0 ? 'all view checks passed' : failures + ' view checks failed'}; screenshots in ${OUT}`);
process.exit(failures === 0 ? 0 : 1);
