// Shared by the dashboard's browser test and benchmark: a static file server
// on loopback (with ETags and a request log) and Debian's Chromium driven by
// playwright-core.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.duckdb': 'application/octet-stream',
  '.svg': 'image/svg+xml',
};

/** Serves `root` on 127.0.0.1 (any free port), like GitHub Pages: ETag +
 * Last-Modified, 304 on a match, 404 for missing files. `log` gets one entry
 * per request: {path, status}. */
// With `gzip`, text files (html, js, css, json) are sent gzip-compressed to a
// client that accepts it, as GitHub Pages does; `log` entries then carry the
// bytes sent.
const GZIP_TYPES = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg']);
export async function serve(root, { isolated = false, gzip = false } = {}) {
  const log = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(root, path.normalize(rel).replace(/^(\.\.[/\\])+/, ''));
    let stat;
    try {
      stat = fs.statSync(file);
    } catch {
      stat = null;
    }
    if (!stat || !stat.isFile()) {
      log.push({ path: rel, status: 404 });
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    const etag = '"' + crypto.createHash('sha1').update(`${stat.size}-${stat.mtimeMs}`).digest('hex').slice(0, 16) + '"';
    const headers = {
      'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
      etag,
      'last-modified': stat.mtime.toUTCString(),
      'cache-control': 'max-age=600',
      // Cross-origin isolation (as a host that sets these headers would):
      // lets the page use DuckDB-WASM's multi-threaded build.
      ...(isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}),
    };
    if (req.headers['if-none-match'] === etag) {
      log.push({ path: rel, status: 304 });
      res.writeHead(304, headers);
      res.end();
      return;
    }
    if (gzip && GZIP_TYPES.has(path.extname(file)) && /\bgzip\b/.test(req.headers['accept-encoding'] || '')) {
      const body = zlib.gzipSync(fs.readFileSync(file));
      log.push({ path: rel, status: 200, bytes: body.length, at: Date.now() });
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', vary: 'accept-encoding', 'content-length': body.length });
      res.end(body);
      return;
    }
    log.push({ path: rel, status: 200, bytes: stat.size, at: Date.now() });
    res.writeHead(200, { ...headers, 'content-length': stat.size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, log, close: () => new Promise((r) => server.close(r)) };
}

/** A fresh Chromium profile (its own Cache API storage) with the flags this
 * machine's closed network needs. */
export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close, userDataDir };
}

/** Waits until the page finished `after` refreshes (or the first one). */
export async function waitReady(page, after = 0, timeout = 120000) {
  await page.waitForFunction(
    (n) => window.__dashboard && ((window.__dashboard.ready && window.__dashboard.renders > n) || window.__dashboard.failed),
    after,
    { timeout },
  );
  const failed = await page.evaluate(() => window.__dashboard.failed && document.getElementById('messages').innerText);
  if (failed) throw new Error('the dashboard failed: ' + failed);
}

export async function renders(page) {
  return page.evaluate(() => window.__dashboard.renders);
}

/** Sets the date range through the inputs and waits for the page to redraw;
 * returns the page's own timing of that refresh (ms). */
export async function setRange(page, from, to) {
  const n = await renders(page);
  await page.evaluate(
    ([f, t]) => {
      document.getElementById('date-from').value = f;
      const to = document.getElementById('date-to');
      to.value = t;
      to.dispatchEvent(new Event('change'));
    },
    [from, to],
  );
  await waitReady(page, n);
  return page.evaluate(() => window.__dashboard.lastRefreshMs);
}

export function addDays(iso, days) {
  const d = new Date(iso + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
