// Reading Ollama's NDJSON streams (/api/chat, /api/pull): one JSON object per line.

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// Splits `buffer` into complete lines and the unfinished rest.
export function splitLines(buffer) {
  const lines = buffer.split('\n');
  const rest = lines.pop();
  return { lines: lines.filter((line) => line.trim() !== ''), rest };
}

// Parses one line; an {"error": ...} line (Ollama's mid-stream error) throws.
export function parseLine(line) {
  const value = JSON.parse(line);
  if (value && typeof value === 'object' && typeof value.error === 'string') {
    throw new ApiError(value.error);
  }
  return value;
}

// Yields the objects of a stream of byte chunks (a ReadableStream or any async iterable).
export async function* readNdjson(chunks) {
  const decoder = new TextDecoder();
  let rest = '';
  const reader = chunks.getReader ? chunks.getReader() : null;
  const next = reader
    ? () => reader.read()
    : (() => { const it = chunks[Symbol.asyncIterator](); return () => it.next(); })();
  try {
    for (;;) {
      const { value, done } = await next();
      if (done) break;
      const split = splitLines(rest + decoder.decode(value, { stream: true }));
      rest = split.rest;
      for (const line of split.lines) yield parseLine(line);
    }
    rest += decoder.decode();
    if (rest.trim()) yield parseLine(rest);
  } finally {
    if (reader) reader.releaseLock();
  }
}
