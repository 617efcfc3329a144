// Command modules in the browser (wasm/ABI.md "Command modules"): a plain
// WASI program, run as a fresh instance per task the way the native runner
// runs it (wasm/runner/command.go), byte for byte: argv is the phase and
// the job's arguments, the environment the job's and the host's, stdin the
// map chunk or the reduce partition as key<TAB>value lines; stdout lines
// are the pairs, stderr's reporter:counter lines the counters.

import { wasiImports, ProcExit } from './wasi.js';

// The protocol's failure kinds.
export const Failure = { JOB: 1, TIMEOUT: 2, MODULE: 3, TOO_LARGE: 4, INTERNAL: 5 };

// TaskError carries the protocol's failure kind.
export class TaskError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}

const MAX_OUTPUT = 64 << 20; // the native runner's output cap
const STDERR_TAIL = 2048;
const MAX_COUNTERS = 256;

// isCommand reports whether a compiled module is a command: it exports
// _start and not the reactor ABI's tr_version.
export function isCommand(module) {
  const names = new Set(WebAssembly.Module.exports(module).map(e => e.name));
  return names.has('_start') && !names.has('tr_version');
}

const td = new TextDecoder(), te = new TextEncoder();

// decodeParams reads a command task's params: u32 argc | argc × bytes |
// u32 envc | envc × bytes (the server checked them).
function decodeParams(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const list = () => {
    if (o + 4 > b.length) throw new TaskError(Failure.INTERNAL, 'command params: truncated');
    const n = dv.getUint32(o, true); o += 4;
    const out = [];
    for (let i = 0; i < n; i++) {
      if (o + 4 > b.length) throw new TaskError(Failure.INTERNAL, 'command params: truncated');
      const l = dv.getUint32(o, true); o += 4;
      if (l > b.length - o) throw new TaskError(Failure.INTERNAL, 'command params: truncated');
      out.push(td.decode(b.subarray(o, o + l))); o += l;
    }
    return out;
  };
  if (b.length === 0) return { args: [], env: [] };
  return { args: list(), env: list() };
}

// groupLines turns a grouped stream into key<TAB>value lines.
function groupLines(g) {
  const dv = new DataView(g.buffer, g.byteOffset, g.byteLength), parts = [];
  let o = 0, size = 0;
  const take = () => { const l = dv.getUint32(o, true); o += 4; const s = g.subarray(o, o + l); o += l; return s; };
  while (o < g.length) {
    const key = take(), n = dv.getUint32(o, true); o += 4;
    if (key.includes(9) || key.includes(10)) throw new TaskError(Failure.JOB, 'a command reads key<TAB>value lines: a key holds a tab or a newline');
    for (let i = 0; i < n; i++) {
      const v = take();
      if (v.includes(10)) throw new TaskError(Failure.JOB, 'a command reads key<TAB>value lines: a value holds a newline');
      parts.push(key, v); size += key.length + v.length + 2;
    }
  }
  const out = new Uint8Array(size);
  let p = 0;
  for (let i = 0; i < parts.length; i += 2) {
    out.set(parts[i], p); p += parts[i].length; out[p++] = 9;
    out.set(parts[i + 1], p); p += parts[i + 1].length; out[p++] = 10;
  }
  return out;
}

// linePairs turns stdout into a pair stream (abi.AppendLinePairs).
function linePairs(out) {
  const recs = [];
  let size = 0;
  for (let s = 0; s < out.length;) {
    let e = out.indexOf(10, s);
    if (e < 0) e = out.length;
    if (e > s) {
      let t = out.indexOf(9, s);
      if (t < 0 || t > e) t = e;
      recs.push(s, t, Math.min(t + 1, e), e);
      size += 8 + (t - s) + (e - Math.min(t + 1, e));
    }
    s = e + 1;
  }
  const buf = new Uint8Array(size), dv = new DataView(buf.buffer);
  let o = 0;
  for (let i = 0; i < recs.length; i += 4) {
    const [ks, ke, vs, ve] = recs.slice(i, i + 4);
    dv.setUint32(o, ke - ks, true); o += 4; buf.set(out.subarray(ks, ke), o); o += ke - ks;
    dv.setUint32(o, ve - vs, true); o += 4; buf.set(out.subarray(vs, ve), o); o += ve - vs;
  }
  return buf;
}

// Counters reads reporter:counter:GROUP,NAME,AMOUNT lines from stderr.
class Counters {
  constructor() { this.map = new Map(); this.line = []; this.lineNum = 0; this.err = null; this.tail = []; this.tailLen = 0; }

  write(bytes) {
    this.tail.push(bytes); this.tailLen += bytes.length;
    while (this.tailLen - this.tail[0].length >= STDERR_TAIL) this.tailLen -= this.tail.shift().length;
    for (const b of bytes) {
      if (b === 10) this.end(); else if (this.line.length <= 1024) this.line.push(b);
    }
  }

  end() {
    this.lineNum++;
    const line = this.line.length > 1024 ? '' : td.decode(new Uint8Array(this.line));
    this.line = [];
    if (!line.startsWith('reporter:counter:') || this.err) return;
    const parts = line.slice('reporter:counter:'.length).split(',');
    if (parts.length !== 3 || !parts[0] || !parts[1] || !/^[+-]?[0-9]+$/.test(parts[2])) {
      this.err = `stderr line ${this.lineNum}: "${line}" is not reporter:counter:GROUP,NAME,AMOUNT`;
      return;
    }
    const name = `${parts[0]}.${parts[1]}`;
    if (!this.map.has(name) && this.map.size === MAX_COUNTERS) { this.err = `more than ${MAX_COUNTERS} counters on stderr`; return; }
    this.map.set(name, BigInt.asIntN(64, (this.map.get(name) || 0n) + BigInt(parts[2])));
  }

  // encode returns the counters as the ABI encodes them, names ascending.
  encode() {
    if (this.line.length > 0) this.end();
    if (this.err) throw new TaskError(Failure.JOB, this.err);
    const names = [...this.map.keys()].map(n => [n, te.encode(n)]).sort((a, b) => cmp(a[1], b[1]));
    let size = 0;
    for (const [, b] of names) size += 12 + b.length;
    const out = new Uint8Array(size), dv = new DataView(out.buffer);
    let o = 0;
    for (const [n, b] of names) {
      dv.setUint32(o, b.length, true); o += 4; out.set(b, o); o += b.length;
      dv.setBigInt64(o, this.map.get(n), true); o += 8;
    }
    return out;
  }

  tailText() {
    const all = new Uint8Array(this.tailLen);
    let o = 0;
    for (const b of this.tail) { all.set(b, o); o += b.length; }
    return td.decode(all.subarray(Math.max(0, all.length - STDERR_TAIL))).trim();
  }
}

function cmp(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// runCommand runs one task of a command module and returns its pairs and
// counters.
export function runCommand(module, t, phase) {
  const { args, env } = decodeParams(t.params);
  const stdin = phase === 'map' ? t.input : groupLines(t.input);
  const hostEnv = [`TABREDUCE_PHASE=${phase}`];
  if (phase === 'map') hostEnv.push(`TABREDUCE_OFFSET=${t.offset}`);
  const chunks = [];
  let outLen = 0, over = false;
  const counters = new Counters();
  const io = {
    args: [phase, ...args], env: [...env, ...hostEnv], stdin,
    write(fd, bytes) {
      if (fd === 2) { counters.write(bytes); return true; }
      if (over || outLen + bytes.length > MAX_OUTPUT) { over = true; return false; }
      chunks.push(bytes); outLen += bytes.length;
      return true;
    },
  };
  let memory = null;
  const wasi = wasiImports(() => memory, io);
  let inst;
  try {
    inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.imports });
  } catch (err) {
    throw new TaskError(Failure.MODULE, `instantiate: ${err.message}`);
  }
  memory = inst.exports.memory;
  try {
    inst.exports._start();
  } catch (err) {
    if (!(err instanceof ProcExit)) {
      const tail = counters.tailText();
      throw new TaskError(Failure.JOB, `wasm trap: ${err.message}${tail ? `; stderr: ${tail}` : ''}`);
    }
    if (err.code !== 0) {
      const tail = counters.tailText();
      throw new TaskError(Failure.JOB, `exit code ${err.code}${tail ? `; stderr: ${tail}` : ''}`);
    }
  }
  if (over) throw new TaskError(Failure.TOO_LARGE, `more than ${MAX_OUTPUT} bytes on stdout`);
  const out = new Uint8Array(outLen);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return { pairs: linePairs(out), counters: counters.encode() };
}
