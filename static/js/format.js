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
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function ago(t, now = Date.now()) {
  const s = (now - new Date(t).getTime()) / 1000;
  return s < 1 ? 'now' : `${fmtDuration(s)} ago`;
}

// taskLabel is how the pages name a task copy a worker runs: its id on the
// wire, as the volunteer page shows it, then its phase and number within
// the job (#921 map 25). The dashboard gets {copy, job, phase, task,
// attempt, check}; an older server sent "job/phase/queue:n".
export function taskLabel(r) {
  if (typeof r === 'string') {
    const [, phase = '', key = ''] = r.split('/');
    return { text: `${phase} ${key.slice(key.lastIndexOf(':') + 1)}`, title: r };
  }
  return {
    text: `#${r.copy} ${r.phase} ${r.task}`,
    title: `job ${r.job}, ${r.phase} task ${r.task}${r.attempt > 1 ? `, attempt ${r.attempt}` : ''}${r.check ? ` (${r.check})` : ''}`,
  };
}
