// Range and filter changes with the page's rollups and without them
// (window.__dashboard.setRollups(false): every panel reads the unit rows),
// sides alternating in one page, so the ratio holds on a loaded machine.
// Each change is one the page has not seen (results are kept per SQL text):
// a region filter per run (the same on both sides), 30-day and 365-day
// ranges ending a day earlier each time. Prints medians, the ratio, and where the time went (queries,
// rollup builds, drawing).
//   SITE_DIR=… RUNS=3 node tests/browser/bench_changes.mjs
// COMPARE=stored: both sides use rollups; one reads the rollups the exporter
// stored in the files, the other builds them from the rows in the page (the
// earlier way; below rollupMinRows rows that side reads the rows).
import os from 'node:os';
import { serve, launch, waitReady, renders, setRange, addDays } from './harness.mjs';

const SITE = process.env.SITE_DIR;
const STORED = process.env.COMPARE === 'stored';
const RUNS = Number(process.env.RUNS || 3);
const server = await serve(SITE, { gzip: true });
const b = await launch();
const page = await b.context.newPage();
await page.setViewportSize({ width: 1440, height: 900 });
await page.goto(server.url);
await waitReady(page);
const dataMax = await page.evaluate(() => document.getElementById('date-to').value);
const regions = await page.$eval('#filter-region', (e) => [...e.options].map((o) => o.value).filter(Boolean));

// One change: the page's time for it, and its breakdown.
async function change(rollups, action) {
  await page.evaluate(
    ([on, stored]) => {
      if (stored) {
        window.__dashboard.useRollups = true;
        window.__dashboard.useStoredRollups = on;
      } else window.__dashboard.useRollups = on;
    },
    [rollups, STORED],
  );
  await page.evaluate(() => (window.__dashboard.queries.length = 0));
  const n = await renders(page);
  await action();
  await waitReady(page, n);
  return page.evaluate(() => {
    const d = window.__dashboard;
    const q = d.queries.filter((x) => !x.cached);
    const build = q.filter((x) => x.sql.startsWith('CREATE'));
    const sum = (xs) => xs.reduce((a, x) => a + x.query_ms + x.convert_ms, 0);
    const draw = Object.values(d.drawMs).reduce((a, x) => a + x, 0);
    return { ms: d.lastRefreshMs, queries: q.length - build.length, query_ms: sum(q) - sum(build), builds: build.length, build_ms: sum(build), draw_ms: draw };
  });
}

// Warm-up (not timed): the 30- and 365-day files fetched and attached, the
// code paths run once on each side.
for (const on of [true, false]) {
  await change(on, () => setRange(page, addDays(dataMax, -29), dataMax));
  await change(on, () => setRange(page, addDays(dataMax, -364), dataMax));
  await change(on, () => setRange(page, addDays(dataMax, -6), dataMax));
  await change(on, () => page.selectOption('#filter-fuel', 'Coal'));
  await change(on, () => page.selectOption('#filter-fuel', ''));
}

const kinds = ['filter', 'range 30 d', 'range 365 d'];
const res = { on: {}, off: {} };
const loads = [];
for (let run = 0; run < RUNS; run++) {
  for (const side of run % 2 ? ['off', 'on'] : ['on', 'off']) {
    const on = side === 'on';
    // The same change on both sides of a run (the SQL differs, so neither
    // side finds the other's results kept).
    const k = run;
    const region = regions[k % regions.length];
    // A filter on the opening 7-day view, then back (kept, not timed).
    await setRange(page, addDays(dataMax, -6), dataMax);
    const f = await change(on, () => page.selectOption('#filter-region', region));
    const n = await renders(page);
    await page.selectOption('#filter-region', '');
    await waitReady(page, n);
    // Ranges end a day apart on the two sides (where both read the rows,
    // the same range would find the other side's results kept).
    const e = 2 * run + (on ? 0 : 1);
    const r30 = await change(on, () => setRange(page, addDays(dataMax, -30 - e), addDays(dataMax, -1 - e)));
    const r365 = await change(on, () => setRange(page, addDays(dataMax, -365 - e), addDays(dataMax, -1 - e)));
    for (const [kind, r] of [[kinds[0], f], [kinds[1], r30], [kinds[2], r365]]) (res[side][kind] ||= []).push(r);
    loads.push(os.loadavg()[0]);
  }
}
await page.evaluate(() => {
  window.__dashboard.useRollups = true;
  window.__dashboard.useStoredRollups = true;
});
await b.close();
await server.close();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = (side, kind, key) => median(res[side][kind].map((r) => r[key]));
console.log(`dashboard_changes: 1440×900, ${RUNS} runs, sides alternating in one page; load average (1 min) ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
console.log('');
console.log(STORED ? '| change (first time) | rollups built in the page | stored rollups | ratio | stored: temp tables | queries | drawing |' : '| change (first time) | rows (no rollups) | rollups | ratio | with rollups: builds | queries | drawing |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const kind of kinds) {
  const off = m('off', kind, 'ms');
  const on = m('on', kind, 'ms');
  console.log(`| ${kind}${kind === 'filter' ? ' (a region, 7 days at 5-minute grain)' : ''} | ${Math.round(off)} ms (${m('off', kind, 'queries')} queries, ${Math.round(m('off', kind, 'query_ms'))} ms) | ${Math.round(on)} ms | ${(off / on).toFixed(2)}x | ${m('on', kind, 'builds')} (${Math.round(m('on', kind, 'build_ms'))} ms) | ${m('on', kind, 'queries')} (${Math.round(m('on', kind, 'query_ms'))} ms) | ${Math.round(m('on', kind, 'draw_ms'))} ms |`);
}
console.log('');
console.log('each run (ms, rollups / rows): ' + kinds.map((k) => `${k}: ${res.on[k].map((r, i) => `${Math.round(r.ms)}/${Math.round(res.off[k][i].ms)}`).join(' ')}`).join('; '));
