// Live state, its versions with a diff between any two, and snapshots.

import { clear, details, field, h, json, table, time } from "./dom.js";
import { jsonDiff } from "./diff.js";

function versionLabel(v) {
  return `v${v.version}${v.label ? ` · ${v.label}` : ""}${v.reason ? ` · ${v.reason}` : ""}`;
}

/// Two pickers (defaulting to the last two versions) and their diff.
function compare(versions) {
  if (versions.length < 2) return null;
  const options = (selected) =>
    versions.map((v, i) => h("option", { value: i, selected: i === selected }, versionLabel(v)));
  const from = h("select", { name: "from" }, options(versions.length - 2));
  const to = h("select", { name: "to" }, options(versions.length - 1));
  const out = h("div", { class: "diff-out" });
  const update = () => clear(out, jsonDiff(versions[from.value].value, versions[to.value].value));
  from.addEventListener("change", update);
  to.addEventListener("change", update);
  update();
  return h("div", { class: "compare" }, h("div", { class: "row" }, field("From", from), field("To", to)), out);
}

export function stateSection(state, versions) {
  return [
    state
      ? h("div", {}, h("p", { class: "muted" }, `Live state, version ${state.version}, updated `, time(state.updatedAt)), json(state.value))
      : h("p", { class: "empty" }, "No live state."),
    versions.length
      ? h(
          "div",
          {},
          h("h3", {}, "Versions"),
          table(
            "State versions",
            ["Version", "Label", "Reason", "Importance", "Saved", "Value"],
            versions.map((v) => [
              `v${v.version}`,
              v.label || "—",
              v.reason || "—",
              v.importance,
              time(v.createdAt),
              details("value", v.value),
            ]),
          ),
          h("h3", {}, "Compare versions"),
          compare(versions),
        )
      : null,
  ];
}

export function snapshotsSection(snapshots) {
  return table(
    "Snapshots",
    ["Label", "Stream", "Version", "Taken", "Value"],
    snapshots.map((s) => [s.label || "—", s.streamId, `v${s.version}`, time(s.createdAt), details("value", s.value)]),
    "No snapshots.",
  );
}
