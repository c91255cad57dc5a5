// The same changes on two builds of the page, alternating: this checkout's
// app.js (SITE_DIR) and an earlier revision's (BASE_DIR, the same site with
// only assets/app.js taken from git), each in its own Chromium at 1440×900,
// so their ratio holds on a loaded machine. Each run: a region filter on the
// 7-day 5-minute view (new to the page), back to no filter (results kept),
// the MW/MWh switch both ways, then 30- and 365-day ranges ending a day
// earlier each run (new to the page). Prints medians, the ratio and every
// run's figures, and the load average. Besides the page's own time (wall
// clock, from the input event to the last chart drawn: inflated by whatever
// else runs on the machine), the CPU time every process of that Chromium
// spent on the change (utime + stime from /proc, all its threads: the
// page, DuckDB-WASM's worker, the GPU and network processes), which the
// machine's load does not inflate.
//   SITE_DIR=… BASE_DIR=… BASE=<rev> RUNS=4 node tests/browser/bench_ab.mjs
import os from 'node:os';
import fs from 'node:fs';
import { serve, launch, waitReady, renders, setRange, addDays } from './harness.mjs';

const RUNS = Number(process.env.RUNS || 4);
// CPU time (ms) of the Chromium whose profile is `dir`: its browser process
// and every process below it.
const TICK_MS = 10; // USER_HZ 100
function cpuMs(dir) {
  const procs = [];
  for (const pid of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.push({ pid: Number(pid), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), cmd: pid });
    } catch {
      // gone
    }
  }
  const root = procs.find((p) => {
    try {
      const cmd = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      return cmd.includes(`--user-data-dir=${dir}`) && !cmd.includes('--type=');
    } catch {
      return false;
    }
  });
  if (!root) return NaN;
  const tree = new Set([root.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (!tree.has(p.pid) && tree.has(p.ppid)) (tree.add(p.pid), (grew = true));
  }
  return procs.filter((p) => tree.has(p.pid)).reduce((a, p) => a + p.ticks, 0) * TICK_MS;
}
const sides = {};
for (const [name, dir] of [['base', process.env.BASE_DIR], ['this', process.env.SITE_DIR]]) {
  const server = await serve(dir, { gzip: true });
  const b = await launch();
  const page = await b.context.newPage();
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(server.url);
  await waitReady(page);
  sides[name] = { server, b, page, res: {}, cpu: {} };
}
const dataMax = await sides.this.page.evaluate(() => document.getElementById('date-to').value);
const regions = await sides.this.page.$eval('#filter-region', (e) => [...e.options].map((o) => o.value).filter(Boolean));
let lastCpu = 0;
async function change(page, action, side = null) {
  const n = await renders(page);
  const c0 = side ? cpuMs(side.b.userDataDir) : 0;
  await action();
  await waitReady(page, n);
  if (side) lastCpu = cpuMs(side.b.userDataDir) - c0;
  return page.evaluate(() => window.__dashboard.lastRefreshMs);
}
// Warm-up, not timed: each grain's files fetched and attached once.
for (const s of Object.values(sides)) {
  for (const d of [30, 365, 7]) await change(s.page, () => s.page.click(`.presets button[data-days="${d}"]`));
}
const loads = [];
for (let run = 0; run < RUNS; run++) {
  for (const name of run % 2 ? ['this', 'base'] : ['base', 'this']) {
    const side = sides[name];
    const { page, res, cpu } = side;
    const push = (k, v) => {
      (res[k] ||= []).push(v);
      (cpu[k] ||= []).push(lastCpu);
    };
    await change(page, () => page.click('.presets button[data-days="7"]'));
    push('filter (a region, 7 d at 5 min, new)', await change(page, () => page.selectOption('#filter-region', regions[run % regions.length]), side));
    push('filter back to none (kept)', await change(page, () => page.selectOption('#filter-region', ''), side));
    push('MW → MWh', await change(page, () => page.click('.toggle button[data-measure="energy"]'), side));
    push('MWh → MW', await change(page, () => page.click('.toggle button[data-measure="generation"]'), side));
    push('range 30 d (hour, new)', await change(page, () => setRange(page, addDays(dataMax, -30 - run), addDays(dataMax, -1 - run)), side));
    push('range 365 d (day, new)', await change(page, () => setRange(page, addDays(dataMax, -365 - run), addDays(dataMax, -1 - run)), side));
    loads.push(os.loadavg()[0]);
  }
}
for (const s of Object.values(sides)) {
  await s.b.close();
  await s.server.close();
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`dashboard A/B: ${process.env.BASE || 'base'} vs this checkout's app.js, 1440×900, ${RUNS} runs alternating; load average (1 min) ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
console.log('');
console.log('| change | page time: base | this | base / this | Chromium CPU time: base | this | base / this | each run, page time (base; this) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const k of Object.keys(sides.this.res)) {
  const a = med(sides.base.res[k]);
  const b = med(sides.this.res[k]);
  const ca = med(sides.base.cpu[k]);
  const cb = med(sides.this.cpu[k]);
  console.log(`| ${k} | ${Math.round(a)} ms | ${Math.round(b)} ms | ${(a / b).toFixed(2)}x | ${ca} ms | ${cb} ms | ${(ca / cb).toFixed(2)}x | ${sides.base.res[k].map(Math.round).join(', ')}; ${sides.this.res[k].map(Math.round).join(', ')} |`);
}
