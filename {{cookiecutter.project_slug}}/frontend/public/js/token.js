// The bearer token the console sends with every API request. Kept in this tab only
// (sessionStorage): a token is a credential, and closing the tab forgets it.
import { $ } from "./dom.js";

const STORAGE_KEY = "console:bearer-token";

function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return "";
  }
}

function store(token) {
  try {
    if (token) sessionStorage.setItem(STORAGE_KEY, token);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage refused (a private window): the token lasts until the page reloads.
  }
  remembered = token;
}

let remembered = storedToken();

export function currentToken() {
  return remembered;
}

function showState() {
  $("api-token-state").textContent = remembered
    ? "Requests carry this token."
    : "No token: the ledger answers 401.";
}

export function startTokenForm() {
  $("api-token").value = remembered;
  showState();
  $("api-token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    store($("api-token").value.trim().replace(/^Bearer\s+/i, ""));
    showState();
  });
  $("api-token-clear").addEventListener("click", () => {
    $("api-token").value = "";
    store("");
    showState();
  });
}
