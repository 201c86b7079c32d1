// The console's shell: the API base URL form, live and ready status, the latency chart.
import { BASE_CHANGED, DEFAULT_BASE, apiBase, call, resolvedBase, setApiBase } from "./api.js";
import { startChart } from "./chart.js";
import { $, milliseconds } from "./dom.js";
{%- if cookiecutter.auth != "none" %}
import { startTokenForm } from "./token.js";
{%- endif %}

const STATUS_INTERVAL_MS = 15000;

async function checkOne(name, path) {
  const state = $(`${name}-state`);
  const result = await call("GET", path);
  const answer = result.ok && result.data && result.data.status;
  state.dataset.state = answer ? "up" : "down";
  state.textContent = answer || (result.status ? `down (${result.status})` : "no answer");
  $(`${name}-latency`).textContent = milliseconds(result.ms);
  return result;
}

async function checkStatus() {
  const [live, ready] = await Promise.all([checkOne("live", "/health/live"), checkOne("ready", "/health/ready")]);
  const failed = [live, ready].find((result) => !result.ok);
  const checked = `Checked at ${new Date().toLocaleTimeString()}.`;
  $("status-detail").textContent = failed ? `${checked} ${failed.problem.title}: ${failed.problem.detail || ""}` : checked;
}

function showBase() {
  $("api-base").value = apiBase();
  $("api-base").setCustomValidity("");
  $("api-base-effective").textContent = `Requests go to ${resolvedBase()}/…`;
}

function baseChanged() {
  showBase();
  checkStatus();
  document.dispatchEvent(new CustomEvent(BASE_CHANGED));
}

$("api-base-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("api-base");
  try {
    setApiBase(input.value);
  } catch (error) {
    input.setCustomValidity(error.message);
    input.reportValidity();
    return;
  }
  baseChanged();
});
$("api-base").addEventListener("input", () => $("api-base").setCustomValidity(""));
$("api-base-reset").addEventListener("click", () => {
  setApiBase(DEFAULT_BASE);
  baseChanged();
});
$("status-refresh").addEventListener("click", checkStatus);

showBase();
{%- if cookiecutter.auth != "none" %}
startTokenForm();
{%- endif %}
startChart();
checkStatus();
setInterval(checkStatus, STATUS_INTERVAL_MS);
