// The volunteer page (/worker): opening it is consent to contribute. The
// pool of workers is already running (pool.js, inlined at the top of the
// page, started it while the page was parsed); this module shows what it
// does and drives its controls.

const { pool } = window.tabreduce;

// totals sums the groups' counters; the state is the worst of theirs.
function totals() {
  const t = { state: 'starting', tasksDone: 0, tasksFailed: 0, bytes: 0, cpuMs: 0, reconnects: 0, running: [], workerIds: [], lastError: '', slots: pool.slots, modules: [], marks: [], jobTimes: {} };
  const rank = ['connected', 'paused', 'connecting', 'reconnecting', 'starting'];
  let worst = 0;
  for (const g of pool.groups) {
    const s = g.stats;
    if (!s) { worst = Math.max(worst, rank.indexOf('starting')); continue; }
    t.tasksDone += s.tasksDone; t.tasksFailed += s.tasksFailed; t.bytes += s.bytes; t.cpuMs += s.cpuMs;
    t.reconnects += s.reconnects; t.running.push(...s.running);
    t.modules.push(...s.modules); t.marks.push(s.marks);
    for (const [job, jt] of Object.entries(s.jobTimes || {})) {
      const sum = t.jobTimes[job] || (t.jobTimes[job] = { n: 0, ms: 0 });
      sum.n += jt.n; sum.ms += jt.ms;
    }
    if (s.workerId) t.workerIds.push(s.workerId);
    if (s.lastError) t.lastError = s.lastError;
    worst = Math.max(worst, rank.indexOf(s.state));
  }
  t.state = rank[worst];
  return t;
}

const $ = id => document.getElementById(id);
// Stats arrive at most four times a second per connection worker: draw
// each at once (requestAnimationFrame would stop in a hidden tab).
// (Until the page's helpers and the DOM are there, only the totals are
// kept: draw runs once they are.)
let ready = false;
const render = () => { if (ready) draw(); else window.tabreduce.last = totals(); };

function draw() {
  const t = totals();
  $('state').textContent = t.state;
  $('state').className = `pill ${t.state}`;
  $('done').textContent = t.tasksDone;
  $('bytes').textContent = fmtBytes(t.bytes);
  $('cpu').textContent = (t.cpuMs / 1000).toFixed(1);
  $('failed').textContent = t.tasksFailed;
  $('slots').textContent = pool.slots;
  $('wid').textContent = t.workerIds.join(', ') || '–';
  $('reconnects').textContent = t.reconnects;
  $('lastError').textContent = t.lastError ? `last error: ${t.lastError}` : '';
  $('pause').textContent = pool.paused ? 'Resume' : 'Pause';
  const tb = $('running');
  tb.replaceChildren();
  if (t.running.length === 0) {
    const tr = tb.insertRow(), td = tr.insertCell();
    td.colSpan = 6; td.className = 'muted'; td.textContent = pool.paused ? 'paused' : 'idle';
  }
  jobTimes = t.jobTimes;
  for (const r of t.running) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = r.job;
    tr.insertCell().textContent = r.phase;
    tr.insertCell().textContent = `#${r.id}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`;
    const mod = tr.insertCell();
    const a = document.createElement('a');
    a.href = `/modules/${r.module}.wasm`; a.className = 'hash'; a.textContent = r.module;
    mod.append(a);
    const inp = tr.insertCell(); inp.className = 'num'; inp.textContent = fmtBytes(r.bytes);
    tr.insertCell().append(progressCell(r));
  }
  window.tabreduce.last = t;
}

// A running task's progress is what its module reports of its input
// consumed (wasm/ABI.md, tabreduce.progress) and the steps after the call
// (combining from 50 %, sorting at 90 %). Where nothing is reported yet
// (a module without the import), it is estimated ("~") from how long this
// tab's earlier tasks of the same job took (jobTimes, kept by the
// connection workers).
let jobTimes = {};

function progressCell(r) {
  const stage = r.percent >= 90 ? 'sorting' : r.combine && r.percent >= 50 ? 'combining' : r.phase === 'map' ? 'mapping' : 'reducing';
  const reported = r.percent > 0;
  const d = jobTimes[r.job];
  const est = reported || !d ? null : Math.min(95, Math.round(100 * r.ms / (d.ms / d.n)));
  const pct = reported ? r.percent : est || 0;
  const box = document.createElement('div');
  box.className = 'progress';
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.title = reported ? 'as the module reported' : est === null ? 'no estimate yet: this tab has not finished a task of this job' : `estimated from ${d.n} earlier task(s) of this job on this tab`;
  const fill = document.createElement('i');
  fill.style.width = `${pct}%`;
  bar.append(fill);
  const text = document.createElement('span');
  text.textContent = `${stage}${reported ? ` · ${pct} %` : est === null ? '' : ` · ~${pct} %`} · ${(r.ms / 1000).toFixed(1)} s`;
  box.append(bar, text);
  box.dataset.percent = String(pct);
  if (reported) box.dataset.reported = String(pct);
  return box;
}

// The page's own needs (its formatting helpers, the DOM) come after the
// pool, which is running already.
window.tabreduce.totals = totals;
pool.onstats = render;
render();
const { fmtBytes } = await import('./format.js');
if (document.readyState === 'loading') await new Promise(r => document.addEventListener('DOMContentLoaded', r));
ready = true;

// The page's controls.
$('slotsIn').value = pool.slots;
$('cap').value = Math.round(pool.cap * 100);
$('capOut').textContent = `${Math.round(pool.cap * 100)} %`;
$('apply').onclick = () => {
  const n = pool.clampSlots(parseInt($('slotsIn').value, 10) || pool.slots);
  if (n === pool.slots) return;
  pool.slots = n;
  pool.stop();
  pool.start();
  render();
};
$('cap').oninput = () => {
  pool.cap = $('cap').value / 100;
  $('capOut').textContent = `${$('cap').value} %`;
  pool.broadcast({ type: 'cap', value: pool.cap });
};
$('pause').onclick = () => {
  pool.paused = !pool.paused;
  pool.broadcast({ type: pool.paused ? 'pause' : 'resume' });
  render();
};

function showVisibility() {
  $('visibility').textContent = document.hidden
    ? 'tab hidden: still computing (the connection and its heartbeats live in a Web Worker, which Chrome does not throttle)'
    : 'tab visible';
}
document.addEventListener('visibilitychange', showVisibility);
showVisibility();

// A tab that holds a Web Lock is not frozen by Chrome when it is in the
// background, so tasks keep running there.
if (navigator.locks) navigator.locks.request(`tabreduce-worker-${Math.random()}`, () => new Promise(() => {}));

render();
