// Deployed workflows: every version with its digest, sandbox limits and
// granted resources, and a form that uploads a .wasm component.

import { get, query, request } from "./api.js";
import { clear, field, h, table, time, toast } from "./dom.js";

const mib = (bytes) => (bytes ? `${Math.round(bytes / 1048576)} MiB` : "default");
const ms = (v) => (v ? `${v.toLocaleString()} ms` : "default");

function uploadForm(reload) {
  const name = h("input", { name: "name", required: true, pattern: "[^/]+", spellcheck: "false" });
  const file = h("input", { name: "file", type: "file", accept: ".wasm,application/wasm", required: true });
  const memory = h("input", { name: "memoryMb", type: "number", min: 1, max: 256, inputmode: "numeric" });
  const cpu = h("input", { name: "cpuMs", type: "number", min: 1, max: 3600000, inputmode: "numeric" });
  const allow = h("input", { name: "allow", placeholder: "resource, resource", spellcheck: "false" });
  const status = h("p", { role: "status" });
  file.addEventListener("change", () => {
    if (!name.value && file.files[0]) name.value = file.files[0].name.replace(/\.wasm$/, "");
  });
  return h(
    "form",
    {
      class: "upload",
      "aria-label": "Deploy a workflow",
      onsubmit: async (e) => {
        e.preventDefault();
        const button = e.currentTarget.querySelector("button");
        button.disabled = true;
        status.textContent = "Deploying…";
        try {
          const q = query({ memoryMb: memory.value, cpuMs: cpu.value, allow: allow.value.replace(/\s+/g, "") });
          const bytes = await file.files[0].arrayBuffer();
          const { deployment } = await request("POST", `/workflows/${encodeURIComponent(name.value.trim())}${q}`, bytes, "application/wasm");
          status.textContent = `Deployed ${deployment.workflowName} version ${deployment.version}.`;
          toast(status.textContent);
          reload();
        } catch (err) {
          status.textContent = err.message;
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h2", {}, "Deploy a component"),
    h("div", { class: "row" }, field("Component (.wasm)", file), field("Workflow name", name)),
    h("div", { class: "row" }, field("Memory (MiB)", memory), field("CPU per activation (ms)", cpu), field("Granted resources", allow)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Deploy")),
    status,
  );
}

export async function render(main) {
  const list = h("div", {});
  const load = async () => {
    const { deployments } = await get("/workflows");
    const byName = new Map();
    for (const d of deployments) {
      if (!byName.has(d.workflowName)) byName.set(d.workflowName, []);
      byName.get(d.workflowName).push(d);
    }
    clear(
      list,
      byName.size
        ? [...byName].map(([name, versions]) =>
            h(
              "section",
              { "aria-label": name },
              h("h2", {}, name, h("span", { class: "muted" }, ` · ${versions.length} version${versions.length === 1 ? "" : "s"}`)),
              table(
                `Versions of ${name}`,
                ["Version", "Digest", "Memory", "CPU", "Granted resources", "Egress limits", "Deployed"],
                versions.map((d) => [
                  `v${d.version}`,
                  h("code", { title: d.digest }, `${d.digest.slice(0, 19)}…`),
                  mib(d.memoryLimitBytes),
                  ms(d.cpuLimitMs),
                  d.allow.length ? d.allow.join(", ") : h("span", { class: "muted" }, "none"),
                  `${ms(d.egressTimeoutMs)} · ${d.egressMaxBytes ? `${d.egressMaxBytes.toLocaleString()} B` : "default"}`,
                  time(d.createdAt),
                ]),
              ),
            ),
          )
        : h("p", { class: "empty" }, "No wasm workflows deployed. SDK workflows run from their own process and appear under Runs."),
    );
  };
  clear(main, h("h1", {}, "Workflows"), uploadForm(load), list);
  await load();
  return null;
}
