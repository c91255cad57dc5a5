// Dashboard speed in Debian's Chromium (playwright-core), bundled assets on a
// loopback server: time to first chart (cold profile and cached revisit) and
// the time of a date-range change over 7, 30 and 365 days. Figures are the
// page's own timings (performance.now): first chart is measured from the start
// of navigation, a range change from the input event to the last chart drawn.
//   SITE_DIR=… RUNS=3 node tests/browser/bench.mjs
import fs from 'node:fs';
import path from 'node:path';
import { serve, launch, waitReady, renders } from './harness.mjs';

const SITE = process.env.SITE_DIR;
const RUNS = Number(process.env.RUNS || 3);
const manifest = JSON.parse(fs.readFileSync(path.join(SITE, 'manifest.json'), 'utf8'));
const server = await serve(SITE);

async function preset(page, days) {
  const n = await renders(page);
  await page.click(`.presets button[data-days="${days}"]`);
  await waitReady(page, n);
  return page.evaluate(() => ({ ms: window.__dashboard.lastRefreshMs, grain: window.__dashboard.grain }));
}

async function filter(page, id, value) {
  const n = await renders(page);
  await page.selectOption(id, value);
  await waitReady(page, n);
  return page.evaluate(() => window.__dashboard.lastRefreshMs);
}

const results = { cold: [], cached: [], first: { 7: [], 30: [], 365: [] }, again: { 7: [], 30: [], 365: [] }, grains: {}, filter: [], phone: [] };
for (let run = 0; run < RUNS; run++) {
  const b = await launch();
  const p = await b.context.newPage();
  await p.goto(server.url);
  await waitReady(p);
  results.cold.push(await p.evaluate(() => window.__dashboard.firstChartMs));
  results.coldMarks = await p.evaluate(() => window.__dashboard.marks);
  // First change to each range: its files are fetched and attached on the way.
  for (const days of [30, 365, 7]) {
    const r = await preset(p, days);
    results.first[days].push(r.ms);
    results.grains[days] = r.grain;
  }
  for (const days of [30, 365, 7]) results.again[days].push((await preset(p, days)).ms);
  // A filter change on the default 7-day view (the lists narrow, chips, map).
  results.filter.push(await filter(p, '#filter-region', 'SA1'));
  results.filter.push(await filter(p, '#filter-region', ''));
  await p.close();
  const q = await b.context.newPage();
  await q.goto(server.url);
  await waitReady(q);
  results.cached.push(await q.evaluate(() => window.__dashboard.firstChartMs));
  results.cachedMarks = await q.evaluate(() => window.__dashboard.marks);
  await q.close();
  // A phone-sized window on the warm cache.
  const ph = await b.context.newPage();
  await ph.setViewportSize({ width: 390, height: 844 });
  await ph.goto(server.url);
  await waitReady(ph);
  results.phone.push(await ph.evaluate(() => window.__dashboard.firstChartMs));
  await ph.close();
  await b.close();
}
await server.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const ms = (x) => `${Math.round(x)} ms`.padStart(9);
const rows = manifest.files.reduce((n, f) => n + (f.rows || 0), 0);
const bytes = manifest.files.reduce((n, f) => n + (f.bytes || 0), 0);
console.log(`dashboard_speed: ${manifest.files.length} data files, ${rows.toLocaleString('en')} rows, ${(bytes / 1e6).toFixed(1)} MB; Chromium headless, bundled assets, loopback; median of ${RUNS}`);
console.log('');
console.log('| measure | time |');
console.log('| --- | ---: |');
console.log(`| first chart, cold (empty profile: wasm + data downloaded) | ${ms(median(results.cold))} |`);
console.log(`| first chart, cached revisit (Cache API, manifest 304) | ${ms(median(results.cached))} |`);
console.log(`| (phases of the last cold run, ms since navigation: ${JSON.stringify(results.coldMarks)}) | |`);
console.log(`| (phases of the last cached run: ${JSON.stringify(results.cachedMarks)}) | |`);
console.log(`| first chart, cached revisit at 390×844 | ${ms(median(results.phone))} |`);
console.log(`| filter change (region, 7 days at 5-minute grain) | ${ms(median(results.filter))} |`);
for (const days of [7, 30, 365]) {
  console.log(`| range change to ${days} days (${results.grains[days]} grain), first time in the session | ${ms(median(results.first[days]))} |`);
  console.log(`| range change to ${days} days (${results.grains[days]} grain), again (files attached) | ${ms(median(results.again[days]))} |`);
}
