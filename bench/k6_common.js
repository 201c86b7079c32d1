// What the benchmark's k6 scripts share: the account a request reads or moves
// money between, the credentials it carries, and the summary bench/search.py and
// bench/crowd.py read back.
const ACCOUNTS = Number(__ENV.ACCOUNTS);
const FIRST_ACCOUNT = Number(__ENV.FIRST_ACCOUNT);
// One bearer token for the whole run (bench/identity_provider.py), or none.
const AUTHORIZATION = __ENV.TOKEN ? { Authorization: `Bearer ${__ENV.TOKEN}` } : {};

export function account() {
  return FIRST_ACCOUNT + Math.floor(Math.random() * ACCOUNTS);
}

// Two different accounts, for a transfer.
export function twoAccounts() {
  const from = account();
  const to = account();
  if (to !== from) return [from, to];
  return [from, from === FIRST_ACCOUNT ? from + 1 : from - 1];
}

// A ledger request's headers: `extra` and, given a token, its Authorization.
export function ledgerHeaders(extra = {}) {
  return { ...extra, ...AUTHORIZATION };
}

export function summaryOf(data) {
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
