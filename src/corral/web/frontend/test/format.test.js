import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answerStats, cleanOptions, foldPull, formatBytes, formatSeconds, percent, pickModel, statsLine, titleFrom,
} from '../src/lib/format.js';

test('formatBytes uses decimal units like Ollama', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1500), '1.5 KB');
  assert.equal(formatBytes(101_000_000), '101 MB');
  assert.equal(formatBytes(-1), '');
});

test('formatSeconds', () => {
  assert.equal(formatSeconds(250e6), '250 ms');
  assert.equal(formatSeconds(2.5e9), '2.50 s');
  assert.equal(formatSeconds(0), '');
});

test('tokens per second come from eval_count and eval_duration', () => {
  const stats = answerStats({ eval_count: 50, eval_duration: 2e9, prompt_eval_count: 10, prompt_eval_duration: 0.5e9, total_duration: 3e9 });
  assert.equal(stats.tokensPerSecond, 25);
  assert.equal(stats.promptPerSecond, 20);
  assert.equal(statsLine({ eval_count: 50, eval_duration: 2e9, total_duration: 3e9, done_reason: 'stop' }), '25.0 tokens/s · 50 tokens · total 3.00 s');
  assert.match(statsLine({ eval_count: 8, eval_duration: 1e9, done_reason: 'length' }), /\(length\)$/);
  assert.equal(statsLine({ stopped: true }), 'stopped');
  assert.equal(statsLine(null), '');
});

test('foldPull tracks each layer and success', () => {
  let state = { status: '', layers: {}, done: false };
  state = foldPull(state, { status: 'pulling manifest' });
  state = foldPull(state, { status: 'pulling aaa', digest: 'sha256:aaa', total: 100, completed: 10 });
  state = foldPull(state, { status: 'pulling bbb', digest: 'sha256:bbb', total: 50 });
  state = foldPull(state, { status: 'pulling aaa', digest: 'sha256:aaa', total: 100, completed: 100 });
  assert.deepEqual(state.layers['sha256:aaa'], { digest: 'sha256:aaa', total: 100, completed: 100 });
  assert.deepEqual(state.layers['sha256:bbb'], { digest: 'sha256:bbb', total: 50, completed: 0 });
  assert.equal(state.done, false);
  state = foldPull(state, { status: 'success' });
  assert.equal(state.done, true);
  assert.equal(percent(100, 100), 100);
  assert.equal(percent(1, 3), 33);
  assert.equal(percent(5, 0), 0);
});

test('cleanOptions keeps numbers and drops empty fields', () => {
  assert.deepEqual(cleanOptions({ temperature: '0.2', num_ctx: 2048, seed: '', top_p: undefined, x: 'abc' }), { temperature: 0.2, num_ctx: 2048 });
});

test('titleFrom takes the first line, shortened', () => {
  assert.equal(titleFrom('  Hello there\nmore'), 'Hello there');
  assert.equal(titleFrom(''), 'New chat');
  assert.equal(titleFrom('x'.repeat(80)).length, 58);
});

test('pickModel: the last model used, else smollm2:135m, else the first', () => {
  const names = ['127.0.0.1:5077/library/smollm2:135m', 'llama3.2:1b', 'smollm2:135m'];
  assert.equal(pickModel(names, 'llama3.2:1b'), 'llama3.2:1b');
  assert.equal(pickModel(names, ''), 'smollm2:135m'); // not the alphabetically first
  assert.equal(pickModel(names, null), 'smollm2:135m');
  assert.equal(pickModel(names, 'gone:7b'), 'smollm2:135m');
  assert.equal(pickModel(['b:1', 'a:1'], 'gone:7b'), 'b:1');
  assert.equal(pickModel([], 'llama3.2:1b'), '');
});
