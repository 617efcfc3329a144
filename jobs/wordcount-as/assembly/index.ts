// wordcount-as: the wordcount job in AssemblyScript, written against the
// reactor ABI (wasm/ABI.md) alone, without the Go SDK. Words are maximal
// runs of ASCII letters and digits, lower-cased, as
// `tr -cs 'A-Za-z0-9' '\n' | tr A-Z a-z` cuts them (any other byte, UTF-8
// included, separates words); the output maps each word to its count in
// decimal, and the counter "words" counts every word read.
//
// The module has no imports and allocates nothing through AssemblyScript's
// runtime (built with --runtime stub): it lays out its own memory above
// __heap_base. The input buffer that tr_alloc hands the host comes first;
// each task call then takes its scratch (a key arena, a hash table, the
// output) from a bump region just above it, which the next call reuses.
// So memory grows to what the largest task needs and stays there.

// Statuses a task export returns (wasm/ABI.md, "Exports").
const OK: u32 = 0;
const JOB_ERROR: u32 = 1;
const BAD_INPUT: u32 = 2;
const NO_COMBINER: u32 = 3;

const PAGE: usize = 65536;

// The input buffer [inBase, inBase+inCap) and the scratch region above it.
const inBase: usize = (__heap_base + 15) & ~(<usize>15);
let inCap: usize = 0;
let top: usize = 0; // the scratch region's first free byte

// The last call's output, which tr_output reports.
let outPtr: usize = 0;
let outLen: usize = 0;

// LOWER maps a byte to itself lower-cased if it is an ASCII letter or
// digit, and to 0 if it separates words.
const LOWER: usize = memory.data(256);
for (let c: u32 = 0; c < 256; c++) {
  let v: u32 = 0;
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a)) v = c;
  else if (c >= 0x41 && c <= 0x5a) v = c + 0x20;
  store<u8>(LOWER + c, <u8>v);
}

// A failed assertion (none is expected) traps: the host fails the task.
function abort(message: usize, file: usize, line: u32, column: u32): void {
  unreachable();
}

// ensure grows the memory so that it holds [0, end).
function ensure(end: usize): void {
  const have = <usize>memory.size() * PAGE;
  if (end <= have) return;
  if (memory.grow(<i32>((end - have + PAGE - 1) / PAGE)) < 0) unreachable(); // past the host's memory cap
}

// take returns n bytes of scratch, 8-aligned.
function take(n: usize): usize {
  const p = top;
  top = (p + n + 7) & ~(<usize>7);
  ensure(top);
  return p;
}

function resetScratch(): void {
  top = (inBase + inCap + 7) & ~(<usize>7);
}

// fail sets the output to msg in UTF-8 and returns status.
function fail(status: u32, msg: string): u32 {
  const p = take(<usize>msg.length * 3);
  outLen = String.UTF8.encodeUnsafe(changetype<usize>(msg), msg.length, p);
  outPtr = p;
  return status;
}

export function tr_version(): u32 {
  return 1;
}

export function tr_alloc(size: u32): usize {
  if (<usize>size > inCap) {
    inCap = (<usize>size + PAGE - 1) & ~(PAGE - 1);
    ensure(inBase + inCap);
  }
  return inBase;
}

// The job takes no parameters: any are accepted and ignored.
export function tr_params(ptr: usize, len: u32): u32 {
  outLen = 0;
  return OK;
}

// The map-side table: open addressing over 16-byte entries
// (hash u32 | key pointer u32 | key length u32 | count u32), an empty
// entry having length 0 (a word has at least one byte).
let table: usize = 0;
let mask: u32 = 0;
let used: u32 = 0;

function newTable(slots: u32): void {
  table = take(<usize>slots << 4);
  memory.fill(table, 0, <usize>slots << 4);
  mask = slots - 1;
}

// grow doubles the table, rehashing its entries into a new one above it
// (the old one's scratch is not reused before the call ends).
function grow(): void {
  const old = table, slots = mask + 1;
  newTable(slots << 1);
  for (let i: u32 = 0; i < slots; i++) {
    const e = old + (<usize>i << 4);
    if (load<u32>(e, 8) == 0) continue;
    let j = load<u32>(e) & mask;
    while (load<u32>(table + (<usize>j << 4), 8) != 0) j = (j + 1) & mask;
    memory.copy(table + (<usize>j << 4), e, 16);
  }
}

// add counts the word of n bytes at w (lower-cased, hashed to h), which
// is at the key arena's end. It returns true if the word is new: its bytes
// then stay there as the entry's key.
function add(w: usize, n: u32, h: u32): bool {
  let i = h & mask;
  while (true) {
    const e = table + (<usize>i << 4);
    const len = load<u32>(e, 8);
    if (len == 0) {
      store<u32>(e, h);
      store<u32>(e, <u32>w, 4);
      store<u32>(e, n, 8);
      store<u32>(e, 1, 12);
      used++;
      if (used * 2 > mask + 1) grow();
      return true;
    }
    if (len == n && load<u32>(e) == h && memory.compare(<usize>load<u32>(e, 4), w, n) == 0) {
      store<u32>(e, load<u32>(e, 12) + 1, 12);
      return false;
    }
    i = (i + 1) & mask;
  }
}

// digits returns the number of decimal digits of v.
function digits(v: u64): u32 {
  let n: u32 = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

// putDecimal writes v in decimal at p and returns the end.
function putDecimal(p: usize, v: u64): usize {
  const n = digits(v);
  let q = p + n;
  do {
    q--;
    store<u8>(q, <u8>(0x30 + v % 10));
    v /= 10;
  } while (v > 0);
  return p + n;
}

// putPair writes `u32 len | key | u32 len | decimal value` at p.
function putPair(p: usize, key: usize, klen: u32, value: u64): usize {
  store<u32>(p, klen);
  memory.copy(p + 4, key, klen);
  p += 4 + klen;
  const end = putDecimal(p + 4, value);
  store<u32>(p, <u32>(end - p - 4));
  return end;
}

// The one counter's name, "words", in the counters' framing.
const WORDS: usize = memory.data<u8>([0x77, 0x6f, 0x72, 0x64, 0x73]);
const WORDS_LEN: u32 = 5;

// tr_map counts the words of a chunk frame (u64 offset | data) and
// outputs a result frame: one pair per distinct word, and the counter.
export function tr_map(ptr: usize, len: u32): u32 {
  resetScratch();
  if (len < 8) return fail(BAD_INPUT, "chunk frame shorter than its 8-byte offset");
  const data = ptr + 8, end = ptr + len;
  const arena = take(len); // the words, lower-cased: at most the chunk's bytes
  let next = arena; // where the next new word goes
  used = 0;
  newTable(1024);
  let total: u64 = 0;
  let n: u32 = 0, h: u32 = 2166136261;
  for (let p = data; p < end; p++) {
    const c = load<u8>(LOWER + load<u8>(p));
    if (c != 0) {
      store<u8>(next + n, c);
      h = (h ^ c) * 16777619;
      n++;
      continue;
    }
    if (n > 0) {
      if (add(next, n, h)) next += n;
      total++;
      n = 0;
      h = 2166136261;
    }
  }
  if (n > 0) {
    if (add(next, n, h)) next += n;
    total++;
  }
  // u32 pairsLen | pairs | u32 nameLen | name | u64 value
  const out = take(4 + <usize>(next - arena) + <usize>used * 28 + 4 + WORDS_LEN + 8);
  let q = out + 4;
  for (let i: u32 = 0; i <= mask; i++) {
    const e = table + (<usize>i << 4);
    const klen = load<u32>(e, 8);
    if (klen != 0) q = putPair(q, <usize>load<u32>(e, 4), klen, <u64>load<u32>(e, 12));
  }
  store<u32>(out, <u32>(q - out - 4));
  if (total > 0) {
    store<u32>(q, WORDS_LEN);
    memory.copy(q + 4, WORDS, WORDS_LEN);
    store<u64>(q + 4 + WORDS_LEN, total);
    q += 4 + WORDS_LEN + 8;
  }
  outPtr = out;
  outLen = q - out;
  return OK;
}

// The map output holds every word once with its count, so there is
// nothing to combine.
export function tr_combine(ptr: usize, len: u32): u32 {
  outLen = 0;
  return NO_COMBINER;
}

// tr_reduce sums each word's counts over a grouped stream
// (bytes key | u32 count | count × bytes value).
export function tr_reduce(ptr: usize, len: u32): u32 {
  resetScratch();
  const end = ptr + len;
  // A group of k bytes of key is at least 4+k+4+5 bytes in and at most
  // 4+k+4+20 bytes out.
  const out = take(4 + <usize>len * 3);
  let q = out + 4;
  let p = ptr;
  while (p < end) {
    if (end - p < 4) return fail(BAD_INPUT, "grouped stream: truncated key length");
    const klen = load<u32>(p);
    const key = p + 4;
    if (<usize>klen > end - key || end - key - klen < 4) return fail(BAD_INPUT, "grouped stream: truncated key or count");
    let count = load<u32>(key + klen);
    p = key + klen + 4;
    if (count == 0) return fail(BAD_INPUT, "grouped stream: a group with no values");
    let sum: u64 = 0;
    for (; count > 0; count--) {
      if (end - p < 4) return fail(BAD_INPUT, "grouped stream: truncated value length");
      const vlen = load<u32>(p);
      p += 4;
      if (<usize>vlen > end - p) return fail(BAD_INPUT, "grouped stream: truncated value");
      if (vlen == 0 || vlen > 19) return fail(JOB_ERROR, "a count that is not a decimal number");
      let v: u64 = 0;
      for (let i: u32 = 0; i < vlen; i++) {
        const d = <u32>load<u8>(p + i) - 0x30;
        if (d > 9) return fail(JOB_ERROR, "a count that is not a decimal number");
        v = v * 10 + d;
      }
      sum += v;
      p += vlen;
    }
    q = putPair(q, key, klen, sum);
  }
  store<u32>(out, <u32>(q - out - 4));
  outPtr = out;
  outLen = q - out;
  return OK;
}

export function tr_output(): u64 {
  return (<u64>outPtr << 32) | <u64>outLen;
}
