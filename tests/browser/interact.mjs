// The dashboard's interactions, driven with the real mouse and keyboard
// (playwright-core, Debian's Chromium): phone layout, tooltips, zoom,
// multi-select with narrowing lists, chips, drill-down clicks, KPIs with
// their time, MW↔MWh, colours, dark theme, the shared URL, keyboard access.
// Imported by dashboard.mjs; every step puts the page back as it found it.
import fs from 'node:fs';
import path from 'node:path';
import { waitReady, renders, setRange, addDays } from './harness.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');

// The fixture's units (duid, region, fuel), as tests/dashboard.rs read them
// from the site's units file.
function sampleUnits() {
  return JSON.parse(process.env.UNITS_JSON || '[]');
}
const sorted = (xs) => [...new Set(xs)].sort((a, b) => a.localeCompare(b));
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

const filters = (page) =>
  page.evaluate(() => {
    const out = {};
    for (const c of document.querySelectorAll('#chips .chip[data-dimension]')) (out[c.dataset.dimension] ||= []).push(c.dataset.value);
    return out;
  });

async function waitAfter(page, action) {
  const n = await renders(page);
  await action();
  await waitReady(page, n);
}

// Pixel (page coordinates) of a chart value.
async function chartPoint(page, key, fn, arg) {
  return page.evaluate(
    ([key, src, arg]) => {
      const c = window.__dashboard.charts[key];
      const el = document.getElementById('chart-' + key);
      el.scrollIntoView({ block: 'center' });
      const rect = el.getBoundingClientRect();
      const r = new Function('c', 'arg', src)(c, arg);
      if (!r) return null;
      return { x: rect.left + r.xy[0], y: rect.top + r.xy[1], ...r };
    },
    [key, fn, arg],
  );
}

// A real click on a chart: the pointer moves there first (as a hand does,
// so ECharts knows what is under it), then clicks.
async function clickAt(page, at) {
  await page.mouse.move(at.x, at.y, { steps: 3 });
  await page.waitForTimeout(150);
  await waitAfter(page, () => page.mouse.click(at.x, at.y));
}

async function clearFilters(page) {
  if (!(await page.$('#chips .chip'))) return;
  const clear = await page.$('#chips .chip.clear');
  await waitAfter(page, () => (clear ? clear.click() : page.click('#chips .chip')));
}

export async function afterFirstVisit({ page, check, kpi, state, dataMax, OUT, consoleWarnings }) {
  const units = sampleUnits();
  let s = await state(page);
  // ---- labels: how prices are averaged, units, the time zone
  const axes = await page.evaluate(() => {
    const o0 = window.__dashboard.charts[0].getOption();
    const o1 = window.__dashboard.charts[1].getOption();
    return { x0: o0.xAxis[0].name, y0: o0.yAxis[0].name, x1: o1.xAxis[0].name, y1: o1.yAxis[0].name };
  });
  check(/UTC\+10/.test(axes.x0) && /UTC\+10/.test(axes.x1), 'time axes say market time, UTC+10', `${axes.x0} | ${axes.x1}`);
  check(axes.y0 === 'Average generation (MW)' && axes.y1 === 'Regional price ($/MWh)', 'value axes carry the measure, how it is averaged and its unit', `${axes.y0} | ${axes.y1}`);
  check(s.kpis.some((k) => k.label === 'Average price (volume-weighted)' && /\$\/MWh/.test(k.text)), 'the price KPI says it is volume-weighted, in $/MWh', s.kpis.map((k) => k.label).join(', '));

  // ---- latest KPIs with their time
  const latest = await page.evaluate(() => [...document.querySelectorAll('.kpi')].filter((k) => k.dataset.at).map((k) => ({ label: k.querySelector('.kpi-label').textContent, at: k.dataset.at, note: k.querySelector('.kpi-note').textContent, text: k.querySelector('.kpi-value').textContent })));
  const lg = latest.find((k) => k.label === 'Latest generation');
  const lp = latest.find((k) => k.label === 'Latest price (volume-weighted)');
  check(lg && lp && lg.at === `${dataMax} 23:55` && lp.at === lg.at && /MW$/.test(lg.text) && /\$\/MWh$/.test(lp.text), 'latest MW and latest price KPIs show the newest interval', JSON.stringify(latest));
  check(lg && /23:55/.test(lg.note) && /UTC\+10/.test(lg.note), 'the latest KPIs name their time and time zone', lg && lg.note);

  // ---- colours: real AEMO categories configured; others shown with their own name
  const colours = await page.evaluate(() => {
    const o = window.__dashboard.charts[0].getOption();
    const conf = JSON.parse(document.getElementById('page-config').textContent).config.dimensions.find((d) => d.name === 'fuel').colors;
    return { series: o.series.map((x) => ({ name: x.name, color: x.color })), conf, unmatched: window.__dashboard.unmatchedColors.fuel };
  });
  const confColours = new Set(Object.values(colours.conf).map((c) => c.toLowerCase()));
  const coal = colours.series.find((x) => x.name === 'Hydro');
  const wind = colours.series.find((x) => x.name === 'Wind');
  check(wind && wind.color === colours.conf.Wind, 'a configured fuel (Wind) gets its configured colour', JSON.stringify(wind));
  check(coal && !confColours.has(String(coal.color).toLowerCase()), 'a fuel the config does not name (Hydro, left out by tests/dashboard.rs) is shown under its own name, in a colour no configured fuel uses', JSON.stringify(coal));
  check(new Set(colours.series.map((x) => String(x.color).toLowerCase())).size === colours.series.length, 'no two fuels share a colour', JSON.stringify(colours.series));
  check(Array.isArray(colours.unmatched) && colours.unmatched.includes('Unknown') && !colours.unmatched.includes('Wind'), 'colour keys that match no data value are found', JSON.stringify(colours.unmatched));

  // ---- tooltip lists every region / every fuel
  for (const [i, what] of [[1, 'region'], [0, 'fuel']]) {
    const box = await page.$eval('#chart-' + i, (el) => { el.scrollIntoView({ block: 'center' }); const r = el.getBoundingClientRect(); return { x: r.left + r.width * 0.55, y: r.top + r.height * 0.5 }; });
    await page.mouse.move(box.x, box.y);
    await page.waitForSelector(`#chart-${i} .chart-tip .tip-row`, { state: 'visible', timeout: 5000 }).catch(() => {});
    const tip = await page.evaluate((i) => ({
      rows: [...document.querySelectorAll(`#chart-${i} .chart-tip .tip-row[data-series]`)].map((r) => r.dataset.series),
      series: window.__dashboard.charts[i].getOption().series.map((x) => x.name),
      head: document.querySelector(`#chart-${i} .chart-tip .tip-head`)?.textContent,
    }), i);
    check(tip.rows.length >= 5 && same(tip.rows, tip.series), `the tooltip lists every ${what} at a point`, `${tip.head}: ${tip.rows.join(', ')} (series: ${tip.series.join(', ')})`);
    if (i === 1) await page.screenshot({ path: path.join(OUT, '10-tooltip.png') });
  }
  await page.mouse.move(5, 5);

  // ---- the tooltip across a thinned chart: the drawing keeps at most a
  // point per pixel (a stack one per two), but wherever the pointer is, the
  // tooltip lists every series with its value at that interval.
  for (const [i, what] of [[1, 'region'], [0, 'fuel']]) {
    const counts = await page.evaluate((i) => ({ drawn: window.__dashboard.drawnPoints[i], all: window.__dashboard.seriesData(i).reduce((a, s) => a + s.data.length, 0) }), i);
    check(counts.drawn < counts.all, `the ${what} chart draws fewer points than it has values (its width in pixels bounds them)`, JSON.stringify(counts));
    const box = await page.$eval('#chart-' + i, (el) => { el.scrollIntoView({ block: 'center' }); const r = el.getBoundingClientRect(); return { left: r.left, width: r.width, y: r.top + r.height * 0.5 }; });
    const bad = [];
    let seen = 0;
    for (let k = 0; k < 24; k++) {
      await page.mouse.move(box.left + box.width * (0.12 + (0.8 * k) / 23), box.y);
      await page.waitForTimeout(40);
      const tip = await page.evaluate((i) => {
        const rows = [...document.querySelectorAll(`#chart-${i} .chart-tip .tip-row[data-series]`)].map((r) => [r.dataset.series, r.querySelector('b').textContent]);
        const head = document.querySelector(`#chart-${i} .chart-tip .tip-head`)?.textContent || '';
        const t = Date.parse(head.slice(0, 16).replace(' ', 'T') + ':00Z');
        const cfg = JSON.parse(document.getElementById('page-config').textContent).config;
        const chart = cfg.charts[i];
        const m = cfg.measures.find((x) => x.name === chart.measure);
        const d = m.decimals ?? 1;
        const want = (window.__dashboard.seriesData(i) || []).map((s) => {
          const p = s.data.find((x) => x[0] === t);
          const v = p ? p[1] : undefined;
          return [s.name, v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toLocaleString('en-AU', { minimumFractionDigits: d, maximumFractionDigits: d }) + (m.unit ? ' ' + m.unit : '')];
        });
        return { head, rows, want, visible: !!rows.length };
      }, i);
      if (!tip.visible) continue;
      seen += 1;
      const key = (xs) => JSON.stringify([...xs].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
      if (key(tip.rows) !== key(tip.want)) bad.push(`${tip.head}: ${key(tip.rows)} vs ${key(tip.want)}`);
    }
    check(seen >= 20 && bad.length === 0, `at ${seen} pointer positions across the thinned ${what} chart, the tooltip lists every ${what} with its value at that interval`, bad.slice(0, 2).join(' | '));
  }
  await page.mouse.move(5, 5);

  // ---- zoom: slider + wheel, shared by the time charts
  const dz = await page.evaluate(() => window.__dashboard.charts[0].getOption().dataZoom.map((z) => z.type));
  check(dz.includes('inside') && dz.includes('slider'), 'time charts have a zoom slider and wheel zoom', dz.join(', '));
  const c0 = await page.$eval('#chart-0', (el) => { el.scrollIntoView({ block: 'center' }); const r = el.getBoundingClientRect(); return { x: r.left + r.width * 0.6, y: r.top + r.height * 0.45 }; });
  await page.mouse.move(c0.x, c0.y);
  for (let k = 0; k < 5; k++) {
    await page.mouse.wheel(0, -300);
    await page.waitForTimeout(60);
  }
  const zoomed = await page.evaluate(() => [0, 1].map((i) => { const z = window.__dashboard.charts[i].getOption().dataZoom[0]; return [Math.round(z.start), Math.round(z.end)]; }));
  check(zoomed[0][0] > 0 || zoomed[0][1] < 100, 'the mouse wheel zooms the time axis', JSON.stringify(zoomed[0]));
  check(JSON.stringify(zoomed[0]) === JSON.stringify(zoomed[1]), 'the price chart follows the same zoom', JSON.stringify(zoomed));
  await page.screenshot({ path: path.join(OUT, '11-zoomed.png') });
  await page.evaluate(() => window.__dashboard.charts[0].dispatchAction({ type: 'dataZoom', start: 0, end: 100 }));
  await page.mouse.move(5, 5);

  // ---- charts dimmed while a query runs
  const busy = await page.evaluate(() => {
    const el = document.getElementById('filter-region');
    el.value = 'SA1';
    el.dispatchEvent(new Event('change'));
    return { body: document.body.classList.contains('busy'), aria: document.getElementById('charts').getAttribute('aria-busy'), opacity: getComputedStyle(document.querySelector('.chart-body')).opacity };
  });
  await waitReady(page, await renders(page) - 1).catch(() => {});
  await page.waitForFunction(() => window.__dashboard.ready && !document.body.classList.contains('busy'));
  check(busy.body && busy.aria === 'true' && Number(busy.opacity) < 1, 'charts are dimmed (aria-busy) while a query runs', JSON.stringify(busy));
  const notBusy = await page.evaluate(() => getComputedStyle(document.querySelector('.chart-body')).opacity);
  check(Number(notBusy) === 1, 'and shown at full strength when it is done', notBusy);

  // ---- lists narrowed by the other filters (region SA1 is selected now)
  const fuelOptions = await page.$$eval('#filter-fuel option', (o) => o.map((x) => x.value).filter(Boolean));
  const sa1 = units.filter((u) => u.region === 'SA1');
  check(same(fuelOptions, sa1.map((u) => u.fuel)), 'with region SA1 the fuel list offers only SA1\'s fuels', fuelOptions.join(', '));
  await page.locator('#filter-unit').blur();
  await page.focus('#filter-unit');
  const unitOptions = await page.$$eval('#list-unit li[role=option]', (o) => o.map((x) => x.dataset.value));
  check(same(unitOptions, sa1.map((u) => u.duid)), 'with region SA1 the unit list offers only SA1\'s units', unitOptions.join(', '));
  await page.keyboard.press('Escape');
  const fuel = sa1.map((u) => u.fuel).sort()[0];
  await waitAfter(page, () => page.selectOption('#filter-fuel', fuel));
  await page.locator('#filter-unit').blur();
  await page.focus('#filter-unit');
  const unitOptions2 = await page.$$eval('#list-unit li[role=option]', (o) => o.map((x) => x.dataset.value));
  check(same(unitOptions2, sa1.filter((u) => u.fuel === fuel).map((u) => u.duid)), `with SA1 and ${fuel} the unit list offers only those units`, unitOptions2.join(', '));
  await page.keyboard.press('Escape');
  const regionOptions = await page.$$eval('#filter-region option', (o) => o.map((x) => x.value).filter(Boolean));
  check(same(regionOptions, units.filter((u) => u.fuel === fuel).map((u) => u.region)), `with ${fuel} the region list offers only regions that have it`, regionOptions.join(', '));
  s = await state(page);
  check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'every offered combination has data', JSON.stringify(s.charts));
  let f = await filters(page);
  check(same(f.region || [], ['SA1']) && same(f.fuel || [], [fuel]), 'each filter shows as a chip', JSON.stringify(f));
  await page.screenshot({ path: path.join(OUT, '12-chips-SA1.png') });
  // Removing a chip with the keyboard.
  await page.focus('#chips .chip[data-dimension="fuel"]');
  await waitAfter(page, () => page.keyboard.press('Enter'));
  f = await filters(page);
  check(same(f.region || [], ['SA1']) && !f.fuel, 'a chip removed from the keyboard drops its filter only', JSON.stringify(f));
  await clearFilters(page);
  check(!(await page.$('#chips .chip')) && (await page.inputValue('#filter-region')) === '', 'Clear removes every filter', JSON.stringify(await filters(page)));

  // ---- multi-select with search, by keyboard
  await page.focus('#filter-unit');
  await page.keyboard.type('wind farm');
  await waitAfter(page, () => page.keyboard.press('Enter'));
  await page.keyboard.type('wind farm');
  await page.keyboard.press('ArrowDown');
  await waitAfter(page, () => page.keyboard.press('Enter'));
  f = await filters(page);
  s = await state(page);
  const windUnits = units.filter((u) => u.fuel === 'Wind').map((u) => u.duid);
  check((f.unit || []).length === 2 && f.unit.every((u) => windUnits.includes(u)), 'two units picked from a search with the keyboard', JSON.stringify(f.unit));
  check(Number(kpi(s, 'Active units').value) <= 2 && Number(kpi(s, 'Active units').value) >= 1, 'the page shows just those units', kpi(s, 'Active units').text);
  const ariaSel = await page.$$eval('#list-unit li[aria-selected=true]', (o) => o.map((x) => x.dataset.value));
  check(same(ariaSel, f.unit || []), 'the list marks the picked units (aria-selected)', ariaSel.join(', '));
  await page.screenshot({ path: path.join(OUT, '13-multiselect.png') });
  await page.keyboard.press('Escape');
  await page.fill('#filter-unit', '');
  await waitAfter(page, () => page.press('#filter-unit', 'Backspace'));
  f = await filters(page);
  check((f.unit || []).length === 1, 'Backspace in the empty search removes the last unit', JSON.stringify(f.unit));
  await clearFilters(page);
  await page.locator('#filter-unit').blur();

  // ---- click a fuel in the stacked chart: that fuel by unit
  const band = await chartPoint(page, 0, `
    const o = c.getOption(); const idx = Math.floor(o.series[0].data.length * 0.55);
    let best = null, cum = 0;
    for (const s of o.series) { const v = s.data[idx][1] || 0; if (!best || v > best.v) best = { name: s.name, v, mid: cum + v / 2, t: s.data[idx][0] }; cum += v; }
    return { name: best.name, xy: c.convertToPixel({ seriesIndex: 0 }, [best.t, best.mid]) };`);
  await clickAt(page, band);
  f = await filters(page);
  const drilled = await page.evaluate(() => ({ title: document.getElementById('chart-title-0').textContent, series: window.__dashboard.charts[0].getOption().series.map((x) => x.name) }));
  const fuelUnits = units.filter((u) => u.fuel === band.name).map((u) => u.duid);
  check(same(f.fuel || [], [band.name]), `clicking ${band.name} in the stacked chart filters by it`, JSON.stringify(f));
  check(drilled.title === `${band.name} by unit (top 15)` && drilled.series.length > 1 && drilled.series.length <= 16 && drilled.series.every((n) => n === 'Other' || fuelUnits.includes(n)), 'and shows that fuel by unit (top 15)', `${drilled.title}: ${drilled.series.join(', ')}`);
  await page.screenshot({ path: path.join(OUT, '14-drill-fuel.png') });
  await page.mouse.move(5, 5);
  await clearFilters(page);
  const undrilled = await page.evaluate(() => document.getElementById('chart-title-0').textContent);
  check(undrilled === 'Generation by fuel', 'removing the fuel chip goes back to fuels', undrilled);

  // ---- click a region's price line: filter by it
  const line = await chartPoint(page, 1, `
    const o = c.getOption(); const n = o.series[0].data.length; let best = null;
    for (let idx = Math.floor(n * 0.3); idx < Math.floor(n * 0.7); idx += 7) {
      for (const s of o.series) {
        const v = s.data[idx][1]; if (v == null) continue;
        const gap = Math.min(...o.series.filter((x) => x !== s).map((x) => Math.abs((x.data[idx][1] ?? 1e9) - v)));
        if (!best || gap > best.gap) best = { name: s.name, gap, t: s.data[idx][0], v };
      }
    }
    return { name: best.name, gap: best.gap, xy: c.convertToPixel({ seriesIndex: 0 }, [best.t, best.v]) };`);
  await clickAt(page, line);
  f = await filters(page);
  check(same(f.region || [], [line.name]), `clicking ${line.name}'s price line filters by that region`, `${JSON.stringify(f)} (gap ${line.gap.toFixed(1)} $/MWh)`);
  await page.mouse.move(5, 5);
  await clearFilters(page);

  // ---- click a bar: select that unit
  const bar = await chartPoint(page, 2, `
    const o = c.getOption(); const data = o.series[0].data; const last = data.length - 1;
    return { label: o.yAxis[0].data[last], xy: c.convertToPixel({ seriesIndex: 0 }, [data[last] / 2, last]) };`);
  await clickAt(page, bar);
  f = await filters(page);
  check((f.unit || []).length === 1 && bar.label.startsWith(f.unit[0]), 'clicking the top unit\'s bar selects that unit', `${bar.label} → ${JSON.stringify(f)}`);
  await clearFilters(page);

  // ---- the map: a unit clicked is selected
  const mapState = await page.evaluate(() => ({ state: document.getElementById('chart-map').dataset.state, points: Number(document.getElementById('chart-map').dataset.points) }));
  check(mapState.state === 'ready' && mapState.points >= 30, 'the map draws the units that have coordinates', JSON.stringify(mapState));
  const dot = await chartPoint(page, 'map', `
    const o = c.getOption(); let best = null;
    for (const s of o.series) for (const d of s.data) { const v = d.value || d; if (!best || Math.abs(v[2]) > Math.abs(best.v[2])) best = { name: d.name, v }; }
    return { name: best.name, xy: c.convertToPixel({ geoIndex: 0 }, [best.v[0], best.v[1]]) };`);
  await clickAt(page, dot);
  f = await filters(page);
  check(same(f.unit || [], [dot.name]), `clicking ${dot.name} on the map selects it`, JSON.stringify(f));
  const mapAfter = await page.evaluate(() => Number(document.getElementById('chart-map').dataset.points));
  check(mapAfter === mapState.points, 'the map keeps the other units to pick from', `${mapState.points} → ${mapAfter}`);
  await page.evaluate(() => document.getElementById('figure-map').scrollIntoView());
  await page.screenshot({ path: path.join(OUT, '15-map-selected.png') });
  await clearFilters(page);
  await page.evaluate(() => window.scrollTo(0, 0));

  // ---- MW ↔ MWh
  const total = (i) => page.evaluate((i) => { const o = window.__dashboard.charts[0].getOption(); return o.series.reduce((s, x) => s + (x.data[i][1] || 0), 0); }, i);
  const mw = await total(100);
  await waitAfter(page, () => page.click('.toggle button[data-measure="energy"]'));
  const mwh = await total(100);
  // Only the switched chart is drawn again: the others' results are the ones on screen.
  const redrawn = await page.evaluate(() => ({ ...window.__dashboard.drawMs }));
  check(redrawn[1] === 0 && redrawn[2] === 0 && redrawn.map === 0 && redrawn[0] > 0, 'the MWh switch redraws only its own chart', JSON.stringify(redrawn));
  const y0 = await page.evaluate(() => window.__dashboard.charts[0].getOption().yAxis[0].name);
  check(y0 === 'Energy (MWh)' && Math.abs(mw / mwh - 12) < 0.01, 'the MWh switch shows energy per 5-minute interval (MW / 12)', `${y0}: ${mw.toFixed(0)} MW vs ${mwh.toFixed(1)} MWh`);
  check(/m0=energy/.test(page.url()), 'the switch is in the URL', page.url());
  await waitAfter(page, () => page.click('.toggle button[data-measure="generation"]'));
  s = await state(page);
  check(s.charts.every((c) => c.state === 'ready') && !/m0=/.test(page.url()), 'and back to MW', page.url());
  void consoleWarnings;
}

export async function analyzeChecks({ page, check, OUT }) {
  await page.fill('#sql', "SELECT DATE '2024-01-01' AS d, TIMESTAMP '2024-01-01 10:30:00' AS ts, min(date) AS first_day, 104.3974380493164::REAL AS r FROM daily");
  await page.click('#run-sql');
  await page.waitForFunction(() => /rows.* in \d+ ms/.test(document.getElementById('sql-status').textContent));
  const cells = await page.$$eval('#sql-result td', (t) => t.map((x) => x.textContent));
  check(cells[0] === '2024-01-01' && cells[1] === '2024-01-01 10:30:00' && /^\d{4}-\d\d-\d\d$/.test(cells[2]), 'Analyze shows dates as dates, not epoch milliseconds', cells.join(' | '));
  await page.fill('#sql', 'SELECT * FROM no_such_table');
  await page.click('#run-sql');
  await page.waitForFunction(() => document.getElementById('sql-status').className === 'error');
  const err = await page.evaluate(() => ({ table: !!document.querySelector('#sql-result table'), box: document.querySelector('#sql-result .sql-error')?.textContent || '', color: getComputedStyle(document.querySelector('#sql-result .sql-error') || document.body).color }));
  check(!err.table && /no_such_table/.test(err.box), 'an error replaces the old result (no stale table under it)', err.box.slice(0, 80));
  await page.screenshot({ path: path.join(OUT, '16-analyze-error.png') });
  await page.fill('#sql', 'SELECT * FROM range(1234) t(i)');
  await page.click('#run-sql');
  await page.waitForFunction(() => /rows.* in \d+ ms/.test(document.getElementById('sql-status').textContent));
  const big = await page.evaluate(() => ({ status: document.getElementById('sql-status').textContent, rows: document.querySelectorAll('#sql-result tbody tr').length }));
  check(big.rows === 500 && /1,234 rows \(first 500 shown\)/.test(big.status), 'Analyze previews 500 rows and gives the total', `${big.rows} rows shown; ${big.status}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
  const file = path.join(OUT, 'analyze-result.csv');
  await dl.saveAs(file);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  check(lines.length === 1235 && lines[0] === 'i', 'the whole result downloads as CSV', `${lines.length} lines`);
}

// The page on a phone (390×844) and in the dark theme, on the warm cache.
export async function phoneAndTheme({ browser, server, check, state, watch, OUT }) {
  const p = await browser.context.newPage();
  watch(p);
  await p.setViewportSize({ width: 390, height: 844 });
  await p.goto(server.url);
  await waitReady(p);
  const layout = await p.evaluate(() => {
    const vw = window.innerWidth;
    const skip = (el) => el.closest('.table-wrap, .result, .multi-list, .chart-body, .skip, .sr-only');
    const wide = [...document.querySelectorAll('header *, nav *, .status *, main *, footer')]
      .filter((el) => !skip(el) && el.getClientRects().length && el.getBoundingClientRect().right > vw + 1)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} → ${Math.round(el.getBoundingClientRect().right)}`);
    const bodies = [...document.querySelectorAll('.chart-body')].map((el) => el.getBoundingClientRect());
    const kpis = [...document.querySelectorAll('.kpi-value')].map((el) => ({ text: el.textContent, cut: el.scrollWidth > el.clientWidth + 1, right: el.getBoundingClientRect().right }));
    const canvases = [...document.querySelectorAll('.chart-body canvas')].map((c) => c.getBoundingClientRect().width);
    return { vw, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 5), lefts: [...new Set(bodies.map((b) => Math.round(b.left)))], widths: bodies.map((b) => Math.round(b.width)), kpis, canvases: canvases.map(Math.round) };
  });
  check(layout.scroll <= layout.vw && layout.wide.length === 0, 'at 390 px the page never scrolls sideways', `scrollWidth ${layout.scroll} of ${layout.vw}; ${layout.wide.join('; ')}`);
  check(layout.lefts.length === 1 && layout.widths.every((w) => w >= 330 && w <= 390), 'at 390 px the charts are one column, each as wide as the screen', `lefts ${layout.lefts}, widths ${layout.widths}`);
  check(layout.canvases.length >= 4 && layout.canvases.every((w) => w >= 320), 'every chart is drawn at a readable width', layout.canvases.join(', '));
  check(layout.kpis.every((k) => !k.cut && k.right <= layout.vw), 'no KPI is truncated', layout.kpis.map((k) => `${k.text}${k.cut ? ' (cut)' : ''}`).join(', '));
  let s = await state(p);
  check(s.charts.every((c) => c.state === 'ready' && c.points > 0), 'charts have data on a phone', JSON.stringify(s.charts));
  await p.screenshot({ path: path.join(OUT, '20-phone-overview.png'), fullPage: true });
  // Screen by screen, as a phone shows it.
  for (const [k, sel] of [['a', 'header.top'], ['b', '#figure-0'], ['c', '#figure-2'], ['d', '#figure-map']]) {
    await p.evaluate((sel) => document.querySelector(sel).scrollIntoView({ block: 'start' }), sel);
    await p.screenshot({ path: path.join(OUT, `20${k}-phone-screen.png`) });
  }
  await p.evaluate(() => window.scrollTo(0, 0));
  // A tooltip on a phone stays inside the chart.
  const box = await p.$eval('#chart-1', (el) => { const r = el.getBoundingClientRect(); return { x: r.left + r.width * 0.8, y: r.top + r.height * 0.5 }; });
  await p.evaluate((y) => window.scrollTo(0, y - 300), box.y + (await p.evaluate(() => window.scrollY)));
  const box2 = await p.$eval('#chart-1', (el) => { const r = el.getBoundingClientRect(); return { x: r.left + r.width * 0.8, y: r.top + r.height * 0.5 }; });
  await p.mouse.move(box2.x, box2.y);
  await p.waitForSelector('#chart-1 .chart-tip .tip-row', { state: 'visible', timeout: 5000 }).catch(() => {});
  const tip = await p.evaluate(() => { const t = document.querySelector('#chart-1 .chart-tip'); if (!t) return null; const r = t.getBoundingClientRect(); return { left: r.left, right: r.right, rows: t.querySelectorAll('.tip-row[data-series]').length }; });
  check(tip && tip.rows >= 5 && tip.left >= 0 && tip.right <= 390, 'on a phone the tooltip lists every region inside the screen', JSON.stringify(tip));
  await p.screenshot({ path: path.join(OUT, '21-phone-tooltip.png') });
  await p.mouse.move(1, 1);
  // Drill-down on a phone.
  await p.evaluate(() => window.scrollTo(0, 0));
  const n0 = await renders(p);
  await p.selectOption('#filter-fuel', 'Wind');
  await waitReady(p, n0);
  await p.screenshot({ path: path.join(OUT, '22-phone-wind-by-unit.png'), fullPage: true });
  const wide2 = await p.evaluate(() => document.documentElement.scrollWidth);
  check(wide2 <= 390, 'the drilled-down view fits the phone too', String(wide2));
  await clearFilters(p);
  // Analyze on a phone.
  await p.click('#tab-analyze');
  await p.fill('#sql', 'SELECT date, region_id, round(avg(rrp), 2) AS price FROM daily GROUP BY ALL ORDER BY 1 DESC, 2 LIMIT 20');
  await p.click('#run-sql');
  await p.waitForFunction(() => /rows.* in \d+ ms/.test(document.getElementById('sql-status').textContent));
  const wide3 = await p.evaluate(() => document.documentElement.scrollWidth);
  check(wide3 <= 390, 'the Analyze tab fits the phone', String(wide3));
  await p.screenshot({ path: path.join(OUT, '23-phone-analyze.png'), fullPage: true });
  await p.click('#tab-overview');

  // ---- dark theme: the system's, then the toggle
  const bg = () => p.evaluate(() => { const m = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number); return (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255; });
  const light = await bg();
  await p.emulateMedia({ colorScheme: 'dark' });
  await p.waitForTimeout(100);
  await p.waitForFunction(() => window.__dashboard.ready);
  const dark = await bg();
  check(light > 0.8 && dark < 0.2, 'the page follows the system\'s dark theme', `background luminance ${light.toFixed(2)} → ${dark.toFixed(2)}`);
  await waitReady(p, (await renders(p)) - 1).catch(() => {});
  const darkCharts = await p.evaluate(() => { const t = window.__dashboard.charts[0].getOption().legend[0].textStyle.color; return t; });
  check(/#9aa6b2/i.test(darkCharts), 'chart text takes the dark theme\'s colour', darkCharts);
  await p.screenshot({ path: path.join(OUT, '24-phone-dark.png'), fullPage: true });
  await p.setViewportSize({ width: 1440, height: 900 });
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(OUT, '25-dark-1440.png'), fullPage: true });
  // Toggle: auto → dark → light (overrides the system) → auto.
  await p.click('#theme-toggle');
  check((await p.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'the toggle picks dark', await p.textContent('#theme-toggle'));
  await p.click('#theme-toggle');
  await p.waitForFunction(() => window.__dashboard.ready);
  const forcedLight = await bg();
  check(forcedLight > 0.8, 'the toggle picks light over a dark system', forcedLight.toFixed(2));
  await p.click('#theme-toggle');
  check((await bg()) < 0.2 && !(await p.evaluate(() => document.documentElement.dataset.theme)), 'and back to following the system', await p.textContent('#theme-toggle'));
  await p.emulateMedia({ colorScheme: 'light' });
  await p.waitForFunction(() => window.__dashboard.ready);

  // ---- keyboard: every control is reachable with Tab
  await p.evaluate(() => { window.scrollTo(0, 0); document.activeElement?.blur(); });
  const reached = new Set();
  for (let k = 0; k < 40; k++) {
    await p.keyboard.press('Tab');
    const id = await p.evaluate(() => { const a = document.activeElement; return a.id || (a.dataset.days ? 'days-' + a.dataset.days : a.dataset.measure ? 'toggle-' + a.dataset.measure : a.className); });
    reached.add(id);
  }
  const wanted = ['theme-toggle', 'tab-overview', 'tab-analyze', 'filter-region', 'filter-fuel', 'filter-unit', 'date-from', 'date-to', 'days-7', 'days-30', 'download', 'toggle-energy'];
  const missed = wanted.filter((w) => !reached.has(w));
  check(missed.length === 0, 'Tab reaches every control', missed.length ? 'missed ' + missed.join(', ') : [...reached].join(', '));
  // A preset and the MWh switch from the keyboard.
  await p.focus('.presets button[data-days="30"]');
  let n = await renders(p);
  await p.keyboard.press('Enter');
  await waitReady(p, n);
  s = await state(p);
  check(s.grain === 'hour', 'a preset works from the keyboard', s.grain);
  await p.focus('.toggle button[data-measure="energy"]');
  n = await renders(p);
  await p.keyboard.press(' ');
  await waitReady(p, n);
  check((await p.getAttribute('.toggle button[data-measure="energy"]', 'aria-pressed')) === 'true', 'the MWh switch works from the keyboard (aria-pressed)');
  await p.close();
}

// The view in the URL: reopened in a fresh page, the same view.
export async function sharedUrl({ browser, server, check, state, watch, OUT, dataMax }) {
  const p = await browser.context.newPage();
  watch(p);
  await p.setViewportSize({ width: 1440, height: 900 });
  await p.goto(server.url);
  await waitReady(p);
  let n = await renders(p);
  await p.click('.presets button[data-days="30"]');
  await waitReady(p, n);
  n = await renders(p);
  await p.selectOption('#filter-region', 'NSW1');
  await waitReady(p, n);
  n = await renders(p);
  await p.fill('#filter-unit', 'bayswater');
  await p.press('#filter-unit', 'Enter');
  await waitReady(p, n);
  await p.keyboard.press('Escape');
  n = await renders(p);
  await p.click('.toggle button[data-measure="energy"]');
  await waitReady(p, n);
  const view = async (page) => {
    const s = await state(page);
    return {
      from: s.from,
      to: s.to,
      grain: s.grain,
      filters: await filters(page),
      pressed: await page.getAttribute('.toggle button[aria-pressed=true]', 'data-measure'),
      kpis: s.kpis.map((k) => k.text).join(' | '),
      axis: await page.evaluate(() => window.__dashboard.charts[0].getOption().yAxis[0].name),
    };
  };
  const a = await view(p);
  const url = p.url();
  check(/days=30/.test(url) && /region=NSW1/.test(url) && /unit=BAYSW1/.test(url) && /m0=energy/.test(url) && /grain=hour/.test(url), 'the URL holds range, grain, filters and the switch', url);
  const q = await browser.context.newPage();
  watch(q);
  await q.setViewportSize({ width: 1440, height: 900 });
  await q.goto(url);
  await waitReady(q);
  const b = await view(q);
  check(JSON.stringify(a) === JSON.stringify(b), 'the shared URL reopens the same view in a fresh page', `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  check(a.to === dataMax && a.grain === 'hour', 'a 30-day view ending at the newest data', `${a.from} – ${a.to} ${a.grain}`);
  await q.waitForFunction(() => window.__dashboard.ready && !document.body.classList.contains('busy'));
  const extra = await q.evaluate(() => window.__dashboard.renders);
  check(extra === 1, 'the shared view is drawn once (no second refresh after load)', `${extra} renders`);
  await q.screenshot({ path: path.join(OUT, '26-shared-url.png'), fullPage: true });
  await q.click('#tab-analyze');
  const url2 = q.url();
  check(/tab=analyze/.test(url2), 'the tab is in the URL', url2);
  const r = await browser.context.newPage();
  watch(r);
  await r.goto(url2);
  await waitReady(r);
  const tab = await r.evaluate(() => ({ analyze: !document.getElementById('analyze').hidden, overview: !document.getElementById('overview').hidden }));
  check(tab.analyze && !tab.overview, 'a shared Analyze URL opens on the Analyze tab', JSON.stringify(tab));
  await Promise.all([p.close(), q.close(), r.close()]);
}

// The rollups (`dashboard.rollups`, built by the page per date range) give
// the numbers the unit rows give: every KPI, chart series, bar and map point
// of several views, drawn once from the rollups and once from the rows
// (window.__dashboard.setRollups(false)); equal up to float summation order
// (relative 1e-9) and shown with the same text.
export async function rollupsMatchRows({ page, check }) {
  const snapshot = () =>
    page.evaluate(() => {
      const d = window.__dashboard;
      const kpis = [...document.querySelectorAll('.kpi .kpi-value')].map((e) => ({ v: e.dataset.value, t: e.textContent }));
      const charts = {};
      for (const [k, c] of Object.entries(d.charts)) {
        const o = c.getOption();
        charts[k] = {
          categories: o.yAxis && o.yAxis[0] && o.yAxis[0].data ? o.yAxis[0].data : null,
          series: (d.seriesData(k) || o.series).map((s) => ({ name: s.name, data: s.data.map((p) => (p && typeof p === 'object' && !Array.isArray(p) ? [p.name, p.value] : p)) })),
        };
      }
      const lists = [...document.querySelectorAll('select[id^="filter-"]')].map((e) => [...e.options].map((o) => o.value).join(','));
      // The rollups the exporter stored in the files of this grain.
      const page = JSON.parse(document.getElementById('page-config').textContent);
      const dataset = page.config.grains.find((g) => g.grain === d.grain)?.dataset;
      const stored = ((page.stored_rollups || {})[dataset] || []).map((x) => x.index);
      return { kpis, charts, lists, sources: { ...d.sources }, grain: d.grain, stored };
    });
  // First difference between two snapshots (numbers: relative 1e-9), or null.
  const diff = (a, b, at = '') => {
    if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b)) ? null : `${at}: ${a} vs ${b}`;
    if (typeof a === 'string' && typeof b === 'string' && a !== '' && b !== '' && Number.isFinite(Number(a)) && Number.isFinite(Number(b))) return diff(Number(a), Number(b), at);
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) return `${at}: ${a.length} vs ${b.length} items`;
      for (let i = 0; i < a.length; i++) {
        const d = diff(a[i], b[i], `${at}[${i}]`);
        if (d) return d;
      }
      return null;
    }
    if (a && b && typeof a === 'object' && typeof b === 'object') {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys) {
        const d = diff(a[k], b[k], `${at}.${k}`);
        if (d) return d;
      }
      return null;
    }
    return a === b ? null : `${at}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  };
  const both = async (label, setup) => {
    await setup();
    const r = await snapshot();
    await waitAfter(page, () => page.evaluate(() => window.__dashboard.setRollups(false)));
    const u = await snapshot();
    await waitAfter(page, () => page.evaluate(() => window.__dashboard.setRollups(true)));
    const fromRollups = Object.entries(r.sources).filter(([, s]) => s.startsWith('rollup')).map(([k]) => k);
    const d = diff({ kpis: r.kpis, charts: r.charts, lists: r.lists }, { kpis: u.kpis, charts: u.charts, lists: u.lists });
    const points = Object.values(r.charts).reduce((n, c) => n + c.series.reduce((m, s) => m + s.data.length, 0), 0);
    check(!d && fromRollups.length > 0 && Object.values(u.sources).every((s) => s === 'rows'), `${label}: the rollups give the unit rows' numbers`, d || `${r.grain}; ${fromRollups.length} panels from rollups (${fromRollups.join(' ')}), ${points} chart points, KPIs ${r.kpis.map((k) => k.t).join(' · ')}`);
    // Every rollup panel read the rollups the exporter stored in the files
    // (src/dashboard/rollups.rs) where it stored them (not per unit at the
    // day grain: the rows again), none was aggregated from the rows here.
    const storable = fromRollups.filter((k) => r.stored.includes(Number(r.sources[k].split(' ')[1])));
    const stored = fromRollups.filter((k) => r.sources[k].endsWith('(stored)'));
    check(storable.length > 0 && stored.length === storable.length, `${label}: the rollups are the ones stored in the files`, `${stored.length} of ${storable.length} (${fromRollups.length} from rollups; stored for ${r.grain}: ${r.stored.join(', ')}): ${JSON.stringify(r.sources)}`);
    return r;
  };
  // The fixture's ranges are small: rollups for every range, however few rows.
  const minRows = await page.evaluate(() => window.__dashboard.rollupMinRows);
  await waitAfter(page, () => page.evaluate(() => {
    window.__dashboard.rollupMinRows = 0;
    window.__dashboard.setRollups(true);
  }));
  const region = await page.$eval('#filter-region', (e) => e.options[2]?.value || e.options[1].value);
  await both('default view', async () => {});
  await both(`region ${region}`, () => waitAfter(page, () => page.selectOption('#filter-region', region)));
  // A fuel the region has (the list is narrowed by the region).
  const fuel = await page.$eval('#filter-fuel', (e) => e.options[1].value);
  const drill = await both(`region ${region} + fuel ${fuel} (drill-down by unit: rows)`, () => waitAfter(page, () => page.selectOption('#filter-fuel', fuel)));
  check(drill.sources[0] === 'rows' && drill.sources[1]?.startsWith('rollup'), 'a view by unit and time reads the rows, the others still the rollups', JSON.stringify(drill.sources));
  await waitAfter(page, () => page.selectOption('#filter-fuel', ''));
  await waitAfter(page, () => page.selectOption('#filter-region', ''));
  await both('30 days (hour grain)', () => waitAfter(page, () => page.click('.presets button[data-days="30"]')));
  await both('365 days (day grain)', () => waitAfter(page, () => page.click('.presets button[data-days="365"]')));
  // A range that covers one daily file in part: the per-unit rollup stored
  // per period serves the files it covers whole, the rows the other one.
  const daily = await page.evaluate(() => JSON.parse(document.getElementById('page-config').textContent).config.grains.find((g) => g.grain === 'day').dataset);
  const dailyFiles = (await page.evaluate(() => fetch('manifest.json').then((r) => r.json()))).files.filter((f) => f.dataset === daily).sort((a, b) => (a.min_date < b.min_date ? -1 : 1));
  if (dailyFiles.length >= 2) {
    const part = dailyFiles[dailyFiles.length - 2];
    const from = addDays(part.min_date, 10);
    const to = dailyFiles[dailyFiles.length - 1].max_date;
    const r = await both(`${from} – ${to} (day grain, ${part.path} in part)`, () => setRange(page, from, to));
    const rowsRead = await page.evaluate(() => window.__dashboard.periodRows);
    check(r.grain === 'day' && r.sources.lists === 'rollup 0 (stored)' && JSON.stringify(rowsRead) === JSON.stringify([part.path]), `a range covering ${part.path} in part reads its rows with the other files' stored per-unit rollup`, `${r.grain}; lists: ${r.sources.lists}; rows read for the per-unit rollup: ${JSON.stringify(rowsRead)}`);
  }
  await waitAfter(page, () => page.click(`.presets button[data-days="7"]`));
  await waitAfter(page, () => page.evaluate((n) => {
    window.__dashboard.rollupMinRows = n;
    window.__dashboard.setRollups(true);
  }, minRows));
}
