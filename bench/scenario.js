// One endpoint at one constant arrival rate, run unchanged against each server
// (bench/run.py); bench/crowd.js is the other scenario, many idle clients.
import http from 'k6/http';
import { account, ledgerHeaders, summaryOf, twoAccounts } from './k6_common.js';

const BASE_URL = __ENV.BASE_URL;
const ENDPOINT = __ENV.ENDPOINT; // account | transfer | ready
const RATE = Number(__ENV.RATE);
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

export default function () {
  if (ENDPOINT === 'account') {
    http.get(`${BASE_URL}/v1/accounts/${account()}`, {
      headers: ledgerHeaders(),
      tags: { name: 'account' },
    });
  } else if (ENDPOINT === 'transfer') {
    const [from, to] = twoAccounts();
    const body = JSON.stringify({ from_account_id: from, to_account_id: to, amount_minor: 1 });
    http.post(`${BASE_URL}/v1/transfers`, body, {
      headers: ledgerHeaders({
        'Content-Type': 'application/json',
        'Idempotency-Key': `${RUN_ID}-${__VU}-${__ITER}`,
      }),
      tags: { name: 'transfer' },
    });
  } else {
    // As a prober calls it: no credentials.
    http.get(`${BASE_URL}/health/ready`, { tags: { name: 'ready' } });
  }
}

export function handleSummary(data) {
  return summaryOf(data);
}
