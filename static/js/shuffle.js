// The host's side of a task, as wasm/worker/execute.go does it natively:
// reading a module's pair stream, sorting it by (key, value) bytewise,
// grouping it for the combiner, splitting it into partitions by FNV-1a-32
// mod R (wasm/abi.Partition), and summing counters. The server checks
// every result with workerproto.CheckPartitions, so these must agree with
// Go byte for byte.

// Pairs is a pair stream read into parallel arrays of offsets into buf,
// with each key's first six bytes as a number for fast comparison.
export class Pairs {
  constructor(buf) {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let cap = 64, n = 0, o = 0;
    let ks = new Int32Array(cap), kl = new Int32Array(cap), vs = new Int32Array(cap), vl = new Int32Array(cap);
    while (o < buf.length) {
      if (n === cap) {
        cap *= 2;
        ks = grow(ks, cap); kl = grow(kl, cap); vs = grow(vs, cap); vl = grow(vl, cap);
      }
      if (o + 4 > buf.length) throw new Error('pair stream: truncated key length');
      const k = dv.getUint32(o, true); o += 4;
      if (k > buf.length - o) throw new Error('pair stream: key runs past the end');
      ks[n] = o; kl[n] = k; o += k;
      if (o + 4 > buf.length) throw new Error('pair stream: truncated value length');
      const v = dv.getUint32(o, true); o += 4;
      if (v > buf.length - o) throw new Error('pair stream: value runs past the end');
      vs[n] = o; vl[n] = v; o += v;
      n++;
    }
    this.buf = buf; this.n = n; this.ks = ks; this.kl = kl; this.vs = vs; this.vl = vl;
    // The first six bytes of each key, big-endian, exact in a double.
    const pre = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const st = ks[i], l = kl[i];
      let p = 0;
      for (let k = 0; k < 6; k++) p = p * 256 + (k < l ? buf[st + k] : 0);
      pre[i] = p;
    }
    this.pre = pre;
  }

  // compare orders pairs i and j by key, then value, bytewise.
  compare(i, j) {
    const pi = this.pre[i], pj = this.pre[j];
    if (pi !== pj) return pi < pj ? -1 : 1;
    return cmpBytes(this.buf, this.ks[i], this.kl[i], this.ks[j], this.kl[j]) ||
      cmpBytes(this.buf, this.vs[i], this.vl[i], this.vs[j], this.vl[j]);
  }

  sameKey(i, j) {
    return cmpBytes(this.buf, this.ks[i], this.kl[i], this.ks[j], this.kl[j]) === 0;
  }

  // sorted returns the pairs' indices in (key, value) order: an LSD radix
  // sort on the keys' first six bytes, then a comparison sort of each run
  // that ties there (longer keys, equal keys with several values).
  sorted() {
    const n = this.n, { buf, ks, kl, pre } = this;
    let idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    let inOrder = true;
    for (let i = 1; i < n && inOrder; i++) inOrder = this.compare(i - 1, i) <= 0;
    if (inOrder) return idx;
    let tmp = new Uint32Array(n);
    const count = new Uint32Array(256);
    for (let k = 5; k >= 0; k--) {
      count.fill(0);
      for (let i = 0; i < n; i++) count[k < kl[i] ? buf[ks[i] + k] : 0]++;
      if (count.some(c => c === n)) continue; // every key has the same byte here
      for (let d = 0, sum = 0; d < 256; d++) { const c = count[d]; count[d] = sum; sum += c; }
      for (let i = 0; i < n; i++) {
        const j = idx[i];
        tmp[count[k < kl[j] ? buf[ks[j] + k] : 0]++] = j;
      }
      [idx, tmp] = [tmp, idx];
    }
    for (let a = 0; a < n;) {
      let b = a + 1;
      while (b < n && pre[idx[b]] === pre[idx[a]]) b++;
      if (b - a > 1) {
        const run = Array.from(idx.subarray(a, b)).sort((x, y) => this.compare(x, y));
        idx.set(run, a);
      }
      a = b;
    }
    return idx;
  }

  // grouped encodes the sorted pairs as a grouped stream:
  // bytes key | u32 count | count × bytes value.
  // distinctKeys reports whether no two pairs in sorted order share a key:
  // then a combiner has nothing to fold, and the host may skip it.
  distinctKeys(order) {
    for (let g = 1; g < order.length; g++) if (this.sameKey(order[g - 1], order[g])) return false;
    return true;
  }

  grouped(order) {
    let size = 0;
    for (let g = 0; g < order.length;) {
      const i = order[g];
      size += 8 + this.kl[i];
      for (; g < order.length && this.sameKey(i, order[g]); g++) size += 4 + this.vl[order[g]];
    }
    const out = new Uint8Array(size), dv = new DataView(out.buffer);
    let o = 0;
    for (let g = 0; g < order.length;) {
      const i = order[g];
      dv.setUint32(o, this.kl[i], true); o += 4;
      o = copy(out, o, this.buf, this.ks[i], this.kl[i]);
      const countAt = o; o += 4;
      let c = 0;
      for (; g < order.length && this.sameKey(i, order[g]); g++, c++) {
        const j = order[g];
        dv.setUint32(o, this.vl[j], true); o += 4;
        o = copy(out, o, this.buf, this.vs[j], this.vl[j]);
      }
      dv.setUint32(countAt, c, true);
    }
    return out;
  }

  // partitions splits the pairs into r pair streams by FNV-1a-32(key) mod r,
  // each sorted by (key, value): the sorted order, bucketed stably.
  partitions(r) {
    const order = this.sorted();
    const part = new Int32Array(this.n), sizes = new Array(r).fill(0);
    for (const i of order) {
      const p = r <= 1 ? 0 : fnv1a(this.buf, this.ks[i], this.kl[i]) % r;
      part[i] = p;
      sizes[p] += 8 + this.kl[i] + this.vl[i];
    }
    const outs = sizes.map(s => new Uint8Array(s)), offs = new Array(r).fill(0);
    const dvs = outs.map(u => new DataView(u.buffer));
    for (const i of order) {
      const p = part[i], out = outs[p], dv = dvs[p];
      let o = offs[p];
      dv.setUint32(o, this.kl[i], true); o += 4;
      o = copy(out, o, this.buf, this.ks[i], this.kl[i]);
      dv.setUint32(o, this.vl[i], true); o += 4;
      o = copy(out, o, this.buf, this.vs[i], this.vl[i]);
      offs[p] = o;
    }
    return outs;
  }
}

// copy copies src[s:s+l] to dst at o and returns the end: a loop for the
// short keys and values of most jobs (a subarray per copy costs more).
function copy(dst, o, src, s, l) {
  if (l > 64) { dst.set(src.subarray(s, s + l), o); return o + l; }
  for (let k = 0; k < l; k++) dst[o + k] = src[s + k];
  return o + l;
}

function grow(a, cap) { const b = new Int32Array(cap); b.set(a); return b; }

function cmpBytes(b, s1, l1, s2, l2) {
  const n = l1 < l2 ? l1 : l2;
  for (let k = 0; k < n; k++) {
    const d = b[s1 + k] - b[s2 + k];
    if (d !== 0) return d;
  }
  return l1 - l2;
}

// fnv1a is FNV-1a-32 of b[s:s+l] (abi.Partition's hash).
export function fnv1a(b, s, l) {
  let h = 0x811c9dc5;
  for (let k = s; k < s + l; k++) h = Math.imul(h ^ b[k], 0x01000193) >>> 0;
  return h;
}

// splitResult reads a module's result frame: u32 pairsLen | pairs | counters.
export function splitResult(out) {
  if (out.length < 4) throw new Error('result frame shorter than 4 bytes');
  const n = new DataView(out.buffer, out.byteOffset, out.byteLength).getUint32(0, true);
  if (n > out.length - 4) throw new Error('result frame: pairs run past the end');
  return { pairs: out.subarray(4, 4 + n), counters: out.subarray(4 + n) };
}

// latin1 turns bytes into code units one to one (TextDecoder's 'latin1' is
// windows-1252, which does not).
const latin1 = b => { let s = ''; for (const c of b) s += String.fromCharCode(c); return s; };

function readCounters(b, into) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o < b.length;) {
    if (o + 4 > b.length) throw new Error('counters: truncated');
    const l = dv.getUint32(o, true); o += 4;
    if (l + 8 > b.length - o) throw new Error('counters: runs past the end');
    const name = latin1(b.subarray(o, o + l)); o += l;
    into.set(name, BigInt.asIntN(64, (into.get(name) || 0n) + dv.getBigInt64(o, true))); o += 8;
  }
}

// mergeCounters sums two counters encodings into one, names ascending.
export function mergeCounters(a, b) {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const m = new Map();
  readCounters(a, m); readCounters(b, m);
  const names = [...m.keys()].sort(); // latin1 strings: code-unit order is byte order
  let size = 0;
  for (const n of names) size += 12 + n.length;
  const out = new Uint8Array(size), dv = new DataView(out.buffer);
  let o = 0;
  for (const n of names) {
    dv.setUint32(o, n.length, true); o += 4;
    for (let k = 0; k < n.length; k++) out[o++] = n.charCodeAt(k);
    dv.setBigInt64(o, m.get(n), true); o += 8;
  }
  return out;
}
