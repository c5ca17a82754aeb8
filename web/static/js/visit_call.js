// The patient's call: watch the visit (polled like the waiting room: weak 3G drops long-lived
// connections) and, when the doctor ends it, leave the call and open the summary.
const note = document.getElementById("visit-call");
const encounter = note.dataset.encounter;

async function watch() {
  try {
    const response = await fetch(`/api/clinics/encounters/${encounter}/waiting`, { cache: "no-store" });
    if (response.ok) {
      const visit = await response.json();
      if (visit.status === "finished" || visit.status === "cancelled") {
        note.textContent = note.dataset.ended;
        const call = window.caunoi;
        if (call) {
          call.leaving = true; // no reconnecting to a call that is over
          call.signal?.send({ type: "leave" });
          call.signal?.close();
          call.stream?.getTracks().forEach((track) => track.stop());
        }
        location.assign(`/visit/${encounter}/summary`);
        return;
      }
    }
  } catch { /* offline for a moment: try again */ }
  setTimeout(watch, 3000);
}

setTimeout(watch, 3000);
