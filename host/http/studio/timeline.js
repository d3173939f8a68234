// Steps and their attempts, read from the step rows and the run's
// `step.started` / `step.completed` / `step.failed` events.

import { badge, between, details, duration, h, time } from "./dom.js";

/// stepId → [{attempt, startedAt, endedAt, outcome, error, resumeDecision}]
function attemptsByStep(events) {
  const out = new Map();
  for (const ev of events) {
    const id = ev.payload && ev.payload.stepId;
    if (!id || !ev.type.startsWith("step.")) continue;
    if (!out.has(id)) out.set(id, []);
    const list = out.get(id);
    const open = list[list.length - 1];
    if (ev.type === "step.started") {
      list.push({ attempt: ev.payload.attempt ?? list.length + 1, startedAt: ev.createdAt, outcome: "running" });
    } else if (open && open.outcome === "running") {
      open.endedAt = ev.createdAt;
      open.outcome = ev.type === "step.completed" ? "completed" : "failed";
      open.error = ev.payload.error;
      open.resumeDecision = ev.payload.resumeDecision;
      open.retryable = ev.payload.retryable;
    }
  }
  return out;
}

function attemptLine(a) {
  return h(
    "li",
    {},
    `Attempt ${a.attempt}: `,
    badge(a.outcome),
    " ",
    time(a.startedAt),
    a.endedAt ? ` · ${duration(between(a.startedAt, a.endedAt))}` : null,
    a.resumeDecision ? h("span", { class: "note" }, ` · resume decision: ${a.resumeDecision}`) : null,
    a.retryable !== undefined ? h("span", { class: "muted" }, a.retryable ? " · retryable" : " · not retryable") : null,
    a.error ? details("error", a.error) : null,
  );
}

export function timeline(steps, events) {
  if (!steps.length) return h("p", { class: "empty" }, "No steps yet.");
  const attempts = attemptsByStep(events);
  const ordered = [...steps].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
  return h(
    "ol",
    { class: "timeline" },
    ordered.map((s) => {
      const tries = attempts.get(s.id) || [];
      const took = between(s.startedAt, s.completedAt);
      return h(
        "li",
        { class: `step ${s.status}` },
        h(
          "div",
          { class: "step-head" },
          h("strong", {}, s.name),
          " ",
          badge(s.status),
          h("span", { class: "muted" }, ` · ${s.attempt} attempt${s.attempt === 1 ? "" : "s"}`),
          took !== null ? h("span", { class: "muted" }, ` · ${duration(took)}`) : null,
          h("span", { class: "muted" }, ` · replay ${s.resumeContract.replay}`),
        ),
        h("div", { class: "step-body" }, details("input", s.input), details("output", s.output), s.error ? details("error", s.error) : null),
        tries.length ? h("ul", { class: "attempts" }, tries.map(attemptLine)) : null,
      );
    }),
  );
}
