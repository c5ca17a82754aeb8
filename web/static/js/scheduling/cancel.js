// "Cancel appointment" with an inline confirmation (no window.confirm: it is easy to miss on a phone
// and cannot take a reason), shared by "my appointments" and the staff calendar.
import { api, el, t } from "./common.js";

export function cancelControl(booking, { onCancelled, onError }) {
  const box = el("div", { class: "cancel-control" });
  const open = el("button", { type: "button", class: "cancel-open", text: t.cancel });
  box.append(open);
  open.addEventListener("click", () => {
    const reason = el("input", { type: "text", maxlength: "200", class: "cancel-reason" });
    const yes = el("button", { type: "button", class: "danger cancel-yes", text: t.cancel_yes });
    const no = el("button", { type: "button", class: "cancel-no", text: t.cancel_no });
    const confirm = el("div", { class: "cancel-confirm", role: "group", "aria-label": t.cancel_confirm },
      el("p", { text: t.cancel_confirm }),
      el("label", {}, t.cancel_reason, reason),
      el("div", { class: "row" }, yes, no));
    open.hidden = true;
    box.append(confirm);
    yes.focus();
    no.addEventListener("click", () => { confirm.remove(); open.hidden = false; open.focus(); });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        const cancelled = await api("POST", `/api/scheduling/bookings/${encodeURIComponent(booking.id)}/cancel`,
          { reason: reason.value.trim() });
        onCancelled(cancelled);
      } catch (err) {
        yes.disabled = false;
        onError(err);
      }
    });
  });
  return box;
}
