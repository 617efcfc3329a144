// The dashboard (/dashboard): a view of the cluster pushed by the server
// over /api/v1/ws/dashboard (a JSON snapshot every 400 ms), a throughput chart
// (uPlot, vendored), and job submission, cancel and output download through
// the job API; the queues and their drill-down are in dash-queues.js. The
// token, when the server has one, is kept in localStorage and sent as the
// socket's first message and as a bearer header on API calls.

import { fmtBytes, fmtRate, fmtDuration, ago, taskLabel } from './format.js';
import { $, el, getToken, setToken, authHeaders, apiError } from './api.js';
import { renderQueues } from './dash-queues.js';

let ws = null, backoff = 500, last = null;

// Rate differences a counter over a sliding window of samples.
class Rate {
  constructor(windowMs = 3000) { this.w = windowMs; this.s = []; }
  add(t, v) {
    this.s.push([t, v]);
    while (this.s.length > 2 && t - this.s[1][0] >= this.w) this.s.shift();
    return this;
  }
  perSecond() {
    if (this.s.length < 2) return 0;
    const [t0, v0] = this.s[0], [t1, v1] = this.s[this.s.length - 1];
    return t1 > t0 ? Math.max(0, (v1 - v0) * 1000 / (t1 - t0)) : 0;
  }
}
const rates = new Map();
const rate = (key, t, v) => {
  let r = rates.get(key);
  if (!r) rates.set(key, r = new Rate());
  return r.add(t, v).perSecond();
};

// The chart: tasks/s and MB/s over the last five minutes. The x scale is
// always the five minutes up to the latest sample, from the first draw on.
const HISTORY_S = 5 * 60;
const series = [[], [], []];
let chart = null, latest = Date.now() / 1000;

function makeChart() {
  const box = $('chart');
  const opts = {
    width: Math.max(280, box.clientWidth), height: 220,
    legend: { live: false }, // the series' names; the summary line has the figures
    scales: {
      x: { time: true, range: () => [latest - HISTORY_S, latest] },
      mb: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] },
      tasks: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] },
    },
    series: [
      {},
      { label: 'tasks/s', scale: 'tasks', stroke: '#0b5cad', width: 2, points: { show: false }, value: (u, v) => v == null ? '–' : v.toFixed(1) },
      { label: 'MB/s', scale: 'mb', stroke: '#1a7f37', width: 2, points: { show: false }, value: (u, v) => v == null ? '–' : v.toFixed(2) },
    ],
    axes: [{}, { scale: 'tasks', label: 'tasks/s' }, { scale: 'mb', side: 1, label: 'MB/s', grid: { show: false } }],
  };
  chart = new uPlot(opts, series, box);
  new ResizeObserver(() => chart.setSize({ width: Math.max(280, box.clientWidth), height: 220 })).observe(box);
}

function plot(s, t) {
  const tasks = rate('total.tasks', t, s.totals.tasks_done);
  const mb = rate('total.bytes', t, s.totals.bytes_done) / 1e6;
  latest = t / 1000;
  series[0].push(latest); series[1].push(tasks); series[2].push(mb);
  while (series[0].length > 2 && latest - series[0][0] > HISTORY_S) series.forEach(a => a.shift());
  if (chart) chart.setData(series);
  return { tasks, mb };
}

// Live connection.

function connect() {
  const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws/dashboard`);
  ws = sock;
  sock.onopen = () => { sock.send(JSON.stringify({ token: getToken() })); backoff = 500; };
  sock.onmessage = e => {
    setLive('live', 'connected');
    update(JSON.parse(e.data));
  };
  sock.onclose = e => {
    if (sock !== ws) return;
    setLive(e.code === 1008 ? 'unauthorized: set the token' : 'reconnecting', e.code === 1008 ? 'error' : 'reconnecting');
    if (e.code === 1008) $('tokenBox').open = true;
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

function setLive(text, cls) { $('live').textContent = text; $('live').className = `pill ${cls}`; }

function update(s) {
  const t = new Date(s.time).getTime();
  last = s;
  const tp = plot(s, t);
  const busy = s.workers.reduce((n, w) => n + w.running.length, 0);
  const slots = s.workers.reduce((n, w) => n + w.slots, 0);
  $('summary').textContent = `${s.workers.length} workers · ${busy} tasks on ${slots} slots · ${fmtRate(tp.tasks, 'tasks/s')} · ${fmtRate(tp.mb, 'MB/s')}`;
  renderJobs(s.jobs, t);
  renderWorkers(s.workers, t, new Map(s.jobs.map(j => [j.id, j])));
  renderQueues(s.queues, rate, t);
  document.body.dataset.updated = String(t);
}

// bar draws a phase's progress: done, and running shaded lighter.
function bar(phase, pc) {
  const total = pc.total || 0, done = pc.done || 0, running = pc.running || 0;
  const pct = total ? 100 * done / total : 0, rpct = total ? 100 * Math.min(total, done + running) / total : 0;
  const b = el('div', { className: 'bar', title: `${done} done, ${running} running, ${pc.pending || 0} pending of ${total}; ${pc.failed || 0} failed attempts` },
    el('i', { className: 'run', style: `width:${rpct}%` }), el('i', { style: `width:${pct}%` }),
    el('span', { textContent: total ? `${done}/${total}` : '–' }));
  b.dataset.phase = phase; b.dataset.done = done; b.dataset.total = total;
  return b;
}

// moduleName is what a job runs: the built-in's name, else the name its
// module was uploaded under, else the start of its sha256.
function moduleName(j) {
  return builtinNames.get(j.module_sha256) || j.module_name || j.module_sha256.slice(0, 12);
}

// jobDetail is the line under a job: its module's counters, then the
// verification spent on it, then its error.
function jobDetail(j) {
  const parts = [];
  const counters = Object.entries(j.counters || {}).sort(([a], [b]) => a < b ? -1 : 1);
  if (counters.length) {
    parts.push(el('span', { className: 'group' }, el('b', { textContent: 'counters ' }),
      el('span', { className: 'mono', textContent: counters.map(([k, n]) => `${k}=${n}`).join(' ') })));
  }
  const v = j.verification || {};
  const checks = (v.replicas || 0) + (v.probes || 0) + (v.spot_checks || 0);
  if (checks || v.mismatches || v.reruns) {
    const what = [plural(v.replicas, 'replica'), plural(v.probes, 'probe'), plural(v.spot_checks, 'spot check')].filter(Boolean).join(', ');
    const text = `${plural(checks, 'check') || '0 checks'}${what ? ` (${what})` : ''}${v.mismatches ? `, ${plural(v.mismatches, 'wrong result')}` : ''}${v.reruns ? `, ${v.reruns} re-run` : ''}`;
    parts.push(el('span', { className: `group${v.mismatches ? ' err' : ''}`, title: 'extra work spent checking the results of untrusted workers: a replica runs a task again on another worker, a probe is a task whose answer is known, a spot check is the server running the task itself' },
      el('b', { textContent: 'verification ' }), text));
  }
  if (j.backup_copies) parts.push(el('span', { className: 'group', title: 'copies of slow tasks sent to idle workers near the end of a phase' }, el('b', { textContent: 'backups ' }), String(j.backup_copies)));
  if (j.error) parts.push(el('span', { className: 'group err job-error' }, el('b', { textContent: 'error ' }), j.error));
  return parts;
}

// plural is "1 probe", "3 probes", or '' for none.
function plural(n, what) { return n ? `${n} ${what}${n === 1 ? '' : 's'}` : ''; }

function renderJobs(jobs, t) {
  const tb = $('jobs');
  tb.replaceChildren();
  if (jobs.length === 0) tb.append(el('tr', {}, el('td', { colSpan: 11, className: 'muted', textContent: 'no jobs yet' })));
  for (const j of jobs) {
    const map = j.phases.map || {}, red = j.phases.reduce || {};
    const doneTasks = (map.done || 0) + (red.done || 0), totalTasks = (map.total || 0) + (red.total || 0);
    const taskRate = rate(`job.${j.id}`, t, doneTasks);
    const mbps = map.total ? rate(`job.${j.id}.bytes`, t, j.bytes_in * (map.done || 0) / map.total) / 1e6 : 0;
    const finished = ['done', 'failed', 'cancelled'].includes(j.state);
    const eta = finished ? '' : taskRate > 0 ? fmtDuration((totalTasks - doneTasks) / taskRate) : '–';
    const submitted = new Date(j.submitted).getTime();
    const took = ((finished && j.finished ? new Date(j.finished).getTime() : t) - submitted) / 1000;
    const actions = el('td', { className: 'actions' });
    if (!finished) actions.append(el('button', { className: 'danger small', textContent: 'cancel', onclick: () => cancelJob(j.id) }));
    if (j.state === 'done') actions.append(el('button', { className: 'secondary small', textContent: 'output', onclick: () => download(j) }));
    const tr = el('tr', {},
      el('td', { className: 'mono', textContent: j.id }),
      el('td', { className: 'name', title: `sha256 ${j.module_sha256}`, textContent: moduleName(j) }),
      el('td', {}, el('span', { className: `pill ${j.state}`, textContent: j.state })),
      el('td', { textContent: ago(j.submitted, t), title: new Date(j.submitted).toLocaleString() }),
      el('td', { className: `num${finished ? '' : ' muted'}`, textContent: fmtDuration(took), title: finished ? 'from submission to the end' : 'so far' }),
      el('td', {}, bar('map', map)), el('td', {}, bar('reduce', red)),
      el('td', { className: 'num', textContent: fmtBytes(j.bytes_in) }),
      el('td', { className: 'num', textContent: finished ? '' : mbps.toFixed(2) }),
      el('td', { className: 'num', textContent: eta }),
      actions);
    tr.dataset.job = j.id;
    tr.dataset.state = j.state;
    tb.append(tr);
    const detail = jobDetail(j);
    if (detail.length) {
      const d = el('tr', { className: 'detail' }, el('td', { colSpan: 11 }, ...detail));
      d.dataset.jobDetail = j.id;
      tb.append(d);
    }
  }
}

// shortAgent names a user agent's browser and system, or keeps a native
// worker's as it is.
function shortAgent(ua) {
  const native = ua.match(/^tabreduce-worker \((.+)\)$/);
  if (native) return `tabreduce · ${native[1]}`;
  const browser = ua.match(/(HeadlessChrome|Edg|OPR|Chrome|Firefox|Version)\/(\d+)/);
  if (!browser) return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
  const name = { Edg: 'Edge', OPR: 'Opera', Version: 'Safari' }[browser[1]] || browser[1];
  const os = (ua.match(/Android|iPhone|iPad|Windows|Mac OS X|CrOS|Linux/) || [''])[0].replace('Mac OS X', 'macOS');
  return `${name} ${browser[2]}${os ? ` · ${os}` : ''}`;
}

// started holds, per task copy, when it began to run on its worker as far
// as this page can tell: a copy first seen queued on its worker starts when
// it is first seen among the running ones; any other from when it was
// sent. (A worker takes more tasks than it has slots: the time a copy
// waits there is not time spent on it.)
const started = new Map(); // copy id → {queued, at}

// running shows a worker's task copies as every page names them (#921 map
// 25), the oldest as many as it has slots as running, with how long they
// have been running and how far along they are — what the worker last
// reported or, while a module maps or reduces (it reports nothing then),
// the time running against the mean compute time of the phase's finished
// tasks — and the others as queued on the worker.
function running(w, t, jobs, seen) {
  const td = el('td', { className: 'running' });
  const copies = [...w.running].sort((a, b) => new Date(a.sent) - new Date(b.sent));
  copies.forEach((r, i) => {
    seen.add(r.copy);
    let st = started.get(r.copy);
    if (!st) started.set(r.copy, st = { queued: i >= w.slots, at: 0 });
    if (i < w.slots && !st.at) st.at = st.queued ? t : new Date(r.sent).getTime();
    const l = taskLabel(r);
    const chip = el('span', { className: 'chip mono', title: l.title, textContent: l.text });
    chip.dataset.copy = String(r.copy);
    if (i >= w.slots) {
      chip.classList.add('queued');
      chip.append(el('span', { className: 'muted', textContent: ' · queued' }));
      chip.title += '\nwaiting on the worker for a free slot';
      td.append(chip);
      return;
    }
    const secs = Math.max(0, (t - st.at) / 1000);
    const phase = ((jobs.get(r.job) || {}).phases || {})[r.phase] || {};
    const est = phase.mean_seconds ? Math.min(95, Math.round(100 * secs / phase.mean_seconds)) : 0;
    // What the worker's heartbeats report, else ("~") an estimate.
    const reported = r.percent > 0;
    const pct = reported ? r.percent : est;
    chip.dataset.percent = String(pct);
    if (reported) chip.dataset.reported = String(pct);
    chip.append(el('span', { className: 'muted', textContent: ` · ${secs < 10 ? secs.toFixed(1) + ' s' : fmtDuration(secs)}${pct ? ` · ${reported ? '' : '~'}${pct}%` : ''}` }));
    chip.style.backgroundImage = `linear-gradient(90deg, #cfe0f3 ${pct}%, transparent ${pct}%)`;
    if (pct) chip.title += `\n${reported ? 'as the worker reported' : `estimated from the phase's mean task time, ${phase.mean_seconds.toFixed(2)} s`}`;
    td.append(chip);
  });
  return td;
}

function renderWorkers(workers, t, jobs) {
  const tb = $('workers');
  tb.replaceChildren();
  const seen = new Set();
  // The server column shows only when the workers are on more than one
  // server (several servers sharing a store).
  const multi = new Set(workers.map((w) => w.server || '')).size > 1;
  $('server-col').hidden = !multi;
  if (workers.length === 0) tb.append(el('tr', {}, el('td', { colSpan: 10, className: 'muted', textContent: 'no workers: open /worker in a browser tab, or run tabreduce worker' })));
  for (const w of workers) {
    const r = rate(`worker.${w.id}`, t, w.tasks_done);
    const tr = el('tr', {},
      el('td', { className: 'mono who', title: `${w.remote_addr}, connected ${ago(w.connected, t)}` },
        w.id, ...(w.name ? [el('div', { className: 'muted', textContent: w.name })] : [])),
      el('td', { textContent: w.kind }),
      ...(multi ? [el('td', { className: 'who', textContent: w.server || '', title: 'the server the worker is connected to' })] : []),
      el('td', { className: 'who', textContent: shortAgent(w.user_agent), title: w.user_agent }),
      el('td', { className: 'num', textContent: w.slots }),
      el('td', { className: 'num', textContent: `${w.tasks_done}`, title: `${w.tasks_done} tasks done, ${w.tasks_failed} failed` },
        ...(w.tasks_failed ? [el('span', { className: 'err', textContent: ` · ${w.tasks_failed}` })] : [])),
      running(w, t, jobs, seen),
      el('td', { className: 'num', textContent: r.toFixed(1) }),
      el('td', { className: 'num', textContent: fmtBytes(w.bytes_in) }),
      el('td', { textContent: w.flagged ? 'gone' : ago(w.last_seen, t) }),
      standing(w));
    tr.dataset.worker = w.id;
    tr.dataset.flagged = String(!!w.flagged);
    tr.dataset.kind = w.kind;
    tb.append(tr);
  }
  for (const id of started.keys()) if (!seen.has(id)) started.delete(id);
}

// standing shows how far a worker's results are trusted: the operator's
// token, its record of verified results, or flagged for a wrong one.
function standing(w) {
  const s = w.standing || {};
  if (w.flagged) return el('td', { className: 'err standing', textContent: `flagged: ${s.disagreed || 0} wrong`, title: 'returned a result that failed verification; disconnected and refused' });
  if (w.trusted) return el('td', { className: 'standing', textContent: 'trusted', title: 'connected with the operator\'s token, or in-process: its results are not checked' });
  const text = `${s.agreed || 0} agreed${s.spot_checked ? `, ${s.spot_checked} spot-checked` : ''}${s.probation ? ' (probation)' : ''}`;
  return el('td', { className: 'standing', textContent: text, title: 'results checked against other workers or the server' });
}

// The job API.

const builtinNames = new Map();

async function loadModules() {
  const r = await fetch('/api/v1/modules', { headers: authHeaders() });
  if (!r.ok) { $('submitMsg').textContent = `modules: ${await apiError(r)}`; return; }
  const { modules } = await r.json();
  const sel = $('module');
  const keep = sel.value;
  sel.replaceChildren();
  for (const m of modules) {
    if (m.name) builtinNames.set(m.sha256, m.name);
    const label = m.builtin ? `${m.name} (built-in)` : `${m.name || `${m.sha256.slice(0, 16)}…`} (${fmtBytes(m.size)})`;
    const opt = el('option', { value: m.builtin ? m.name : m.sha256, textContent: label });
    opt.dataset.sha = m.sha256;
    sel.append(opt);
  }
  if (keep) sel.value = keep;
  else if (sel.querySelector('option[value="wordcount"]')) sel.value = 'wordcount';
}

async function submitJob(ev) {
  ev.preventDefault();
  const fd = new FormData();
  const modFile = $('moduleFile').files[0];
  fd.append('module', modFile || $('module').value); // fields before files, as the server reads them in order
  if ($('params').value.trim()) fd.append('params', $('params').value.trim());
  fd.append('reducers', $('reducers').value);
  fd.append('chunk_size', String(Math.round($('chunk').value * 1024)));
  for (const f of $('inputFiles').files) fd.append('input', f);
  if ($('inputText').value) fd.append('input', new Blob([$('inputText').value]), 'input.txt');
  $('submitMsg').textContent = 'submitting…';
  $('submitBtn').disabled = true;
  try {
    const r = await fetch('/api/v1/jobs', { method: 'POST', body: fd, headers: authHeaders() });
    if (!r.ok) { $('submitMsg').textContent = `refused: ${await apiError(r)}`; return; }
    const j = await r.json();
    $('submitMsg').textContent = `submitted job ${j.id} (${fmtBytes(j.bytes_in)})`;
    $('submitMsg').dataset.job = j.id;
    if (modFile) loadModules();
  } catch (err) {
    $('submitMsg').textContent = `failed: ${err.message}`;
  } finally {
    $('submitBtn').disabled = false;
  }
}

async function cancelJob(id) {
  const r = await fetch(`/api/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE', headers: authHeaders() });
  $('submitMsg').textContent = r.ok ? `cancelled job ${id}` : `cancel ${id}: ${await apiError(r)}`;
}

// download fetches the output with the token and saves it as a file (a
// plain link could not carry the header).
async function download(j) {
  const r = await fetch(`${j.urls.output}?format=tsv`, { headers: authHeaders() });
  if (!r.ok) { $('submitMsg').textContent = `output ${j.id}: ${await apiError(r)}`; return; }
  const url = URL.createObjectURL(await r.blob());
  el('a', { href: url, download: `${j.id}.tsv` }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$('submit').addEventListener('submit', submitJob);
$('token').value = getToken();
$('saveToken').onclick = () => {
  setToken($('token').value.trim());
  if (ws) ws.close();
  loadModules();
};

window.tabreduce = { snapshot: () => last, chart: () => chart };
makeChart();
connect();
loadModules();
