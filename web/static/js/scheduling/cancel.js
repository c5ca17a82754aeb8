// "Cancel" with an inline confirmation (no window.confirm: it is easy to miss on a phone and cannot
// take a reason), shared by "my appointments" and the staff calendar (bookings and class sessions).
import { api, el, t } from "./common.js";

export function confirmControl({ label, question, perform, onDone, onError }) {
  const box = el("div", { class: "cancel-control" });
  const open = el("button", { type: "button", class: "cancel-open", text: label });
  box.append(open);
  open.addEventListener("click", () => {
    const reason = el("input", { type: "text", maxlength: "200", class: "cancel-reason" });
    const yes = el("button", { type: "button", class: "danger cancel-yes", text: t.cancel_yes });
    const no = el("button", { type: "button", class: "cancel-no", text: t.cancel_no });
    const confirm = el("div", { class: "cancel-confirm", role: "group", "aria-label": question },
      el("p", { text: question }),
      el("label", {}, t.cancel_reason, reason),
      el("div", { class: "row" }, yes, no));
    open.hidden = true;
    box.append(confirm);
    yes.focus();
    no.addEventListener("click", () => { confirm.remove(); open.hidden = false; open.focus(); });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        onDone(await perform(reason.value.trim()));
      } catch (err) {
        yes.disabled = false;
        onError(err);
      }
    });
  });
  return box;
}

export function cancelControl(booking, { onCancelled, onError }) {
  return confirmControl({
    label: t.cancel, question: t.cancel_confirm, onDone: onCancelled, onError,
    perform: (reason) => api("POST", `/api/scheduling/bookings/${encodeURIComponent(booking.id)}/cancel`, { reason }),
  });
}
