// Model administration: local models, pull with per-layer progress, details, delete, running.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, stream } from '../lib/api.js';
import { foldPull, formatBytes, percent } from '../lib/format.js';

function Pull({ onPulled }) {
  const [name, setName] = useState('');
  const [insecure, setInsecure] = useState(false);
  const [progress, setProgress] = useState(null); // {status, layers, done}
  const [error, setError] = useState('');
  const controller = useRef(null);

  async function pull(event) {
    event.preventDefault();
    const model = name.trim();
    if (!model) return;
    setError('');
    const abort = new AbortController();
    controller.current = abort;
    let state = { status: 'starting', layers: {}, done: false };
    setProgress(state);
    try {
      for await (const line of stream('/api/pull', { model, insecure, stream: true }, abort.signal)) {
        state = foldPull(state, line);
        setProgress(state);
      }
      if (state.done) onPulled();
    } catch (e) {
      const cancelled = e.name === 'AbortError';
      state = { ...state, status: cancelled ? 'cancelled' : 'failed' };
      setError(cancelled ? 'Pull cancelled.' : e.message);
    } finally {
      controller.current = null;
      setProgress({ ...state, finished: true });
    }
  }

  const layers = progress ? Object.values(progress.layers) : [];
  const running = progress && !progress.finished;
  return (
    <section class="panel" aria-labelledby="pull-title">
      <h2 id="pull-title">Pull a model</h2>
      <form class="row" onSubmit={pull}>
        <label class="grow">
          Model name
          <input name="model" placeholder="smollm2:135m, registry.example:5000/library/model:tag, hf.co/org/repo" value={name}
            onInput={(e) => setName(e.target.value)} required />
        </label>
        <label class="check">
          <input type="checkbox" checked={insecure} onChange={(e) => setInsecure(e.target.checked)} />
          Allow plain HTTP
        </label>
        {running ? (
          <button key="cancel" type="button" class="danger" onClick={() => controller.current?.abort()}>Cancel</button>
        ) : (
          <button key="pull" type="submit" class="primary">Pull</button>
        )}
      </form>
      {progress && (
        <div class="pull-progress" aria-live="polite">
          <p class="status" data-testid="pull-status">{progress.done ? 'success' : progress.status}</p>
          {layers.map((layer) => {
            const pct = percent(layer.completed, layer.total);
            return (
              <div class="layer" data-digest={layer.digest}>
                <span class="digest">{layer.digest.slice(7, 19)}</span>
                <progress max="100" value={pct} aria-label={`layer ${layer.digest.slice(7, 19)}`} />
                <span class="pct">{pct}%</span>
                <span class="muted">{formatBytes(layer.completed)} / {formatBytes(layer.total)}</span>
              </div>
            );
          })}
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

// The headline facts of /api/show: details plus the GGUF's context length.
function facts(info) {
  const d = info.details || {};
  const mi = info.model_info || {};
  const ctxKey = Object.keys(mi).find((k) => k.endsWith('.context_length'));
  return [
    ['Format', d.format],
    ['Family', d.family],
    ['Parameters', d.parameter_size],
    ['Quantization', d.quantization_level],
    ['Context length', ctxKey ? mi[ctxKey] : null],
    ['Capabilities', (info.capabilities || []).join(', ')],
  ].filter(([, value]) => value !== null && value !== undefined && value !== '');
}

function Details({ name, onClose }) {
  const [info, setInfo] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api('/api/show', { method: 'POST', body: { model: name } }).then(setInfo).catch((e) => setError(e.message));
  }, [name]);
  return (
    <section class="panel details" aria-label={`Details of ${name}`}>
      <div class="row">
        <h2 class="grow">{name}</h2>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {info && (
        <>
          <dl class="facts">
            {facts(info).map(([term, value]) => (
              <>
                <dt>{term}</dt>
                <dd>{value}</dd>
              </>
            ))}
          </dl>
          {[['Parameters', info.parameters], ['Template', info.template], ['Modelfile', info.modelfile], ['License', info.license]].map(([title, text]) => (
            <details open={title === 'Parameters'}>
              <summary>{title}</summary>
              <pre>{text || '(none)'}</pre>
            </details>
          ))}
        </>
      )}
    </section>
  );
}

export function Models() {
  const [models, setModels] = useState([]);
  const [running, setRunning] = useState([]);
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState('');

  async function refresh() {
    try {
      const [tags, ps] = await Promise.all([api('/api/tags'), api('/api/ps')]);
      setModels(tags.models);
      setRunning(ps.models);
    } catch (e) {
      setError(e.message);
    }
  }
  useEffect(() => { refresh(); }, []);

  async function remove(name) {
    if (!confirm(`Delete the model ${name}? Its files are removed from disk.`)) return;
    try {
      await api('/api/delete', { method: 'DELETE', body: { model: name } });
      if (selected === name) setSelected(null);
    } catch (e) {
      setError(e.message);
    }
    refresh();
  }

  async function unload(name) {
    try {
      await api('/api/generate', { method: 'POST', body: { model: name, keep_alive: 0 } });
    } catch (e) {
      setError(e.message);
    }
    refresh();
  }

  return (
    <div class="stack">
      <h1>Models</h1>
      <Pull onPulled={refresh} />
      {error && <p class="error" role="alert">{error}</p>}
      <section class="panel" aria-labelledby="local-title">
        <div class="row">
          <h2 id="local-title" class="grow">Local models</h2>
          <button type="button" onClick={refresh}>Refresh</button>
        </div>
        <div class="table-wrap">
          <table>
            <thead>
              <tr><th>Name</th><th>Family</th><th>Parameters</th><th>Quantization</th><th>Size</th><th><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr data-model={m.name}>
                  <td>{m.name}</td>
                  <td>{m.details?.family}</td>
                  <td>{m.details?.parameter_size}</td>
                  <td>{m.details?.quantization_level}</td>
                  <td>{formatBytes(m.size)}</td>
                  <td class="actions">
                    <button type="button" class="small" onClick={() => setSelected(m.name)}>Details</button>
                    <button type="button" class="small danger" aria-label={`Delete ${m.name}`} onClick={() => remove(m.name)}>Delete</button>
                  </td>
                </tr>
              ))}
              {models.length === 0 && <tr><td colSpan={6} class="muted">No models yet: pull one above.</td></tr>}
            </tbody>
          </table>
        </div>
      </section>
      {selected && <Details name={selected} onClose={() => setSelected(null)} />}
      <section class="panel" aria-labelledby="running-title">
        <h2 id="running-title">Running models</h2>
        <div class="table-wrap">
          <table>
            <thead><tr><th>Name</th><th>Size</th><th>In GPU memory</th><th>Unloads at</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {running.map((m) => (
                <tr data-running={m.name}>
                  <td>{m.name}</td>
                  <td>{formatBytes(m.size)}</td>
                  <td>{formatBytes(m.size_vram || 0)}</td>
                  <td>{m.expires_at ? new Date(m.expires_at).toLocaleString() : ''}</td>
                  <td class="actions"><button type="button" class="small" aria-label={`Unload ${m.name}`} onClick={() => unload(m.name)}>Unload</button></td>
                </tr>
              ))}
              {running.length === 0 && <tr><td colSpan={5} class="muted">No model is loaded.</td></tr>}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
