// The signalling connection (protocol v1, docs/protocol.md). The room token travels in the
// WebSocket subprotocol list, never in the URL.
export const SUBPROTOCOL = "caunoi.v1";

export class Signal extends EventTarget {
  constructor(token) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${scheme}//${location.host}/ws`, [SUBPROTOCOL, `caunoi.token.${token}`]);
    this.ws.addEventListener("open", () => this.dispatchEvent(new Event("open")));
    this.ws.addEventListener("close", (e) =>
      this.dispatchEvent(new CustomEvent("close", { detail: { code: e.code, reason: e.reason } })));
    this.ws.addEventListener("message", (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    });
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() { this.ws.close(1000, "bye"); }
}
