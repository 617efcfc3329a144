// A compute Web Worker: one slot of the tab's pool. It receives tasks from
// the connection worker (conn.js) over a MessagePort, with the job module
// already compiled, runs them on a cached instance of the module (the ABI's
// reactor: instantiated once, called many times), and answers with the
// task's partitions or a failure. A task that never returns is stopped by
// conn.js asking the page to terminate this worker and start a fresh one.

import { wasiImports, ProcExit } from './wasi.js';
import { Pairs, splitResult, mergeCounters } from './shuffle.js';
import { Failure, TaskError, isCommand, runCommand } from './command.js';
import { MAX_PAGES } from './modules.js'; // the memory cap, compiled into every module

const Phase = { MAP: 1, REDUCE: 2 };
const PAGE = 65536;
const RECYCLE_PAGES = 1024; // drop an instance whose memory grew past 64 MiB
const MAX_INSTANCES = 4;
const WARM_ALLOC = 64; // bytes warmUp asks a module for

const instances = new Map(); // module sha256 → Instance
let port = null;

// When things first happened in this worker (ms since the epoch, on
// performance.timeOrigin's clock): its scripts run (computeRun), its port
// from the page (computePort), a module instantiated ahead of its task
// (instanceStart, instanceReady), the first task here (taskStart, taskEnd).
// They go to conn.js with the first result, which keeps them with its own
// marks for benchmarks.
let marks = {};
function mark(name) {
  if (marks && !(name in marks)) marks[name] = performance.timeOrigin + performance.now();
}
mark('computeRun');

// The page sends this worker its port to the connection worker, then the
// modules the waiting work needs, compiled (warm); tasks come by the port.
self.onmessage = e => {
  if (e.data.type === 'port') {
    mark('computePort');
    port = e.data.port;
    port.onmessage = m => run(m.data);
  } else if (e.data.type === 'warm') {
    warmUp(e.data);
  }
};

// Instance is one instantiated module and what was last set on it.
class Instance {
  constructor(module, sha) {
    let memory = null;
    const wasi = wasiImports(() => memory);
    let inst;
    try {
      inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.imports, tabreduce: { progress: callProgress } });
    } catch (err) {
      throw new TaskError(Failure.MODULE, `module ${sha}: instantiate: ${err.message}`);
    }
    this.ex = inst.exports;
    memory = this.ex.memory;
    this.wasi = wasi;
    this.params = null;
    for (const name of ['memory', 'tr_version', 'tr_alloc', 'tr_params', 'tr_map', 'tr_combine', 'tr_reduce', 'tr_output']) {
      if (!(name in this.ex)) throw new TaskError(Failure.MODULE, `module ${sha}: missing export ${name}`);
    }
    if (this.ex._initialize) this.ex._initialize();
    const v = this.ex.tr_version();
    if (v !== 1) throw new TaskError(Failure.MODULE, `module ${sha}: ABI version ${v}, this worker speaks 1`);
  }

  pages() { return this.ex.memory.buffer.byteLength / PAGE; }

  // call writes head and body to a tr_alloc buffer, calls fn and returns a
  // copy of the output, or throws the module's message as a job error.
  call(fn, body, head = null) {
    const hl = head ? head.length : 0, n = hl + body.length;
    const ptr = this.ex.tr_alloc(n) >>> 0;
    const mem = new Uint8Array(this.ex.memory.buffer);
    if (ptr + n > mem.length) throw new TaskError(Failure.JOB, `tr_alloc(${n}) returned a buffer past the memory's end`);
    if (head) mem.set(head, ptr);
    mem.set(body, ptr + hl);
    const status = this.ex[fn](ptr, n);
    if (this.pages() > MAX_PAGES) throw new TaskError(Failure.JOB, `out of memory: the module grew past ${MAX_PAGES * PAGE >> 20} MiB`);
    const v = BigInt.asUintN(64, BigInt(this.ex.tr_output()));
    const p = Number(v >> 32n), l = Number(v & 0xffffffffn);
    const buf = new Uint8Array(this.ex.memory.buffer);
    if (p + l > buf.length) throw new TaskError(Failure.JOB, `${fn}: output past the memory's end`);
    const out = buf.slice(p, p + l);
    if (status === 0) return out;
    if (status === STATUS_NO_COMBINER && fn === 'tr_combine') return null;
    const msg = new TextDecoder().decode(out.subarray(0, 4096));
    throw new TaskError(Failure.JOB, status === 1 ? `${fn}: ${msg}` : `${fn}: bad input (status ${status}): ${msg}`);
  }

  setParams(params) {
    if (this.params && equalBytes(this.params, params)) return;
    this.call('tr_params', params);
    this.params = params.slice();
  }
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function instanceFor(module, sha) {
  let inst = instances.get(sha);
  if (!inst) {
    if (instances.size >= MAX_INSTANCES) instances.delete(instances.keys().next().value);
    inst = new Instance(module, sha);
    instances.set(sha, inst);
  }
  return inst;
}

// STATUS_NO_COMBINER is what tr_combine returns in a module without a
// combiner (wasm/ABI.md): the host sends the map output as it is.
const STATUS_NO_COMBINER = 3;

function progress(id, percent) { port.postMessage({ type: 'progress', id, percent }); }

// The call running now, for the module's progress import (wasm/ABI.md,
// tabreduce.progress): its task, and the share of the task the call takes
// (percent from base to base + span). The message leaves from inside the
// call; conn.js, on its own thread, takes it at once.
let call = null;

function metered(id, base, span, fn) {
  call = { id, base, span, last: -1 };
  try { return fn(); } finally { call = null; }
}

function callProgress(permille) {
  if (!call) return;
  const pct = call.base + Math.floor(Math.min(permille >>> 0, 1000) * call.span / 1000);
  if (pct === call.last) return;
  call.last = pct;
  progress(call.id, pct);
}

// execute runs one task and returns its counters and partitions.
function execute(t, inst) {
  inst.setParams(t.params);
  let res;
  if (t.phase === Phase.MAP) {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setBigUint64(0, t.offset, true);
    const combine = (t.flags & 1) !== 0;
    res = splitResult(metered(t.id, 0, combine ? 50 : 90, () => inst.call('tr_map', t.input, head)));
    if (combine && res.pairs.length > 0 && !inst.noCombiner) {
      progress(t.id, 50);
      const ps = new Pairs(res.pairs);
      const order = ps.sorted();
      // Every key once (the SDK's map-side table already folded them): the
      // combiner would fold nothing, and the ABI lets the host skip it.
      const out = ps.distinctKeys(order) ? undefined : metered(t.id, 50, 40, () => inst.call('tr_combine', ps.grouped(order)));
      if (out === undefined) {
        // keep the map output as it is
      } else if (out === null) {
        inst.noCombiner = true; // the map output goes as it is, now and for this module's later tasks
      } else {
        const comb = splitResult(out);
        res = { pairs: comb.pairs, counters: mergeCounters(res.counters, comb.counters) };
      }
    }
  } else {
    res = splitResult(metered(t.id, 0, 90, () => inst.call('tr_reduce', t.input)));
  }
  progress(t.id, 90);
  return { counters: res.counters, pairs: res.pairs };
}

const commands = new WeakMap(); // WebAssembly.Module → is it a command

function commandModule(module) {
  let cmd = commands.get(module);
  if (cmd === undefined) commands.set(module, cmd = isCommand(module));
  return cmd;
}

// warmUp instantiates a module before its first task comes (the page
// sends the ones the waiting work needs), so that the task finds it
// started, and has it allocate once: V8 compiles a function on its first
// call, and a Go module's allocator is most of what its first task would
// otherwise wait for (a started module's _initialize, which ran it, was
// run when the module was built: wasm/internal/preinit). A command is not
// started: each of its tasks runs a fresh instance. A module that fails
// here is dropped, and its task meets and reports the failure.
function warmUp(m) {
  mark('instanceStart');
  try {
    if (!commandModule(m.module)) instanceFor(m.module, m.sha).ex.tr_alloc(WARM_ALLOC);
  } catch {
    instances.delete(m.sha);
  }
  mark('instanceReady');
}

function run(msg) {
  mark('taskStart');
  const t = msg.task, start = performance.now();
  let inst = null;
  try {
    let res;
    if (commandModule(msg.module)) {
      res = runCommand(msg.module, t, t.phase === Phase.MAP ? 'map' : 'reduce');
    } else {
      inst = instanceFor(msg.module, t.module);
      res = execute(t, inst);
    }
    if (msg.maxResult > 0 && res.pairs.length > msg.maxResult) {
      throw new TaskError(Failure.TOO_LARGE, `${res.pairs.length} bytes of output, the server takes ${msg.maxResult}`);
    }
    const parts = new Pairs(res.pairs).partitions(t.phase === Phase.MAP ? t.reducers : 1);
    if (inst && inst.pages() > RECYCLE_PAGES) instances.delete(t.module);
    const elapsed = performance.now() - start;
    mark('taskEnd');
    port.postMessage({
      type: 'done', id: t.id, elapsedUs: Math.round(elapsed * 1000), counters: res.counters, partitions: parts, marks,
    }, parts.map(p => p.buffer));
    marks = null; // sent once
  } catch (err) {
    // A trap, proc_exit or job error poisons the instance: drop it.
    instances.delete(t.module);
    let kind = err instanceof TaskError ? err.kind : Failure.JOB;
    if (!(err instanceof TaskError) && !(err instanceof WebAssembly.RuntimeError) &&
        !(err instanceof ProcExit) && !(err instanceof RangeError)) {
      kind = Failure.INTERNAL;
    }
    let message = err instanceof WebAssembly.RuntimeError ? `wasm trap: ${err.message}` : err.message;
    const stderr = inst && inst.wasi.output.text;
    if (stderr && !message.includes(stderr)) message += `\n${stderr}`;
    if (inst && inst.pages() + 64 >= MAX_PAGES) {
      message = `out of memory: the memory cap is ${MAX_PAGES * PAGE >> 20} MiB and the module used ${inst.pages() * PAGE >> 20} MiB: ${message}`;
    }
    port.postMessage({ type: 'failed', id: t.id, kind, message, elapsedUs: Math.round((performance.now() - start) * 1000) });
  }
}
