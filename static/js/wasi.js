// A WASI preview 1 shim for job modules: exactly the imports that
// wasm/ABI.md allows, behind them the same deterministic host as the
// native runner (wazero's defaults): no preopened directories, a fake clock
// that starts at 2022-01-01 and advances 1 ms per reading, a fixed-seed
// random stream, poll_oneoff and sched_yield returning at once. A reactor
// gets no arguments, no environment and an empty stdin, and its stdout and
// stderr are captured (4 KiB) for error messages; a command (io given) gets
// its arguments, environment and stdin, and its stdout and stderr go to
// io's callbacks.
//
// Why our own and not @bjorn3/browser_wasi_shim: a Go reactor calls only
// clock_time_get, random_get and the args/environ sizes at run time, the
// ABI needs no file system, and the ABI's fake clock and fixed-seed random
// would have to be patched into bjorn3's real ones anyway. This file is
// smaller than bjorn3's defaults file alone and needs no bundler.

const ESUCCESS = 0, EBADF = 8, EINVAL = 28, EIO = 29, ESPIPE = 70;

// ProcExit is thrown by proc_exit; the task fails and the instance is dropped.
export class ProcExit extends Error {
  constructor(code) { super(`module called proc_exit(${code})`); this.code = code; }
}

const CAPTURE = 4096;

// wasiImports returns the wasi_snapshot_preview1 import object. memory()
// returns the instance's memory once it exists; output collects fd 1 and 2.
// io, for a command: {args, env: arrays of strings, stdin: Uint8Array,
// write(fd, bytes) → false when stdout is over its limit}.
export function wasiImports(memory, io = null) {
  const output = { text: '' };
  const te = new TextEncoder();
  const argv = io ? io.args.map(a => te.encode(a + '\0')) : [];
  const envv = io ? io.env.map(e => te.encode(e + '\0')) : [];
  let stdinPos = 0;
  let wall = 1640995200000000000n, mono = 0n;
  // xorshift128+ with a constant seed: fixed, like the native host's
  // ChaCha8 (jobs must not depend on the stream's values).
  let s0 = 0x9e3779b97f4a7c15n, s1 = 0xbf58476d1ce4e5b9n;
  const M64 = (1n << 64n) - 1n;
  const next = () => {
    let x = s0; const y = s1;
    s0 = y; x ^= (x << 23n) & M64; s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (s1 + y) & M64;
  };
  const dv = () => new DataView(memory().buffer);
  const u8 = () => new Uint8Array(memory().buffer);
  const td = new TextDecoder();
  const sizes = list => (a, b) => {
    const d = dv();
    d.setUint32(a, list.length, true);
    d.setUint32(b, list.reduce((n, s) => n + s.length, 0), true);
    return ESUCCESS;
  };
  const copyOut = list => (ptrs, buf) => {
    const d = dv(), m = u8();
    for (let i = 0; i < list.length; i++) {
      d.setUint32(ptrs + 4 * i, buf, true);
      m.set(list[i], buf);
      buf += list[i].length;
    }
    return ESUCCESS;
  };
  const stdio = fd => fd >= 0 && fd <= 2;

  const imports = {
    args_sizes_get: sizes(argv),
    environ_sizes_get: sizes(envv),
    args_get: copyOut(argv),
    environ_get: copyOut(envv),
    clock_time_get(id, _precision, out) {
      let t;
      if (id === 0) { t = wall; wall += 1000000n; } else { t = mono; mono += 1000000n; }
      dv().setBigUint64(out, t, true);
      return ESUCCESS;
    },
    random_get(ptr, len) {
      const m = u8();
      for (let i = 0; i < len; i += 8) {
        let r = next();
        for (let j = 0; j < 8 && i + j < len; j++, r >>= 8n) m[ptr + i + j] = Number(r & 0xffn);
      }
      return ESUCCESS;
    },
    fd_write(fd, iovs, n, nwritten) {
      if (fd !== 1 && fd !== 2) return EBADF;
      const d = dv(), m = u8();
      let total = 0;
      for (let i = 0; i < n; i++) {
        const p = d.getUint32(iovs + 8 * i, true), l = d.getUint32(iovs + 8 * i + 4, true);
        if (io) {
          if (!io.write(fd, m.slice(p, p + l))) return EIO;
        } else if (output.text.length < CAPTURE) {
          output.text += td.decode(m.subarray(p, p + Math.min(l, CAPTURE)));
        }
        total += l;
      }
      d.setUint32(nwritten, total, true);
      return ESUCCESS;
    },
    fd_read(fd, iovs, n, nread) {
      if (fd !== 0) return EBADF;
      const d = dv(), m = u8(), stdin = io ? io.stdin : new Uint8Array(0);
      let total = 0;
      for (let i = 0; i < n && stdinPos < stdin.length; i++) {
        const p = d.getUint32(iovs + 8 * i, true), l = d.getUint32(iovs + 8 * i + 4, true);
        const k = Math.min(l, stdin.length - stdinPos);
        m.set(stdin.subarray(stdinPos, stdinPos + k), p);
        stdinPos += k; total += k;
      }
      d.setUint32(nread, total, true);
      return ESUCCESS;
    },
    // The standard streams are pipes: not seekable. (Commands only.)
    fd_seek: fd => (stdio(fd) ? ESPIPE : EBADF),
    fd_filestat_get(fd, out) {
      if (!stdio(fd)) return EBADF;
      const d = dv();
      for (let i = 0; i < 64; i += 8) d.setBigUint64(out + i, 0n, true);
      d.setUint8(out + 16, 2); // character device
      return ESUCCESS;
    },
    fd_close: fd => (stdio(fd) ? ESUCCESS : EBADF),
    fd_fdstat_get(fd, out) {
      if (!stdio(fd)) return EBADF;
      const d = dv();
      d.setUint8(out, 2); // character device
      d.setUint16(out + 2, 0, true);
      d.setBigUint64(out + 8, 0xffffffffn, true);
      d.setBigUint64(out + 16, 0xffffffffn, true);
      return ESUCCESS;
    },
    fd_fdstat_set_flags: fd => (stdio(fd) ? ESUCCESS : EBADF),
    fd_prestat_get: () => EBADF, // no preopened directories
    fd_prestat_dir_name: () => EBADF,
    poll_oneoff(subs, events, n, nevents) {
      // Every subscription fires at once: no sleeping in a task.
      const d = dv();
      for (let i = 0; i < n; i++) {
        const s = subs + 48 * i, e = events + 32 * i;
        d.setBigUint64(e, d.getBigUint64(s, true), true);
        d.setUint16(e + 8, ESUCCESS, true);
        d.setUint8(e + 10, d.getUint8(s + 8));
        d.setBigUint64(e + 16, 0n, true);
        d.setUint16(e + 24, 0, true);
      }
      d.setUint32(nevents, n, true);
      return n > 0 ? ESUCCESS : EINVAL;
    },
    sched_yield: () => ESUCCESS,
    proc_exit(code) { throw new ProcExit(code); },
  };
  return { imports, output };
}
