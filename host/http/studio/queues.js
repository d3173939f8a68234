// Queues (depth, running, caps, rate) and cron schedules (next fire).

import { get } from "./api.js";
import { clear, h, section, table, time } from "./dom.js";

const REFRESH_MS = 3000;
const dash = (v) => (v === null || v === undefined ? h("span", { class: "muted" }, "—") : String(v));

export async function render(main) {
  const queues = h("div", {});
  const schedules = h("div", {});
  clear(main, h("h1", {}, "Queues and schedules"), section("Queues", queues), section("Schedules", schedules));
  const load = async () => {
    const [q, s] = await Promise.all([get("/queues"), get("/schedules")]);
    clear(
      queues,
      table(
        "Queues",
        ["Queue", "Depth (queued)", "Running", "Concurrency cap", "Rate per minute", "Failed", "Completed", "Cancelled", "Invoke URL"],
        q.queues.map((x) => [
          h("a", { href: `#/runs?queue=${encodeURIComponent(x.name)}` }, x.name),
          String(x.queued),
          String(x.running),
          dash(x.config && x.config.concurrency),
          dash(x.config && x.config.ratePerMinute),
          String(x.failed),
          String(x.completed),
          String(x.cancelled),
          dash(x.config && x.config.invokeUrl),
        ]),
        "No queues.",
      ),
    );
    clear(
      schedules,
      table(
        "Schedules",
        ["Schedule", "Cron", "Workflow", "Queue", "Enabled", "Next fire", "Last enqueued"],
        s.schedules.map((x) => [x.name, h("code", {}, x.cron), x.workflowName, x.queue, x.enabled ? "yes" : "no", time(x.nextRunAt), time(x.lastEnqueuedAt)]),
        "No schedules.",
      ),
    );
  };
  await load();
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") load().catch(() => {});
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
