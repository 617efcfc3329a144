// Number formats shared by the pages.

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${u[i]}`;
}

export function fmtRate(n, unit) {
  if (!Number.isFinite(n)) return '–';
  return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ${unit}`;
}

export function fmtDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function ago(t, now = Date.now()) {
  const s = (now - new Date(t).getTime()) / 1000;
  return s < 1 ? 'now' : `${fmtDuration(s)} ago`;
}

// taskLabel is how the pages name a task copy a worker runs: its id on the
// wire, which is what the volunteer page shows, then its phase and number
// within the job (#921 map 25). r is an api.RunningTask.
export function taskLabel(r) {
  const why = { replica: 'a replica, checking another worker\'s result', probe: 'a probe: its answer is known', backup: 'a backup copy of a slow task' }[r.check];
  return {
    text: `#${r.copy} ${r.phase} ${r.task}`,
    title: `job ${r.job}, ${r.phase} task ${r.task}${r.attempt > 1 ? `, attempt ${r.attempt}` : ''}${why ? ` (${why})` : ''}`,
  };
}
