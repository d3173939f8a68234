// One run: summary and actions, gates, the step timeline, state, usage,
// children, webhooks, and the event log, kept live over SSE. Each section
// is redrawn only when its data changed, so a half-typed gate note
// survives an update.

import { events as eventStream, get, post } from "./api.js";
import {
  badge, clear, details, duration, between, errorBox, field, h, json, runLink, section, table, time, toast,
} from "./dom.js";
import { actorName, gateForm } from "./gateform.js";
import { snapshotsSection, stateSection } from "./state.js";
import { timeline } from "./timeline.js";

const FINAL = ["completed", "cancelled"];
const TREE_DEPTH = 4;
const TREE_MAX_RUNS = 60;

function summary(run, gates) {
  const waiting = gates.find((g) => g.status === "pending");
  const row = (k, v) => (v === null || v === undefined || v === "" ? null : [h("dt", {}, k), h("dd", {}, v)]);
  return h(
    "dl",
    { class: "summary" },
    row("Workflow", run.workflowName),
    row("Status", [badge(run.status), waiting ? h("span", { class: "note" }, ` waiting at gate ${waiting.name}`) : null]),
    row("Attempt", String(run.attempt)),
    row("Queue", run.queue),
    row("Failure class", run.failureClass),
    row("Created", time(run.createdAt)),
    row("Updated", time(run.updatedAt)),
    row("Completed", run.completedAt ? time(run.completedAt) : null),
    row("Took", run.completedAt ? duration(between(run.createdAt, run.completedAt)) : null),
    row("Lease owner", run.leaseOwner),
    row("Cancelled", run.cancelledAt ? [time(run.cancelledAt), ` by ${run.cancelActor || "?"}: ${run.cancelReason || ""}`] : null),
  );
}

function actions(run, refresh) {
  if (FINAL.includes(run.status)) return null;
  const reason = h("input", { name: "reason", placeholder: "why (optional)" });
  const act = async (what, button) => {
    button.disabled = true;
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      if (what === "cancel") body.actor = actorName() || "studio";
      await post(`/runs/${encodeURIComponent(run.id)}/${what}`, body);
      toast(what === "cancel" ? "Run cancelled." : "Recovery requested.");
      refresh();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      button.disabled = false;
    }
  };
  return h(
    "form",
    { class: "run-actions", "aria-label": "Run actions", onsubmit: (e) => e.preventDefault() },
    field("Reason", reason),
    h("button", { type: "button", class: "reject", onclick: (e) => act("cancel", e.currentTarget) }, "Cancel run"),
    h("button", { type: "button", onclick: (e) => act("recover", e.currentTarget) }, "Recover"),
  );
}

function gatesSection(gates, refresh) {
  if (!gates.length) return h("p", { class: "empty" }, "No gates.");
  return h(
    "ul",
    { class: "cards" },
    gates.map((g) =>
      h(
        "li",
        { class: `card gate ${g.status}` },
        h("h3", {}, g.name, " ", badge(g.status)),
        h("p", { class: "prompt" }, g.prompt || h("span", { class: "muted" }, "(no prompt)")),
        g.data !== null && g.data !== undefined ? json(g.data) : null,
        g.status === "pending"
          ? gateForm(g, async () => g.resolveToken, refresh)
          : h(
              "p",
              {},
              `${g.decision || g.status} by ${g.actor || "?"} `,
              time(g.resolvedAt),
              g.decisionPayload && Object.keys(g.decisionPayload).length ? details("decision payload", g.decisionPayload) : null,
            ),
      ),
    ),
  );
}

function usageSection(usage) {
  const totals = new Map();
  for (const u of usage) {
    const key = [u.provider || "—", u.model || u.kind || "—"].join("\u0000");
    const t = totals.get(key) || { records: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0, quantity: 0 };
    t.records += 1;
    t.inputTokens += u.inputTokens || 0;
    t.outputTokens += u.outputTokens || 0;
    t.totalTokens += u.totalTokens || (u.inputTokens || 0) + (u.outputTokens || 0);
    t.costUsd += u.costUsd || 0;
    totals.set(key, t);
  }
  return table(
    "Usage totals by model",
    ["Provider", "Model", "Records", "Input tokens", "Output tokens", "Total tokens", "Cost (USD)"],
    [...totals].map(([key, t]) => [
      ...key.split("\u0000"),
      String(t.records),
      t.inputTokens.toLocaleString(),
      t.outputTokens.toLocaleString(),
      t.totalTokens.toLocaleString(),
      `$${t.costUsd.toFixed(6)}`,
    ]),
    "No usage recorded.",
  );
}

/// Children as a tree: each child's own children are fetched, a few levels
/// and a few dozen runs deep at most.
async function childTree(edges, children, depth = 1, budget = { left: TREE_MAX_RUNS }) {
  const byId = new Map(children.map((c) => [c.id, c]));
  const items = [];
  for (const e of edges) {
    const child = byId.get(e.childRunId);
    let sub = null;
    if (child && depth < TREE_DEPTH && budget.left-- > 0) {
      try {
        const d = await get(`/runs/${encodeURIComponent(child.id)}`);
        if (d.runEdges.length) sub = await childTree(d.runEdges, d.childRuns, depth + 1, budget);
      } catch {
        sub = null;
      }
    }
    items.push(
      h(
        "li",
        {},
        h("span", { class: "muted" }, `${e.name} (${e.edgeType}) → `),
        runLink(e.childRunId),
        child ? [" ", child.workflowName, " ", badge(child.status)] : null,
        sub,
      ),
    );
  }
  return h("ul", { class: "tree" }, items);
}

function webhooksSection(recovery, deliveries) {
  return [
    h("h3", {}, "Recovery attempts"),
    table(
      "Recovery attempts",
      ["Reason", "Webhook", "Status", "HTTP", "Started", "Error"],
      recovery.map((r) => [r.reason, r.webhookUrl, badge(r.status), r.httpStatus ?? "—", time(r.createdAt), r.errorText || "—"]),
      "No recovery attempts.",
    ),
    h("h3", {}, "Channel deliveries"),
    table(
      "Channel deliveries",
      ["Event", "Status", "HTTP", "Sent", "Error"],
      deliveries.map((d) => [d.eventType, badge(d.status), d.httpStatus ?? "—", time(d.createdAt), d.errorText || "—"]),
      "No channel deliveries.",
    ),
  ];
}

function eventItem(ev) {
  return h(
    "li",
    { "data-seq": ev.seq },
    h("span", { class: "seq" }, `#${ev.seq}`),
    " ",
    h("code", {}, ev.type),
    " ",
    time(ev.createdAt),
    details("payload", ev.payload),
  );
}

export async function render(main, runId) {
  const path = `/runs/${encodeURIComponent(runId)}`;
  let detail = await get(path);
  const parts = {};
  const drawn = {};
  const slot = (key, title) => {
    parts[key] = h("div", {});
    return section(title, parts[key]);
  };
  const live = h("span", { class: "live", role: "status" }, "connecting…");
  const log = h("ol", { class: "events", role: "log", "aria-label": "Event stream" });
  clear(
    main,
    h("h1", {}, "Run ", h("span", { class: "mono" }, runId)),
    h("div", { id: "run-head" }, (parts.head = h("div", {}))),
    slot("gates", "Gates"),
    slot("steps", "Steps"),
    slot("state", "State"),
    slot("snapshots", "Snapshots"),
    slot("usage", "Usage"),
    slot("children", "Children"),
    slot("webhooks", "Webhooks"),
    section("Events", h("p", {}, live), log),
  );

  let refreshing = null;
  let again = false;
  const refresh = async () => {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = (async () => {
      try {
        detail = await get(path);
        await draw();
      } catch (err) {
        toast(err.message, "error");
      }
    })();
    await refreshing;
    refreshing = null;
    if (again) {
      again = false;
      refresh();
    }
  };

  /// Redraw `key` from `data` unless it is what is already shown.
  const put = async (key, data, make) => {
    const fingerprint = JSON.stringify(data);
    if (drawn[key] === fingerprint) return;
    drawn[key] = fingerprint;
    clear(parts[key], await make());
  };
  const draw = async () => {
    const d = detail;
    await put("head", [d.run, d.gates.map((g) => g.status)], () => [
      summary(d.run, d.gates),
      actions(d.run, refresh),
      h("div", { class: "row" }, details("input", d.run.input), details("result", d.run.result), d.run.error ? details("error", d.run.error) : null, details("metadata", d.run.metadata)),
    ]);
    await put("gates", d.gates, () => gatesSection(d.gates, refresh));
    await put("steps", [d.steps, d.events.filter((e) => e.type.startsWith("step.")).length], () => timeline(d.steps, d.events));
    await put("state", [d.state, d.stateVersions], () => stateSection(d.state, d.stateVersions));
    await put("usage", d.usage, () => usageSection(d.usage));
    await put("children", d.runEdges.map((e) => e.childRunId).concat(d.childRuns.map((c) => c.status)), async () =>
      d.runEdges.length ? childTree(d.runEdges, d.childRuns) : h("p", { class: "empty" }, "No child runs."),
    );
    await put("webhooks", [d.recoveryAttempts, d.channelDeliveries], () => webhooksSection(d.recoveryAttempts, d.channelDeliveries));
    get(`${path}/snapshots`)
      .then(({ snapshots }) => put("snapshots", snapshots, () => snapshotsSection(snapshots)))
      .catch((err) => clear(parts.snapshots, errorBox(err)));
  };
  await draw();

  let last = 0;
  const addEvent = (ev) => {
    if (ev.seq <= last) return;
    last = ev.seq;
    // Follow the tail unless the reader scrolled up to look at older events.
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(eventItem(ev));
    if (atEnd) log.scrollTop = log.scrollHeight;
  };
  detail.events.forEach(addEvent);

  // The stream resumes after the last event shown; each event redraws the
  // run, a burst of them once.
  let timer = null;
  const source = eventStream(runId, last);
  source.onopen = () => (live.textContent = "● live");
  source.onerror = () => (live.textContent = "reconnecting…");
  source.onmessage = (msg) => {
    addEvent(JSON.parse(msg.data));
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  };
  return () => {
    source.close();
    clearTimeout(timer);
  };
}
