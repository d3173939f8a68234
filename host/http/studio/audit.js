// Audit: the receipts of brokered egress calls, newest first, filtered by
// run, resource and decision.

import { get, query } from "./api.js";
import { badge, clear, field, h, runLink, table } from "./dom.js";

const PAGE = 50;

export async function render(main, _arg, params) {
  const input = (name) => h("input", { name, value: params.get(name) || "", spellcheck: "false" });
  const decision = h(
    "select",
    { name: "decision" },
    ["", "allowed", "denied"].map((d) => h("option", { value: d, selected: params.get("decision") === d }, d || "any")),
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter receipts",
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.currentTarget);
        location.hash = `#/audit${query({ runId: data.get("runId").trim(), resource: data.get("resource").trim(), decision: data.get("decision") })}`;
      },
    },
    field("Run id", input("runId")),
    field("Resource", input("resource")),
    field("Decision", decision),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), h("a", { href: "#/audit", class: "button quiet" }, "Clear")),
  );
  const filters = { runId: params.get("runId"), resource: params.get("resource"), decision: params.get("decision") };
  const { receipts, nextCursor } = await get(`/egress/receipts${query({ ...filters, limit: PAGE, before: params.get("before") })}`);
  const older = query({ ...filters, before: nextCursor });
  clear(
    main,
    h("h1", {}, "Audit"),
    h("p", { class: "muted" }, "Every HTTP call a workflow made through the egress broker, allowed or denied. Secrets are never recorded."),
    form,
    table(
      "Egress receipts, newest first",
      ["When", "Run", "Step", "Resource", "Request", "Decision", "Status", "Bytes", "Took"],
      receipts.map((r) => [
        h("time", { datetime: r.at }, new Date(r.at).toLocaleString()),
        runLink(r.runId),
        r.step ? `${r.step} #${r.attempt}` : "—",
        r.resource || "—",
        h("code", {}, `${r.method} ${r.host}${r.path}`),
        h("span", {}, badge(r.decision), r.reason ? h("span", { class: "note" }, ` ${r.class || ""} ${r.reason}`) : null),
        r.status ?? "—",
        String(r.bytes),
        `${r.durationMs} ms`,
      ]),
      "No egress calls recorded.",
    ),
    h("nav", { class: "pager", "aria-label": "Pages of receipts" }, nextCursor ? h("a", { href: `#/audit${older}` }, "Older receipts →") : null),
  );
  return null;
}
