// The chat page: sidebar of conversations, the messages, the composer, per-chat settings.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, stream } from '../lib/api.js';
import { cleanOptions, pickModel, statsLine, titleFrom } from '../lib/format.js';
import { copyCode, copyText, renderMarkdown } from '../lib/markdown.js';
import { Sidebar } from './Sidebar.jsx';

const OPTION_FIELDS = [
  ['temperature', 'Temperature', '0.8', 0.05],
  ['top_p', 'Top P', '0.9', 0.05],
  ['num_ctx', 'Context length (num_ctx)', '4096', 256],
  ['num_predict', 'Max tokens', '-1', 1],
  ['seed', 'Seed', 'random', 1],
];

function blankChat(model) {
  return { id: null, title: 'New chat', model, system: '', options: {}, messages: [] };
}

// the model this user last chatted with, remembered per user in this browser
function modelKey(username) {
  return `corral-model:${username}`;
}

export function Chat({ chatId, admin, username }) {
  const remembered = () => localStorage.getItem(modelKey(username)) || '';
  const remember = (model) => model && localStorage.setItem(modelKey(username), model);
  const [models, setModels] = useState(null); // null: not listed yet
  const [chat, setChat] = useState(blankChat(remembered()));
  const [input, setInput] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [editing, setEditing] = useState(null); // {index, text}
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [listVersion, setListVersion] = useState(0);
  const controller = useRef(null);
  const chatRef = useRef(chat);
  const scroller = useRef(null);
  chatRef.current = chat;

  useEffect(() => {
    api('/api/tags')
      .then((data) => {
        const names = data.models.map((m) => m.name).sort();
        setModels(names);
        // a new chat gets the last model used (or the default); a stored chat keeps its own
        setChat((c) => (c.id && c.model ? c : { ...c, model: pickModel(names, remembered()) }));
      })
      .catch((e) => setError(`Could not list models: ${e.message}`));
  }, []);

  useEffect(() => {
    if (chatId && chatId === chatRef.current.id) return; // the chat we just created
    controller.current?.abort();
    setEditing(null);
    setError('');
    if (!chatId) {
      setChat((c) => blankChat(models ? pickModel(models, remembered()) : remembered() || c.model));
      return;
    }
    api(`/ui/api/chats/${encodeURIComponent(chatId)}`)
      .then(setChat)
      .catch((e) => setError(e.message));
  }, [chatId]);

  useEffect(() => {
    const el = scroller.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 160) el.scrollTop = el.scrollHeight;
  }, [chat.messages]);

  async function persist(next) {
    const body = { title: next.title, model: next.model, system: next.system, options: next.options, messages: next.messages };
    if (next.id) {
      await api(`/ui/api/chats/${next.id}`, { method: 'PATCH', body });
      setListVersion((v) => v + 1);
      return next;
    }
    const created = await api('/ui/api/chats', { method: 'POST', body });
    const saved = { ...next, id: created.id };
    chatRef.current = saved;
    setChat((c) => ({ ...c, id: created.id }));
    location.hash = `#/chat/${created.id}`;
    setListVersion((v) => v + 1);
    return saved;
  }

  function update(patch) {
    setChat((c) => ({ ...c, ...patch }));
  }

  async function savePatch(patch) {
    update(patch);
    if (chatRef.current.id) {
      await api(`/ui/api/chats/${chatRef.current.id}`, { method: 'PATCH', body: patch }).catch((e) => setError(e.message));
    }
  }

  // Streams an answer to `messages` (which end with the user's turn) and saves the chat.
  async function answer(messages) {
    if (!chat.model) {
      setError('Pick a model first.');
      return;
    }
    setError('');
    setBusy(true);
    remember(chat.model);
    const abort = new AbortController();
    controller.current = abort;
    let current = { ...chatRef.current, messages };
    if (!current.id || current.title === 'New chat') current.title = titleFrom(messages.find((m) => m.role === 'user')?.content);
    const history = messages.map(({ role, content }) => ({ role, content }));
    const body = {
      model: current.model,
      messages: current.system.trim() ? [{ role: 'system', content: current.system }, ...history] : history,
      options: cleanOptions(current.options),
      stream: true,
    };
    let content = '';
    let meta = null;
    const show = () => setChat({ ...current, messages: [...messages, { role: 'assistant', content, meta }] });
    show();
    try {
      current = await persist({ ...current, messages });
      for await (const chunk of stream('/api/chat', body, abort.signal)) {
        if (chunk.message?.content) content += chunk.message.content;
        if (chunk.done) {
          const { eval_count, eval_duration, prompt_eval_count, prompt_eval_duration, total_duration, load_duration, done_reason } = chunk;
          meta = { eval_count, eval_duration, prompt_eval_count, prompt_eval_duration, total_duration, load_duration, done_reason };
        }
        show();
      }
    } catch (e) {
      // shown once, in the answer's place (not also in the page's error line)
      meta = e.name === 'AbortError' ? { stopped: true } : { error: e.message };
    } finally {
      // saved first, then shown as finished: what the page shows done is stored
      const final = { ...current, messages: [...messages, { role: 'assistant', content, meta }] };
      if (current.id) await persist(final).catch((e) => setError(e.message));
      if (chatRef.current.id === current.id) setChat(final); // unless another chat was opened
      controller.current = null;
      setBusy(false);
    }
  }

  function send() {
    const text = input.trim();
    if (!text || busy) return;
    setInput('');
    answer([...chat.messages, { role: 'user', content: text }]);
  }

  function onKeyDown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  }

  function regenerate() {
    const messages = [...chat.messages];
    while (messages.length && messages[messages.length - 1].role === 'assistant') messages.pop();
    if (messages.length) answer(messages);
  }

  function resend() {
    const { index, text } = editing;
    if (!text.trim()) return;
    setEditing(null);
    answer([...chat.messages.slice(0, index), { role: 'user', content: text }]);
  }

  const lastAssistant = chat.messages.map((m) => m.role).lastIndexOf('assistant');
  return (
    <div class="chat-layout">
      <Sidebar currentId={chat.id} version={listVersion} onChanged={(deleted, renamed) => {
        if (deleted && deleted === chat.id) location.hash = '#/chat';
        if (renamed && renamed.id === chat.id) update({ title: renamed.title });
      }} />
      <section class="chat" aria-label="Conversation">
        <div class="chat-head">
          <label class="inline">
            Model
            <select aria-label="Model" value={chat.model} onChange={(e) => { remember(e.target.value); savePatch({ model: e.target.value }); }}>
              {models && !models.includes(chat.model) && chat.model && <option value={chat.model}>{chat.model} (missing)</option>}
              {(models || []).map((name) => <option value={name}>{name}</option>)}
            </select>
          </label>
          <h1 class="chat-title">{chat.title}</h1>
          <button type="button" class="ghost" aria-expanded={settingsOpen} aria-controls="chat-settings" onClick={() => setSettingsOpen(!settingsOpen)}>
            Settings
          </button>
        </div>
        {settingsOpen && (
          <form id="chat-settings" class="chat-settings" aria-label="Chat settings" onSubmit={(e) => e.preventDefault()}>
            <label class="wide">
              System prompt
              <textarea rows={3} value={chat.system} onChange={(e) => savePatch({ system: e.target.value })} />
            </label>
            {OPTION_FIELDS.map(([key, label, placeholder, step]) => (
              <label>
                {label}
                <input type="number" step={step} placeholder={placeholder} value={chat.options[key] ?? ''}
                  onChange={(e) => savePatch({ options: { ...chat.options, [key]: e.target.value === '' ? undefined : Number(e.target.value) } })} />
              </label>
            ))}
          </form>
        )}
        <div class="messages" ref={scroller} onClick={copyCode} aria-live="polite">
          {chat.messages.length === 0 && models?.length === 0 && (
            <p class="empty" role="status">
              No model is installed yet.{' '}
              {admin ? <a href="#/models">Pull one on the Models page.</a> : 'Ask an administrator to add one.'}
            </p>
          )}
          {chat.messages.length === 0 && models?.length !== 0 && <p class="empty">Ask {chat.model || 'a model'} anything.</p>}
          {chat.messages.map((message, index) => (
            <article class={`message ${message.role}`} data-role={message.role} aria-label={message.role === 'user' ? 'You' : 'Assistant'}>
              {message.role === 'user' && editing?.index === index ? (
                <div class="edit">
                  <label class="sr-only" for="edit-box">Edit message</label>
                  <textarea id="edit-box" rows={3} value={editing.text} onInput={(e) => setEditing({ index, text: e.target.value })} />
                  <div class="actions">
                    <button type="button" class="primary" onClick={resend}>Save &amp; send</button>
                    <button type="button" onClick={() => setEditing(null)}>Cancel</button>
                  </div>
                </div>
              ) : message.role === 'user' ? (
                <>
                  <div class="bubble">{message.content}</div>
                  {!busy && <div class="actions"><button type="button" class="ghost small" onClick={() => setEditing({ index, text: message.content })}>Edit</button></div>}
                </>
              ) : (
                <>
                  {message.content ? (
                    <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(message.content) }} />
                  ) : busy && index === chat.messages.length - 1 ? (
                    <div class="typing" aria-label="Generating">…</div>
                  ) : null}
                  {message.meta?.error && (
                    <div class="answer-error" role="alert">
                      <strong>Error</strong> {message.meta.error}
                    </div>
                  )}
                  <div class="meta">
                    <span class="stats">{message.meta?.error ? '' : statsLine(message.meta)}</span>
                    {!(busy && index === chat.messages.length - 1) && (
                      <span class="actions">
                        {message.content && <button type="button" class="ghost small" onClick={() => copyText(message.content)}>Copy</button>}
                        {index === lastAssistant && !busy && <button type="button" class="ghost small" onClick={regenerate}>Regenerate</button>}
                      </span>
                    )}
                  </div>
                </>
              )}
            </article>
          ))}
        </div>
        {error && <p class="error chat-error" role="alert">{error}</p>}
        <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
          <label class="sr-only" for="composer">Message</label>
          <textarea id="composer" rows={2} placeholder="Message (Enter sends, Shift+Enter for a new line)" value={input}
            onInput={(e) => setInput(e.target.value)} onKeyDown={onKeyDown} />
          {busy ? (
            <button key="stop" type="button" class="danger" onClick={() => controller.current?.abort()}>Stop</button>
          ) : (
            <button key="send" type="submit" class="primary" disabled={!input.trim()}>Send</button>
          )}
        </form>
      </section>
    </div>
  );
}
