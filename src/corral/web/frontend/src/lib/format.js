// Pure formatting helpers (unit-tested under node --test).

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatSeconds(ns) {
  if (!Number.isFinite(ns) || ns <= 0) return '';
  const s = ns / 1e9;
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

// The numbers shown under an answer, from the final chunk of /api/chat.
export function answerStats(final) {
  if (!final) return null;
  const tokens = final.eval_count || 0;
  const seconds = (final.eval_duration || 0) / 1e9;
  const promptSeconds = (final.prompt_eval_duration || 0) / 1e9;
  return {
    tokens,
    tokensPerSecond: seconds > 0 ? tokens / seconds : null,
    promptTokens: final.prompt_eval_count || 0,
    promptPerSecond: promptSeconds > 0 ? (final.prompt_eval_count || 0) / promptSeconds : null,
    total: final.total_duration || 0,
    load: final.load_duration || 0,
  };
}

export function statsLine(meta) {
  if (!meta) return '';
  if (meta.stopped) return 'stopped';
  const stats = answerStats(meta);
  if (!stats) return '';
  const parts = [];
  if (stats.tokensPerSecond !== null) parts.push(`${stats.tokensPerSecond.toFixed(1)} tokens/s`);
  parts.push(`${stats.tokens} tokens`);
  if (stats.promptTokens) parts.push(`prompt ${stats.promptTokens} tokens`);
  if (stats.total) parts.push(`total ${formatSeconds(stats.total)}`);
  if (stats.load > 1e6) parts.push(`load ${formatSeconds(stats.load)}`);
  if (meta.done_reason && meta.done_reason !== 'stop') parts.push(`(${meta.done_reason})`);
  return parts.join(' · ');
}

// Per-layer progress of /api/pull: folds one status line into the state.
export function foldPull(state, line) {
  const layers = { ...state.layers };
  if (line.digest) {
    const previous = layers[line.digest] || { total: 0, completed: 0 };
    layers[line.digest] = {
      digest: line.digest,
      total: line.total ?? previous.total,
      completed: line.completed ?? previous.completed,
    };
  }
  const status = line.status || state.status;
  return { status, layers, done: line.status === 'success' };
}

export function percent(completed, total) {
  if (!total) return 0;
  return Math.max(0, Math.min(100, Math.floor((completed / total) * 100)));
}

// Chat options from the settings form: numbers only, empty fields left out.
export function cleanOptions(options) {
  const out = {};
  for (const [key, value] of Object.entries(options || {})) {
    if (value === '' || value === null || value === undefined) continue;
    const number = Number(value);
    if (Number.isFinite(number)) out[key] = number;
  }
  return out;
}

export function titleFrom(text) {
  const line = (text || '').trim().split('\n')[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line || 'New chat';
}

// The model a new chat starts with: the one this user last chatted with, else smollm2:135m
// (corral's default), else the first listed; '' when none is installed.
export const DEFAULT_MODEL = 'smollm2:135m';
export function pickModel(names, remembered) {
  if (remembered && names.includes(remembered)) return remembered;
  if (names.includes(DEFAULT_MODEL)) return DEFAULT_MODEL;
  return names[0] || '';
}
