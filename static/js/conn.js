// The connection Web Worker: it owns the tab's WebSocket to /api/v1/ws/worker,
// speaks the worker protocol (docs/PROTOCOL.md) and hands tasks to the
// compute workers (task.js) over MessagePorts, so that task traffic never
// crosses the page's main thread.
//
// Why a Web Worker and not the page: Chrome throttles a hidden page's timers
// (to once a minute after five minutes hidden) but not a dedicated worker's,
// so heartbeats keep going from a background tab and the server does not
// drop the session (it drops one silent for three intervals).
//
// One socket per tab, not one per compute worker: the server then sees one
// browser worker with the tab's real slots, and the per-socket cost (a
// session, a heartbeat, credit bookkeeping) is paid once. docs/BENCHMARKS.md
// ("Browser worker") has the measurement behind this choice; ?sockets=slot
// on /worker runs one connection worker per slot to repeat it.

import * as proto from './proto.js';
import { loadModule, expectModule, offerModule, ModuleError, fetched } from './modules.js';

const DEFAULT_HEARTBEAT = 5000;
const DEFAULT_TASK_TIMEOUT = 120000; // the native runner's call deadline
const WELCOME_WAIT = 10000;
const BACKOFF_MIN = 100, BACKOFF_MAX = 10000;

let cfg = null; // {url, base, slots, name, userAgent, cap, paused}
const slots = []; // {port, alive, task, readyAt}
let queue = []; // tasks received, not started
const running = new Map(); // task id → {task, slot, start, timer, percent, gen}
let ws = null, welcome = null, gen = 0, backoff = BACKOFF_MIN;
let heartbeatTimer = null, welcomeTimer = null, reconnectTimer = null, pumpTimer = null;
const stats = {
  state: 'starting', workerId: '', tasksDone: 0, tasksFailed: 0, bytes: 0, cpuMs: 0, jobTimes: {},
  lastError: '', reconnects: 0, sessions: 0,
  // When things first happened (ms since the epoch, on
  // performance.timeOrigin's clock, which the page shares): this worker's
  // scripts run (conn), a compute worker attached (slot), the page's
  // compiled module arrived (offered), the socket open, WELCOME, the first
  // TASKS, its module ready (module), the first result sent; and the
  // compute worker's first marks (task.js), which come with its first
  // result. Benchmarks read them.
  marks: {},
};

function mark(name) {
  if (!(name in stats.marks)) stats.marks[name] = performance.timeOrigin + performance.now();
}
let statsDirty = true;
mark('conn'); // this worker's scripts are loaded and run

self.onmessage = e => {
  const m = e.data;
  switch (m.type) {
    case 'init':
      cfg = m;
      for (const sha of cfg.named || []) expectModule(cfg.base, sha);
      for (let i = 0; i < cfg.slots; i++) slots.push({ port: null, alive: false, task: null, readyAt: 0 });
      setInterval(reportStats, 250);
      if (cfg.paused) { disconnect('paused'); setState('paused'); }
      else if (!ws) connect();
      else if (helloDue === ws) sayHello(ws); // the early socket opened before init came
      break;
    case 'slot': attachSlot(m.index, m.port); break;
    case 'module':
      mark('offered');
      offerModule(m); // the page also hands it to the compute workers (pool.js)
      break;
    case 'cap': cfg.cap = Math.min(1, Math.max(0.05, m.value)); break;
    case 'pause': cfg.paused = true; disconnect('paused'); setState('paused'); break;
    case 'resume': if (cfg.paused) { cfg.paused = false; backoff = BACKOFF_MIN; connect(); } break;
  }
};

function setState(s) { stats.state = s; statsDirty = true; }

// noteJobTime keeps how long this tab's tasks of each recent job took, so
// that the page can estimate a running task's progress where its module
// reports none while it maps or reduces.
const MAX_JOB_TIMES = 16;
function noteJobTime(job, ms) {
  const jt = stats.jobTimes[job] || (stats.jobTimes[job] = { n: 0, ms: 0 });
  jt.n++; jt.ms += ms;
  const jobs = Object.keys(stats.jobTimes);
  if (jobs.length > MAX_JOB_TIMES) delete stats.jobTimes[jobs[0]];
}

function reportStats() {
  if (!statsDirty && running.size === 0) return;
  statsDirty = false;
  const now = performance.now();
  self.postMessage({
    type: 'stats', ...stats, queued: queue.length, slots: cfg.slots, modules: fetched,
    alive: slots.filter(s => s.alive).length,
    running: [...running.values()].map(r => ({
      id: r.task.id.toString(), job: r.task.job, module: r.task.module, attempt: r.task.attempt,
      phase: r.task.phase === proto.Phase.MAP ? 'map' : 'reduce', percent: r.percent, combine: (r.task.flags & 1) !== 0,
      ms: Math.round(now - r.start), bytes: r.task.input.length,
    })),
  });
}

// Connection.

// The socket's URL: init's, or, for the early socket opened before init
// comes, the one beside this script (the page's origin).
function socketURL() {
  if (cfg) return cfg.url;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws/worker`;
}

let helloDue = null; // the socket that opened before init came: HELLO waits for init's slots

function sayHello(sock) {
  helloDue = null;
  const c = cfg || early;
  sock.send(proto.hello(c.slots, c.userAgent, c.name));
  welcomeTimer = setTimeout(() => sock.close(4000, 'no welcome'), WELCOME_WAIT);
}

function connect() {
  clearTimeout(reconnectTimer);
  setState(stats.sessions > 0 ? 'reconnecting' : 'connecting');
  const sock = new WebSocket(socketURL());
  ws = sock;
  sock.binaryType = 'arraybuffer';
  sock.onopen = () => {
    mark('open');
    if (cfg || early) sayHello(sock);
    else helloDue = sock;
  };
  sock.onmessage = ev => {
    if (sock !== ws) return;
    if (typeof ev.data === 'string') { sock.close(1003, 'text frame'); return; }
    let f;
    try {
      f = proto.decode(ev.data);
    } catch (err) {
      stats.lastError = `bad frame from the server: ${err.message}`;
      sock.close(1002, 'bad frame');
      return;
    }
    handle(f);
  };
  sock.onclose = ev => {
    if (sock !== ws) return;
    endSession();
    if (ev.reason) stats.lastError = `connection closed: ${ev.code} ${ev.reason}`;
    if (cfg && cfg.paused) return;
    // Exponential backoff, each wait drawn from the upper half (as the
    // native worker does).
    const wait = backoff / 2 + Math.random() * backoff / 2;
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    stats.reconnects++;
    setState('reconnecting');
    reconnectTimer = setTimeout(connect, wait);
  };
}

// endSession forgets the session's tasks: the server reassigns them.
// Running tasks finish in their compute worker; their answers are dropped.
function endSession() {
  clearTimeout(welcomeTimer); clearInterval(heartbeatTimer);
  helloDue = null;
  welcome = null; gen++; queue = [];
  for (const r of running.values()) clearTimeout(r.timer);
  running.clear();
  ws = null;
  statsDirty = true;
}

function disconnect(reason) {
  const sock = ws;
  if (!sock) return;
  endSession();
  sock.close(1000, reason);
}

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
}

// handle routes one frame from the server.
function handle(f) {
  switch (f.type) {
    case proto.T.WELCOME:
      clearTimeout(welcomeTimer);
      mark('welcome');
      welcome = f;
      backoff = BACKOFF_MIN;
      stats.workerId = f.workerId; stats.sessions++; stats.lastError = '';
      setState('connected');
      heartbeatTimer = setInterval(heartbeat, f.heartbeatMs || DEFAULT_HEARTBEAT);
      break;
    case proto.T.TASKS:
      if (!welcome) { ws.close(1002, 'tasks before welcome'); return; }
      mark('tasks');
      for (const t of f.tasks) accept(t);
      pump();
      break;
    case proto.T.CANCEL:
      for (const id of f.ids) cancel(id);
      pump();
      break;
    case proto.T.ERROR:
      stats.lastError = `server: ${f.code}: ${f.message}`;
      statsDirty = true;
      break;
  }
}

function heartbeat() {
  const free = slots.filter(s => s.alive && !s.task).length;
  const prog = [...running.values()].map(r => ({ id: r.task.id, percent: r.percent }));
  send(proto.heartbeat(free, prog));
}

// accept queues a task, or refuses one beyond what WELCOME's prefetch
// allows (the server is at fault then).
function accept(t) {
  const limit = (cfg || early).slots * Math.max(1, welcome.prefetch); // TASKS may come before init
  if (queue.length + running.size >= limit) {
    fail(t.id, proto.Failure.INTERNAL, `more tasks than slots × prefetch (${limit})`);
    return;
  }
  queue.push(t);
}

function cancel(id) {
  queue = queue.filter(t => t.id !== id);
  const r = running.get(id);
  if (r) {
    // Stop the work at once: the compute worker is replaced.
    running.delete(id);
    clearTimeout(r.timer);
    restartSlot(r.slot);
  }
}

function fail(id, kind, message) {
  stats.tasksFailed++; stats.lastError = message; statsDirty = true;
  send(proto.failures([{ id, kind, message }]));
}

// Slots.

function attachSlot(i, port) {
  const s = slots[i];
  s.port = port; s.alive = true; s.task = null; s.readyAt = 0;
  mark('slot');
  port.onmessage = ev => answer(i, ev.data);
  statsDirty = true;
  pump();
}

// restartSlot asks the page to terminate slot i's compute worker and start
// a fresh one; it comes back through attachSlot.
function restartSlot(i) {
  const s = slots[i];
  if (s.port) s.port.close();
  s.port = null; s.alive = false; s.task = null;
  self.postMessage({ type: 'restart', index: i });
}

// pump starts queued tasks on free slots, honouring the CPU cap.
function pump() {
  clearTimeout(pumpTimer);
  const now = performance.now();
  let wake = Infinity;
  for (let i = 0; i < slots.length && queue.length > 0; i++) {
    const s = slots[i];
    if (!s.alive || s.task) continue;
    if (s.readyAt > now) { wake = Math.min(wake, s.readyAt); continue; }
    start(i, queue.shift());
  }
  if (wake < Infinity && queue.length > 0) pumpTimer = setTimeout(pump, wake - now);
}

async function start(i, t) {
  const s = slots[i], g = gen;
  const r = { task: t, slot: i, start: performance.now(), timer: null, percent: 0, gen: g };
  s.task = t;
  running.set(t.id, r);
  statsDirty = true;
  let module;
  try {
    module = await loadModule(cfg.base, t.module);
  } catch (err) {
    if (running.get(t.id) === r) {
      running.delete(t.id);
      fail(t.id, err instanceof ModuleError ? proto.Failure.MODULE : proto.Failure.INTERNAL, err.message);
    }
    if (s.task === t) s.task = null;
    pump();
    return;
  }
  if (running.get(t.id) !== r || s.task !== t) { // cancelled, or the session ended
    if (s.task === t) s.task = null;
    pump();
    return;
  }
  mark('module');
  const limit = t.timeoutMs || DEFAULT_TASK_TIMEOUT;
  r.start = performance.now();
  r.timer = setTimeout(() => timeout(r), limit);
  s.port.postMessage({ type: 'task', task: t, module, maxResult: welcome ? welcome.maxResultBytes : 0 });
}

// timeout fails a task that ran past its limit and replaces the compute
// worker running it: a runaway module cannot be stopped any other way.
function timeout(r) {
  if (running.get(r.task.id) !== r) return;
  running.delete(r.task.id);
  stats.cpuMs += performance.now() - r.start;
  fail(r.task.id, proto.Failure.TIMEOUT, `task ran past its ${r.task.timeoutMs || DEFAULT_TASK_TIMEOUT} ms limit in the browser; its Web Worker was terminated`);
  restartSlot(r.slot);
  pump();
}

// answer takes a compute worker's message about its task.
function answer(i, m) {
  const s = slots[i];
  const r = running.get(typeof m.id === 'bigint' ? m.id : BigInt(m.id));
  if (m.type === 'progress') {
    if (r && r.slot === i) r.percent = m.percent;
    return;
  }
  if (m.marks) for (const k in m.marks) if (!(k in stats.marks)) stats.marks[k] = m.marks[k]; // the compute worker's
  if (s.task && s.task.id === m.id) s.task = null;
  const elapsed = m.elapsedUs / 1000;
  stats.cpuMs += elapsed;
  // The CPU cap: rest elapsed × (1 − cap) / cap before the next task.
  s.readyAt = performance.now() + elapsed * (1 - cfg.cap) / cfg.cap;
  if (r && r.slot === i && r.gen === gen) {
    running.delete(m.id);
    clearTimeout(r.timer);
    if (m.type === 'done') {
      send(proto.results([{ id: m.id, elapsedUs: m.elapsedUs, counters: m.counters, partitions: m.partitions }]));
      mark('result');
      stats.tasksDone++;
      stats.bytes += r.task.input.length;
      noteJobTime(r.task.job, elapsed);
    } else {
      fail(m.id, m.kind, m.message);
    }
    statsDirty = true;
  }
  pump();
}

// The page starts this worker with what its socket's HELLO needs in the
// script's URL (?connect&slots=N&name=…, when it is not paused) and the
// modules it is compiling for the waiting work (&named=sha,sha): the
// socket opens, says HELLO and takes its first TASKS as soon as this
// script has run, without waiting for init's message, which reaches a
// fresh worker only once the page's busy main thread has passed it on
// (10–100 ms later, measured; the page's 'slot' ports and compiled
// modules come the same way, and a task waits for them in the queue).
const early = (() => {
  const q = new URLSearchParams(location.search);
  for (const sha of (q.get('named') || '').split(',')) if (/^[0-9a-f]{64}$/.test(sha)) expectModule(location.origin, sha);
  if (!q.has('connect')) return null;
  return { slots: Math.max(1, parseInt(q.get('slots'), 10) || 1), name: q.get('name') || '', userAgent: navigator.userAgent };
})();
if (early) connect();
