// Closed-loop transfers for bench/outbox.py: VUS clients, each POSTing a transfer
// as soon as its previous one is answered, for DURATION; counts the 201s.
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL;
const ACCOUNTS = Number(__ENV.ACCOUNTS);
const FIRST_ACCOUNT = Number(__ENV.FIRST_ACCOUNT);
const RUN_ID = __ENV.RUN_ID;
const created = new Counter('transfers_created');

export const options = {
  discardResponseBodies: true,
  scenarios: {
    closed: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 32),
      duration: __ENV.DURATION || '10s',
      gracefulStop: '5s',
    },
  },
};

function account() {
  return FIRST_ACCOUNT + Math.floor(Math.random() * ACCOUNTS);
}

export default function () {
  const from = account();
  let to = account();
  if (to === from) to = from === FIRST_ACCOUNT ? from + 1 : from - 1;
  const body = JSON.stringify({ from_account_id: from, to_account_id: to, amount_minor: 1 });
  const response = http.post(`${BASE_URL}/v1/transfers`, body, {
    headers: {
      'Content-Type': 'application/json',
      'Idempotency-Key': `${RUN_ID}-${__VU}-${__ITER}`,
    },
  });
  if (response.status === 201) created.add(1);
}

export function handleSummary(data) {
  const metric = (name) => (data.metrics[name] ? data.metrics[name].values : {});
  const summary = {
    created: metric('transfers_created').count || 0,
    requests: metric('http_reqs').count || 0,
  };
  return { [__ENV.SUMMARY_FILE]: JSON.stringify(summary) };
}
