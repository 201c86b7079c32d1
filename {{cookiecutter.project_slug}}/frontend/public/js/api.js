// The API client: where the API is, one fetch wrapper that times every request and
// reads RFC 9457 problems, and the log of the last requests that the chart draws.
//
// The base URL is `/api` on this page's origin unless this browser remembers another
// (localStorage) or the page was opened with `?api=<url>` (what `make console` does),
// which is then remembered and dropped from the address bar.
{%- if cookiecutter.auth != "none" %}
import { currentToken } from "./token.js";
{%- endif %}

const STORAGE_KEY = "console.apiBase";
export const DEFAULT_BASE = "/api";
const LOG_SIZE = 30;
const PROBLEM_TYPE = "application/problem+json";
// Dispatched on document when the base URL changes, so every panel reloads.
export const BASE_CHANGED = "console:api-base-changed";

const log = [];
const listeners = new Set();

function storedBase() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: fall back to the default every time
  }
}

export function apiBase() {
  return storedBase() || DEFAULT_BASE;
}

/** The base as an absolute URL without a trailing slash, or null if it is not one. */
export function resolvedBase(base = apiBase()) {
  try {
    const url = new URL(base, window.location.href);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return url.href.replace(/\/+$/, "");
  } catch {
    return null;
  }
}

export function setApiBase(base) {
  const trimmed = base.trim();
  if (!resolvedBase(trimmed)) {
    throw new Error(`"${trimmed}" is not an http(s) URL or a path such as /api`);
  }
  try {
    if (trimmed === DEFAULT_BASE) localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, trimmed);
  } catch {
    // Not remembered, but the page goes on with the default.
  }
}

function adoptQueryParameter() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("api");
  if (given === null) return;
  try {
    setApiBase(given);
  } catch (error) {
    console.warn(`ignoring ?api=: ${error.message}`);
  }
  url.searchParams.delete("api");
  window.history.replaceState(null, "", url);
}

adoptQueryParameter();

export function onRequest(listener) {
  listeners.add(listener);
}

export function recentRequests() {
  return [...log];
}

function record(entry) {
  log.push(entry);
  if (log.length > LOG_SIZE) log.shift();
  for (const listener of listeners) listener(entry);
}

function parse(text, contentType) {
  if (!text || !contentType.includes("json")) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * One request. Never throws: resolves to
 * { ok, status, headers, data, problem, ms } where `problem` is the RFC 9457 body
 * of a failed request (or one made up for a network failure or a non-problem error).
 */
export async function call(method, path, { body, headers = {} } = {}) {
  const base = resolvedBase();
  const started = performance.now();
  const requestHeaders = { Accept: `application/json, ${PROBLEM_TYPE}`, ...headers };
{%- if cookiecutter.auth != "none" %}
  const token = currentToken();
  if (token) requestHeaders.Authorization = `Bearer ${token}`;
{%- endif %}
  if (body !== undefined) requestHeaders["Content-Type"] = "application/json";
  let response;
  let text = "";
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: requestHeaders,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    text = await response.text();
  } catch (error) {
    const ms = performance.now() - started;
    record({ method, path, status: 0, ms });
    return {
      ok: false,
      status: 0,
      headers: new Headers(),
      data: null,
      ms,
      problem: {
        title: "No answer from the API",
        detail:
          `${method} ${base}${path} failed (${error.message}): the API is down, the base URL ` +
          `is wrong, or its CORS configuration does not list ${window.location.origin}.`,
      },
    };
  }
  const ms = performance.now() - started;
  record({ method, path, status: response.status, ms });
  const contentType = response.headers.get("content-type") || "";
  const data = parse(text, contentType);
  let problem = null;
  if (!response.ok) {
    problem = contentType.includes(PROBLEM_TYPE) && typeof data === "object"
      ? data
      : { title: `HTTP ${response.status}`, status: response.status, detail: String(text).slice(0, 300) };
  }
  return { ok: response.ok, status: response.status, headers: response.headers, data, problem, ms };
}
