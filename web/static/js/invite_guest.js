// Invite a third party into a visit's call (POST /api/clinics/encounters/{id}/guests): the answer
// carries their one-time link, shown once, and whether it went out by SMS.
const box = document.getElementById("invite-guest");
const t = JSON.parse(document.getElementById("invite-i18n").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const form = document.getElementById("invite-form");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = form.querySelector("[data-error]");
  error.textContent = "";
  const data = Object.fromEntries(new FormData(form));
  if (!data.phone) delete data.phone;
  const response = await fetch(`/api/clinics/encounters/${box.dataset.encounter}/guests`, {
    method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" }, body: JSON.stringify(data),
  });
  const result = await response.json();
  if (!response.ok) {
    error.textContent = `${t.error} ${result.error?.message || response.statusText}`;  // what was typed stays
    return;
  }
  form.reset();
  const shown = document.getElementById("invite-result");
  shown.hidden = false;
  shown.querySelector("[data-text]").textContent = result.sent_via.length ? t.sent : t.not_sent;
  shown.querySelector("[data-link]").textContent = result.join_link;
});
