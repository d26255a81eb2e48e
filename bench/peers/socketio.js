// A hand-written Socket.IO 4 broadcast hub for `hubbub bench --protocol
// socketio` (WebSocket transport only): on `subscribe` (a channel name) the
// socket joins that room and gets `subscribed`; `POST /api/publish
// {channel,event_type,data}` on the same port emits `event` with
// `{type:"event",channel,event_type,data}` to the room.
// Usage: node socketio.js PORT   (NODE_PATH must hold `socket.io`)
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const port = Number(process.argv[2] || 9104);
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks)); } catch { res.writeHead(400); res.end('{}'); return; }
      io.to(body.channel).emit('event', { type: 'event', channel: body.channel, event_type: body.event_type, data: body.data });
      const n = io.sockets.adapter.rooms.get(body.channel)?.size || 0;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ channel: body.channel, subscribers: n }));
    });
    return;
  }
  if (!req.url.startsWith('/socket.io/')) { res.writeHead(404); res.end('{}'); }
});
const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (s) => {
  s.on('subscribe', (c) => { s.join(c); s.emit('subscribed', c); });
});
server.listen(port, '127.0.0.1', () => console.error(`socketio ${process.pid} listening on ${port}`));
