// The multi-threaded DuckDB-WASM build: served with COOP/COEP headers the page
// is cross-origin isolated and must pick the `coi` build, run with threads,
// draw every chart and log no error. The thread count is DuckDB's own
// setting, read back through the page's Analyze tab (`current_setting`): the
// page's wish (`__dashboard.threads`, clamped to at least 1) proves nothing
// when `SET threads` is refused. Run by tests/dashboard.rs:
//   SITE_DIR=… OUT_DIR=… node tests/browser/isolated.mjs
import path from 'node:path';
import { serve, launch, waitReady } from './harness.mjs';

const server = await serve(process.env.SITE_DIR, { isolated: true });
const browser = await launch();
const page = await browser.context.newPage();
const errors = [];
page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
page.on('pageerror', (e) => errors.push(String(e)));
await page.goto(server.url);
await waitReady(page);
const s = await page.evaluate(() => ({
  isolated: self.crossOriginIsolated,
  bundle: window.__dashboard.bundle,
  threads: window.__dashboard.threads,
  cores: navigator.hardwareConcurrency,
  charts: [...document.querySelectorAll('.chart-body')].map((el) => [el.dataset.state, Number(el.dataset.points), el.dataset.state === 'ready' ? '' : el.parentElement.textContent.slice(0, 300)]),
}));
// What DuckDB-WASM runs with, asked through the page's own connection.
await page.click('#tab-analyze');
await page.fill('#sql', "SELECT current_setting('threads') AS threads");
await page.click('#run-sql');
await page.waitForFunction(() => /rows in|failed/i.test(document.getElementById('sql-status').textContent));
const duckdbThreads = await page.evaluate(() => document.querySelector('#sql-result td')?.textContent ?? document.getElementById('sql-status').textContent);
await page.screenshot({ path: path.join(process.env.OUT_DIR, '08-isolated-threads.png') });
await browser.close();
await server.close();
const checks = [
  [s.isolated === true, 'the page is cross-origin isolated'],
  [s.bundle === 'coi', `multi-threaded build in use (${s.bundle})`],
  [Number(duckdbThreads) > 1 && Number(duckdbThreads) === s.threads,
    `DuckDB runs on more than one thread: current_setting('threads') = ${duckdbThreads} (the page asked for ${s.threads}, hardwareConcurrency ${s.cores})`],
  [s.charts.every(([st, n]) => st === 'ready' && n > 0), `charts have data ${JSON.stringify(s.charts)}`],
  [errors.length === 0, `no console errors ${errors.slice(0, 3).join(' | ')}`],
];
let failed = 0;
for (const [ok, what] of checks) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} - ${what}`);
  if (!ok) failed += 1;
}
console.log(failed ? `${failed} isolated checks failed` : 'all isolated checks passed');
process.exit(failed ? 1 : 0);
