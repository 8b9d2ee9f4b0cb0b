// Kiwi IRC's irc-framework over natterd's WebSocket, for tests/e2e/test_web_clients.py.
//   node kiwi.js ws://127.0.0.1:PORT/ws NICK #ROOM
// Prints one JSON object a line on stdout: {"event":"registered"}, {"event":"joined"},
// {"event":"message","nick":...,"target":...,"text":...,"tags":{...}}, {"event":"close"}.
// Reads lines on stdin: each is said in #ROOM ("/quit" leaves). Exits on its own after
// 60 s whatever happens, so a test that forgets it cannot leave it behind.
'use strict';
const IRC = require('irc-framework');
const WsTransport = require('irc-framework/src/transports/websocket');
const readline = require('readline');

const [url, nick, room] = process.argv.slice(2);
if (!url || !nick || !room) { console.error('usage: node kiwi.js ws://HOST:PORT/ws NICK #ROOM'); process.exit(2); }
if (typeof WebSocket === 'undefined') { console.error('kiwi.js: this node has no WebSocket (node 22, or node 20 with --experimental-websocket)'); process.exit(3); }
const u = new URL(url);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
setTimeout(() => { out({ event: 'timeout' }); process.exit(4); }, 60000).unref();

const client = new IRC.Client();
client.connect({
  host: u.hostname, port: Number(u.port), path: u.pathname, tls: u.protocol === 'wss:',
  nick, username: 'kiwi', gecos: 'irc-framework test', transport: WsTransport,
  websocket_protocol: 'text.ircv3.net', auto_reconnect: false, enable_echomessage: false,
});
client.on('registered', () => { out({ event: 'registered', nick: client.user.nick }); client.join(room); });
client.on('join', (e) => { if (e.nick === client.user.nick) out({ event: 'joined', channel: e.channel }); });
client.on('message', (e) => out({ event: 'message', type: e.type, nick: e.nick, target: e.target, text: e.message, tags: e.tags || {} }));
client.on('irc error', (e) => out({ event: 'error', error: e.error, reason: e.reason || '' }));
client.on('close', () => { out({ event: 'close' }); process.exit(0); });
client.on('socket close', () => { out({ event: 'close' }); process.exit(0); });

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line === '/quit') client.quit('done');
  else client.say(room, line);
});
rl.on('close', () => client.quit('stdin closed'));
