// The API client: every request carries the API key kept for this browser
// session (sessionStorage only), and a refused key surfaces as AuthError.

const KEY = "tidebase.apiKey";

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// Listeners told when the server refuses the current key (or its absence).
const refusedListeners = [];
export function onRefused(fn) {
  refusedListeners.push(fn);
}

export async function request(method, path, body, contentType = "application/json") {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": contentType }) };
  if (body !== undefined) init.body = contentType === "application/json" ? JSON.stringify(body) : body;
  const res = await fetch(path, init);
  if (res.status === 401) {
    refusedListeners.forEach((fn) => fn());
    throw new AuthError(apiKey() ? "That API key was refused" : "This server needs an API key");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});

/// A query string from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/// The live event stream of a run; EventSource cannot send headers, so the
/// key travels as `?token=` (the API accepts it on event streams only).
export function events(runId, after) {
  const params = { after };
  const key = apiKey();
  if (key) params.token = key;
  return new EventSource(`/runs/${encodeURIComponent(runId)}/events${query(params)}`);
}
