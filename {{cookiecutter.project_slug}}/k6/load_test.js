// Load test for {{ cookiecutter.project_name }}, run with k6 (`make load`, or by hand):
//   k6 run -e SCENARIO=smoke|load|spike -e BASE_URL=http://127.0.0.1:8000 k6/load_test.js
// Optional: -e DURATION=1m (smoke, load), -e RATE=50 (requests/s of load and the spike's base),
// -e SUMMARY_FILE=<scenario>-summary.json (`make load` writes to k6/results/).
{%- if cookiecutter.auth == "api_key" %}
// -e TOKEN=<API key> with the ledger:read and ledger:write scopes (`make api-key`).
{%- elif cookiecutter.auth != "none" %}
// -e TOKEN=<bearer token{{ " or API key" if cookiecutter.auth == "both" }}> with the ledger:read and ledger:write scopes (`make load` mints one
// from the development key; against a deployment, one from your identity provider).
{%- endif %}
// A failed threshold exits with 99.
import http from 'k6/http';
import { check, fail } from 'k6';
import exec from 'k6/execution';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const SCENARIO = __ENV.SCENARIO || 'smoke';
const RATE = Number(__ENV.RATE || 50);
const SUMMARY_FILE = __ENV.SUMMARY_FILE || `${SCENARIO}-summary.json`;
{%- if cookiecutter.auth != "none" %}
const AUTH_HEADERS = __ENV.TOKEN ? { Authorization: `Bearer ${__ENV.TOKEN}` } : {};
const JSON_HEADERS = { 'Content-Type': 'application/json', ...AUTH_HEADERS };
{%- else %}
const AUTH_HEADERS = {};
const JSON_HEADERS = { 'Content-Type': 'application/json' };
{%- endif %}

const SCENARIOS = {
  // A gentle 10 requests/s for a short while: does every request path work at all?
  smoke: {
    executor: 'constant-arrival-rate',
    rate: 10,
    timeUnit: '1s',
    duration: __ENV.DURATION || '15s',
    preAllocatedVUs: 2,
    maxVUs: 10,
  },
  // A steady arrival rate, independent of how fast the service answers.
  load: {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: __ENV.DURATION || '1m',
    preAllocatedVUs: 20,
    maxVUs: 200,
  },
  // Five times the rate for 20 s, then back: does it keep up, and recover after?
  spike: {
    executor: 'ramping-arrival-rate',
    startRate: RATE,
    timeUnit: '1s',
    preAllocatedVUs: 50,
    maxVUs: 500,
    stages: [
      { duration: '10s', target: RATE },
      { duration: '5s', target: RATE * 5 },
      { duration: '20s', target: RATE * 5 },
      { duration: '5s', target: RATE },
      { duration: '10s', target: RATE },
    ],
  },
};
// Latency bounds (ms) per scenario: p(95), p(99). Smoke is about correctness, so
// its bounds are loose; a spike may queue for a while.
const LATENCY_MS = { smoke: [500, 1500], load: [300, 800], spike: [1000, 2500] };

if (!(SCENARIO in SCENARIOS)) {
  throw new Error(`SCENARIO=${SCENARIO}: not a scenario; accepted: ${Object.keys(SCENARIOS).join(', ')}`);
}
const [P95_MS, P99_MS] = LATENCY_MS[SCENARIO];

export const options = {
  scenarios: { [SCENARIO]: SCENARIOS[SCENARIO] },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

function live() {
  const response = http.get(`${BASE_URL}/health/live`, { tags: { name: 'GET /health/live' } });
  check(response, { 'live: 200': (r) => r.status === 200 });
}

function ready() {
  const response = http.get(`${BASE_URL}/health/ready`, { tags: { name: 'GET /health/ready' } });
  check(response, { 'ready: 200': (r) => r.status === 200 });
}
{%- if cookiecutter.example_domain == "ledger" %}

const CURRENCY = 'EUR';
const SEED_ACCOUNTS = 10;
const SEED_BALANCE_MINOR = 1000000000;

function createAccount(owner, openingBalanceMinor) {
  const body = JSON.stringify({ owner, currency: CURRENCY, opening_balance_minor: openingBalanceMinor });
  const response = http.post(`${BASE_URL}/v1/accounts`, body, {
    headers: JSON_HEADERS,
    tags: { name: 'POST /v1/accounts' },
  });
  const created = check(response, {
    'create account: 201': (r) => r.status === 201,
    'create account: Location': (r) => Boolean(r.headers.Location),
  });
  return created ? response.json('id') : null;
}

function readAccount(accounts) {
  const id = pick(accounts);
  const response = http.get(`${BASE_URL}/v1/accounts/${id}`, {
    headers: AUTH_HEADERS,
    tags: { name: 'GET /v1/accounts/{id}' },
  });
  check(response, { 'read account: 200 with its id': (r) => r.status === 200 && r.json('id') === id });
}

function listAccounts() {
  const response = http.get(`${BASE_URL}/v1/accounts?limit=20`, {
    headers: AUTH_HEADERS,
    tags: { name: 'GET /v1/accounts' },
  });
  check(response, { 'list accounts: 200 with items': (r) => r.status === 200 && Array.isArray(r.json('items')) });
}

function transfer(accounts) {
  const from = pick(accounts);
  const to = pick(accounts.filter((id) => id !== from));
  const body = JSON.stringify({ from_account_id: from, to_account_id: to, amount_minor: 1 + Math.floor(Math.random() * 500) });
  // A fresh key per transfer: each is a new business operation, never a retry.
  const response = http.post(`${BASE_URL}/v1/transfers`, body, {
    headers: { ...JSON_HEADERS, 'Idempotency-Key': crypto.randomUUID() },
    tags: { name: 'POST /v1/transfers' },
  });
  if (!check(response, { 'transfer: 201': (r) => r.status === 201 })) {
    return;
  }
  const read = http.get(`${BASE_URL}/v1/transfers/${response.json('id')}`, {
    headers: AUTH_HEADERS,
    tags: { name: 'GET /v1/transfers/{id}' },
  });
  check(read, { 'read transfer: 200': (r) => r.status === 200 });
}

// Cumulative weights of one iteration's request: mostly reads and transfers.
const MIX = [
  [0.05, () => live()],
  [0.1, () => ready()],
  [0.45, (accounts) => readAccount(accounts)],
  [0.55, () => listAccounts()],
  [0.65, () => createAccount(`k6 ${crypto.randomUUID()}`, 10000)],
  [1.0, (accounts) => transfer(accounts)],
];
{%- else %}

// Cumulative weights of one iteration's request.
const MIX = [
  [0.6, () => live()],
  [1.0, () => ready()],
];
{%- endif %}

export function setup() {
  const response = http.get(`${BASE_URL}/health/ready`);
  if (response.status !== 200) {
    fail(`${BASE_URL}/health/ready answered ${response.status || response.error}: start the service (make run) or set BASE_URL`);
  }
{%- if cookiecutter.example_domain == "ledger" %}
  const accounts = [];
  for (let i = 0; i < SEED_ACCOUNTS; i += 1) {
    const id = createAccount(`k6 seed ${i}`, SEED_BALANCE_MINOR);
    if (id === null) {
      fail('setup: could not create the seed accounts{% if cookiecutter.auth != "none" %} (with a token: -e TOKEN=..., see make {{ "api-key" if cookiecutter.auth == "api_key" else "token" }}){% endif %}');
    }
    accounts.push(id);
  }
  return { accounts };
{%- else %}
  return { accounts: [] };
{%- endif %}
}

// Smoke asks whether every request path works, so it takes them in turn (a
// random draw could miss a rare one); the other scenarios draw by weight.
function nextRequest() {
  if (SCENARIO === 'smoke') {
    return MIX[exec.scenario.iterationInTest % MIX.length][1];
  }
  const draw = Math.random();
  return MIX.find(([weight]) => draw < weight)[1];
}

export default function (data) {
  nextRequest()(data.accounts);
}

// k6's own text summary lives in a remote module (jslib), unreachable offline:
// print the few lines that matter and write the full summary as JSON.
function textSummary(data) {
  const metrics = data.metrics;
  const duration = metrics.http_req_duration.values;
  const lines = [
    `${SCENARIO} against ${BASE_URL}`,
    `  requests: ${metrics.http_reqs.values.count} (${metrics.http_reqs.values.rate.toFixed(1)}/s), ` +
      `failed: ${(metrics.http_req_failed.values.rate * 100).toFixed(2)}%`,
    `  latency ms: avg ${duration.avg.toFixed(1)}, p(95) ${duration['p(95)'].toFixed(1)}, ` +
      `p(99) ${duration['p(99)'].toFixed(1)}, max ${duration.max.toFixed(1)}`,
  ];
  for (const [name, metric] of Object.entries(metrics)) {
    for (const [threshold, result] of Object.entries(metric.thresholds || {})) {
      lines.push(`  ${result.ok ? 'pass' : 'FAIL'} ${name} ${threshold}`);
    }
  }
  lines.push(`  summary: ${SUMMARY_FILE}`);
  return `${lines.join('\n')}\n`;
}

export function handleSummary(data) {
  return { stdout: textSummary(data), [SUMMARY_FILE]: JSON.stringify(data, null, 2) };
}
