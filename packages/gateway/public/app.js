// jetactor dashboard: plain JS, no build step. Actor values arrive as Server-Sent Events
// from GET /api/watch/:type (read with fetch, so a bearer token can be sent; EventSource
// cannot send headers); workers, partitions and errors are polled.

const STATUS_POLL_MS = 2000;
const ERRORS_POLL_MS = 5000;
const MAX_ROWS = 200;
const MAX_ERRORS = 20;
const TOKEN_KEY = 'jetactor.token';

const $ = (id) => document.getElementById(id);

const ui = {
  connDot: $('conn-dot'),
  connText: $('conn-text'),
  typeForm: $('type-form'),
  typeInput: $('type-input'),
  signalForm: $('signal-form'),
  signalKey: $('signal-key'),
  signalOp: $('signal-op'),
  signalInput: $('signal-input'),
  signalResult: $('signal-result'),
  actorsBody: $('actors-body'),
  actorsEmpty: $('actors-empty'),
  workersList: $('workers-list'),
  workersEmpty: $('workers-empty'),
  statusUpdated: $('status-updated'),
  errorsList: $('errors-list'),
  errorsEmpty: $('errors-empty'),
  timersTitle: $('timers-title'),
  timersHint: $('timers-hint'),
  timersWrap: $('timers-wrap'),
  timersBody: $('timers-body'),
  tokenForm: $('token-form'),
  tokenInput: $('token-input'),
};

const state = {
  type: 'counter',
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
  /** key -> { tr, seq } */
  rows: new Map(),
  watch: null,
  /** The key whose timers are shown, or null. */
  selected: null,
  /** Errors seen by this page (failed requests), newest first. */
  localErrors: [],
  /** The latest dead letters from the gateway, oldest first; null when the gateway has no such route. */
  deadLetters: [],
  deadLettersCursor: 0,
  deadLettersUrl: '/api/dlq',
};

// ---------------------------------------------------------------------------------- API

function authHeaders() {
  return state.token ? { authorization: `Bearer ${state.token}` } : {};
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { accept: 'application/json', ...authHeaders(), ...(init.headers ?? {}) } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
    err.code = body?.error?.code ?? String(res.status);
    err.status = res.status;
    throw err;
  }
  return body;
}

function recordError(where, err) {
  state.localErrors.unshift({ time: new Date(), code: err.code ?? 'ERROR', message: `${where}: ${err.message}` });
  state.localErrors.length = Math.min(state.localErrors.length, MAX_ERRORS);
  renderErrors();
}

// --------------------------------------------------------------------------- connection

function setConnection(kind, text) {
  ui.connDot.className = `dot ${kind}`;
  ui.connText.textContent = text;
}

// ------------------------------------------------------------------------ actors (live)

function formatState(value) {
  const text = JSON.stringify(value);
  return text === undefined ? '' : text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleTimeString();
}

function renderEmpty() {
  ui.actorsEmpty.hidden = state.rows.size > 0;
}

function upsertRow(change, flash) {
  const existing = state.rows.get(change.key);
  // Never go back; a listed snapshot (no time) does not replace a streamed one of the same seq.
  if (existing && (existing.seq > change.seq || (existing.seq === change.seq && change.updatedAt === null))) return;
  if (change.deleted) {
    if (existing) {
      existing.tr.remove();
      state.rows.delete(change.key);
    }
    renderEmpty();
    return;
  }
  let row = existing;
  if (!row) {
    if (state.rows.size >= MAX_ROWS) return;
    const tr = document.createElement('tr');
    tr.dataset.key = change.key;
    const th = document.createElement('th');
    th.scope = 'row';
    const key = change.key;
    const pick = el('button', { type: 'button', className: 'key', textContent: key, title: `show the timers of ${key}` });
    pick.addEventListener('click', () => selectActor(key));
    th.append(pick);
    tr.append(th, document.createElement('td'), document.createElement('td'), document.createElement('td'));
    tr.cells[1].className = 'state';
    tr.cells[2].className = 'num';
    // Keep the rows in key order.
    const after = [...ui.actorsBody.rows].find((r) => r.dataset.key > change.key);
    ui.actorsBody.insertBefore(tr, after ?? null);
    row = { tr, seq: 0 };
    state.rows.set(change.key, row);
  }
  row.seq = change.seq;
  // A commit may set, fire or cancel timers: refresh the list of the chosen actor.
  if (change.key === state.selected && flash) void loadTimers(change.key);
  const [, stateCell, seqCell, timeCell] = row.tr.cells;
  stateCell.textContent = formatState(change.state);
  seqCell.textContent = String(change.seq);
  timeCell.textContent = formatTime(change.updatedAt);
  if (flash) {
    row.tr.classList.remove('flash');
    void row.tr.offsetWidth; // restart the animation
    row.tr.classList.add('flash');
  }
  renderEmpty();
}

function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

/** Reads the type's change stream until it ends or is aborted; resolves when the stream is open. */
async function openStream(type, signal, onOpen) {
  const res = await fetch(`/api/watch/${encodeURIComponent(type)}`, {
    headers: { accept: 'text/event-stream', ...authHeaders() },
    signal,
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    const err = new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
    err.code = body?.error?.code ?? String(res.status);
    err.status = res.status;
    throw err;
  }
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const { event, data } = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event === 'change' && data) upsertRow(JSON.parse(data), true);
    }
  }
}

async function loadList(type) {
  const page = await api(`/api/actors/${encodeURIComponent(type)}?limit=${MAX_ROWS}`);
  for (const item of page.items) {
    upsertRow({ key: item.key, state: item.state, seq: item.seq, updatedAt: null, deleted: false }, false);
  }
}

/** Watches `type` and keeps watching: reconnects with a backoff after any failure. */
function watchType(type) {
  state.watch?.abort();
  const controller = new AbortController();
  state.watch = controller;
  let delay = 500;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        setConnection('pending', 'connecting…');
        await openStream(type, controller.signal, () => {
          delay = 500;
          setConnection('live', 'live');
          // Listed after the stream is open, so no change falls between the two.
          loadList(type).catch((err) => recordError(`list ${type}`, err));
        });
        if (!controller.signal.aborted) setConnection('pending', 'stream ended; reconnecting…');
      } catch (err) {
        if (controller.signal.aborted) return;
        if (err.status === 400 || err.status === 404) {
          // A bad or unknown type: retrying cannot help.
          setConnection('down', err.message);
          recordError(`watch ${type}`, err);
          return;
        }
        setConnection('down', err.status === 401 || err.status === 403 ? 'token needed' : `offline (${err.code ?? 'network'})`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  };
  void run();
}

// ------------------------------------------------------------------------------ timers

function renderTimers(key, timers) {
  ui.timersTitle.textContent = `Timers of ${state.type}/${key}`;
  ui.timersHint.textContent = timers.length === 0 ? 'No timers.' : '';
  ui.timersHint.hidden = timers.length > 0;
  ui.timersWrap.hidden = timers.length === 0;
  ui.timersBody.replaceChildren(
    ...timers.map((t) => {
      const at = new Date(t.at);
      const target = t.target.type === state.type && t.target.key === key ? 'this actor' : `${t.target.type}/${t.target.key}`;
      const repeat = t.every !== undefined ? ` (every ${t.every} ms)` : t.cron !== undefined ? ` (cron ${t.cron})` : '';
      return el('tr', {}, [
        el('td', { className: 'code', textContent: t.id }),
        el('td', {}, [el('time', { dateTime: t.at, textContent: at.toLocaleString(), title: t.at })]),
        el('td', { className: 'code', textContent: `${t.op}${t.input === undefined ? '' : ` ${formatState(t.input)}`}${repeat}` }),
        el('td', { textContent: target }),
      ]);
    }),
  );
}

async function loadTimers(key) {
  try {
    const list = await api(`/api/actors/${encodeURIComponent(state.type)}/${encodeURIComponent(key)}/timers`);
    if (state.selected === key) renderTimers(key, list.timers);
  } catch (err) {
    recordError(`timers of ${state.type}/${key}`, err);
  }
}

function selectActor(key) {
  state.selected = key;
  for (const [k, row] of state.rows) row.tr.classList.toggle('selected', k === key);
  void loadTimers(key);
}

function clearTimers() {
  state.selected = null;
  ui.timersTitle.textContent = 'Timers';
  ui.timersHint.textContent = "Choose a key above to see the actor's timers (operations scheduled to run later).";
  ui.timersHint.hidden = false;
  ui.timersWrap.hidden = true;
  ui.timersBody.replaceChildren();
}

function showType(type) {
  clearTimers();
  state.type = type;
  state.rows.clear();
  ui.actorsBody.replaceChildren();
  renderEmpty();
  watchType(type);
}

// ------------------------------------------------------------------ workers, partitions

/** A hue per worker id; the golden angle spreads similar ids (worker-a, worker-b) apart. */
function hue(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return Math.round((h * 137.508) % 360);
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function lagClass(lag) {
  if (lag === null || lag === undefined) return 'unknown';
  if (lag === 0) return 'ok';
  return lag < 1000 ? 'warn' : 'bad';
}

function partitionTile(p) {
  const lag = p.lag === null || p.lag === undefined ? '?' : String(p.lag);
  const tile = el('li', { className: `tile ${lagClass(p.lag)}`, title: `partition ${p.partition}: checkpoint ${p.checkpoint}, lag ${lag}` }, [
    el('span', { className: 'p', textContent: `p${p.partition}` }),
    el('span', { className: 'lag', textContent: lag }),
  ]);
  tile.setAttribute('aria-label', `partition ${p.partition}, checkpoint ${p.checkpoint}, lag ${lag}`);
  return tile;
}

/**
 * The type picker lists the registered types (from the services in /api/status), marking those
 * no live worker hosts; the selection stays.
 */
function renderTypes(status) {
  const types = new Map();
  for (const svc of status.services ?? []) for (const t of Object.keys(svc.types)) types.set(t, (types.get(t) ?? false) || svc.live);
  if (types.size === 0) return;
  if (!types.has(state.type)) types.set(state.type, false);
  const wanted = [...types.keys()].sort();
  const shown = [...ui.typeInput.options].map((o) => `${o.value}:${o.textContent}`).join('|');
  const label = (t) => (types.get(t) ? t : `${t} (no live worker: its operations wait)`);
  if (shown === wanted.map((t) => `${t}:${label(t)}`).join('|')) return;
  ui.typeInput.replaceChildren(...wanted.map((t) => el('option', { value: t, textContent: label(t) })));
  ui.typeInput.value = state.type;
}

function renderStatus(status) {
  renderTypes(status);
  // Each worker's partitions are those of its service (lane).
  const partitionsOf = new Map((status.services ?? []).map((svc) => [svc.id, new Map(svc.partitions.map((p) => [p.partition, p]))]));
  const lagOf = new Map(status.partitions.map((p) => [p.partition, p.lag]));
  const defaultPartitions = new Map(status.partitions.map((p) => [p.partition, p]));
  const cards = status.members.map((m) => {
    const byPartition = partitionsOf.get(m.service) ?? defaultPartitions;
    const owned = m.partitions.map((n) => ({ lag: lagOf.get(n) ?? null, ...(byPartition.get(n) ?? { partition: n, owner: m.id, checkpoint: 0 }) }));
    const totalLag = owned.reduce((sum, p) => sum + (p.lag ?? 0), 0);
    const card = el('article', { className: 'worker' }, [
      el('h3', {}, [el('span', { className: 'swatch', ariaHidden: 'true' }), m.id]),
      el('p', { className: 'meta', textContent: [m.service && `service ${m.service}`, m.types && Object.entries(m.types).map(([t, v]) => `${t}@${v}`).join(', '), m.host && `${m.host}`, m.pid && `pid ${m.pid}`, m.startedAt && `since ${formatTime(m.startedAt)}`].filter(Boolean).join(' · ') }),
      el('p', { className: 'meta', textContent: `${owned.length} partition${owned.length === 1 ? '' : 's'}, lag ${totalLag}` }),
      el('ul', { className: 'tiles', ariaLabel: `partitions of ${m.id}` }, owned.map(partitionTile)),
    ]);
    card.style.setProperty('--worker-hue', String(hue(m.id)));
    return card;
  });
  const unowned = status.partitions.filter((p) => p.owner === null || !status.members.some((m) => m.id === p.owner));
  if (unowned.length > 0) {
    cards.push(
      el('article', { className: 'worker unowned' }, [
        el('h3', { textContent: 'Unowned' }),
        el('p', { className: 'meta', textContent: `${unowned.length} partition${unowned.length === 1 ? '' : 's'} without a live owner` }),
        el('ul', { className: 'tiles', ariaLabel: 'unowned partitions' }, unowned.map(partitionTile)),
      ]),
    );
  }
  // Partitions whose owner must not apply the next operation (a record a newer version wrote).
  const waits = status.blocked ?? [];
  if (waits.length > 0) {
    cards.push(
      el('article', { className: 'worker unowned' }, [
        el('h3', { textContent: 'Waiting' }),
        ...waits.map((b) =>
          el('p', {
            className: 'meta',
            textContent: `p${b.partition} waits at seq ${b.seq} (${b.type}/${b.key} ${b.op}): ${b.reason === 'newer-record' ? `written by version ${b.recordVersion}, its owner runs ${b.version}` : b.reason}`,
          }),
        ),
      ]),
    );
  }
  ui.workersList.replaceChildren(...cards);
  ui.workersEmpty.hidden = status.members.length > 0;
  ui.statusUpdated.textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function pollStatus() {
  try {
    renderStatus(await api('/api/status'));
  } catch (err) {
    ui.statusUpdated.textContent = `status unavailable: ${err.message}`;
  } finally {
    setTimeout(pollStatus, STATUS_POLL_MS);
  }
}

// ------------------------------------------------------------------------------- errors

function renderErrors() {
  // Dead letters are what the workers could not apply; a handler's deliberate refusal is no
  // dead letter (a refusal of this page's own request shows among its failed requests).
  const fromWorkers = (state.deadLetters ?? []).map((d) => ({
    time: new Date(d.time),
    code: d.code,
    message: `dead letter ${d.dlqSeq}: ${d.type}/${d.key} ${d.op} (seq ${d.seq}${d.resubmitted ? `, resubmitted from ${d.resubmitted}` : ''}): ${d.message}`,
  }));
  const all = [...fromWorkers, ...state.localErrors].sort((a, b) => b.time - a.time).slice(0, MAX_ERRORS);
  ui.errorsList.replaceChildren(
    ...all.map((e) =>
      el('li', {}, [
        el('time', { dateTime: e.time.toISOString(), textContent: e.time.toLocaleTimeString() }),
        el('code', { className: 'code', textContent: e.code }),
        el('span', { textContent: e.message }),
      ]),
    ),
  );
  ui.errorsEmpty.hidden = all.length > 0;
}

/** Reads the dead letters added since the last poll (GET /api/dlq is oldest first, paged by dlqSeq). */
async function pollDeadLetters() {
  if (state.deadLetters === null) return;
  try {
    for (let pages = 0; pages < 5; pages++) {
      const cursor = state.deadLettersCursor ? `&cursor=${state.deadLettersCursor}` : '';
      const page = await api(`${state.deadLettersUrl}?limit=1000${cursor}`);
      const items = Array.isArray(page?.items) ? page.items : [];
      if (items.length > 0) {
        state.deadLettersCursor = items[items.length - 1].dlqSeq;
        state.deadLetters = [...state.deadLetters, ...items].slice(-MAX_ERRORS);
      }
      if (page?.nextCursor === null || page?.nextCursor === undefined) break;
    }
    renderErrors();
  } catch (err) {
    // A gateway without the dead-letter route: show this page's own errors only.
    if (err.status === 404 && err.code === 'NOT_FOUND') {
      state.deadLetters = null;
      return;
    }
  }
  setTimeout(pollDeadLetters, ERRORS_POLL_MS);
}

// -------------------------------------------------------------------------------- forms

ui.typeInput.addEventListener('change', () => showType(ui.typeInput.value));

ui.typeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!ui.typeForm.reportValidity()) return;
  showType(ui.typeInput.value.trim());
});

ui.signalForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!ui.signalForm.reportValidity()) return;
  const key = ui.signalKey.value.trim();
  const op = ui.signalOp.value.trim();
  const input = ui.signalInput.value.trim();
  try {
    if (input !== '') JSON.parse(input);
  } catch {
    ui.signalResult.textContent = 'Input must be JSON (e.g. 3 or {"value":3}), or empty.';
    ui.signalInput.focus();
    return;
  }
  try {
    const res = await api(`/api/actors/${encodeURIComponent(state.type)}/${encodeURIComponent(key)}/${encodeURIComponent(op)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: input === '' ? undefined : input,
    });
    ui.signalResult.textContent = `Signaled ${op} to ${state.type}/${key} (seq ${res.seq}).`;
  } catch (err) {
    ui.signalResult.textContent = `Not sent: ${err.message}`;
    recordError(`signal ${state.type}/${key} ${op}`, err);
  }
});

ui.tokenInput.value = state.token;
ui.tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = ui.tokenInput.value.trim();
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  showType(state.type);
});

// -------------------------------------------------------------------------------- start

const fromUrl = new URLSearchParams(location.search).get('type');
if (fromUrl && /^[A-Za-z0-9_=-]{1,64}$/.test(fromUrl)) {
  ui.typeInput.replaceChildren(el('option', { value: fromUrl, textContent: fromUrl }));
  ui.typeInput.value = fromUrl;
}
showType(ui.typeInput.value);
renderErrors();
void pollStatus();
void pollDeadLetters();
