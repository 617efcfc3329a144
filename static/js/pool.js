// The volunteer page's pool of workers, started while the page is still
// being parsed: the server inlines this classic script, with the one
// module it imports (modules.js) bundled in, at the top of /worker's head
// (static.Page), so a fresh tab's connection and compute
// workers begin to load at once rather than after a script fetch and the
// page's parsing. A fresh tab's time to its first result is mostly these
// workers' scripts loading. worker-page.js (the page's display and
// controls) takes the pool over from window.tabreduce.pool.
//
// It starts a connection worker (conn.js, the tab's one WebSocket) and a
// pool of compute workers (task.js), and wires them together with
// MessagePorts. ?slots=N sets the pool size (default hardwareConcurrency −
// 1, at least 1); ?cap=P the CPU cap in percent; ?paused starts paused;
// ?sockets=slot gives every compute worker its own connection (for the
// socket benchmark).
import { capMemory, MAX_PAGES, sha256Hex } from './modules.js'; // bundled in by the server (static.Page)

(() => {
  'use strict';
  const params = new URLSearchParams(location.search);
  const hw = navigator.hardwareConcurrency || 2;
  const clampSlots = n => Math.min(64, Math.max(1, n | 0));
  const wsURL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws/worker`;
  const base = '/static/js/';
  const pool = {
    slots: clampSlots(parseInt(params.get('slots'), 10) || Math.max(1, hw - 1)),
    cap: Math.min(100, Math.max(10, parseInt(params.get('cap'), 10) || 100)) / 100,
    paused: params.has('paused'),
    perSlot: params.get('sockets') === 'slot',
    groups: [], // {conn: Worker, tasks: Worker[], stats}
    onstats: null, // set by worker-page.js: called on every stats message
    clampSlots,
  };

  function spawnTask(g, i) {
    if (g.tasks[i]) g.tasks[i].terminate();
    const w = new Worker(base + 'task.js', { type: 'module' });
    const ch = new MessageChannel();
    w.postMessage({ type: 'port', port: ch.port1 }, [ch.port1]);
    g.conn.postMessage({ type: 'slot', index: i, port: ch.port2 }, [ch.port2]);
    g.tasks[i] = w;
    for (const o of offers) warm(w, o);
  }

  // warm hands a compute worker a module the page compiled, which it
  // instantiates at once (task.js): the Go runtime's start, and V8's
  // compile of every function it calls, are then done before the task
  // comes. It goes from here, not through the connection worker: a
  // message to a worker that has just started reaches it only once this
  // thread has seen the worker's script run, and a hop through another
  // worker only adds that worker's wait.
  function warm(w, o) { if (o.module) w.postMessage({ type: 'warm', sha: o.sha, module: o.module }); }

  pool.start = () => {
    const sizes = pool.perSlot ? Array(pool.slots).fill(1) : [pool.slots];
    pool.groups = sizes.map((k, n) => {
      // ?connect: the connection worker opens its socket as soon as it
      // runs, before init's message reaches it (conn.js).
      const q = new URLSearchParams({ slots: k, name: params.get('name') || (pool.perSlot ? `tab slot ${n}` : ''), named: pool.named.join(',') });
      if (!pool.paused) q.set('connect', '');
      const g = { conn: new Worker(base + 'conn.js?' + q, { type: 'module' }), tasks: [], stats: null };
      g.conn.onmessage = e => {
        const m = e.data;
        if (m.type === 'stats') { g.stats = m; if (pool.onstats) pool.onstats(); }
        if (m.type === 'restart') spawnTask(g, m.index);
      };
      g.conn.postMessage({
        type: 'init', url: wsURL, base: location.origin, slots: k, cap: pool.cap, paused: pool.paused,
        userAgent: navigator.userAgent, name: params.get('name') || (pool.perSlot ? `tab slot ${n}` : ''),
        named: pool.named,
      });
      for (let i = 0; i < k; i++) spawnTask(g, i);
      return g;
    });
  };

  pool.stop = () => {
    for (const g of pool.groups) {
      g.tasks.forEach(w => w.terminate());
      g.conn.terminate(); // closes its WebSocket; the server re-issues its tasks
    }
    pool.groups = [];
  };

  pool.broadcast = m => { for (const g of pool.groups) g.conn.postMessage(m); };

  // The modules the server names in preload links (those the waiting work
  // needs: the links come before this script) are compiled here, while
  // the workers' scripts load, then checked against their names and
  // handed to the connection workers, which would otherwise fetch and
  // compile them only once their first task arrives. Each named module is
  // offered exactly once, compiled or as null (then the connection worker
  // fetches it itself). Without WebCrypto (no secure context) nothing is
  // named and the workers fetch as usual.
  const named = self.crypto && crypto.subtle
    ? [...document.querySelectorAll('link[rel="preload"][data-module]')].map(l => ({ sha: l.dataset.module, url: l.href }))
    : [];
  pool.named = named.map(n => n.sha);
  const offers = []; // what was offered, for connection workers started later

  async function compileNamed({ sha, url }) {
    const start = performance.now();
    let offer = { type: 'module', sha, module: null };
    try {
      const r = await fetch(url);
      if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
      // One branch of the body streams into the compiler (its memory
      // capped as it passes), the other is hashed once whole: the compile
      // overlaps the download and the hash, and a module whose bytes do
      // not hash to its name is never offered.
      const [toCompile, toHash] = r.body.tee();
      const compiling = WebAssembly.compileStreaming(
        new Response(toCompile.pipeThrough(capMemory(MAX_PAGES)), { headers: { 'Content-Type': 'application/wasm' } }));
      compiling.catch(() => {}); // awaited below, after the hash
      if (await sha256Hex(await new Response(toHash).arrayBuffer()) !== sha) throw new Error('hash mismatch');
      const module = await compiling;
      const e = performance.getEntriesByName(url).reduce((a, b) => (!a || b.transferSize > a.transferSize ? b : a), null);
      offer = {
        type: 'module', sha, module, transferSize: e ? e.transferSize : -1, encodedBodySize: e ? e.encodedBodySize : -1,
        decodedBodySize: e ? e.decodedBodySize : -1, fetchMs: e ? e.responseEnd - e.startTime : -1,
        readyMs: performance.now() - start,
      };
    } catch {
      // offered as null: the connection worker fetches and reports it
    }
    offers.push(offer);
    pool.broadcast(offer);
    for (const g of pool.groups) g.tasks.forEach(w => warm(w, offer));
  }

  const start = pool.start;
  pool.start = () => {
    start();
    for (const g of pool.groups) offers.forEach(o => g.conn.postMessage(o));
  };

  window.tabreduce = { pool, last: null, started: performance.timeOrigin + performance.now() };
  pool.start();
  named.forEach(compileNamed);
})();
