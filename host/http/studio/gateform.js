// Approve or reject a pending gate, with an optional note and the name of
// whoever decides (remembered in this browser, it is not a secret).

import { post } from "./api.js";
import { field, h, toast } from "./dom.js";

const ACTOR = "tidebase.actor";

/// The name this browser decides and cancels under, if it gave one.
export const actorName = () => localStorage.getItem(ACTOR);

/// `token()` gives the gate's resolve token (the pending-gates list has to
/// look it up); `done()` runs after a decision was recorded.
export function gateForm(gate, token, done) {
  const actor = h("input", { name: "actor", value: actorName() || "", autocomplete: "name", required: true });
  const note = h("textarea", { name: "note", rows: 2 });
  const status = h("p", { class: "error", role: "alert" });
  const decide = async (decision, button) => {
    if (!actor.reportValidity()) return;
    const buttons = button.form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    localStorage.setItem(ACTOR, actor.value.trim());
    try {
      const body = { token: await token(), decision, actor: actor.value.trim() };
      if (note.value.trim()) body.payload = { note: note.value.trim() };
      await post(`/runs/${encodeURIComponent(gate.runId)}/gates/${encodeURIComponent(gate.id)}/resolve`, body);
      toast(`Gate ${gate.name} ${decision}.`);
      done();
    } catch (err) {
      status.textContent = err.message;
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  return h(
    "form",
    { class: "gate-form", "aria-label": `Decide gate ${gate.name}`, onsubmit: (e) => e.preventDefault() },
    field("Your name", actor),
    field("Note (optional)", note),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "approve", onclick: (e) => decide("approved", e.currentTarget) }, "Approve"),
      h("button", { type: "button", class: "reject", onclick: (e) => decide("rejected", e.currentTarget) }, "Reject"),
    ),
    status,
  );
}
