// The latency chart: one bar per request (the last 30), coloured by outcome, with a
// text summary for screen readers and a log table. SVG, so no library is needed.
import { onRequest, recentRequests } from "./api.js";
import { $, el, milliseconds } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 120;
const SLOTS = 30;

function outcome(status) {
  if (status === 0) return "failed";
  if (status >= 500) return "server-error";
  if (status >= 400) return "client-error";
  return "ok";
}

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text) element.textContent = text;
  return element;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function label(entry) {
  const status = entry.status === 0 ? "no answer" : entry.status;
  return `${entry.method} ${entry.path}: ${status} in ${milliseconds(entry.ms)}`;
}

function draw() {
  const entries = recentRequests();
  const chart = $("latency-chart");
  const top = Math.max(10, ...entries.map((entry) => entry.ms));
  const slot = WIDTH / SLOTS;
  const bars = entries.map((entry, index) => {
    const height = Math.max(2, (entry.ms / top) * (HEIGHT - 8));
    const bar = svg("rect", {
      class: `bar ${outcome(entry.status)}`,
      x: (SLOTS - entries.length + index) * slot + 1,
      y: HEIGHT - height,
      width: slot - 2,
      height,
      rx: 1.5,
    });
    bar.append(svg("title", {}, label(entry)));
    return bar;
  });
  const half = svg("line", { class: "gridline", x1: 0, x2: WIDTH, y1: HEIGHT / 2 + 4, y2: HEIGHT / 2 + 4 });
  chart.replaceChildren(half, ...bars);

  const times = entries.map((entry) => entry.ms);
  const slowest = entries.reduce((worst, entry) => (entry.ms > worst.ms ? entry : worst), entries[0]);
  $("latency-summary").textContent = entries.length
    ? `Last ${entries.length} requests: median ${milliseconds(median(times))}, slowest ` +
      `${milliseconds(slowest.ms)} (${slowest.method} ${slowest.path}); full height is ${milliseconds(top)}.`
    : "No requests yet.";
  $("request-log").replaceChildren(
    ...entries.slice().reverse().map((entry) =>
      el("tr", {}, el("td", {}, `${entry.method} ${entry.path}`),
        el("td", {}, entry.status === 0 ? "—" : String(entry.status)),
        el("td", {}, entry.ms.toFixed(1)))),
  );
}

export function startChart() {
  onRequest(draw);
  draw();
}
