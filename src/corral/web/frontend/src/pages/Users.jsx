// User administration: create, change role, approve/disable, delete; sign-up settings.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';

export function Users({ me }) {
  const [users, setUsers] = useState([]);
  const [settings, setSettings] = useState(null);
  const [form, setForm] = useState({ username: '', password: '', role: 'user' });
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');

  async function refresh() {
    try {
      const [list, s] = await Promise.all([api('/ui/api/admin/users'), api('/ui/api/admin/settings')]);
      setUsers(list.users);
      setSettings(s);
    } catch (e) {
      setError(e.message);
    }
  }
  useEffect(() => { refresh(); }, []);

  async function act(promise, message) {
    setError('');
    setNotice('');
    try {
      await promise;
      if (message) setNotice(message);
    } catch (e) {
      setError(e.message);
    }
    refresh();
  }

  function create(event) {
    event.preventDefault();
    act(api('/ui/api/admin/users', { method: 'POST', body: form }), `Created ${form.username}.`);
    setForm({ username: '', password: '', role: 'user' });
  }

  const patch = (user, body) => act(api(`/ui/api/admin/users/${user.id}`, { method: 'PATCH', body }));
  const remove = (user) => confirm(`Delete the account ${user.username} and its chats?`) &&
    act(api(`/ui/api/admin/users/${user.id}`, { method: 'DELETE' }), `Deleted ${user.username}.`);
  const setSetting = (body) => act(api('/ui/api/admin/settings', { method: 'PATCH', body }));

  return (
    <div class="stack">
      <h1>Users</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <section class="panel" aria-labelledby="new-user">
        <h2 id="new-user">Create a user</h2>
        <form class="row" onSubmit={create}>
          <label class="grow">User name<input name="new-username" required value={form.username} onInput={(e) => setForm({ ...form, username: e.target.value })} /></label>
          <label class="grow">Password<input name="new-password" type="password" minLength={8} required autocomplete="new-password" value={form.password} onInput={(e) => setForm({ ...form, password: e.target.value })} /></label>
          <label>Role
            <select name="new-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>
              <option value="user">user</option><option value="admin">admin</option>
            </select>
          </label>
          <button type="submit" class="primary">Create</button>
        </form>
      </section>
      {settings && (
        <section class="panel" aria-labelledby="signup-title">
          <h2 id="signup-title">Sign-up</h2>
          <label class="check"><input type="checkbox" checked={settings.signup} onChange={(e) => setSetting({ signup: e.target.checked })} /> Let people create their own account</label>
          <label class="check"><input type="checkbox" checked={settings.approval} onChange={(e) => setSetting({ approval: e.target.checked })} /> New accounts wait for an administrator's approval</label>
        </section>
      )}
      <section class="panel" aria-labelledby="users-title">
        <h2 id="users-title">Accounts</h2>
        <div class="table-wrap">
          <table>
            <thead><tr><th>User</th><th>Role</th><th>Status</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {users.map((user) => (
                <tr data-user={user.username}>
                  <td>{user.username}{user.id === me.id && <span class="muted"> (you)</span>}</td>
                  <td>
                    <select aria-label={`Role of ${user.username}`} value={user.role} disabled={user.id === me.id} onChange={(e) => patch(user, { role: e.target.value })}>
                      <option value="user">user</option><option value="admin">admin</option>
                    </select>
                  </td>
                  <td>
                    <select aria-label={`Status of ${user.username}`} value={user.status} disabled={user.id === me.id} onChange={(e) => patch(user, { status: e.target.value })}>
                      <option value="active">active</option><option value="pending">pending</option><option value="disabled">disabled</option>
                    </select>
                  </td>
                  <td>{new Date(user.created_at * 1000).toLocaleDateString()}</td>
                  <td class="actions">
                    {user.id !== me.id && <button type="button" class="small danger" aria-label={`Delete ${user.username}`} onClick={() => remove(user)}>Delete</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
