// Images and PDFs in a visit's chat (clinics/attachments.py). The picker beside the text box sends
// a file at once; in the log an image shows as a thumbnail and a PDF as a link, both opening the
// download, which the server gives only to the visit's patient and the clinic's staff.
const strings = () => JSON.parse(document.getElementById("chat-files-i18n")?.textContent || "{}");

// Fill a chat log item with an attachment message (its `attachment`: url, filename, content_type).
export function renderAttachment(item, message) {
  const file = message.attachment;
  const link = document.createElement("a");
  link.href = file.url;
  link.download = file.filename;
  link.className = "chat-attachment";
  if (file.content_type.startsWith("image/")) {
    const image = document.createElement("img");
    image.src = file.url;
    image.alt = file.filename;
    image.loading = "lazy";
    link.append(image);
  } else {
    link.textContent = `PDF · ${file.filename}`;
  }
  item.append(`${message.sender_name}: `, link);
}

// Send the picked file to the visit `encounterOf()` returns; `onSent` runs after a success.
export function attachFilePicker(encounterOf, csrf, onSent) {
  const input = document.getElementById("chat-file");
  const status = document.getElementById("chat-file-status");
  if (!input) return;
  input.addEventListener("change", async () => {
    const t = strings();
    const file = input.files[0];
    const encounter = encounterOf();
    if (!file || !encounter) return;
    const body = new FormData();
    body.append("file", file, file.name);
    status.textContent = t.sending;
    try {
      const response = await fetch(`/api/clinics/encounters/${encounter}/attachments`, {
        method: "POST", headers: { "X-CSRF-Token": csrf }, body,
      });
      if (response.ok) { status.textContent = ""; onSent?.(); }
      else if (response.status === 413) status.textContent = t.too_large;
      else if (response.status === 415) status.textContent = t.wrong_type;
      else status.textContent = `${t.failed} ${(await response.json()).error?.message || response.status}`;
    } catch (err) {
      status.textContent = `${t.failed} ${err.message}`;
    }
    input.value = "";
  });
}
