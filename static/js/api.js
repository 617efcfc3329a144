// What the dashboard's scripts share: the token (kept in localStorage and
// sent as a bearer header), API error messages, and a small DOM helper.

export const $ = id => document.getElementById(id);

export const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

let token = localStorage.getItem('tabreduce.token') || '';

export function getToken() { return token; }

export function setToken(t) {
  token = t;
  localStorage.setItem('tabreduce.token', t);
}

export function authHeaders(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

// apiError reads the {"code", "error"} body of a refusal.
export async function apiError(r) {
  try { return (await r.json()).error || r.statusText; } catch { return r.statusText; }
}
