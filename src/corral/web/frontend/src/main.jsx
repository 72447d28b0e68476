// The app shell: who is signed in, the navigation, the theme, and which page shows.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setCsrf } from './lib/api.js';
import { SignIn } from './pages/SignIn.jsx';
import { Chat } from './pages/Chat.jsx';
import { Models } from './pages/Models.jsx';
import { Users } from './pages/Users.jsx';
import { Keys } from './pages/Keys.jsx';

const ADMIN_PAGES = ['models', 'users', 'keys'];

function currentRoute() {
  const [page = 'chat', id = ''] = location.hash.replace(/^#\/?/, '').split('/');
  return { page, id: decodeURIComponent(id) };
}

function initialTheme() {
  const saved = localStorage.getItem('corral-theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function App() {
  const [me, setMe] = useState(undefined); // undefined: loading; null: signed out
  const [route, setRoute] = useState(currentRoute());
  const [theme, setTheme] = useState(initialTheme());

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('corral-theme', theme);
  }, [theme]);
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    const onSignedOut = () => setMe(null);
    addEventListener('corral:signed-out', onSignedOut);
    return () => removeEventListener('corral:signed-out', onSignedOut);
  }, []);
  useEffect(() => {
    api('/ui/api/me')
      .then(signedIn)
      .catch(() => setMe(null));
  }, []);

  function signedIn(data) {
    setCsrf(data.csrf);
    setMe(data);
  }

  async function signOut() {
    await api('/ui/api/logout', { method: 'POST' }).catch(() => {});
    setCsrf('');
    setMe(null);
    location.hash = '#/chat';
  }

  if (me === undefined) return <p class="boot">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={signedIn} />;

  const admin = me.user.role === 'admin';
  let page = route.page;
  if (!['chat', ...ADMIN_PAGES].includes(page) || (!admin && ADMIN_PAGES.includes(page))) {
    page = admin || !ADMIN_PAGES.includes(page) ? 'chat' : 'forbidden';
  }
  const links = [['chat', 'Chat'], ...(admin ? [['models', 'Models'], ['users', 'Users'], ['keys', 'API keys']] : [])];

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/chat">corral</a>
        <nav class="main-nav" aria-label="Main">
          {links.map(([id, label]) => (
            <a href={`#/${id}`} class={page === id ? 'active' : ''} aria-current={page === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div class="spacer" />
        <button
          type="button"
          class="ghost"
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
          onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
        >
          {theme === 'dark' ? '☀' : '☾'}
        </button>
        <span class="who" title={`signed in as ${me.user.username} (${me.user.role})`}>
          {me.user.username}
        </span>
        {me.auth && (
          <button type="button" class="ghost" onClick={signOut}>
            Sign out
          </button>
        )}
      </header>
      <main class="page">
        {page === 'chat' && <Chat chatId={route.id} admin={admin} username={me.user.username} />}
        {page === 'models' && <Models />}
        {page === 'users' && <Users me={me.user} />}
        {page === 'keys' && <Keys />}
        {page === 'forbidden' && (
          <section class="panel narrow" role="alert">
            <h1>Not allowed</h1>
            <p>This page is for administrators.</p>
          </section>
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
