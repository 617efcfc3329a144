// Job modules for the browser worker: fetched by sha256 from
// /modules/{sha256}.wasm (the server sends them compressed, brotli where the
// browser takes it), compiled with WebAssembly.compileStreaming while they
// download, checked against their name, and kept in the Cache API so that a
// reload neither downloads nor (thanks to V8's code cache for cached
// responses) recompiles them. Each module is compiled once per connection
// worker and the compiled WebAssembly.Module is posted to the compute
// workers, which share its code.

const CACHE = 'tabreduce-modules-v1';

// MAX_PAGES caps a module's linear memory (64 KiB pages): 256 MiB, the
// native runner's cap. It is enforced inside every call: each module is
// compiled with its memory's maximum lowered to the cap (capMemory), so a
// memory.grow past it fails there and then (the module traps, or its
// allocator reports out of memory), however long the call would have run.
export const MAX_PAGES = 4096;
const compiled = new Map(); // sha256 → Promise<WebAssembly.Module>

// fetched records what each module fetched over the network cost: the
// Resource Timing figures of its response (bytes on the wire, the time to
// the last byte) and when its compilation finished. The page shows nothing
// of it; tests and benchmarks read it.
export const fetched = [];

// ModuleError is a failure of kind "module" (fetch, hash, compile).
export class ModuleError extends Error {}

// How long a connection worker waits for a module the page said it
// would offer before it fetches the module itself.
const OFFER_WAIT = 10000;
const offered = new Map(); // sha256 → resolve of the promise in compiled

// expectModule notes that the page is compiling module sha and will offer
// it (offerModule): loadModule then waits for that rather than fetching.
// If the offer is null or does not come in time, loadModule fetches.
export function expectModule(base, sha) {
  if (compiled.has(sha)) return;
  let resolve;
  const offer = new Promise(r => { resolve = r; });
  offered.set(sha, resolve);
  setTimeout(() => offerModule({ sha, module: null }), OFFER_WAIT);
  const p = offer.then(m => m || fetchAndCompile(base, sha));
  compiled.set(sha, p);
  p.catch(() => compiled.delete(sha));
}

// offerModule takes the page's offer of an expected module: compiled and
// checked against its name, with what its fetch cost, or null.
export function offerModule(o) {
  const resolve = offered.get(o.sha);
  if (!resolve) return;
  offered.delete(o.sha);
  if (o.module) {
    fetched.push({
      module: o.sha, transferSize: o.transferSize, encodedBodySize: o.encodedBodySize,
      decodedBodySize: o.decodedBodySize, fetchMs: o.fetchMs, readyMs: o.readyMs, byPage: true,
    });
  }
  resolve(o.module);
}

export function loadModule(base, sha) {
  let p = compiled.get(sha);
  if (!p) {
    p = fetchAndCompile(base, sha);
    compiled.set(sha, p);
    p.catch(() => compiled.delete(sha)); // a later task tries again
  }
  return p;
}

async function openCache() {
  try {
    return self.caches ? await caches.open(CACHE) : null;
  } catch {
    return null; // an opaque origin or storage turned off: no cache
  }
}

const wasmHeaders = { 'Content-Type': 'application/wasm' };

async function fetchAndCompile(base, sha) {
  const url = `${base}/modules/${sha}.wasm`;
  const cache = await openCache();
  const hit = cache && await cache.match(url).catch(() => null);
  if (hit) {
    try {
      return await WebAssembly.compileStreaming(capped(hit.body));
    } catch (err) {
      await cache.delete(url).catch(() => {});
      throw new ModuleError(`module ${sha}: compile: ${err.message}`);
    }
  }
  const start = performance.now();
  let r;
  try {
    r = await fetch(url);
  } catch (err) {
    throw new ModuleError(`fetch ${url}: ${err.message}`);
  }
  if (!r.ok || !r.body) throw new ModuleError(`fetch ${url}: HTTP ${r.status}`);
  // One branch of the body streams into the compiler, the other is kept
  // to hash: compilation overlaps the download, and a module whose bytes
  // do not hash to its name is refused before it ever runs.
  const [toCompile, toHash] = r.body.tee();
  const compiling = WebAssembly.compileStreaming(capped(toCompile));
  compiling.catch(() => {}); // awaited below, after the hash
  let buf;
  try {
    buf = await new Response(toHash).arrayBuffer();
  } catch (err) {
    throw new ModuleError(`fetch ${url}: ${err.message}`);
  }
  const got = await sha256Hex(buf);
  if (got !== sha) throw new ModuleError(`module ${sha}: the bytes hash to ${got}`);
  let module;
  try {
    module = await compiling;
  } catch (err) {
    throw new ModuleError(`module ${sha}: compile: ${err.message}`);
  }
  record(url, sha, start);
  if (cache) cache.put(url, new Response(buf, { headers: wasmHeaders })).catch(() => {});
  return module;
}

// capped is a module's bytes, as they stream, with its memory capped at
// MAX_PAGES, as a Response to compile.
function capped(body) {
  return new Response(body.pipeThrough(capMemory(MAX_PAGES)), { headers: wasmHeaders });
}

// capMemory returns a TransformStream that passes a wasm module through
// with the maximum of each memory it defines lowered to maxPages
// (capMemoryBytes). The memory section comes early (after the types,
// imports, functions and tables): the stream holds back what comes before
// it, then lets everything else through as it comes.
export function capMemory(maxPages) {
  let pending = new Uint8Array(0), done = false;
  return new TransformStream({
    transform(chunk, ctl) {
      if (done) { ctl.enqueue(chunk); return; }
      const b = new Uint8Array(pending.length + chunk.length);
      b.set(pending); b.set(chunk, pending.length);
      const out = withCappedMemory(b, maxPages);
      if (out) { done = true; pending = null; ctl.enqueue(out); } else pending = b;
    },
    flush(ctl) { if (!done && pending.length) ctl.enqueue(pending); }, // too short: let the compiler say why
  });
}

// capMemoryBytes returns a whole module with the maximum of each memory it
// defines lowered to maxPages (or set, where it had none). A memory whose
// minimum is above the cap makes the module fail to compile, as it should.
export function capMemoryBytes(buf, maxPages) {
  const b = new Uint8Array(buf);
  return withCappedMemory(b, maxPages) || b;
}

// withCappedMemory rewrites the memory section of a module's first bytes
// b, or returns null if b does not hold all that comes up to its end. A
// module without one (a later section comes first) is returned as it is.
function withCappedMemory(b, maxPages) {
  for (let off = 8; ;) {
    if (b.length < 8 || off >= b.length) return null;
    const id = b[off], size = readLEB(b, off + 1);
    if (!size) return null;
    const body = off + 1 + size.len, end = body + size.value;
    if (id === 5) {
      if (end > b.length) return null;
      const mem = rewriteMemories(b.subarray(body, end), maxPages);
      const head = Uint8Array.of(5, ...writeLEB(mem.length));
      const out = new Uint8Array(off + head.length + mem.length + b.length - end);
      out.set(b.subarray(0, off)); out.set(head, off); out.set(mem, off + head.length);
      out.set(b.subarray(end), off + head.length + mem.length);
      return out;
    }
    if (id !== 0 && id > 4) return b; // past where a memory section would be: none
    off = end;
  }
}

// rewriteMemories rewrites a memory section's body (a vector of limits):
// its one 32-bit, unshared memory gets a maximum of at most maxPages. A
// memory the cap cannot hold (shared, memory64, more than one memory, or
// limits it cannot read) makes the module refused: left as it is, it could
// take memory past the cap inside a call. The server's runner refuses such
// modules at upload too; this is the tab's own guard.
function rewriteMemories(body, maxPages) {
  const out = [];
  let off = 0;
  const count = readLEB(body, 0);
  if (!count || count.value > 1) throw new Error(`a module may define one memory, not ${count ? count.value : 'an unreadable number'}`);
  off = count.len;
  out.push(...writeLEB(count.value));
  for (let i = 0; i < count.value; i++) {
    const flags = body[off++];
    const min = readLEB(body, off);
    if (!min || flags > 1) throw new Error(`a memory with limits flags ${flags} (shared or 64-bit) cannot be capped at ${maxPages} pages`);
    off += min.len;
    let max = maxPages;
    if (flags === 1) {
      const m = readLEB(body, off);
      if (!m) throw new Error('a memory maximum that cannot be read');
      off += m.len;
      max = Math.min(m.value, maxPages);
    }
    out.push(1, ...writeLEB(min.value), ...writeLEB(max));
  }
  return Uint8Array.from([...out, ...body.subarray(off)]);
}

// readLEB reads an unsigned LEB128 number of at most 5 bytes at off, or
// returns null if its bytes are not all there.
function readLEB(b, off) {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    if (off + i >= b.length) return null;
    value += (b[off + i] & 0x7f) * 2 ** (7 * i);
    if (!(b[off + i] & 0x80)) return { value, len: i + 1 };
  }
  return null;
}

function writeLEB(v) {
  const out = [];
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

function record(url, sha, start) {
  const e = performance.getEntriesByName(url).pop();
  fetched.push({
    module: sha, transferSize: e ? e.transferSize : -1, encodedBodySize: e ? e.encodedBodySize : -1,
    decodedBodySize: e ? e.decodedBodySize : -1, fetchMs: e ? e.responseEnd - e.startTime : -1,
    readyMs: performance.now() - start,
  });
}

// sha256Hex hashes with WebCrypto where the page is a secure context (HTTPS
// or localhost), and with the small implementation below elsewhere (a
// volunteer on http://192.168.…).
export async function sha256Hex(buf) {
  let d;
  if (self.crypto && crypto.subtle) d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  else d = sha256(new Uint8Array(buf));
  return Array.from(d, b => b.toString(16).padStart(2, '0')).join('');
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// sha256 is FIPS 180-4 SHA-256, for when WebCrypto is not there.
export function sha256(msg) {
  const n = msg.length, blocks = Math.ceil((n + 9) / 64);
  const m = new Uint8Array(blocks * 64);
  m.set(msg);
  m[n] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(m.length - 8, Math.floor(n / 0x20000000), false);
  dv.setUint32(m.length - 4, (n << 3) >>> 0, false);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, r) => (x >>> r) | (x << (32 - r));
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(b * 64 + 4 * i, false);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, bb, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = bb; bb = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32), odv = new DataView(out.buffer);
  h.forEach((x, i) => odv.setUint32(4 * i, x, false));
  return out;
}
