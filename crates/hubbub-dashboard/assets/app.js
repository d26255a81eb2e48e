// The dashboard's shell: one connection to the hub (the JavaScript client
// the hub serves), the token, the theme, the connection state, the health
// summary, and the panels, each a module fed over the hub's own channels.

import { connect } from '../client.js';
import { mountOverview, mountNodes, mountResources } from './hub-panels.js';
import { mountTasks, mountAlerts } from './work-panels.js';
import { mountChannels } from './channels.js';
import { mountRooms } from './rooms.js';
import { mountGraph } from './graph.js';

const $ = (id) => document.getElementById(id);

// ---- token -----------------------------------------------------------------

const TOKEN_KEY = 'hubbub.token';
const storage = (() => {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
})();
const token = () => storage?.getItem(TOKEN_KEY) || null;

/** The claims of a JWT, unverified (only to know what to show). */
function claims(jwt) {
  try {
    const b = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b + '='.repeat((4 - (b.length % 4)) % 4)));
  } catch {
    return {};
  }
}
const admin = () => !!(token() && claims(token()).admin);

function askToken(why) {
  const d = $('token-dialog');
  if (d.open) return;
  if (why) $('token-why').textContent = why;
  $('token-input').value = token() || '';
  d.showModal();
}
$('token-btn').addEventListener('click', () => askToken());
$('token-dialog').addEventListener('close', () => {
  const v = $('token-dialog').returnValue;
  if (v == 'save' && $('token-input').value.trim()) storage?.setItem(TOKEN_KEY, $('token-input').value.trim());
  else if (v == 'clear') storage?.removeItem(TOKEN_KEY);
  else return;
  location.reload();
});

// ---- theme -----------------------------------------------------------------

function showTheme() {
  const dark = document.documentElement.dataset.theme == 'dark';
  $('theme-btn').textContent = dark ? 'Light' : 'Dark';
  $('theme-btn').setAttribute('aria-pressed', String(dark));
}
$('theme-btn').addEventListener('click', () => {
  const next = document.documentElement.dataset.theme == 'dark' ? 'light' : 'dark';
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem('hubbub.theme', next);
  } catch {
    /* storage off: the choice lasts for this page */
  }
  showTheme();
  document.dispatchEvent(new Event('themechange'));
});
showTheme();

// ---- toasts ------------------------------------------------------------------

function toast(message, kind = 'info') {
  const el = document.createElement('div');
  el.className = kind;
  el.textContent = message;
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind == 'error' ? 8000 : 4000);
}

// ---- HTTP API ----------------------------------------------------------------

/** An HTTP API answer that was not 2xx, with the hub's error code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let askedForToken = false;
/** GET (or another method) on the HTTP API, relative to the page, with the
 * admin token when there is one. 401/403 asks for a token once. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (admin()) headers.authorization = 'Bearer ' + token();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(new URL(path, document.baseURI), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.ok) return r.status == 204 ? null : r.json();
  let code = 'http_' + r.status;
  let message = r.statusText;
  try {
    const e = (await r.json()).error;
    code = e.code;
    message = e.message;
  } catch {
    /* not the hub's error shape */
  }
  if ((r.status == 401 || r.status == 403) && !askedForToken) {
    askedForToken = true;
    askToken(
      r.status == 401
        ? 'This hub needs an admin token for its API (production mode). Paste one to see the whole dashboard.'
        : 'The hub answers its API without a token only from its own machine. Paste an admin token to see everything.',
    );
  }
  throw new ApiError(r.status, code, message);
}

// ---- health ------------------------------------------------------------------

const LEVEL = { ok: 0, warn: 1, bad: 2 };
const healthSources = new Map(); // source -> {level, reason}
/** One input to the health state; the worst wins, its reason shown. */
function setHealth(source, level, reason) {
  if (level == 'ok') healthSources.delete(source);
  else healthSources.set(source, { level, reason });
  let worst = { level: 'ok', reason: 'connected, every node ready, no high alert in 5 minutes' };
  for (const h of healthSources.values()) if (LEVEL[h.level] > LEVEL[worst.level]) worst = h;
  const el = $('health');
  el.className = 'pill ' + worst.level;
  el.textContent = { ok: 'healthy', warn: 'degraded', bad: 'unhealthy' }[worst.level];
  el.dataset.level = worst.level;
  el.title = worst.reason;
  const copy = $('overview-health');
  copy.className = el.className;
  copy.textContent = el.textContent;
  $('overview-reason').textContent = worst.reason;
}

// ---- the connection ----------------------------------------------------------

const wsUrl = new URL('ws', document.baseURI);
wsUrl.protocol = wsUrl.protocol == 'https:' ? 'wss:' : 'ws:';
const hub = connect(wsUrl.href, { token, backoff: { initialMs: 250, maxMs: 5000 } });

let countdown = null;
hub.on('state', (s) => {
  const el = $('conn');
  clearInterval(countdown);
  el.dataset.state = s.state;
  const set = (cls, text) => {
    el.className = 'pill ' + cls;
    el.textContent = text;
  };
  if (s.state == 'connected') {
    set('ok', 'connected');
    // Connection ids start with the node's id.
    $('node').textContent = (hub.connectionId || '').replace(/-[^-]*$/, '');
    setHealth('connection', 'ok');
  } else if (s.state == 'reconnecting') {
    const until = Date.now() + s.delayMs;
    const tick = () => set('warn', `reconnecting in ${Math.max(0, (until - Date.now()) / 1000).toFixed(1)} s`);
    tick();
    countdown = setInterval(tick, 100);
    setHealth('connection', 'bad', 'the dashboard lost its connection to the hub');
  } else if (s.state == 'disconnected') {
    set('warn', `disconnected (${s.code})`);
  } else if (s.state == 'closed') {
    set('bad', 'closed');
    setHealth('connection', 'bad', 'the connection is closed: ' + (s.reason || 'reload the page'));
  } else set('', s.state);
});

/** Channels whose history could not fill a gap (a restarted in-memory hub
 * has a new epoch): their panels reload from the API. */
const reloaders = new Map();
hub.on('recovery', (r) => {
  if (!r.recovered) for (const f of reloaders.get(r.channel) || []) f();
});

const ctx = {
  hub,
  api,
  toast,
  setHealth,
  admin,
  /** Subscribes `channel`; `kept` channels start from what history holds.
   * `reload` runs after a reconnect that history could not bridge. */
  async follow(channel, handler, { kept = false, reload } = {}) {
    if (reload) reloaders.set(channel, [...(reloaders.get(channel) || []), reload]);
    try {
      await hub.subscribe(channel, handler, kept ? { since: { offset: 0, epoch: '' } } : {});
    } catch (e) {
      if (e.code != 'forbidden') toast(`${channel}: ${e.message}`, 'error');
    }
  },
  /** Runs `f` now and every `ms` while the page is visible. */
  every(ms, f) {
    const run = () => document.visibilityState == 'visible' && f();
    run();
    return setInterval(run, ms);
  },
};

hub.connect().catch(() => {});
mountOverview(ctx);
mountNodes(ctx);
mountResources(ctx);
mountTasks(ctx);
mountAlerts(ctx);
mountChannels(ctx);
mountRooms(ctx);
mountGraph($('panel-graph'), hub, { toast });
// For tests and the curious: the client and the page's state.
window.hubbub = { hub, ctx };
