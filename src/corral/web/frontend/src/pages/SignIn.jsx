// First visit (create the admin), sign-in, and sign-up when the admin allows it.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';

export function SignIn({ onSignedIn }) {
  const [state, setState] = useState(null);
  const [mode, setMode] = useState('signin');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api('/ui/api/state')
      .then((s) => {
        setState(s);
        if (s.needs_setup) setMode('setup');
      })
      .catch((e) => setError(e.message));
  }, []);

  async function submit(event) {
    event.preventDefault();
    setError('');
    setNotice('');
    if (mode !== 'signin' && password !== confirm) {
      setError('The passwords do not match.');
      return;
    }
    setBusy(true);
    try {
      const path = { setup: '/ui/api/setup', signin: '/ui/api/login', signup: '/ui/api/register' }[mode];
      const extraHeaders = mode === 'setup' && apiKey.trim() ? { Authorization: `Bearer ${apiKey.trim()}` } : undefined;
      const data = await api(path, { method: 'POST', body: { username, password }, extraHeaders });
      if (data.pending) {
        setNotice('Account created. An administrator must approve it before you can sign in.');
        setMode('signin');
      } else {
        onSignedIn(data);
      }
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  }

  if (!state && !error) return <p class="boot">Loading…</p>;
  const titles = { setup: 'Create the admin account', signin: 'Sign in', signup: 'Create an account' };
  return (
    <main class="auth">
      <form class="panel narrow" onSubmit={submit} aria-labelledby="auth-title">
        <h1 id="auth-title">{titles[mode]}</h1>
        {mode === 'setup' && <p class="muted">Welcome to corral. This first account administers the server.</p>}
        <label>
          User name
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            required
            minLength={mode === 'signin' ? undefined : 8}
            autocomplete={mode === 'signin' ? 'current-password' : 'new-password'}
            value={password}
            onInput={(e) => setPassword(e.target.value)}
          />
        </label>
        {mode !== 'signin' && (
          <label>
            Repeat the password
            <input name="confirm" type="password" required autocomplete="new-password" value={confirm} onInput={(e) => setConfirm(e.target.value)} />
          </label>
        )}
        {mode === 'setup' && state?.setup_needs_key && (
          <>
            <p class="muted" id="setup-key-help">
              This server requires API keys: create the admin account in a browser on the server
              machine itself (http://localhost:PORT/ui/), or enter a full API key here.
            </p>
            <label>
              API key (only needed from another machine)
              <input name="api-key" type="password" autocomplete="off" aria-describedby="setup-key-help" value={apiKey} onInput={(e) => setApiKey(e.target.value)} />
            </label>
          </>
        )}
        {error && <p class="error" role="alert">{error}</p>}
        {notice && <p class="notice" role="status">{notice}</p>}
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'setup' ? 'Create admin account' : mode === 'signup' ? 'Create account' : 'Sign in'}
        </button>
        {state?.signup && mode === 'signin' && (
          <button type="button" class="link" onClick={() => setMode('signup')}>No account? Create one</button>
        )}
        {mode === 'signup' && (
          <button type="button" class="link" onClick={() => setMode('signin')}>Have an account? Sign in</button>
        )}
      </form>
    </main>
  );
}
