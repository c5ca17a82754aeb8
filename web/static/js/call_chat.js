// The visit's chat beside a call (web/templates/clinics/_call_chat.html), on the patient's call and
// on the doctor's call view.
import { callChat } from "./visit_chat.js";

callChat();
