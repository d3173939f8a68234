// Studio's entry point: a hash router over the views, and the API-key
// sign-in shown whenever the server refuses a request.

import { AuthError, apiKey, get, onRefused, setApiKey } from "./api.js";
import { clear, errorBox, field, h } from "./dom.js";
import * as audit from "./audit.js";
import * as gates from "./gates.js";
import * as queues from "./queues.js";
import * as run from "./run.js";
import * as runs from "./runs.js";
import * as workflows from "./workflows.js";

const main = document.getElementById("view");
const signOut = document.getElementById("sign-out");
let cleanup = null;
let signingIn = false;

/// `#/runs/ID?x=y` → the view, its path arguments and its query.
function route() {
  const [path, q] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(q || "");
  switch (parts[0]) {
    case "runs":
      return parts[1] ? ["runs", run, parts[1], params] : ["runs", runs, null, params];
    case "gates":
      return ["gates", gates, null, params];
    case "workflows":
      return ["workflows", workflows, null, params];
    case "queues":
      return ["queues", queues, null, params];
    case "audit":
      return ["audit", audit, null, params];
    default:
      return ["runs", runs, null, params];
  }
}

async function show() {
  if (signingIn) return;
  if (cleanup) cleanup();
  cleanup = null;
  const [nav, view, arg, params] = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  signOut.hidden = !apiKey();
  clear(main, h("p", { class: "muted" }, "Loading…"));
  try {
    cleanup = await view.render(main, arg, params);
  } catch (err) {
    if (err instanceof AuthError) return;
    clear(main, errorBox(err));
  }
}

/// The sign-in form: the key is checked against the API before it is kept.
function signIn(message) {
  if (cleanup) cleanup();
  cleanup = null;
  signingIn = true;
  signOut.hidden = true;
  const input = h("input", { type: "password", name: "apiKey", autocomplete: "current-password", required: true });
  const status = h("p", { class: "error", role: "alert" }, message);
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e) => {
        e.preventDefault();
        setApiKey(input.value.trim());
        try {
          await get("/schedules");
          signingIn = false;
          show();
        } catch (err) {
          setApiKey(null);
          signingIn = true;
          status.textContent = err instanceof AuthError ? "That API key was refused" : err.message;
          input.focus();
        }
      },
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "This server requires its API key (TIDEBASE_API_KEY). Studio keeps it for this browser tab only."),
    field("API key", input),
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  clear(main, form);
  input.focus();
}

onRefused(() => {
  if (!signingIn) signIn(apiKey() ? "That API key was refused" : "This server needs an API key.");
});

signOut.addEventListener("click", () => {
  setApiKey(null);
  signIn("");
});

window.addEventListener("hashchange", () => {
  show();
  main.focus({ preventScroll: true });
});
show();
