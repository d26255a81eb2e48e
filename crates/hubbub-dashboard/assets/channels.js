// Channels and connections: `GET /api/channels` and `GET /api/connections`
// every two seconds (rates are the difference of two looks), filtered by
// one search box; a channel's recent history on click.

import { human, el } from './chart.js';

const $ = (id) => document.getElementById(id);

export function mountChannels(ctx) {
  let channels = [], connections = [];
  const prevOffset = new Map(), prevMsgs = new Map();
  const rate = new Map(), connRate = new Map();
  let prevAt = 0;
  let selected = null;
  const search = $('search');
  const match = (...fields) => {
    const q = search.value.trim().toLowerCase();
    return !q || fields.some((f) => f != null && String(f).toLowerCase().includes(q));
  };
  const render = () => {
    const rows = channels
      .filter((c) => match(c.channel))
      .sort((a, b) => b.subscribers - a.subscribers || a.channel.localeCompare(b.channel))
      .slice(0, 500)
      .map((c) => {
        const tr = el('tr', null, { class: 'clickable', tabindex: '0', 'data-channel': c.channel });
        if (c.channel == selected) tr.classList.add('selected');
        tr.append(
          el('td', c.channel, { title: c.channel }),
          el('td', human(c.subscribers), { class: 'num' }),
          el('td', c.offset == null ? '—' : human(c.offset), { class: 'num' }),
          el('td', rate.has(c.channel) ? human(rate.get(c.channel)) : '—', { class: 'num' }),
          el('td', human(c.history_size), { class: 'num' }),
        );
        return tr;
      });
    $('channels-rows').replaceChildren(...rows);
    $('channels-rows').dataset.live = '1';
    const conns = connections
      .filter((c) => match(c.connection_id, c.user_id, c.remote_addr, ...(c.subscriptions || [])))
      .slice(0, 500)
      .map((c) => {
        const tr = el('tr');
        tr.append(
          el('td', c.connection_id, { title: `${c.state}, ${c.encoding}, since ${new Date(c.connected_at).toLocaleString()}` }),
          el('td', c.user_id ?? 'anonymous'),
          el('td', c.remote_addr || ''),
          el('td', human((c.subscriptions || []).length), { class: 'num', title: (c.subscriptions || []).join(', ') }),
          el('td', connRate.has(c.connection_id) ? human(connRate.get(c.connection_id)) : '—', { class: 'num' }),
          el('td', human(c.queue_bytes, 'B'), { class: 'num' }),
        );
        return tr;
      });
    $('connections-rows').replaceChildren(...conns);
  };
  const poll = async () => {
    let ch, cn;
    try {
      [ch, cn] = await Promise.all([ctx.api('api/channels'), ctx.api('api/connections?limit=1000')]);
    } catch {
      return;
    }
    const now = Date.now();
    const secs = prevAt ? (now - prevAt) / 1000 : 0;
    rate.clear();
    connRate.clear();
    for (const c of ch) {
      if (secs && c.offset != null && prevOffset.has(c.channel)) rate.set(c.channel, Math.max(0, c.offset - prevOffset.get(c.channel)) / secs);
      prevOffset.set(c.channel, c.offset);
    }
    for (const c of cn) {
      const total = c.messages_sent + c.messages_received;
      if (secs && prevMsgs.has(c.connection_id)) connRate.set(c.connection_id, Math.max(0, total - prevMsgs.get(c.connection_id)) / secs);
      prevMsgs.set(c.connection_id, total);
    }
    prevAt = now;
    channels = ch;
    connections = cn;
    render();
  };
  search.addEventListener('input', render);
  const pick = async (channel) => {
    selected = channel;
    render();
    const box = $('channel-history');
    box.hidden = false;
    box.textContent = `${channel}: loading…`;
    try {
      const h = await ctx.api(`api/channels/${encodeURIComponent(channel)}/history?limit=20`);
      box.textContent =
        `${channel} (epoch ${h.epoch}, offset ${h.offset}), newest ${h.events.length}:\n` +
        (h.events.length
          ? h.events
              .map((e) => `#${e.offset} ${new Date(e.timestamp).toLocaleTimeString()} ${e.event_type} ${JSON.stringify(e.data).slice(0, 300)}`)
              .join('\n')
          : 'nothing kept');
    } catch (e) {
      box.textContent = `${channel}: ${e.message}`;
    }
    box.dataset.channel = channel;
  };
  $('channels-rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-channel]');
    if (tr) pick(tr.dataset.channel);
  });
  $('channels-rows').addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr[data-channel]');
    if (tr && (e.key == 'Enter' || e.key == ' ')) {
      e.preventDefault();
      pick(tr.dataset.channel);
    }
  });
  ctx.every(2000, poll);
}
