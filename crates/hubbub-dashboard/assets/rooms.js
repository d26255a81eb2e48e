// Rooms: join one, see its members come and go (presence), chat, and see
// who is typing. Messages are `room_message` (kept, so a late joiner reads
// the last ones from history); typing is `typing_indicator` (ephemeral).

import { el } from './chart.js';

const $ = (id) => document.getElementById(id);
const TYPING_SHOWN_MS = 3000;
const TYPING_EVERY_MS = 1500;

export function mountRooms(ctx) {
  const { hub } = ctx;
  const me = $('room-me');
  try {
    me.value = localStorage.getItem('hubbub.name') || 'guest-' + Math.random().toString(36).slice(2, 6);
  } catch {
    me.value = 'guest-' + Math.random().toString(36).slice(2, 6);
  }
  let room = null;
  const members = new Map(); // connection_id -> entry
  const typing = new Map(); // connection_id -> [name, until]
  const seen = new Set(); // offsets of messages shown
  const nameOf = (m) => m.info?.name || m.user_id || m.connection_id;
  const section = $('panel-rooms');

  const showMembers = () => {
    const list = [...members.values()].sort((a, b) => a.joined_at - b.joined_at);
    $('room-members').replaceChildren(
      ...list.map((m) => el('li', nameOf(m) + (m.connection_id == hub.connectionId ? ' (you)' : ''), { title: m.connection_id })),
    );
    $('room-count').textContent = room ? `(${list.length})` : '';
    section.dataset.members = String(list.length);
  };
  const showTyping = () => {
    const now = Date.now();
    for (const [k, [, until]] of typing) if (until < now) typing.delete(k);
    const names = [...typing.values()].map(([n]) => n);
    $('room-typing').textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
    section.dataset.typing = names.join(',');
  };
  setInterval(showTyping, 500);
  const say = (e) => {
    if (e.offset != null) {
      if (seen.has(e.offset)) return;
      seen.add(e.offset);
    }
    const chat = $('room-chat');
    const p = el('p');
    p.append(el('b', (e.data.name || e.publisher?.user_id || 'someone') + ': '), el('span', String(e.data.text ?? '')));
    chat.append(p);
    while (chat.children.length > 200) chat.firstChild.remove();
    chat.scrollTop = chat.scrollHeight;
    section.dataset.messages = String(chat.children.length);
    typing.delete(e.publisher?.connection_id);
    showTyping();
  };
  const loadHistory = async () => {
    try {
      const h = await hub.history('room:' + room, { limit: 50 });
      for (const e of h.events || []) if (e.event_type == 'room_message') say(e);
    } catch {
      /* no history: only what arrives */
    }
  };
  hub.on('event', (e) => {
    if (!room || e.channel != 'room:' + room) return;
    const d = e.data || {};
    if (e.event_type == 'user_joined') members.set(d.connection_id, d), showMembers();
    else if (e.event_type == 'user_left') members.delete(d.connection_id), typing.delete(d.connection_id), showMembers();
    else if (e.event_type == 'room_message') say(e);
    else if (e.event_type == 'typing_indicator' && d.connection_id != hub.connectionId) {
      if (d.typing === false) typing.delete(d.connection_id);
      else typing.set(d.connection_id, [d.name || 'someone', Date.now() + TYPING_SHOWN_MS]);
      showTyping();
    } else if (e.event_type == 'room_deleted') leave(true);
  });
  hub.on('rejoined', (r) => {
    if (r.room != room) return;
    members.clear();
    for (const m of r.members) members.set(m.connection_id, m);
    showMembers();
    loadHistory();
  });

  // The public rooms (all of them for an admin) to pick from, with their size.
  ctx.every(5000, async () => {
    let rooms;
    try {
      rooms = await ctx.api('api/rooms');
    } catch {
      return;
    }
    $('room-list').replaceChildren(
      ...rooms.slice(0, 200).map((r) => el('option', `${r.members} member${r.members == 1 ? '' : 's'}`, { value: r.room })),
    );
  });

  const status = (t) => ($('room-status').textContent = t);
  const enable = (on) => {
    $('chat-input').disabled = !on;
    $('chat-send').disabled = !on;
    $('room-leave').disabled = !on;
    $('room-join').disabled = on;
    $('room-name').disabled = on;
    section.dataset.joined = on ? room : '';
  };
  $('room-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('room-name').value.trim();
    try {
      localStorage.setItem('hubbub.name', me.value);
    } catch {
      /* storage off */
    }
    status('joining…');
    try {
      const list = await hub.joinRoom(name, { name: me.value.trim() || 'guest' });
      room = name;
      members.clear();
      seen.clear();
      $('room-chat').replaceChildren();
      for (const m of list) members.set(m.connection_id, m);
      showMembers();
      enable(true);
      status(`in ${room}`);
      await loadHistory();
    } catch (e) {
      status(`${e.code || 'error'}: ${e.message}`);
      ctx.toast(`join ${name}: ${e.message}`, 'error');
    }
  });
  const leave = async (deleted) => {
    const was = room;
    room = null;
    members.clear();
    typing.clear();
    showMembers();
    showTyping();
    enable(false);
    status(deleted ? `${was} was deleted` : '');
    if (!deleted && was) await hub.leaveRoom(was).catch(() => {});
  };
  $('room-leave').addEventListener('click', () => leave(false));
  let lastTyping = 0;
  $('chat-input').addEventListener('input', () => {
    if (!room || Date.now() - lastTyping < TYPING_EVERY_MS || !$('chat-input').value) return;
    lastTyping = Date.now();
    hub
      .publish('room:' + room, 'typing_indicator', { typing: true, name: me.value, connection_id: hub.connectionId })
      .catch(() => {});
  });
  $('chat-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text || !room) return;
    $('chat-input').value = '';
    lastTyping = 0;
    try {
      await hub.publish('room:' + room, 'room_message', { text, name: me.value });
    } catch (e) {
      ctx.toast(`send: ${e.message}`, 'error');
      $('chat-input').value = text;
    }
  });
}
