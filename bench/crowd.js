// Many clients, few requests each: CLIENTS virtual users, each on its own keep-alive
// connection, reading an account and then thinking, so that together they send
// about RATE requests per second (bench/crowd.py). Thousands of open connections at
// a modest rate is what "high concurrency" means to most services.
import http from 'k6/http';
import { sleep } from 'k6';
import { account, ledgerHeaders, summaryOf } from './k6_common.js';

const BASE_URL = __ENV.BASE_URL;
const CLIENTS = Number(__ENV.CLIENTS);
// Seconds between one client's requests, on average.
const THINK = CLIENTS / Number(__ENV.RATE);

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
  scenarios: {
    crowd: {
      executor: 'constant-vus',
      vus: CLIENTS,
      duration: __ENV.DURATION,
      gracefulStop: '5s',
    },
  },
};

export default function () {
  // Spread the first requests, and so the connections' opening, over one think time.
  if (__ITER === 0) sleep(Math.random() * THINK);
  http.get(`${BASE_URL}/v1/accounts/${account()}`, {
    headers: ledgerHeaders(),
    tags: { name: 'account' },
  });
  // Uniform around THINK: clients that drift apart, not waves.
  sleep(THINK * (0.5 + Math.random()));
}

export function handleSummary(data) {
  return summaryOf(data);
}
