// The worker protocol's frames (docs/PROTOCOL.md): decoders for what the
// server sends, encoders for what a worker sends. Every length is checked
// against the bytes that remain, as the protocol's validation rules ask.

export const VERSION = 1;
export const PROTOCOL = 2;
export const T = { HELLO: 1, WELCOME: 2, TASKS: 3, RESULTS: 4, FAILURES: 5, HEARTBEAT: 6, CANCEL: 7, ERROR: 8 };
export const Kind = { BROWSER: 1 };
export const Phase = { MAP: 1, REDUCE: 2 };
export const Failure = { JOB: 1, TIMEOUT: 2, MODULE: 3, TOO_LARGE: 4, INTERNAL: 5 };
export const MAX_STR = 65536;

const td = new TextDecoder(), te = new TextEncoder();

class Reader {
  constructor(buf) {
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
    this.o = 0;
  }
  need(n) {
    if (n > this.u8.length - this.o) throw new Error(`frame truncated at byte ${this.o}`);
  }
  byte() { this.need(1); return this.u8[this.o++]; }
  u16() { this.need(2); this.o += 2; return this.dv.getUint16(this.o - 2, true); }
  u32() { this.need(4); this.o += 4; return this.dv.getUint32(this.o - 4, true); }
  u64() { this.need(8); this.o += 8; return this.dv.getBigUint64(this.o - 8, true); }
  bytes() { const n = this.u32(); this.need(n); this.o += n; return this.u8.subarray(this.o - n, this.o); }
  str() {
    const b = this.bytes();
    if (b.length > MAX_STR) throw new Error('string too long');
    return td.decode(b);
  }
  // count reads a list's count and refuses one the remaining bytes cannot hold.
  count(minItem) {
    const n = this.u32();
    if (n * minItem > this.u8.length - this.o) throw new Error(`list of ${n} items cannot fit`);
    return n;
  }
  end() { if (this.o !== this.u8.length) throw new Error('trailing bytes after the frame'); }
}

const HEX64 = /^[0-9a-f]{64}$/;

function readTask(r) {
  const t = {
    id: r.u64(), job: r.str(), phase: r.byte(), module: r.str(), params: r.bytes(),
    reducers: r.u16(), flags: r.byte(), attempt: r.u32(), timeoutMs: r.u32(),
    offset: r.u64(), input: r.bytes(),
  };
  if (t.phase !== Phase.MAP && t.phase !== Phase.REDUCE) throw new Error(`task phase ${t.phase}`);
  if (!HEX64.test(t.module)) throw new Error('task module is not a sha256');
  if (t.reducers < 1 || t.reducers > 4096) throw new Error(`task reducers ${t.reducers}`);
  if (t.flags & ~1) throw new Error(`task flags ${t.flags}`);
  if (t.phase === Phase.REDUCE && (t.flags !== 0 || t.offset !== 0n)) throw new Error('reduce task with flags or offset');
  return t;
}

// decode reads a server-to-worker frame: {type, ...fields}.
export function decode(buf) {
  const r = new Reader(buf);
  const v = r.byte(), type = r.byte();
  if (v !== VERSION) throw new Error(`frame version ${v}`);
  let f;
  switch (type) {
    case T.WELCOME:
      f = { type, workerId: r.str(), heartbeatMs: r.u32(), maxResultBytes: r.u32(), prefetch: r.u16() };
      break;
    case T.TASKS: {
      const tasks = [];
      for (let n = r.count(44); n > 0; n--) tasks.push(readTask(r));
      f = { type, tasks };
      break;
    }
    case T.CANCEL: {
      const ids = [];
      for (let n = r.count(8); n > 0; n--) ids.push(r.u64());
      f = { type, ids };
      break;
    }
    case T.ERROR:
      f = { type, code: r.str(), message: r.str() };
      break;
    default:
      throw new Error(`frame type ${type} does not travel to a worker`);
  }
  r.end();
  return f;
}

// Writer builds a frame of a known size.
class Writer {
  constructor(size, type) {
    this.u8 = new Uint8Array(size);
    this.dv = new DataView(this.u8.buffer);
    this.o = 0;
    this.byte(VERSION); this.byte(type);
  }
  byte(x) { this.u8[this.o++] = x; }
  u16(x) { this.dv.setUint16(this.o, x, true); this.o += 2; }
  u32(x) { this.dv.setUint32(this.o, x, true); this.o += 4; }
  u64(x) { this.dv.setBigUint64(this.o, x, true); this.o += 8; }
  bytes(b) { this.u32(b.length); this.u8.set(b, this.o); this.o += b.length; }
  done() {
    if (this.o !== this.u8.length) throw new Error(`frame size ${this.o}, computed ${this.u8.length}`);
    return this.u8;
  }
}

// clip encodes s as UTF-8 of at most max bytes, cut at a character boundary.
function clip(s, max = MAX_STR) {
  let b = te.encode(s);
  if (b.length <= max) return b;
  let n = max;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return b.subarray(0, n);
}

export function hello(slots, userAgent, name) {
  const ua = clip(userAgent), nm = clip(name || '');
  const w = new Writer(2 + 2 + 1 + 2 + 4 + ua.length + 4 + nm.length, T.HELLO);
  w.u16(PROTOCOL); w.byte(Kind.BROWSER); w.u16(slots); w.bytes(ua); w.bytes(nm);
  return w.done();
}

// results encodes [{id, elapsedUs, counters, partitions}].
export function results(list) {
  let size = 2 + 4;
  for (const r of list) {
    size += 8 + 4 + 4 + r.counters.length + 4;
    for (const p of r.partitions) size += 4 + p.length;
  }
  const w = new Writer(size, T.RESULTS);
  w.u32(list.length);
  for (const r of list) {
    w.u64(r.id); w.u32(Math.min(r.elapsedUs, 0xffffffff) >>> 0); w.bytes(r.counters);
    w.u32(r.partitions.length);
    for (const p of r.partitions) w.bytes(p);
  }
  return w.done();
}

// failures encodes [{id, kind, message}]; messages are cut at 4 KiB.
export function failures(list) {
  const msgs = list.map(f => clip(f.message, 4096));
  let size = 2 + 4;
  for (const m of msgs) size += 8 + 1 + 4 + m.length;
  const w = new Writer(size, T.FAILURES);
  w.u32(list.length);
  list.forEach((f, i) => { w.u64(f.id); w.byte(f.kind); w.bytes(msgs[i]); });
  return w.done();
}

// heartbeat encodes free slots and [{id, percent}] for running tasks.
export function heartbeat(free, running) {
  const w = new Writer(2 + 2 + 4 + running.length * 9, T.HEARTBEAT);
  w.u16(free); w.u32(running.length);
  for (const r of running) { w.u64(r.id); w.byte(Math.max(0, Math.min(100, r.percent | 0))); }
  return w.done();
}
