export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Server-Sent Events from a byte stream (the WHATWG rules the API's log stream needs): fields
 * `event`, `data` (joined by newlines), `id`; comment lines ignored; an event ends at a blank line.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = "";
  const parser = new SseParser();
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    const lines = buf.split(/\r\n|\r|\n/);
    buf = lines.pop() ?? "";
    for (const line of lines) {
      const ev = parser.line(line);
      if (ev) yield ev;
    }
  }
  buf += decoder.decode();
  if (buf) {
    const ev = parser.line(buf);
    if (ev) yield ev;
  }
  const last = parser.line("");
  if (last) yield last;
}

export class SseParser {
  private event = "";
  private data: string[] = [];
  private id: string | undefined;

  /** Feed one line (without its line end); returns an event when the line completes one. */
  line(line: string): SseEvent | undefined {
    if (line === "") {
      if (!this.data.length && !this.event) return undefined;
      const ev: SseEvent = {
        event: this.event || "message",
        data: this.data.join("\n"),
        ...(this.id !== undefined ? { id: this.id } : {}),
      };
      this.event = "";
      this.data = [];
      this.id = undefined;
      return ev;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
    return undefined;
  }
}
