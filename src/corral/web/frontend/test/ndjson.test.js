import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, parseLine, readNdjson, splitLines } from '../src/lib/ndjson.js';

async function collect(chunks) {
  async function* source() {
    for (const chunk of chunks) yield new TextEncoder().encode(chunk);
  }
  const out = [];
  for await (const value of readNdjson(source())) out.push(value);
  return out;
}

test('splitLines keeps the unfinished tail', () => {
  assert.deepEqual(splitLines('{"a":1}\n{"b"'), { lines: ['{"a":1}'], rest: '{"b"' });
  assert.deepEqual(splitLines('\n\n'), { lines: [], rest: '' });
});

test('objects split across chunks are joined', async () => {
  const values = await collect(['{"message":{"content":"He', 'llo"}}\n{"done"', ':true}\n']);
  assert.deepEqual(values, [{ message: { content: 'Hello' } }, { done: true }]);
});

test('a last line without a newline is read', async () => {
  assert.deepEqual(await collect(['{"status":"success"}']), [{ status: 'success' }]);
});

test('multi-byte characters split across chunks survive', async () => {
  const bytes = new TextEncoder().encode('{"t":"héllo 🦙"}\n');
  async function* source() {
    yield bytes.slice(0, 8);
    yield bytes.slice(8, 17);
    yield bytes.slice(17);
  }
  const out = [];
  for await (const value of readNdjson(source())) out.push(value);
  assert.deepEqual(out, [{ t: 'héllo 🦙' }]);
});

test('an error line throws ApiError with its message', async () => {
  await assert.rejects(
    collect(['{"status":"pulling manifest"}\n{"error":"pull model manifest: file does not exist"}\n']),
    (err) => err instanceof ApiError && err.message === 'pull model manifest: file does not exist',
  );
  assert.throws(() => parseLine('{"error":"boom"}'), /boom/);
});
