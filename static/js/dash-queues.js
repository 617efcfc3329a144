// The dashboard's queues: one row a queue, each dead-letter queue right
// under the queue it serves, with peek (the waiting messages' bodies,
// attempts and last errors, taken from nobody), pause and resume, purge,
// and for a dead-letter queue, requeue into the queue it serves.

import { $, el, authHeaders, apiError } from './api.js';
import { fmtBytes, ago } from './format.js';

const DEAD = '.dead';
const PEEK_PAGE = 20;
const VALUE_SHOWN = 160; // characters of a value in the peek table

let peeking = null; // {queue, after, rows}

const q = name => encodeURIComponent(name);

// orderQueues puts each dead-letter queue after the queue it serves.
export function orderQueues(queues) {
  const names = new Set(queues.map(x => x.name));
  const origin = x => x.name.endsWith(DEAD) && names.has(x.name.slice(0, -DEAD.length)) ? x.name.slice(0, -DEAD.length) : x.name;
  return [...queues].sort((a, b) => {
    const oa = origin(a), ob = origin(b);
    return oa === ob ? (a.name === oa ? -1 : 1) : oa < ob ? -1 : 1;
  }).map(x => ({ ...x, deadOf: origin(x) !== x.name ? origin(x) : '' }));
}

export function renderQueues(queues, rate, t) {
  const tb = $('queues');
  tb.replaceChildren();
  if (queues.length === 0) tb.append(el('tr', {}, el('td', { colSpan: 9, className: 'muted', textContent: 'no queues' })));
  for (const x of orderQueues(queues)) {
    const dead = x.deadOf !== '' || x.name.endsWith(DEAD);
    const name = el('td', { className: 'mono name', title: x.name });
    name.append(el('span', { textContent: x.name }));
    if (dead) name.append(' ', el('span', { className: 'tag bad', textContent: 'dead letters', title: x.deadOf ? `messages that failed in ${x.deadOf} too many times` : 'a dead-letter queue' }));
    const paused = x.status === 'paused' || x.status === 'stop';
    const actions = el('td', { className: 'actions' },
      button('peek', 'secondary', () => openPeek(x.name)));
    if (!dead) actions.append(button(paused ? 'resume' : 'pause', 'secondary', () => control(x.name, paused ? 'start' : 'stop')));
    if (x.deadOf && x.length > 0) actions.append(button('requeue', 'secondary', () => requeue(x.name, x.deadOf)));
    actions.append(button('purge', 'danger', () => purge(x.name, x.length + x.in_flight)));
    const tr = el('tr', { className: dead ? 'deadq' : '' },
      name,
      el('td', { className: 'num', textContent: x.length }),
      el('td', { className: 'num', textContent: x.in_flight }),
      el('td', { className: `num${x.dead ? ' err' : ''}`, textContent: x.dead }),
      el('td', { className: 'num', textContent: rate(`q.${x.name}.push`, t, x.pushed).toFixed(1) }),
      el('td', { className: 'num', textContent: rate(`q.${x.name}.ack`, t, x.acked).toFixed(1) }),
      el('td', { className: 'num', textContent: x.consumers }),
      el('td', { textContent: paused ? 'paused' : x.status }),
      actions);
    tr.dataset.queue = x.name;
    tb.append(tr);
  }
}

function button(text, cls, onclick) {
  return el('button', { className: `${cls} small`, type: 'button', textContent: text, onclick });
}

function say(text) { $('queueMsg').textContent = text; }

async function control(name, status) {
  const r = await fetch(`/control/${q(name)}`, { method: 'POST', headers: authHeaders({ 'Content-Type': 'application/x-www-form-urlencoded' }), body: `status=${status}` });
  say(r.ok ? `${name}: ${status === 'stop' ? 'paused' : 'resumed'}` : `${name}: ${await apiError(r)}`);
}

async function purge(name, n) {
  if (!confirm(`Delete the ${n} message(s) of ${name}?`)) return;
  const r = await fetch(`/q/${q(name)}`, { method: 'DELETE', headers: authHeaders() });
  say(r.ok ? `${name}: purged` : `${name}: ${await apiError(r)}`);
  if (peeking && peeking.queue === name) refreshPeek();
}

async function requeue(dead, origin) {
  const r = await fetch(`/api/v1/queues/${q(dead)}/requeue`, { method: 'POST', headers: authHeaders() });
  if (!r.ok) { say(`${dead}: ${await apiError(r)}`); return; }
  const body = await r.json();
  say(`${dead}: ${body.requeued} message(s) back in ${origin}`);
  if (peeking && peeking.queue === dead) refreshPeek();
}

// Peek: the waiting messages, page by page, left where they are.

function openPeek(name) {
  peeking = { queue: name, after: 0, rows: [] };
  $('peek').hidden = false;
  loadPeek();
}

function refreshPeek() {
  if (!peeking) return;
  peeking.after = 0; peeking.rows = [];
  loadPeek();
}

async function loadPeek() {
  const p = peeking;
  const r = await fetch(`/api/v1/queues/${q(p.queue)}/messages?after=${p.after}&limit=${PEEK_PAGE}`, { headers: authHeaders() });
  if (p !== peeking) return;
  if (!r.ok) { $('peekTitle').textContent = `${p.queue}: ${await apiError(r)}`; return; }
  const body = await r.json();
  p.rows.push(...body.messages);
  p.after = body.next_after || 0;
  drawPeek();
}

function drawPeek() {
  const p = peeking;
  $('peekTitle').textContent = `${p.queue}: ${p.rows.length === 0 ? 'no message waiting' : `the first ${p.rows.length} waiting message(s)`}`;
  $('peekMore').hidden = !p.after;
  const tb = $('peekRows');
  tb.replaceChildren();
  const now = Date.now();
  for (const m of p.rows) {
    const text = m.encoding === 'base64' ? `(binary, base64) ${m.value}` : m.value;
    const shown = text.length > VALUE_SHOWN ? `${text.slice(0, VALUE_SHOWN)}…` : text;
    const tr = el('tr', {},
      el('td', { className: 'mono', textContent: m.key }),
      el('td', { className: 'mono value', textContent: shown + (m.truncated && shown === text ? '…' : ''), title: text.slice(0, 2000) }),
      el('td', { className: 'num', textContent: fmtBytes(m.size) }),
      el('td', { className: 'num', textContent: m.attempts }),
      el('td', { className: 'err wrap', textContent: m.error || '' }),
      el('td', { textContent: ago(m.created, now) }));
    tr.dataset.key = m.key;
    tb.append(tr);
  }
}

$('peekMore').onclick = loadPeek;
$('peekRefresh').onclick = refreshPeek;
$('peekClose').onclick = () => { peeking = null; $('peek').hidden = true; };
