// A hand-written Node `ws` broadcast hub speaking just enough of hubbub's
// protocol for `hubbub bench`: `connected` on open, `subscribe` ->
// `subscribed`, and `POST /api/publish {channel,event_type,data}` on the
// same port, broadcast as `{type:"event",channel,event_type,data}`.
// Usage: node node-ws.js PORT   (NODE_PATH must hold the `ws` package)
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9101);
const channels = new Map(); // channel -> Set<ws>
const now = () => Date.now();
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks)); } catch { res.writeHead(400); res.end('{}'); return; }
      const subs = channels.get(body.channel);
      const text = JSON.stringify({ type: 'event', channel: body.channel, event_type: body.event_type, data: body.data, timestamp: now() });
      let n = 0;
      if (subs) for (const ws of subs) { ws.send(text); n++; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ channel: body.channel, subscribers: n }));
    });
    return;
  }
  res.writeHead(404); res.end('{}');
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws)));
wss.on('connection', (ws) => {
  const mine = new Set();
  ws.send(JSON.stringify({ type: 'connected', connection_id: String(Math.random()), user_id: null, server_time: now(), heartbeat_interval_ms: 0, max_message_size: 65536, encoding: 'json', features: [], timestamp: now() }));
  ws.on('message', (raw) => {
    let m; try { m = JSON.parse(raw); } catch { return; }
    if (m.type === 'subscribe') {
      for (const c of m.channels || []) {
        if (!channels.has(c)) channels.set(c, new Set());
        channels.get(c).add(ws); mine.add(c);
      }
      ws.send(JSON.stringify({ type: 'subscribed', channels: m.channels, correlation_id: m.id, timestamp: now() }));
    }
  });
  ws.on('close', () => { for (const c of mine) channels.get(c)?.delete(ws); });
  ws.on('error', () => {});
});
server.listen(port, '127.0.0.1', () => console.error(`node-ws ${process.pid} listening on ${port}`));
