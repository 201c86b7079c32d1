// The ledger panels: open accounts, list them page by page, transfer between them
// with an Idempotency-Key, and list an account's transfers.
import { BASE_CHANGED, call } from "./api.js";
import { $, clear, el, showMessage, showProblem } from "./dom.js";

const HISTORY_LIMIT = 20;
const pages = { cursors: [null], index: 0, next: null };

function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2; // a code Intl does not know: show cents, the common case
  }
}

/** Minor units as a decimal amount, by string arithmetic so 2^53 - 1 stays exact. */
function money(minor, currency) {
  const digits = fractionDigits(currency);
  const text = String(minor).padStart(digits + 1, "0");
  const whole = text.slice(0, text.length - digits).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = digits ? `.${text.slice(text.length - digits)}` : "";
  return `${whole}${fraction} ${currency}`;
}

function randomKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context (https or localhost); over plain http on another
  // host, 128 random bits in hex make an equally good key.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function newKey() {
  $("transfer-key").value = randomKey();
}

function useAccount(field, id) {
  $(field).value = id;
}

function accountRow(account) {
  const id = account.id;
  return el("tr", { "data-account-id": id, "data-balance-minor": account.balance_minor },
    el("td", {}, `#${id}`),
    el("td", {}, account.owner),
    el("td", { class: "number" }, money(account.balance_minor, account.currency),
      el("span", { class: "minor" }, `${account.balance_minor} minor`)),
    el("td", { class: "optional" },
      new Date(account.created_at).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })),
    el("td", {}, el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary small", "aria-label": `Send from account #${id}`,
        onclick: () => useAccount("transfer-from", id) }, "From"),
      el("button", { type: "button", class: "secondary small", "aria-label": `Send to account #${id}`,
        onclick: () => useAccount("transfer-to", id) }, "To"),
      el("button", { type: "button", class: "secondary small", "aria-label": `Transfers of account #${id}`,
        onclick: () => loadHistory(id) }, "Transfers"))));
}

async function loadAccounts() {
  const query = new URLSearchParams({ limit: $("accounts-limit").value });
  const cursor = pages.cursors[pages.index];
  if (cursor) query.set("cursor", cursor);
  const result = await call("GET", `/v1/accounts?${query}`);
  const output = $("accounts-result");
  if (!result.ok) {
    showProblem(output, result);
    return;
  }
  clear(output);
  const { items, next_cursor: next } = result.data;
  pages.next = next;
  $("accounts-body").replaceChildren(...items.map(accountRow));
  const range = items.length ? `accounts #${items[0].id} to #${items[items.length - 1].id}` : "no accounts";
  $("accounts-page").textContent = `Page ${pages.index + 1}: ${range}${next ? "" : " (last page)"}.`;
  $("accounts-previous").disabled = pages.index === 0;
  $("accounts-next").disabled = !next;
}

function firstPage() {
  pages.cursors = [null];
  pages.index = 0;
  return loadAccounts();
}

async function openAccount(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    owner: form.owner.value,
    currency: form.currency.value.trim().toUpperCase(),
    opening_balance_minor: Number(form.opening_balance_minor.value),
  };
  const result = await call("POST", "/v1/accounts", { body });
  const output = $("account-result");
  if (!result.ok) {
    showProblem(output, result);
    return;
  }
  const account = result.data;
  showMessage(output, "ok", `Opened account #${account.id}`,
    `${account.owner}: ${money(account.balance_minor, account.currency)}.`);
  form.reset(); // the next account starts blank (and not marked invalid for being empty)
  await loadAccounts();
}

async function sendTransfer(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const key = form.idempotency_key.value;
  const body = {
    from_account_id: Number(form.from_account_id.value),
    to_account_id: Number(form.to_account_id.value),
    amount_minor: Number(form.amount_minor.value),
  };
  const result = await call("POST", "/v1/transfers", { body, headers: { "Idempotency-Key": key } });
  const replayed = result.headers.get("idempotent-replayed") === "true";
  const output = $("transfer-result");
  if (!result.ok) {
    showProblem(output, result, replayed ? "Replayed: the stored answer to this Idempotency-Key" : "");
  } else if (replayed) {
    const transfer = result.data;
    showMessage(output, "replay", `Replayed transfer #${transfer.id}`,
      `Idempotent-Replayed: true. The API answered with the stored response to key ${key}; ` +
      "no money moved this time.");
  } else {
    const transfer = result.data;
    showMessage(output, "ok", `Transfer #${transfer.id} done`,
      `${money(transfer.amount_minor, transfer.currency)} from account #${transfer.from_account_id} ` +
      `to #${transfer.to_account_id}.`,
      "Send it again with the same key to see the replay; take a new key for another transfer.");
  }
  await loadAccounts();
  const shown = $("history-account").value;
  if (shown && [body.from_account_id, body.to_account_id].includes(Number(shown))) await loadHistory(shown);
}

async function loadHistory(id) {
  $("history-account").value = id;
  const result = await call("GET", `/v1/accounts/${id}/transfers?limit=${HISTORY_LIMIT}`);
  const output = $("history-result");
  if (!result.ok) {
    $("history-body").replaceChildren();
    showProblem(output, result);
    return;
  }
  const { items, next_cursor: next } = result.data;
  $("history-body").replaceChildren(...items.map((transfer) => el("tr", {},
    el("td", {}, `#${transfer.id}`),
    el("td", {}, `#${transfer.from_account_id}`),
    el("td", {}, `#${transfer.to_account_id}`),
    el("td", { class: "number" }, money(transfer.amount_minor, transfer.currency)))));
  if (!items.length) showMessage(output, "ok", `Account #${id} has no transfers yet.`);
  else if (next) showMessage(output, "ok", `The first ${HISTORY_LIMIT} transfers of account #${id}.`);
  else clear(output);
}

$("account-form").addEventListener("submit", openAccount);
$("transfer-form").addEventListener("submit", sendTransfer);
$("transfer-new-key").addEventListener("click", () => {
  newKey();
  clear($("transfer-result"));
});
$("history-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadHistory($("history-account").value);
});
$("accounts-refresh").addEventListener("click", loadAccounts);
$("accounts-limit").addEventListener("change", firstPage);
$("accounts-previous").addEventListener("click", () => {
  pages.index = Math.max(0, pages.index - 1);
  loadAccounts();
});
$("accounts-next").addEventListener("click", () => {
  if (!pages.next) return;
  pages.cursors[pages.index + 1] = pages.next;
  pages.index += 1;
  loadAccounts();
});
document.addEventListener(BASE_CHANGED, firstPage);

newKey();
firstPage();
