// The Runs view: filters kept in the address (so a filtered list can be
// bookmarked), cursor pages of 50, and a refresh every few seconds.

import { ApiError, get, query } from "./api.js";
import { badge, clear, duration, between, errorBox, field, h, runLink, table, time } from "./dom.js";

const STATUSES = ["pending", "queued", "running", "completed", "failed", "cancelled"];
const PAGE = 50;
const REFRESH_MS = 2000;

/// datetime-local value → ISO instant, and back.
const toIso = (local) => (local ? new Date(local).toISOString() : "");
const toLocal = (iso) => {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d) ? "" : new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

function filterForm(params) {
  const statuses = new Set((params.get("status") || "").split(",").filter(Boolean));
  const input = (name, attrs = {}) => h("input", { name, value: params.get(name) || "", ...attrs });
  return h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Status"),
      STATUSES.map((s) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "status", value: s, checked: statuses.has(s) }), s),
      ),
    ),
    field("Run id", input("q", { placeholder: "run_…", spellcheck: "false" })),
    field("Workflow", input("workflow", { list: "workflow-names" })),
    field("Queue", input("queue")),
    field("Created since", h("input", { type: "datetime-local", name: "since", value: toLocal(params.get("since")) })),
    field("Created until", h("input", { type: "datetime-local", name: "until", value: toLocal(params.get("until")) })),
    h("datalist", { id: "workflow-names" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), h("a", { href: "#/runs", class: "button quiet" }, "Clear")),
  );
}

/// The form's filters as the address's query.
function formQuery(form) {
  const data = new FormData(form);
  return query({
    status: data.getAll("status").join(","),
    q: data.get("q").trim(),
    workflow: data.get("workflow").trim(),
    queue: data.get("queue").trim(),
    since: toIso(data.get("since")),
    until: toIso(data.get("until")),
  });
}

/// Which runs wait at which gate, to say so in the list (the oldest 200).
async function waitingGates() {
  try {
    const { gates } = await get("/gates?status=pending&limit=200");
    return new Map(gates.map((g) => [g.runId, g.name]));
  } catch (err) {
    if (err instanceof ApiError) return new Map(); // an older server without GET /gates
    throw err;
  }
}

function rows(runs, waiting) {
  return runs.map((r) => [
    runLink(r.id),
    r.workflowName,
    h("span", {}, badge(r.status), waiting.has(r.id) ? h("span", { class: "note" }, ` waiting at gate ${waiting.get(r.id)}`) : null),
    r.queue || h("span", { class: "muted" }, "—"),
    String(r.attempt),
    time(r.createdAt),
    duration(between(r.createdAt, r.completedAt || r.cancelledAt || (r.status === "failed" ? r.updatedAt : null))),
  ]);
}

export async function render(main, _arg, params) {
  const form = filterForm(params);
  const list = h("div", { id: "runs-list" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of runs" });
  const stamp = h("p", { class: "muted small" });
  clear(main, h("h1", {}, "Runs"), form, stamp, list, pager);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/runs${formQuery(form)}`;
  });
  get("/workflows")
    .then(({ deployments }) => {
      const names = [...new Set(deployments.map((d) => d.workflowName))];
      clear(form.querySelector("datalist"), names.map((n) => h("option", { value: n })));
    })
    .catch(() => {});

  const api = query({
    status: params.get("status"),
    workflow: params.get("workflow"),
    queue: params.get("queue"),
    q: params.get("q"),
    since: params.get("since"),
    until: params.get("until"),
    before: params.get("before"),
    limit: PAGE,
  });
  const load = async () => {
    const [{ runs, nextCursor }, waiting] = await Promise.all([get(`/runs${api}`), waitingGates()]);
    clear(list, table("Runs, newest first", ["Run", "Workflow", "Status", "Queue", "Attempt", "Created", "Took"], rows(runs, waiting), "No runs match."));
    const here = new URLSearchParams(params);
    here.delete("before");
    const first = here.toString();
    const older = new URLSearchParams(here);
    if (nextCursor) older.set("before", nextCursor);
    clear(
      pager,
      params.get("before") ? h("a", { href: `#/runs${first ? `?${first}` : ""}` }, "← Newest") : null,
      nextCursor ? h("a", { href: `#/runs?${older}`, rel: "next" }, "Older runs →") : null,
    );
    stamp.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
  };
  await load();
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") load().catch((err) => clear(list, errorBox(err)));
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
