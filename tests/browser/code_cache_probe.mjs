// What a first visit must do for Chromium to keep DuckDB-WASM's compiled
// code (the profile's WebAssembly code cache), and what that changes on the
// next visit, at 390×844 and 1440×900. For each size and each kind of first
// visit, in a fresh profile: `load` (the page loads, then closes), `wait`
// (it stays open WAIT ms, the cache sampled at 2, 5, 10 s and the end), `use`
// (bench.mjs's cold session: 30/365/7-day ranges twice, a region filter and
// back; the cache sampled after each of the first ranges); then one warm
// visit: engine instantiated, DuckDB-WASM ready, interactive, and each start
// query's time from submit to result (the first ones show baseline vs
// cached code best: they run before anything else in the worker).
//   SITE_DIR=… ROUNDS=2 WAIT=15000 node tests/browser/code_cache_probe.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, launch, waitReady, renders } from './harness.mjs';

function codeCacheBytes(dir) {
  const d = path.join(dir, 'Default', 'Code Cache', 'wasm');
  let n = 0;
  try {
    for (const f of fs.readdirSync(d)) if (/^[0-9a-f]{16}_0$/.test(f)) n += fs.statSync(path.join(d, f)).size;
  } catch {
    // no code cache folder yet
  }
  return n;
}
const mb = (dir) => (codeCacheBytes(dir) / 1e6).toFixed(2);
const server = await serve(process.env.SITE_DIR, { gzip: true });
const sizes = { 390: [390, 844], 1440: [1440, 900] };
async function change(page, act) {
  const n = await renders(page);
  await act();
  await waitReady(page, n);
}
const ROUNDS = Number(process.env.ROUNDS || 2);
const WAIT = Number(process.env.WAIT || 15000);
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of ['load', 'wait', 'use']) {
    for (const [name, [w, h]] of Object.entries(sizes)) {
      const b = await launch();
      const p = await b.context.newPage();
      await p.setViewportSize({ width: w, height: h });
      await p.goto(server.url);
      await waitReady(p);
      const trail = [];
      const t0 = Date.now();
      if (kind === 'wait') {
        for (const s of [2000, 5000, 10000, WAIT]) {
          await p.waitForTimeout(Math.max(0, s - (Date.now() - t0)));
          trail.push(`${s / 1000} s: ${mb(b.userDataDir)} MB`);
        }
      } else if (kind === 'use') {
        for (const d of [30, 365, 7]) {
          await change(p, () => p.click(`.presets button[data-days="${d}"]`));
          trail.push(`after ${d} d: ${mb(b.userDataDir)} MB`);
        }
        for (const d of [30, 365, 7]) await change(p, () => p.click(`.presets button[data-days="${d}"]`));
        await change(p, () => p.selectOption('#filter-region', 'SA1'));
        await change(p, () => p.selectOption('#filter-region', ''));
        trail.push(`end (${((Date.now() - t0) / 1000).toFixed(1)} s): ${mb(b.userDataDir)} MB`);
      }
      await p.evaluate(() => window.__dashboard.kept && window.__dashboard.kept());
      await p.close();
      const before = mb(b.userDataDir);
      const v = await b.context.newPage();
      await v.setViewportSize({ width: w, height: h });
      await v.goto(server.url);
      await waitReady(v);
      const m = await v.evaluate(() => {
        const m = window.__dashboard.marks;
        const qs = (window.__dashboard.queries || []).filter((q) => q.t1 <= m.first_render + 1);
        return { engine: m.engine, ready: m.duckdb_ready, live: m.first_render, queries: qs.map((q) => Math.round(q.t1 - q.t0)) };
      });
      await v.close();
      await b.close();
      console.log(
        `round ${r} ${name} first visit ${kind}: code cache ${before} MB${trail.length ? ` (${trail.join(', ')})` : ''}; ` +
          `warm: engine ${Math.round(m.engine)}, ready ${Math.round(m.ready)}, interactive ${Math.round(m.live)} ms (ready → interactive ${Math.round(m.live - m.ready)} ms), ` +
          `start queries ${m.queries.join(', ')} ms; load ${os.loadavg()[0].toFixed(1)}`,
      );
    }
  }
}
await server.close();
