// Small DOM helpers. Everything the API returns goes in as text, never as HTML.

export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

export function milliseconds(ms) {
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** Shows a success (`ok`) or notice (`replay`) in a result area. */
export function showMessage(container, kind, title, ...lines) {
  container.dataset.kind = kind;
  container.replaceChildren(el("p", { class: "title" }, title), ...lines.map((line) => el("p", {}, line)));
}

/** Shows an API call's problem (RFC 9457): title, status, detail, invalid params. */
export function showProblem(container, result, note = "") {
  const { problem } = result;
  const requestId = result.headers.get("x-request-id");
  const status = result.status ? ` (${result.status})` : "";
  const parts = [el("p", { class: "title" }, `${problem.title || "Error"}${status}`)];
  if (problem.detail) parts.push(el("p", { class: "detail" }, problem.detail));
  if (Array.isArray(problem.invalid_params) && problem.invalid_params.length) {
    parts.push(el("ul", {}, ...problem.invalid_params.map((p) => el("li", {}, `${p.name}: ${p.reason}`))));
  }
  const extra = [note, problem.type && problem.type !== "about:blank" ? `type ${problem.type}` : "",
    requestId ? `request id ${requestId}` : ""].filter(Boolean);
  if (extra.length) parts.push(el("p", { class: "hint" }, extra.join(" · ")));
  container.dataset.kind = "problem";
  container.replaceChildren(...parts);
}

export function clear(container) {
  delete container.dataset.kind;
  container.replaceChildren();
}
