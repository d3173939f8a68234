// Pending gates, oldest first: everything waiting for a person, each with
// its prompt and data and an Approve/Reject form.

import { get, query } from "./api.js";
import { clear, h, json, runLink, time } from "./dom.js";
import { gateForm } from "./gateform.js";

const PAGE = 50;
const REFRESH_MS = 3000;

/// The list answer leaves out resolve tokens; the run's detail has them.
async function tokenOf(gate) {
  const detail = await get(`/runs/${encodeURIComponent(gate.runId)}`);
  const found = detail.gates.find((g) => g.id === gate.id);
  if (!found || found.status !== "pending") throw new Error(`Gate ${gate.name} is no longer pending.`);
  return found.resolveToken;
}

function card(g, reload) {
  return h(
    "li",
    { class: "card gate pending" },
    h("h2", {}, g.name),
    h("p", { class: "muted" }, g.workflowName, " · ", runLink(g.runId), " · waiting since ", time(g.createdAt)),
    h("p", { class: "prompt" }, g.prompt || h("span", { class: "muted" }, "(no prompt)")),
    g.data !== null && g.data !== undefined ? json(g.data) : null,
    gateForm(g, () => tokenOf(g), reload),
  );
}

export async function render(main, _arg, params) {
  const list = h("div", {});
  const pager = h("nav", { class: "pager", "aria-label": "Pages of gates" });
  clear(main, h("h1", {}, "Pending gates"), h("p", { class: "muted" }, "Oldest first."), list, pager);
  let shown = null;
  const load = async () => {
    const { gates, nextCursor } = await get(`/gates${query({ status: "pending", limit: PAGE, before: params.get("before") })}`);
    const ids = gates.map((g) => g.id).join();
    if (ids === shown) return;
    shown = ids;
    clear(
      list,
      gates.length ? h("ul", { class: "cards" }, gates.map((g) => card(g, load))) : h("p", { class: "empty" }, "Nothing is waiting for a person."),
    );
    clear(pager, nextCursor ? h("a", { href: `#/gates?before=${encodeURIComponent(nextCursor)}` }, "More gates →") : null);
  };
  await load();
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") load().catch(() => {});
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
