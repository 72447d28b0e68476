// API keys for the HTTP API: create (the key is shown once), list, revoke.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { copyText } from '../lib/markdown.js';

export function Keys() {
  const [keys, setKeys] = useState([]);
  const [name, setName] = useState('');
  const [scope, setScope] = useState('full');
  const [created, setCreated] = useState(null);
  const [error, setError] = useState('');

  const refresh = () => api('/ui/api/admin/keys').then((d) => setKeys(d.keys)).catch((e) => setError(e.message));
  useEffect(() => { refresh(); }, []);

  async function create(event) {
    event.preventDefault();
    setError('');
    try {
      setCreated(await api('/ui/api/admin/keys', { method: 'POST', body: { name, scope } }));
      setName('');
    } catch (e) {
      setError(e.message);
    }
    refresh();
  }

  async function revoke(key) {
    if (!confirm(`Revoke the key "${key.name}"? Programs using it stop working.`)) return;
    try {
      await api(`/ui/api/admin/keys/${key.id}`, { method: 'DELETE' });
      if (created?.id === key.id) setCreated(null);
    } catch (e) {
      setError(e.message);
    }
    refresh();
  }

  return (
    <div class="stack">
      <h1>API keys</h1>
      <p class="muted">
        Once any key exists, <code>/api/*</code> and <code>/v1/*</code> need <code>Authorization: Bearer KEY</code>{' '}
        (the Ollama client sends <code>OLLAMA_API_KEY</code>; the OpenAI SDK its <code>api_key</code>).
        A read-only key may chat, generate, embed and list, but not pull, push, create or delete.
      </p>
      {error && <p class="error" role="alert">{error}</p>}
      <section class="panel" aria-labelledby="new-key">
        <h2 id="new-key">Create a key</h2>
        <form class="row" onSubmit={create}>
          <label class="grow">Name<input name="key-name" placeholder="e.g. laptop, CI" value={name} onInput={(e) => setName(e.target.value)} /></label>
          <label>Scope
            <select name="key-scope" value={scope} onChange={(e) => setScope(e.target.value)}>
              <option value="full">full</option><option value="read-only">read-only</option>
            </select>
          </label>
          <button type="submit" class="primary">Create key</button>
        </form>
        {created && (
          <div class="secret" role="status">
            <p>Copy this key now: it is not shown again.</p>
            <code data-testid="new-key">{created.key}</code>
            <button type="button" class="small" onClick={() => copyText(created.key)}>Copy</button>
          </div>
        )}
      </section>
      <section class="panel" aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <div class="table-wrap">
          <table>
            <thead><tr><th>Name</th><th>Starts with</th><th>Scope</th><th>Created</th><th>By</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {keys.map((key) => (
                <tr data-key={key.name}>
                  <td>{key.name}</td>
                  <td><code>{key.prefix}…</code></td>
                  <td>{key.scope}</td>
                  <td>{new Date(key.created_at * 1000).toLocaleString()}</td>
                  <td>{key.created_by || ''}</td>
                  <td class="actions"><button type="button" class="small danger" aria-label={`Revoke ${key.name}`} onClick={() => revoke(key)}>Revoke</button></td>
                </tr>
              ))}
              {keys.length === 0 && <tr><td colSpan={6} class="muted">No keys: the API is open to anyone who can reach it (unless CORRAL_API_KEYS is set).</td></tr>}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
