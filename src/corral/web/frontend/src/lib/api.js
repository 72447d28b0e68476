// fetch wrappers: JSON calls to /ui/api and /api, with the session's CSRF token.
import { ApiError, readNdjson } from './ndjson.js';

let csrf = '';
export function setCsrf(token) {
  csrf = token || '';
}

function headers(method, hasBody) {
  const out = {};
  if (hasBody) out['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') out['X-CSRF-Token'] = csrf;
  return out;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const data = await response.json();
    if (data && typeof data.error === 'string') message = data.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, response.status);
}

export async function api(path, { method = 'GET', body, signal, extraHeaders } = {}) {
  const response = await fetch(path, {
    method,
    headers: { ...headers(method, body !== undefined), ...extraHeaders },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  if (!response.ok) {
    // the session ended (signed out elsewhere, disabled, expired): back to the sign-in page
    if (response.status === 401 && path.startsWith('/ui/api/') && !/\/(me|login|setup|register)$/.test(path)) {
      dispatchEvent(new Event('corral:signed-out'));
    }
    throw await failure(response);
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// POSTs `body` and yields the NDJSON objects of the answer.
export async function* stream(path, body, signal) {
  const response = await fetch(path, {
    method: 'POST',
    headers: headers('POST', true),
    body: JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  if (!response.ok) throw await failure(response);
  yield* readNdjson(response.body);
}

export { ApiError };
