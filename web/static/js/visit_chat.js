// The chat of one visit (clinics/chat.py, clinics/attachments.py): the patient and the clinic's staff
// write to each other and send photos or PDFs. Polled every 3 s (weak 3G drops long-lived
// connections; a poll just tries again). One module for every page that shows it: the patient's
// waiting room and call, the doctor's dashboard and the doctor's call view. The page holds the
// markup of web/templates/clinics/_visit_chat.html.
import { attachFilePicker, renderAttachment } from "./chat_files.js";

const $ = (id) => document.getElementById(id);

// Start the chat machinery; `open(encounterId)` shows a visit's messages and polls them.
// `onNew(messages)` runs for messages that arrive after the first load (to count unread ones).
export function visitChat(csrf, { onNew } = {}) {
  let encounter = null;
  let after = null;
  let loaded = false;
  let timer = null;
  let chain = Promise.resolve(); // one poll at a time: two at once would show a message twice

  async function fetchOnce() {
    const current = encounter;
    if (!current) return;
    const query = after ? `?after=${encodeURIComponent(after)}` : "";
    let messages;
    try {
      const response = await fetch(`/api/clinics/encounters/${current}/messages${query}`, { cache: "no-store" });
      if (!response.ok) return;
      messages = (await response.json()).messages;
    } catch { return; } // offline for a moment: the next poll tries again
    if (current !== encounter) return; // another visit was opened meanwhile
    for (const message of messages) {
      const item = document.createElement("li");
      item.className = message.from_clinic ? "from-clinic" : "from-me";
      if (message.attachment) renderAttachment(item, message);
      else item.textContent = `${message.sender_name}: ${message.text}`;
      $("chat-log").append(item);
      after = message.sent_at;
    }
    if (messages.length) $("chat-log").scrollTop = $("chat-log").scrollHeight;
    if (loaded && messages.length) onNew?.(messages);
    loaded = true;
  }

  function poll() {
    chain = chain.then(fetchOnce);
    return chain;
  }

  function open(id) {
    encounter = id;
    after = null;
    loaded = false;
    $("chat-log").replaceChildren();
    clearInterval(timer);
    poll();
    timer = setInterval(poll, 3000);
  }

  function stop() {
    clearInterval(timer);
    timer = null;
  }

  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text || !encounter) return;
    const response = await fetch(`/api/clinics/encounters/${encounter}/messages`, {
      method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    if (response.ok) { $("chat-text").value = ""; poll(); }
  });
  attachFilePicker(() => encounter, csrf, poll);
  return { open, poll, stop };
}

// The chat as a folding panel beside a call (web/templates/clinics/_call_chat.html): the video stays
// the main thing on a phone; the panel's label counts messages that came while it was closed.
export function callChat() {
  const panel = $("call-chat");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const badge = $("chat-unread");
  let unread = 0;
  const show = () => { badge.textContent = unread ? String(unread) : ""; badge.hidden = !unread; };
  const chat = visitChat(csrf, {
    onNew(messages) {
      if (panel.open) return;
      unread += messages.length;
      show();
    },
  });
  panel.addEventListener("toggle", () => {
    if (!panel.open) return;
    unread = 0;
    show();
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  });
  chat.open(panel.dataset.encounter);
  return chat;
}
