// The dashboard in a real browser (Debian's Chromium through playwright-core),
// on a site served from loopback with bundled assets: no request may leave
// 127.0.0.1. Run by tests/dashboard.rs:
//   SITE_DIR=… OUT_DIR=… node tests/browser/dashboard.mjs
// Prints one line per check and exits non-zero if any fails. Screenshots and
// downloaded CSVs go to OUT_DIR, with checks.json describing each download so
// the Rust test can recompute it with DuckDB.
import fs from 'node:fs';
import path from 'node:path';
import { serve, launch, waitReady, renders, setRange, addDays } from './harness.mjs';
import * as ui from './interact.mjs';

const SITE = process.env.SITE_DIR;
const OUT = process.env.OUT_DIR;
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
const dataFiles = manifest.files.map((f) => '/' + f.path);
const dataMax = manifest.files.filter((f) => f.dataset === 'intraday')[0].max_date;

const server = await serve(SITE);
const consoleErrors = [];
const consoleWarnings = [];
const offsite = [];
const downloads = [];

function watch(page, allow404 = []) {
  page.on('console', (m) => {
    if (m.type() === 'warning') consoleWarnings.push(m.text());
    if (m.type() !== 'error') return;
    const text = m.text();
    // A deliberately deleted file makes Chromium log its 404; nothing else may.
    if (allow404.length && /status of 404/.test(text)) return;
    consoleErrors.push(text);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1'].includes(u.hostname) && !['blob:', 'data:'].includes(u.protocol)) offsite.push(r.url());
  });
}

async function state(page) {
  return page.evaluate(() => {
    const d = window.__dashboard;
    const charts = [...document.querySelectorAll('.chart-body')].map((el) => ({
      state: el.dataset.state,
      points: Number(el.dataset.points || 0),
    }));
    const kpis = [...document.querySelectorAll('.kpi')].map((k) => ({
      label: k.querySelector('.kpi-label').textContent,
      text: k.querySelector('.kpi-value').textContent,
      value: k.querySelector('.kpi-value').dataset.value,
    }));
    const messages = [...document.querySelectorAll('#messages .message')].map((m) => m.textContent);
    return {
      grain: d.grain,
      charts,
      kpis,
      messages,
      downloaded: [...d.downloaded],
      fromCache: [...d.fromCache],
      bundle: d.bundle,
      from: document.getElementById('date-from').value,
      to: document.getElementById('date-to').value,
      firstChartMs: d.firstChartMs,
    };
  });
}

async function download(page, name, filters) {
  const s = await state(page);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(OUT, name);
  await dl.saveAs(file);
  downloads.push({ file, grain: s.grain, from: s.from, to: s.to, filters, suggested: dl.suggestedFilename() });
  const want = Object.values(filters);
  check(dl.suggestedFilename().includes(`${s.from}_${s.to}`) && want.every((v) => dl.suggestedFilename().includes(v)), 'the CSV file name carries the range and the filters', dl.suggestedFilename());
  return file;
}

const bodyVisible = async (page) => page.evaluate(() => document.body.innerText.trim().length > 0);

// ------------------------------------------------------------- first visit
const browser = await launch();
const page = await browser.context.newPage();
await page.setViewportSize({ width: 1440, height: 900 });
watch(page);
await page.goto(server.url);
await waitReady(page);
let s = await state(page);
const statusLog = await page.evaluate(() => window.__dashboard.statusLog);
for (const phase of [/manifest/i, /Starting DuckDB-WASM/, /Downloading intraday\.rollups\.duckdb/, /Querying: KPIs/, /Querying: Generation by fuel/, /^Showing .* at 5min grain/]) {
  check(statusLog.some((t) => phase.test(t)), `the status line names the phase ${phase}`, statusLog.slice(0, 12).join(' | '));
}
check(s.grain === '5min', 'opens on the last 7 days at 5-minute grain', `grain ${s.grain}, ${s.from} – ${s.to}`);
check(s.to === dataMax && s.from === addDays(dataMax, -6), 'default range is the newest 7 days', `${s.from} – ${s.to}`);
check(s.charts.length === 4 && s.charts.every((c) => c.state === 'ready' && c.points > 0), 'every chart (and the map) has data', JSON.stringify(s.charts));
check(s.kpis.length === 6 && s.kpis.every((k) => k.value && k.text !== '–'), 'every KPI has a value', s.kpis.map((k) => `${k.label}=${k.text}`).join(', '));
check(s.bundle === 'eh', 'single-threaded DuckDB-WASM (eh) when not cross-origin isolated', s.bundle);
const freshness = await page.textContent('#freshness');
check(freshness.includes(dataMax) && /Exported/.test(freshness), 'freshness from the manifest is shown', freshness.replace(/\s+/g, ' '));
check(!s.downloaded.some((p) => p.includes('hourly') || p.includes('daily')), 'only the files the range needs are fetched', s.downloaded.join(', '));
check(s.messages.length === 0, 'no messages on a healthy site', s.messages.join(' | '));
await page.screenshot({ path: path.join(OUT, '01-overview-7d.png'), fullPage: true });
await ui.afterFirstVisit({ page, check, kpi: (st, label) => st.kpis.find((k) => k.label === label), state, manifest, dataMax, OUT, consoleWarnings });
await ui.rollupsMatchRows({ page, check });

// ------------------------------------------------------------- filters
const kpi = (st, label) => st.kpis.find((k) => k.label === label);
const before = s;
let n = await renders(page);
await page.selectOption('#filter-region', 'SA1');
await waitReady(page, n);
s = await state(page);
check(kpi(s, 'Average generation').value !== kpi(before, 'Average generation').value, 'a region filter changes the numbers', `${kpi(before, 'Average generation').text} → ${kpi(s, 'Average generation').text}`);
check(Number(kpi(s, 'Active units').value) < Number(kpi(before, 'Active units').value), 'fewer active units in one region', `${kpi(before, 'Active units').text} → ${kpi(s, 'Active units').text}`);
check(s.charts[1].points < before.charts[1].points, 'price chart narrows to one region', `${before.charts[1].points} → ${s.charts[1].points} points`);
await page.screenshot({ path: path.join(OUT, '02-region-SA1.png'), fullPage: true });
await download(page, 'download-5min-SA1.csv', { region: 'SA1' });

n = await renders(page);
await page.selectOption('#filter-fuel', 'Wind');
await waitReady(page, n);
s = await state(page);
check(kpi(s, 'Top fuel').value === 'Wind', 'fuel filter: top fuel is the one chosen', kpi(s, 'Top fuel').text);

// Unit search: by station name, resolved to its DUID.
n = await renders(page);
await page.selectOption('#filter-region', '');
await page.selectOption('#filter-fuel', '');
await waitReady(page, n);
n = await renders(page);
await page.fill('#filter-unit', 'bayswater');
await page.press('#filter-unit', 'Enter');
await waitReady(page, n);
s = await state(page);
const unitValue = await page.evaluate(() => [...document.querySelectorAll('#chips .chip[data-dimension="unit"]')].map((c) => c.dataset.value).join(','));
check(unitValue === 'BAYSW1' && kpi(s, 'Active units').value === '1', 'unit search finds a unit by station name', `${unitValue}, active units ${kpi(s, 'Active units').text}`);
await page.keyboard.press('Escape');
n = await renders(page);
await page.click('#chips .chip[data-dimension="unit"]');
await waitReady(page, n);
s = await state(page);
check(!(await page.$('#chips .chip')) && Number(kpi(s, 'Active units').value) > 1, 'removing the unit chip clears the unit filter', kpi(s, 'Active units').text);

// ------------------------------------------------------------- grains
const from30 = addDays(dataMax, -29);
await setRange(page, from30, dataMax);
s = await state(page);
check(s.grain === 'hour', '30 days are shown hourly', s.grain);
check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'charts have data at hourly grain');
// (rollupsMatchRows read these 30 days from the rows too: rows and rollups files.)
const hourlyNeeded = manifest.files.filter((f) => ['hourly', 'hourly.rollups'].includes(f.dataset) && f.max_date >= from30).map((f) => f.path);
const hourlyFetched = s.downloaded.filter((p) => p.includes('hourly'));
check(JSON.stringify(hourlyFetched.sort()) === JSON.stringify(hourlyNeeded.sort()), 'only the hourly periods the range needs are attached', hourlyFetched.join(', '));
n = await renders(page);
await page.selectOption('#filter-fuel', 'Solar');
await waitReady(page, n);
await download(page, 'download-hour-Solar.csv', { fuel: 'Solar' });
n = await renders(page);
await page.selectOption('#filter-fuel', '');
await waitReady(page, n);
await page.screenshot({ path: path.join(OUT, '03-30d-hourly.png'), fullPage: true });

await page.click('.presets button[data-days="365"]');
await page.waitForFunction(() => window.__dashboard.ready && window.__dashboard.grain === 'day', null, { timeout: 60000 });
s = await state(page);
check(s.grain === 'day', 'a year is shown daily', s.grain);
check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'charts have data at daily grain');
await download(page, 'download-day-all.csv', {});
await page.screenshot({ path: path.join(OUT, '04-1y-daily.png'), fullPage: true });

// A week of older history: intraday does not hold it, so hourly does.
const old = manifest.files.filter((f) => f.dataset === 'hourly').map((f) => f.min_date).sort()[0];
await setRange(page, addDays(old, 10), addDays(old, 16));
s = await state(page);
check(s.grain === 'hour', 'a week the intraday file does not cover falls back to hourly', s.grain);

// ------------------------------------------------------------- analyze
await page.click('#tab-analyze');
await page.fill('#sql', 'SELECT region_id, count(*) AS intervals, round(avg(rrp), 2) AS avg_price FROM daily GROUP BY 1 ORDER BY 1');
await page.click('#run-sql');
await page.waitForFunction(() => document.getElementById('sql-result').dataset.rows !== undefined && document.getElementById('sql-status').textContent !== 'Running…');
const analyzeRows = await page.evaluate(() => document.getElementById('sql-result').dataset.rows);
check(analyzeRows === '5', 'Analyze runs editable SQL over a dataset view', `${analyzeRows} rows`);
await page.screenshot({ path: path.join(OUT, '05-analyze.png'), fullPage: true });
await page.fill('#sql', 'SELECT count(DISTINCT date) AS days FROM hourly');
await page.click('#run-sql');
await page.waitForFunction(() => /rows in/.test(document.getElementById('sql-status').textContent));
const hourlyDays = await page.evaluate(() => document.querySelector('#sql-result td')?.textContent);
// (the daily files, one a quarter, hold every day.)
const dailyFiles = manifest.files.filter((f) => f.dataset === 'daily');
const firstDay = dailyFiles.map((f) => f.min_date).sort()[0];
const lastDay = dailyFiles.map((f) => f.max_date).sort().pop();
const totalDays = Math.round((Date.parse(lastDay) - Date.parse(firstDay)) / 86400000) + 1;
check(Number(hourlyDays) === totalDays, 'Analyze attaches every period of a dataset it names', `${hourlyDays} days (expected ${totalDays})`);
await page.fill('#sql', 'SELECT * FROM no_such_table');
await page.click('#run-sql');
await page.waitForFunction(() => document.getElementById('sql-status').className === 'error');
const sqlError = await page.textContent('#sql-status');
check(/no_such_table/.test(sqlError), 'a bad query shows its error on the page', sqlError.slice(0, 80));
await ui.analyzeChecks({ page, check, OUT });

// ------------------------------------------------------------- lineage
// The page checks and keeps downloaded files in the background: done before leaving it.
await page.evaluate(() => window.__dashboard.kept());
await page.goto(server.url + 'lineage.html');
const nodes = await page.$$eval('svg#lineage g.node', (g) => g.map((x) => x.dataset.name));
check(nodes.includes('fct_scada') && nodes.includes('dim_duid') && nodes.length >= 8, 'lineage page draws the model DAG', nodes.join(', '));
const edges = await page.$$eval('svg#lineage path.edge', (p) => p.length);
check(edges >= 8, 'lineage edges drawn', `${edges} edges`);
await page.screenshot({ path: path.join(OUT, '06-lineage.png'), fullPage: true });
await page.close();

// ------------------------------------------------------------- second visit
server.log.length = 0;
const again = await browser.context.newPage();
watch(again);
await again.goto(server.url);
await waitReady(again);
s = await state(again);
const dataRequests = server.log.filter((r) => dataFiles.includes(r.path));
check(dataRequests.length === 0, 'a second visit fetches no data file', JSON.stringify(dataRequests));
check(s.fromCache.length > 0 && s.downloaded.length === 0, 'data comes from the Cache API', `cached: ${s.fromCache.join(', ')}`);
const manifestHits = server.log.filter((r) => r.path === '/manifest.json');
check(manifestHits.length === 1 && manifestHits[0].status === 304, 'manifest.json is revalidated by ETag (304)', JSON.stringify(manifestHits));
check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'charts have data on the second visit');
await again.close();
await ui.phoneAndTheme({ browser, server, check, state, watch, OUT });
await ui.sharedUrl({ browser, server, check, state, watch, OUT, dataMax });
await browser.close();

// ------------------------------------------------------------- a deleted period file
// (the period's rows file and its rollups file: with the rollups file
// there, the page draws the range from it and never needs the rows.)
const victim = manifest.files.filter((f) => f.dataset === 'hourly').sort((a, b) => a.min_date.localeCompare(b.min_date))[0];
const victimPath = path.join(SITE, victim.path);
const victimRollups = victimPath.replace(/\.duckdb$/, '.rollups.duckdb');
fs.renameSync(victimPath, victimPath + '.deleted');
fs.renameSync(victimRollups, victimRollups + '.deleted');
try {
  const fresh = await launch();
  const p = await fresh.context.newPage();
  watch(p, [victim.path]);
  await p.goto(server.url);
  await waitReady(p);
  await setRange(p, addDays(victim.max_date, -20), addDays(victim.max_date, 5));
  s = await state(p);
  check(s.messages.some((m) => m.includes(victim.path)), 'a deleted period file shows a message', s.messages.join(' | '));
  check(await bodyVisible(p), 'the page is not blank');
  check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'the other period still draws', JSON.stringify(s.charts));
  await setRange(p, addDays(victim.min_date, 5), addDays(victim.min_date, 25));
  s = await state(p);
  check(s.grain === 'day' && s.charts.every((c) => c.state === 'ready' && c.points > 0), 'dates only the deleted file held fall back to the daily file', `${s.grain} ${JSON.stringify(s.charts)}`);
  check(s.messages.some((m) => m.includes('showing day data instead')), 'and say so', s.messages.join(' | '));
  await p.screenshot({ path: path.join(OUT, '07-missing-file.png'), fullPage: true });
  await fresh.close();
} finally {
  fs.renameSync(victimPath + '.deleted', victimPath);
  fs.renameSync(victimRollups + '.deleted', victimRollups);
}

check(offsite.length === 0, 'no request leaves loopback (bundled assets)', offsite.slice(0, 5).join(', '));
check(consoleErrors.length === 0, 'the console has no errors', consoleErrors.slice(0, 5).join(' | '));
check(consoleWarnings.some((w) => /colours configured for Fuel values that are not in the data: .*Unknown/.test(w)), 'a colour key matching no data value is reported in the console', consoleWarnings.filter((w) => /colour/.test(w)).slice(0, 1).join(''));
fs.writeFileSync(path.join(OUT, 'checks.json'), JSON.stringify({ downloads }, null, 2));
await server.close();
console.log(`${failures === 0 ? 'all browser checks passed' : failures + ' browser checks failed'}; screenshots in ${OUT}`);
process.exit(failures === 0 ? 0 : 1);
