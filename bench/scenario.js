// One endpoint at one constant arrival rate: the benchmark's only k6 scenario,
// run unchanged against the rendered service and the baseline (bench/run.py).
import http from 'k6/http';

const BASE_URL = __ENV.BASE_URL;
const ENDPOINT = __ENV.ENDPOINT; // account | transfer | ready
const RATE = Number(__ENV.RATE);
const ACCOUNTS = Number(__ENV.ACCOUNTS);
const FIRST_ACCOUNT = Number(__ENV.FIRST_ACCOUNT);
// Each run's keys are new: RUN_ID is unique per k6 run, and the VU and iteration
// numbers are unique within one.
const RUN_ID = __ENV.RUN_ID;

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
  scenarios: {
    bench: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION,
      // Enough VUs for 100 ms per request at this rate; more would only mask a queue.
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(20, Math.ceil(RATE / 5)),
      gracefulStop: '2s',
    },
  },
};

function account() {
  return FIRST_ACCOUNT + Math.floor(Math.random() * ACCOUNTS);
}

export default function () {
  if (ENDPOINT === 'account') {
    http.get(`${BASE_URL}/v1/accounts/${account()}`, { tags: { name: 'account' } });
  } else if (ENDPOINT === 'transfer') {
    const from = account();
    let to = account();
    if (to === from) to = from === FIRST_ACCOUNT ? from + 1 : from - 1;
    const body = JSON.stringify({ from_account_id: from, to_account_id: to, amount_minor: 1 });
    http.post(`${BASE_URL}/v1/transfers`, body, {
      headers: {
        'Content-Type': 'application/json',
        'Idempotency-Key': `${RUN_ID}-${__VU}-${__ITER}`,
      },
      tags: { name: 'transfer' },
    });
  } else {
    http.get(`${BASE_URL}/health/ready`, { tags: { name: 'ready' } });
  }
}

export function handleSummary(data) {
  const metric = (name) => (data.metrics[name] ? data.metrics[name].values : {});
  const duration = metric('http_req_duration');
  const summary = {
    requests: metric('http_reqs').count || 0,
    failed_rate: metric('http_req_failed').rate || 0,
    dropped_iterations: metric('dropped_iterations').count || 0,
    p50_ms: duration['p(50)'],
    p95_ms: duration['p(95)'],
    p99_ms: duration['p(99)'],
    max_ms: duration.max,
  };
  return { [__ENV.SUMMARY_FILE]: JSON.stringify(summary) };
}
