// The list of the user's conversations: new, search, rename, delete.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';

export function Sidebar({ currentId, version, onChanged }) {
  const [chats, setChats] = useState([]);
  const [query, setQuery] = useState('');
  const [renaming, setRenaming] = useState(null); // {id, title}
  const [open, setOpen] = useState(false);

  async function load(q = query) {
    const data = await api(`/ui/api/chats?q=${encodeURIComponent(q)}`);
    setChats(data.chats);
  }
  useEffect(() => {
    const timer = setTimeout(() => load().catch(() => {}), query ? 200 : 0);
    return () => clearTimeout(timer);
  }, [query, version]);

  async function rename(event) {
    event.preventDefault();
    const { id, title } = renaming;
    setRenaming(null);
    await api(`/ui/api/chats/${id}`, { method: 'PATCH', body: { title } });
    onChanged(null, { id, title });
    await load();
  }

  async function remove(chat) {
    if (!confirm(`Delete the chat "${chat.title}"?`)) return;
    await api(`/ui/api/chats/${chat.id}`, { method: 'DELETE' });
    onChanged(chat.id, null);
    await load();
  }

  return (
    <aside class={`sidebar ${open ? 'open' : ''}`} aria-label="Chats">
      <div class="sidebar-head">
        <button type="button" class="ghost menu" aria-expanded={open} aria-controls="chat-list" onClick={() => setOpen(!open)}>
          ☰ Chats
        </button>
        <a class="button primary" href="#/chat" onClick={() => setOpen(false)}>New chat</a>
      </div>
      <div id="chat-list" class="chat-list">
        <label class="sr-only" for="chat-search">Search chats</label>
        <input id="chat-search" type="search" placeholder="Search chats" value={query} onInput={(e) => setQuery(e.target.value)} />
        <ul>
          {chats.map((chat) => (
            <li class={chat.id === currentId ? 'current' : ''}>
              {renaming?.id === chat.id ? (
                <form onSubmit={rename} class="rename">
                  <label class="sr-only" for="rename-box">New title</label>
                  <input id="rename-box" value={renaming.title} onInput={(e) => setRenaming({ id: chat.id, title: e.target.value })} autofocus />
                  <button type="submit" class="small">Save</button>
                </form>
              ) : (
                <>
                  <a href={`#/chat/${chat.id}`} onClick={() => setOpen(false)} aria-current={chat.id === currentId ? 'page' : undefined}>{chat.title}</a>
                  <button type="button" class="ghost small" aria-label={`Rename ${chat.title}`} onClick={() => setRenaming({ id: chat.id, title: chat.title })}>✎</button>
                  <button type="button" class="ghost small" aria-label={`Delete ${chat.title}`} onClick={() => remove(chat)}>✕</button>
                </>
              )}
            </li>
          ))}
          {chats.length === 0 && <li class="muted">{query ? 'No chat matches.' : 'No chats yet.'}</li>}
        </ul>
      </div>
    </aside>
  );
}
