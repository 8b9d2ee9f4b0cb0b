// natter's browser client: IRC over a WebSocket to natterd's /ws (IRCv3 WebSocket:
// subprotocol text.ircv3.net, one IRC line per text frame, no CR LF).
// Everything said by others goes into the page through textContent, never as HTML.
'use strict';

(function () {
  const WANT_CAPS = ['server-time', 'message-tags', 'echo-message', 'batch', 'labeled-response',
    'draft/chathistory', 'away-notify', 'multi-prefix'];
  const PAGE = 50;            // messages asked for at a time (at most the server's CHATHISTORY=)
  const BACKOFF_MIN = 500;    // ms before the first reconnect, doubled each failure
  const BACKOFF_MAX = 30000;
  const HISTORY_WAIT = 15000; // a history answer that never comes frees its buffer after this
  const MAX_LINES = 2000;     // lines a log keeps while read at its bottom ...
  const TRIM = 500;           // ... dropping this many of the oldest at a time
  const $ = (id) => document.getElementById(id);
  const store = safeStorage();

  const S = {
    ws: null, nick: '', registered: false, everRegistered: false, userQuit: false,
    caps: new Set(), offered: [], histMax: 128, serverName: '', attempt: 0, timer: 0,
    buffers: new Map(), order: [], active: null, pending: [], label: 0, switchTo: '',
    listing: null, names: new Map(), sent: [], sentAt: -1, skew: 0, searchFor: null,
  };
  // The server's clock, as its live lines tell it: lines are sorted by the server's times,
  // so the page's own notes must use that clock too, or a browser whose clock is off
  // would put them among older or newer messages.
  const serverNow = () => Date.now() + S.skew;

  // ---- small helpers ----

  function safeStorage() {
    try { const s = window.localStorage; s.getItem('x'); return s; } catch (e) { return null; }
  }
  function load(key, dflt) {
    try { const v = store && store.getItem('natter.' + key); return v == null ? dflt : JSON.parse(v); } catch (e) { return dflt; }
  }
  function save(key, v) {
    try { if (store) store.setItem('natter.' + key, JSON.stringify(v)); } catch (e) { /* full or off */ }
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  const isChan = (t) => t.charAt(0) === '#';
  // Rooms fold ASCII letters only, names every letter (natterd's rules, near enough).
  const fold = (t) => isChan(t) ? t.replace(/[A-Z]/g, (c) => c.toLowerCase()) : t.toLowerCase();
  const sameNick = (a, b) => fold(a) === fold(b);

  // A stable colour per name: FNV-1a of the folded name picks one of 12 classes.
  function nickClass(nick) {
    let h = 0x811c9dc5;
    const s = fold(nick);
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return 'nick n' + (h % 12);
  }

  // IRC formatting (bold, colours, reset, ...) is taken out: the page shows plain text.
  function stripFormatting(t) {
    return t.replace(/\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, '');
  }

  // Messages sort by (server time, msgid): natterd's msgids are hex and ascending, the
  // parts of a long message ID, ID-2, ID-3.
  function idParts(id) {
    const m = /^(.*?)(?:-(\d+))?$/.exec(id || '');
    return [m[1], m[2] ? Number(m[2]) : 1];
  }
  function cmpKey(a, b) {
    if (a.ts !== b.ts) return a.ts - b.ts;
    const [ab, an] = idParts(a.id), [bb, bn] = idParts(b.id);
    if (ab.length !== bb.length) return ab.length - bb.length;
    if (ab !== bb) return ab < bb ? -1 : 1;
    return an - bn;
  }

  function fmtTime(ts) {
    const d = new Date(ts), now = new Date();
    const p = (n) => String(n).padStart(2, '0');
    const hm = p(d.getHours()) + ':' + p(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return hm;
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + hm;
  }

  // ---- IRC lines ----

  function unescapeTag(v) {
    return v.replace(/\\(.)?/g, (_, c) => ({ ':': ';', s: ' ', r: '\r', n: '\n', '\\': '\\' })[c] || c || '');
  }
  function parse(line) {
    const m = { tags: {}, source: '', nick: '', command: '', params: [] };
    let rest = line;
    if (rest[0] === '@') {
      const sp = rest.indexOf(' ');
      if (sp < 0) return null;
      for (const t of rest.slice(1, sp).split(';')) {
        const eq = t.indexOf('=');
        if (eq < 0) m.tags[t] = ''; else m.tags[t.slice(0, eq)] = unescapeTag(t.slice(eq + 1));
      }
      rest = rest.slice(sp + 1).replace(/^ +/, '');
    }
    if (rest[0] === ':') {
      const sp = rest.indexOf(' ');
      if (sp < 0) return null;
      m.source = rest.slice(1, sp);
      m.nick = m.source.split('!')[0];
      rest = rest.slice(sp + 1).replace(/^ +/, '');
    }
    while (rest.length) {
      if (rest[0] === ':') { m.params.push(rest.slice(1)); break; }
      const sp = rest.indexOf(' ');
      if (sp < 0) { m.params.push(rest); break; }
      m.params.push(rest.slice(0, sp));
      rest = rest.slice(sp + 1).replace(/^ +/, '');
    }
    m.command = (m.params.shift() || '').toUpperCase();
    return m.command ? m : null;
  }

  function send(line) {
    if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(line.replace(/[\r\n]+/g, ' '));
  }
  // Users are nick!user@host (natterd's history says nick!*@* for one gone); the server is a bare name.
  const fromServer = (m) => m.source.indexOf('!') < 0;

  // ---- buffers: the server window, rooms, private conversations ----

  function buffer(name, kind, create) {
    const key = kind === 'server' ? '*server' : fold(name);
    let b = S.buffers.get(key);
    if (b || !create) return b;
    b = {
      key, name, kind, joined: false, topic: '', members: new Map(), ids: new Set(),
      oldest: null, newest: null, unread: 0, hot: false, loading: false, noMore: false,
      readKey: load('read.' + key, null), marker: null, atBottom: true,
    };
    b.log = el('ol', 'log');
    b.log.setAttribute('role', 'log');
    b.log.setAttribute('aria-live', 'polite');
    b.log.setAttribute('aria-label', 'Messages in ' + (kind === 'server' ? 'the server window' : name));
    b.log.tabIndex = 0;
    b.log.dataset.key = key;
    b.log.hidden = true;
    b.log.addEventListener('scroll', () => onScroll(b));
    if (kind !== 'server') {
      b.top = el('li', 'more');
      b.topBtn = el('button', 'plain', 'Load older messages');
      b.topBtn.type = 'button';
      b.topBtn.addEventListener('click', () => loadOlder(b));
      b.top.appendChild(b.topBtn);
      b.log.appendChild(b.top);
    }
    $('logs').appendChild(b.log);
    const li = el('li');
    b.btn = el('button');
    b.btn.type = 'button';
    b.label = el('span', 'name', kind === 'server' ? 'server' : name);
    b.badge = el('span', 'badge');
    b.badge.hidden = true;
    b.btn.append(b.label, b.badge);
    b.btn.addEventListener('click', () => { show(b); $('input').focus(); });
    li.appendChild(b.btn);
    b.li = li;
    S.buffers.set(key, b);
    S.order.push(b);
    $('buffers').appendChild(li);
    if (kind === 'room') saveRooms();
    return b;
  }
  const serverBuf = () => buffer('server', 'server', true);
  function targetBuf(target, create) {
    return buffer(target, isChan(target) ? 'room' : 'pm', create);
  }

  function dropBuffer(b) {
    saveRead(b);
    S.buffers.delete(b.key);
    S.order = S.order.filter((x) => x !== b);
    b.log.remove();
    b.li.remove();
    if (b.kind === 'room') saveRooms();
    // As natterd does for its plain users: the most recently joined room left becomes current.
    if (S.active === b) {
      const rooms = S.order.filter((x) => x.kind === 'room');
      show(rooms[rooms.length - 1] || S.order[S.order.length - 1] || serverBuf());
    }
  }

  function renameBuffer(b, name) {
    const other = S.buffers.get(fold(name));
    if (other && other !== b) return; // a conversation under the new name is open already
    S.buffers.delete(b.key);
    b.key = fold(name);
    b.name = name;
    b.log.dataset.key = b.key;
    b.label.textContent = name;
    b.log.setAttribute('aria-label', 'Messages in ' + name);
    S.buffers.set(b.key, b);
    if (S.active === b) showHead(b);
  }

  function saveRooms() {
    save('rooms', S.order.filter((b) => b.kind === 'room').map((b) => b.name));
  }
  function saveRead(b) {
    if (b.readKey) save('read.' + b.key, b.readKey);
  }

  const viewing = (b) => S.active === b && !document.hidden;

  // Leaving a buffer: what it holds now is read; the next new message gets the marker.
  function leave(b) {
    if (!b) return;
    if (b.newest) b.readKey = { ts: b.newest.ts, id: b.newest.id };
    if (b.marker) { b.marker.remove(); b.marker = null; }
    saveRead(b);
  }

  function show(b) {
    if (S.active && S.active !== b) leave(S.active);
    if (S.active) { S.active.log.hidden = true; S.active.btn.removeAttribute('aria-current'); }
    S.active = b;
    b.log.hidden = false;
    b.btn.setAttribute('aria-current', 'true');
    b.unread = 0;
    b.hot = false;
    badge(b);
    showHead(b);
    $('side').classList.remove('open');
    $('menu').setAttribute('aria-expanded', 'false');
    if (b.marker) b.marker.scrollIntoView({ block: 'center' });
    else if (b.atBottom) b.log.scrollTop = b.log.scrollHeight;
    if (b.kind !== 'server' && b.oldest) fillView(b);
  }

  function showHead(b) {
    $('title').textContent = b.kind === 'server' ? 'server' : b.name;
    $('topic').textContent = b.topic;
    $('topic').title = b.topic;
    $('leave').hidden = b.kind === 'server';
    $('leave').textContent = b.kind === 'room' ? 'Leave ' + b.name : 'Close';
    $('input-label').textContent = b.kind === 'server' ? 'Command' : 'Message to ' + b.name;
    $('input').placeholder = b.kind === 'server' ? '/join #room, /msg NAME text, /help' : 'Message ' + b.name;
  }

  function badge(b) {
    b.badge.hidden = b.unread === 0;
    b.badge.textContent = String(b.unread);
    b.badge.setAttribute('aria-label', b.unread + ' unread' + (b.hot ? ', you were named' : ''));
    b.badge.classList.toggle('hot', b.hot);
    b.li.classList.toggle('parted', b.kind === 'room' && !b.joined);
    b.label.classList.toggle('parted', b.kind === 'room' && !b.joined);
    let total = 0;
    for (const x of S.order) total += x.unread;
    document.title = (total ? '(' + total + ') ' : '') + 'natter';
    $('menu').textContent = total ? 'Rooms (' + total + ')' : 'Rooms';
    $('menu').setAttribute('aria-label', total ? 'Rooms, ' + total + ' unread' : 'Rooms');
  }

  // ---- lines in a buffer ----

  // rec: {ts, id, type: msg|action|notice|note|err, nick, text, self, history, initial}
  function add(b, rec) {
    if (rec.id) {
      if (b.ids.has(rec.id)) return null;
      b.ids.add(rec.id);
    }
    const li = el('li', rec.type === 'msg' ? '' : rec.type);
    li._key = { ts: rec.ts, id: rec.id || '' };
    if (rec.id) li.dataset.id = rec.id;
    const t = el('time', '', fmtTime(rec.ts));
    t.dateTime = new Date(rec.ts).toISOString();
    t.title = t.dateTime;
    li.appendChild(t);
    const text = stripFormatting(rec.text);
    if (rec.type === 'msg' || rec.type === 'notice') {
      const n = el('span', nickClass(rec.nick), rec.type === 'notice' ? '-' + rec.nick + '-' : rec.nick);
      li.dataset.nick = rec.nick;
      li.append(n, el('span', 'text', text));
    } else if (rec.type === 'action') {
      li.dataset.nick = rec.nick;
      li.append('* ', el('span', nickClass(rec.nick), rec.nick), el('span', 'text', text));
    } else {
      li.append(el('span', 'text', text));
    }
    const chat = rec.type === 'msg' || rec.type === 'action' || rec.type === 'notice';
    if (chat && !rec.self && S.nick && mentions(text)) { li.classList.add('mention'); rec.mention = true; }
    insert(b, li);
    if (chat && rec.id && rec.nick) {
      if (!b.newest || cmpKey(li._key, b.newest) > 0) b.newest = li._key;
      if (!b.oldest || cmpKey(li._key, b.oldest) < 0) b.oldest = li._key;
    }
    if (chat) countUnread(b, rec, li);
    return li;
  }

  // Insert in time order, from the end: live lines are nearly always last.
  function insert(b, li) {
    let at = b.log.lastChild;
    while (at && at !== b.top && at._key && cmpKey(at._key, li._key) > 0) at = at.previousSibling;
    b.log.insertBefore(li, at ? at.nextSibling : b.log.firstChild);
  }

  function countUnread(b, rec, li) {
    // A batch is judged by where the reader was when it was asked for.
    const rk = 'readKey' in rec ? rec.readKey : b.readKey;
    const isNew = !rec.self && (rk ? cmpKey(li._key, rk) > 0 : !rec.initial);
    if (isNew && (!viewing(b) || rec.history) && !b.marker) {
      b.marker = el('li', 'marker', 'new messages');
      b.marker.setAttribute('role', 'separator');
      b.marker._key = b.readKey || { ts: li._key.ts - 1, id: '' };
      b.log.insertBefore(b.marker, li);
    }
    if (isNew && !viewing(b)) {
      b.unread++;
      if (rec.mention || b.kind === 'pm') b.hot = true;
      badge(b);
      if ((rec.mention || b.kind === 'pm') && !rec.history) notify(b, rec);
    }
    if (viewing(b) && (!b.readKey || cmpKey(li._key, b.readKey) > 0)) b.readKey = li._key;
  }

  function mentions(text) {
    const n = S.nick.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    try { return new RegExp('(^|[^\\p{L}\\p{N}_])' + n + '($|[^\\p{L}\\p{N}_])', 'iu').test(text); } catch (e) { return false; }
  }

  // Keep the view where it was: at the bottom if it was there, on the same line if older
  // lines came in above.
  function batchInsert(b, fn) {
    const log = b.log;
    const bottom = b.atBottom;
    let anchor = bottom ? null : firstVisible(log);
    if (anchor && anchor === b.top) anchor = anchor.nextElementSibling; // it stays first: no anchor
    const offset = anchor ? anchor.offsetTop - log.scrollTop : 0;
    log.setAttribute('aria-busy', 'true');
    const r = fn();
    log.removeAttribute('aria-busy');
    if (bottom) {
      trim(b);
      log.scrollTop = log.scrollHeight;
    } else if (anchor && anchor.parentNode === log) {
      log.scrollTop = anchor.offsetTop - offset;
    }
    return r;
  }

  // The first line at least partly in view (lines are in offsetTop order: a binary search).
  function firstVisible(log) {
    const c = log.children;
    let lo = 0, hi = c.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid].offsetTop + c[mid].offsetHeight <= log.scrollTop) lo = mid + 1; else hi = mid;
    }
    return c[lo];
  }

  // A log read at its bottom keeps its newest MAX_LINES lines: the oldest go (scrolling
  // up asks for them again), so a tab left open for weeks does not grow without end.
  function trim(b) {
    const log = b.log;
    if (!b.top || log.childElementCount <= MAX_LINES + TRIM) return;
    for (let i = 0; i < TRIM; i++) {
      const li = b.top.nextSibling;
      if (!li) break;
      if (li.dataset.id) b.ids.delete(li.dataset.id);
      if (li === b.marker) b.marker = null;
      li.remove();
    }
    b.oldest = null;
    for (let li = b.top.nextSibling; li; li = li.nextSibling) {
      if (li.dataset.id && li.dataset.nick) { b.oldest = li._key; break; }
    }
    b.noMore = false;
    b.topBtn.textContent = 'Load older messages';
    b.topBtn.disabled = false;
  }

  function note(b, text, type) {
    b = b || S.active || serverBuf();
    return batchInsert(b, () => add(b, { ts: serverNow(), type: type || 'note', text }));
  }
  const err = (text, b) => note(b, text, 'err');

  // ---- search (natterd's SEARCH, soju.im/search): results as notes where it was asked ----
  function endSearch(bt) {
    const b = (S.searchFor && S.buffers.get(S.searchFor.key)) || S.active || serverBuf();
    const words = S.searchFor ? S.searchFor.words : '';
    S.searchFor = null;
    note(b, 'search for "' + words + '": ' + (bt.lines.length ? bt.lines.length + ' found' : 'nothing found'));
    for (const m of bt.lines) {
      const t = Date.parse(m.tags.time || '');
      const when = t ? new Date(t).toLocaleString() : '';
      note(b, '[' + when + '] ' + (m.params[0] || '') + ' <' + (m.nick || '') + '> ' + (m.params[1] || ''));
    }
  }

  function onScroll(b) {
    const log = b.log;
    b.atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (log.scrollTop < 80) loadOlder(b);
  }

  // ---- history (CHATHISTORY) ----

  function askHistory(b, sub, ref, n) {
    if (!S.registered || b.loading) return;
    const limit = Math.min(n || PAGE, S.histMax);
    const req = { key: b.key, sub, limit, label: '', timer: 0 };
    let line = 'CHATHISTORY ' + sub + ' ' + b.name + ' ' + ref + ' ' + limit;
    if (S.caps.has('labeled-response')) {
      req.label = 'h' + (++S.label);
      line = '@label=' + req.label + ' ' + line;
    }
    b.loading = true;
    req.timer = setTimeout(() => finishReq(req), HISTORY_WAIT);
    S.pending.push(req);
    send(line);
  }
  function takeReq(label, key) {
    const i = S.pending.findIndex((r) => label ? r.label === label : r.key === key);
    if (i < 0) return null;
    const r = S.pending[i];
    S.pending.splice(i, 1);
    clearTimeout(r.timer);
    return r;
  }
  function finishReq(req) {
    const i = S.pending.indexOf(req);
    if (i >= 0) S.pending.splice(i, 1);
    const b = S.buffers.get(req.key);
    if (b) b.loading = false;
  }

  function loadOlder(b, n) {
    if (b.kind === 'server' || b.loading || b.noMore || !S.registered || (b.kind === 'room' && !b.joined)) return;
    if (!S.caps.has('draft/chathistory')) { // history is off on this server
      b.noMore = true;
      b.topBtn.textContent = 'No history on this server';
      b.topBtn.disabled = true;
      return;
    }
    if (!b.oldest) { askHistory(b, 'LATEST', '*', n); return; }
    askHistory(b, 'BEFORE', 'msgid=' + b.oldest.id, n);
  }

  // After joining: the newest page, or, after a reconnect, everything since the last
  // message seen (AFTER it, page by page), so the gap is filled and nothing is doubled.
  function catchUp(b) {
    if (b.newest) askHistory(b, 'AFTER', 'msgid=' + b.newest.id, S.histMax);
    else askHistory(b, 'LATEST', '*', PAGE);
  }

  // Ask for more while the log does not fill its box (nothing to scroll up with yet).
  function fillView(b) {
    if (S.active === b && !b.noMore && b.log.scrollHeight <= b.log.clientHeight + 80) loadOlder(b);
  }

  function endHistory(batch) {
    const req = takeReq(batch.tags.label, fold(batch.target));
    // A room left meanwhile stays closed; a conversation opens for its history.
    const b = targetBuf(batch.target, !isChan(batch.target));
    if (!b) return;
    const empty = !b.oldest;
    const readKey = b.readKey;
    batchInsert(b, () => {
      for (const m of batch.lines) {
        const rec = record(m);
        if (!rec) continue;
        rec.history = true;
        rec.initial = empty && req && req.sub === 'LATEST';
        rec.readKey = readKey;
        add(b, rec);
      }
    });
    if (!req) return;
    b.loading = false;
    if (req.sub === 'BEFORE' || (req.sub === 'LATEST' && empty)) {
      if (batch.lines.length === 0) {
        b.noMore = true;
        b.topBtn.textContent = 'The beginning of ' + (b.kind === 'room' ? b.name : 'this conversation');
        b.topBtn.disabled = true;
      }
      if (empty && !b.readKey && b.newest) b.readKey = b.newest;
      fillView(b);
    } else if (req.sub === 'AFTER' && batch.lines.length >= req.limit && b.newest) {
      catchUp(b);
    }
  }

  // A PRIVMSG or NOTICE (live or in a batch) as a record for add(); null if not one.
  function record(m) {
    if (m.command !== 'PRIVMSG' && m.command !== 'NOTICE') return null;
    const ts = m.tags.time ? Date.parse(m.tags.time) || serverNow() : serverNow();
    let text = m.params[1] || '';
    if (fromServer(m)) return { ts, type: 'note', text: text.replace(/^\*\*\* /, '') };
    let type = m.command === 'NOTICE' ? 'notice' : 'msg';
    if (text.charAt(0) === '\x01') {
      const c = /^\x01(\S+) ?([^\x01]*)\x01?$/.exec(text);
      if (!c || c[1].toUpperCase() !== 'ACTION') return null; // other CTCP: not for people
      type = 'action';
      text = c[2];
    }
    return { ts, id: m.tags.msgid || '', type, nick: m.nick, text, self: sameNick(m.nick, S.nick) };
  }

  // ---- notifications, asked for with a button, never forced ----

  function notifyButton() {
    const btn = $('notify');
    if (!('Notification' in window)) { btn.hidden = true; return; }
    btn.hidden = Notification.permission !== 'default';
  }
  function notify(b, rec) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(rec.nick + (b.kind === 'room' ? ' in ' + b.name : ''), { body: stripFormatting(rec.text), tag: b.key });
      n.onclick = () => { window.focus(); show(b); n.close(); };
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  // ---- the connection ----

  function wsURL() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  }

  function connect() {
    clearTimeout(S.timer);
    if (S.ws) { S.ws.onclose = null; try { S.ws.close(); } catch (e) { /* already */ } }
    S.registered = false;
    S.caps = new Set();
    S.offered = [];
    status('connecting…');
    let ws;
    try { ws = new WebSocket(wsURL(), ['text.ircv3.net']); } catch (e) { lost(); return; }
    S.ws = ws;
    ws.onopen = () => {
      status('connected, signing in…');
      send('CAP LS 302');
      send('NICK ' + S.nick);
      send('USER ' + userName() + ' 0 * :natter web');
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      for (const line of ev.data.split(/\r?\n/)) if (line) onLine(line);
    };
    ws.onclose = (ev) => { if (S.ws === ws) lost(ev); };
  }

  function userName() {
    const u = S.nick.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 10);
    return u || 'web';
  }

  function lost(ev) {
    S.ws = null;
    S.registered = false;
    for (const r of S.pending) clearTimeout(r.timer);
    S.pending = [];
    for (const b of S.order) { b.loading = false; if (b.kind === 'room' && b.joined) b.rejoin = true; }
    if (S.userQuit) { status('you left the server', true); $('retry').hidden = false; return; }
    if (!S.everRegistered && !$('login').hidden) {
      loginStatus('could not reach the server' + (ev && ev.code ? ' (' + ev.code + ')' : '') + ', trying again…');
      $('login-go').disabled = false;
    }
    const delay = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, S.attempt)) * (0.8 + 0.4 * Math.random());
    S.attempt++;
    status('disconnected: reconnecting in ' + Math.ceil(delay / 1000) + ' s', true);
    $('retry').hidden = false;
    S.timer = setTimeout(connect, delay);
  }

  function status(text, down) {
    $('status').textContent = text;
    $('status').classList.toggle('down', !!down);
  }

  // ---- what the server says ----

  const batches = new Map();

  function onLine(line) {
    const m = parse(line);
    if (!m) return;
    const ref = m.tags.batch;
    if (m.tags.time && !ref) {
      const t = Date.parse(m.tags.time);
      if (t) S.skew = t - Date.now();
    }
    if (ref && batches.has(ref)) {
      const bt = batches.get(ref);
      if (bt.type === 'chathistory' || bt.type === 'soju.im/search') { bt.lines.push(m); return; }
    }
    const h = HANDLERS[m.command];
    if (h) h(m);
    else if (/^\d{3}$/.test(m.command)) numeric(m);
  }

  const HANDLERS = {
    PING: (m) => send('PONG :' + (m.params[0] || '')),
    ERROR: (m) => {
      const why = m.params[0] || '';
      // Put off the server by an operator (or refused): coming back by itself would be rude.
      if (/Killed|Bad password|Banned/i.test(why)) S.userQuit = true;
      note(S.active || serverBuf(), 'the server closed the connection: ' + why, 'err');
    },
    CAP: onCap,
    BATCH: (m) => {
      const ref = m.params[0] || '';
      if (ref[0] === '+') {
        batches.set(ref.slice(1), { type: m.params[1], target: m.params[2] || '', tags: m.tags, lines: [] });
      } else if (ref[0] === '-') {
        const bt = batches.get(ref.slice(1));
        batches.delete(ref.slice(1));
        if (bt && bt.type === 'chathistory') endHistory(bt);
        else if (bt && bt.type === 'soju.im/search') endSearch(bt);
      }
    },
    PRIVMSG: onMessage,
    NOTICE: onMessage,
    JOIN: onJoin,
    PART: (m) => onLeave(m, m.params[0], m.nick + ' left ' + m.params[0] + (m.params[1] ? ' (' + m.params[1] + ')' : '')),
    KICK: (m) => onLeave(m, m.params[0], m.nick + ' kicked ' + m.params[1] + ' out of ' + m.params[0] +
      (m.params[2] ? ' (' + m.params[2] + ')' : ''), m.params[1]),
    QUIT: onQuit,
    NICK: onNick,
    TOPIC: (m) => {
      const b = buffer(m.params[0], 'room');
      if (!b) return;
      b.topic = m.params[1] || '';
      if (S.active === b) showHead(b);
      note(b, b.topic ? m.nick + ' set the topic: ' + b.topic : m.nick + ' cleared the topic');
    },
    MODE: (m) => {
      if (!isChan(m.params[0])) return;
      const b = buffer(m.params[0], 'room');
      if (b) note(b, m.nick + ' sets mode ' + m.params.slice(1).join(' '));
    },
    INVITE: (m) => note(S.active, m.nick + ' invites you to ' + m.params[1] + ' (/join ' + m.params[1] + ')'),
    AWAY: () => {},
    WALLOPS: (m) => note(serverBuf(), 'wallops from ' + m.nick + ': ' + (m.params[0] || '')),
    FAIL: (m) => {
      if (m.params[0] === 'CHATHISTORY') {
        const req = takeReq(m.tags.label, fold(m.params[3] || ''));
        if (req) finishReq(req);
        const b = req && S.buffers.get(req.key);
        // A reference the server no longer knows (a new database): start afresh.
        if (b && req.sub === 'AFTER' && m.params[1] === 'INVALID_PARAMS') { askHistory(b, 'LATEST', '*', PAGE); return; }
        if (b && m.params[1] !== 'INVALID_TARGET') err('history: ' + m.params[m.params.length - 1], b);
        return;
      }
      err(m.params[m.params.length - 1]);
    },
  };

  function onCap(m) {
    const sub = (m.params[1] || '').toUpperCase();
    if (sub === 'LS') {
      const more = m.params[2] === '*';
      const list = m.params[more ? 3 : 2] || '';
      S.offered.push(...list.split(' ').filter(Boolean).map((c) => c.split('=')[0]));
      if (more) return;
      const want = WANT_CAPS.filter((c) => S.offered.includes(c));
      // labeled-response needs batch: natterd NAKs it alone, and REQ is all or nothing.
      if (!want.includes('batch') && want.includes('labeled-response')) want.splice(want.indexOf('labeled-response'), 1);
      if (want.length) send('CAP REQ :' + want.join(' ')); else send('CAP END');
    } else if (sub === 'ACK') {
      for (const c of (m.params[2] || '').split(' ')) if (c) S.caps.add(c.replace(/^-/, ''));
      send('CAP END');
    } else if (sub === 'NAK') {
      send('CAP END');
    }
  }

  function onMessage(m) {
    const rec = record(m);
    if (!rec) return;
    const target = m.params[0] || '';
    let b;
    if (rec.type === 'note') {
      b = isChan(target) ? buffer(target, 'room') : null;
      b = b || S.active || serverBuf();
    } else if (isChan(target)) {
      b = buffer(target, 'room');
      if (!b) return;
    } else {
      // A private message: the conversation is named after the other one.
      const other = rec.self ? target : m.nick;
      b = buffer(other, 'pm', true);
    }
    batchInsert(b, () => add(b, rec));
  }

  function onJoin(m) {
    const chan = m.params[0];
    if (sameNick(m.nick, S.nick)) {
      const b = buffer(chan, 'room', true);
      if (b.name !== chan) { b.name = chan; b.label.textContent = chan; }
      b.joined = true;
      b.rejoin = false;
      b.members = new Map();
      badge(b);
      if (S.switchTo === b.key || !S.active || S.active.kind === 'server') { S.switchTo = ''; show(b); }
      note(b, 'you joined ' + b.name);
      if (S.caps.has('draft/chathistory')) catchUp(b);
      return;
    }
    const b = buffer(chan, 'room');
    if (!b) return;
    b.members.set(fold(m.nick), m.nick);
    note(b, m.nick + ' joined ' + b.name);
  }

  function onLeave(m, chan, text, who) {
    const b = buffer(chan, 'room');
    if (!b) return;
    who = who || m.nick;
    b.members.delete(fold(who));
    if (sameNick(who, S.nick)) {
      b.joined = false;
      if (m.command === 'PART') { dropBuffer(b); return; }
      badge(b);
    }
    note(b, text);
  }

  function onQuit(m) {
    const k = fold(m.nick);
    const text = m.nick + ' quit' + (m.params[0] ? ' (' + m.params[0] + ')' : '');
    for (const b of S.order) {
      if ((b.kind === 'room' && b.members.has(k)) || (b.kind === 'pm' && b.key === k)) {
        b.members.delete(k);
        note(b, text);
      }
    }
  }

  function onNick(m) {
    const to = m.params[0];
    const k = fold(m.nick);
    const mine = sameNick(m.nick, S.nick);
    if (mine) { S.nick = to; save('nick', to); status('connected as ' + to); }
    const text = (mine ? 'you are' : m.nick + ' is') + ' now known as ' + to;
    for (const b of S.order.slice()) {
      if (b.kind === 'room' && (b.members.has(k) || mine)) {
        b.members.delete(k);
        b.members.set(fold(to), to);
        note(b, text);
      } else if (b.kind === 'pm' && b.key === k) {
        renameBuffer(b, to);
        note(b, text);
      }
    }
    if (mine && (!S.active || S.active.kind !== 'room')) note(serverBuf(), text);
  }

  function numeric(m) {
    const p = m.params;
    const last = p[p.length - 1] || '';
    const code = m.command;
    switch (code) {
      case '001':
        S.registered = true;
        S.everRegistered = true;
        S.attempt = 0;
        S.nick = p[0];
        S.serverName = m.source;
        save('nick', S.nick);
        $('retry').hidden = true;
        status('connected as ' + S.nick);
        enterApp();
        rejoin();
        return;
      case '005':
        for (const tok of p.slice(1, -1)) {
          const [k, v] = tok.split('=');
          if (k === 'CHATHISTORY' && Number(v) > 0) S.histMax = Number(v);
        }
        return;
      case '002': case '003': case '004': case '251': case '252': case '253': case '254':
      case '255': case '265': case '266': case '375': case '372': case '376': case '422':
        if (code !== '376' && code !== '375' && code !== '422') note(serverBuf(), last);
        return;
      case '432': case '433': case '436':
        nameRefused(p[1] || '', code === '432' ? 'invalid' : 'taken');
        return;
      case '332': {
        const b = buffer(p[1], 'room');
        if (b) { b.topic = last; if (S.active === b) showHead(b); note(b, 'topic: ' + last); }
        return;
      }
      case '331': { const b = buffer(p[1], 'room'); if (b) note(b, 'no topic in ' + b.name); return; }
      case '333': return;
      case '353': {
        const chan = p[2];
        const b = buffer(chan, 'room');
        const all = S.names.get(fold(chan)) || [];
        for (const n of last.split(' ')) {
          if (!n) continue;
          all.push(n);
          const bare = n.replace(/^[@+]+/, '').split('!')[0];
          if (b) b.members.set(fold(bare), bare);
        }
        S.names.set(fold(chan), all);
        return;
      }
      case '366': {
        const k = fold(p[1]);
        const all = S.names.get(k) || [];
        S.names.delete(k);
        const want = S.whoFor && S.whoFor.key === k ? S.whoFor : null;
        if (!want) return;
        S.whoFor = null;
        const list = all.filter((n) => !want.text || n.toLowerCase().includes(want.text.toLowerCase()));
        note(want.buf, p[1] + (want.text ? ' "' + want.text + '"' : '') + ': ' + list.join(' ') + ' (' + list.length + ' users)');
        return;
      }
      case '321': S.listing = S.listing || { rooms: [], text: '' }; return;
      case '322': if (S.listing) S.listing.rooms.push(p[1] + ' (' + p[2] + ')'); return;
      case '323': {
        const l = S.listing || { rooms: [], text: '' };
        S.listing = null;
        const rooms = l.rooms.filter((r) => !l.text || r.toLowerCase().includes(l.text.toLowerCase()));
        note(S.active, 'rooms' + (l.text ? ' "' + l.text + '"' : '') + ': ' + (rooms.join(' ') || 'none'));
        return;
      }
      case '301': note(buffer(p[1], 'pm') || S.active, p[1] + ' is away: ' + last); return;
      case '305': note(S.active, 'you are back'); return;
      case '306': note(S.active, 'you are marked away'); return;
      case '311': note(S.active, p[1] + ' is ' + p[2] + '@' + p[3] + ' (' + last + ')'); return;
      case '319': note(S.active, p[1] + ' is in ' + last); return;
      case '312': note(S.active, p[1] + ' is on ' + p[2] + ' (' + last + ')'); return;
      case '317': note(S.active, p[1] + ' has been idle ' + p[2] + ' s'); return;
      case '318': case '315': case '368': case '349': case '347': case '369': case '219': return;
      case '324': note(buffer(p[1], 'room') || S.active, 'modes of ' + p[1] + ': ' + p.slice(2).join(' ')); return;
      case '329': return;
      case '367': case '348': case '346':
        note(S.active, ({ 367: 'ban ', 348: 'exception ', 346: 'invite exception ' })[code] + p[1] + ': ' + p[2] + (p[3] ? ' (set by ' + p[3] + ')' : ''));
        return;
      case '341': note(S.active, 'you invited ' + p[1] + ' to ' + p[2]); return;
      case '381': note(S.active, 'you are a server operator now'); return;
      case '221': note(S.active, 'your modes: ' + (p[1] || '+')); return;
      default:
        if (code[0] === '4' || code[0] === '5') {
          const what = p.slice(1, -1).join(' ');
          err((what ? what + ': ' : '') + last);
          if (code === '471' || code === '473' || code === '474' || code === '475') S.switchTo = '';
        } else if (p.length > 1) {
          note(S.active, p.slice(1).join(' '));
        }
    }
  }

  // ---- the name prompt ----

  function nameRefused(name, why) {
    const text = why === 'taken'
      ? 'The name "' + name + '" is taken: someone on this server (in the browser, in a terminal or on IRC) uses it now. Pick another.'
      : 'The server does not take "' + name + '" as a name: 1 to 24 visible characters of one script, no spaces, none of < > * , ! @, and not starting with # / * - ! < > : + % & ~ $.';
    if (!S.registered) {
      // Still signing in: the server waits for another NICK; the prompt asks for it.
      showLogin(text);
      return;
    }
    err(text);
  }

  function showLogin(error) {
    $('login').hidden = false;
    $('app').hidden = true;
    $('login-error').textContent = error || '';
    loginStatus('');
    $('login-go').disabled = false;
    const input = $('login-name');
    if (!input.value) input.value = S.nick || load('nick', '');
    input.setAttribute('aria-invalid', error ? 'true' : 'false');
    input.focus();
    input.select();
  }
  function loginStatus(t) { $('login-status').textContent = t; }

  function enterApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    notifyButton();
    if (!S.active) show(serverBuf());
    $('input').focus();
  }

  function onLoginSubmit(ev) {
    ev.preventDefault();
    const name = $('login-name').value.trim();
    if (!name) { $('login-error').textContent = 'Type a name first.'; return; }
    if (/\s/.test(name)) { $('login-error').textContent = 'A name has no spaces.'; return; }
    $('login-error').textContent = '';
    $('login-name').setAttribute('aria-invalid', 'false');
    $('login-go').disabled = true;
    loginStatus('signing in…');
    S.nick = name;
    S.userQuit = false;
    if (S.ws && S.ws.readyState === WebSocket.OPEN && !S.registered) send('NICK ' + name);
    else connect();
  }

  function rejoin() {
    const rooms = S.order.filter((b) => b.kind === 'room' && b.rejoin).map((b) => b.name);
    const want = S.everJoined ? rooms : load('rooms', ['#lobby']);
    S.everJoined = true;
    if (want.length) send('JOIN ' + want.join(','));
    for (const b of S.order) if (b.kind === 'pm' && S.caps.has('draft/chathistory')) catchUp(b);
  }

  // ---- what the user types: the terminal client's commands, in IRC ----

  function say(text) {
    const b = S.active;
    if (!b || b.kind === 'server') { err('this is the server window: /join a room or /msg someone first'); return; }
    if (b.kind === 'room' && !b.joined) { err('you are not in ' + b.name + ' (/join ' + b.name + ')'); return; }
    privmsg(b.name, text);
  }
  function privmsg(target, text, action) {
    const body = action ? '\x01ACTION ' + text + '\x01' : text;
    send('PRIVMSG ' + target + ' :' + body);
    if (!S.caps.has('echo-message')) {
      const b = targetBuf(target, true);
      batchInsert(b, () => add(b, { ts: serverNow(), type: action ? 'action' : 'msg', nick: S.nick, text, self: true }));
    }
  }

  const chanArg = (w) => w && isChan(w) ? w : '';
  const roomOf = (w) => chanArg(w) || (S.active && S.active.kind === 'room' ? S.active.name : '');

  const HELP = [
    'text                  a message to this room or conversation (//text: one starting with /)',
    '/me text              an action',
    '/join #room [key]     join a room, or switch to it',
    '/part [#room] [why]   leave a room (default: this one)',
    '/msg NAME text        a private message (opens its conversation); /query NAME opens it',
    '/nick NAME            change your name',
    '/topic [#room] [text] show or set the topic (/topic - clears it)',
    '/who [#room [TEXT]]   who is in the room',
    '/rooms [TEXT]         the rooms on the server',
    '/away [text]          mark yourself away; without text: back',
    '/history [N]          load N older messages here',
    '/search [#room] WORDS find messages with every word (rooms you are in)',
    '/whois NAME, /notice NAME text, /quit [why], /quote RAW IRC LINE',
    '/op /deop /voice /devoice [#room] NAME, /kick [#room] NAME [why], /ban /unban [#room] MASK,',
    '/bans [#room], /invite NAME [#room], /mode [#room] [modes], /oper NAME PASSWORD, /kill NAME [why], /wallops text, /stats',
    'keys: Alt+Up/Down switch rooms, PageUp/PageDown scroll, Up/Down recall what you typed',
  ];

  function command(line) {
    const sp = line.indexOf(' ');
    const cmd = (sp < 0 ? line.slice(1) : line.slice(1, sp)).toLowerCase();
    const rest = sp < 0 ? '' : line.slice(sp + 1).trim();
    const w = rest.split(/\s+/).filter(Boolean);
    const tail = (n) => rest.split(/\s+/).slice(n).join(' ');
    const usage = (u) => err('usage: ' + u);
    switch (cmd) {
      case 'me': if (!rest) return usage('/me text');
        if (!S.active || S.active.kind === 'server') return err('/me works in a room or a conversation');
        return privmsg(S.active.name, rest, true);
      case 'join': case 'j': {
        if (!w[0]) return usage('/join #room [key]');
        const room = isChan(w[0]) ? w[0] : '#' + w[0];
        const b = buffer(room, 'room');
        if (b && b.joined) { show(b); return note(b, 'you are now in ' + b.name); }
        S.switchTo = fold(room);
        return send('JOIN ' + room + (w[1] ? ' ' + w[1] : ''));
      }
      case 'part': case 'leave': {
        const room = roomOf(w[0]);
        if (!room) return usage('/part [#room] [reason]');
        const why = chanArg(w[0]) ? tail(1) : rest;
        return send('PART ' + room + (why ? ' :' + why : ''));
      }
      case 'msg': case 'query': {
        if (!w[0] || (cmd === 'msg' && !w[1])) return usage('/msg NAME text');
        if (isChan(w[0]) && cmd === 'msg') return privmsg(w[0], tail(1));
        const b = buffer(w[0], 'pm', true);
        show(b);
        if (!b.oldest && S.caps.has('draft/chathistory')) catchUp(b);
        if (cmd === 'msg') privmsg(w[0], tail(1));
        return;
      }
      case 'notice': if (!w[1]) return usage('/notice NAME text');
        send('NOTICE ' + w[0] + ' :' + tail(1));
        if (!S.caps.has('echo-message')) note(S.active, '-> -' + w[0] + '- ' + tail(1));
        return;
      case 'nick': if (!w[0]) return usage('/nick NAME'); return send('NICK ' + w[0]);
      case 'topic': {
        const room = roomOf(w[0]);
        if (!room) return usage('/topic [#room] [text]');
        const text = chanArg(w[0]) ? tail(1) : rest;
        if (!text) return send('TOPIC ' + room);
        return send('TOPIC ' + room + ' :' + (text === '-' ? '' : text));
      }
      case 'who': case 'names': {
        const room = w[0] ? (isChan(w[0]) ? w[0] : '#' + w[0]) : roomOf('');
        if (!room) return usage('/who [#room [TEXT]]');
        S.whoFor = { key: fold(room), text: w[1] || '', buf: S.active };
        return send('NAMES ' + room);
      }
      case 'rooms': case 'list': S.listing = { rooms: [], text: w[0] || '' }; return send('LIST');
      case 'away': return send(rest ? 'AWAY :' + rest : 'AWAY');
      case 'whois': if (!w[0]) return usage('/whois NAME'); return send('WHOIS ' + w[0]);
      case 'history': {
        const n = Number(w[w.length - 1]) || PAGE;
        if (!S.active || S.active.kind === 'server') return err('/history works in a room or a conversation');
        return loadOlder(S.active, n);
      }
      case 'search': {
        // As the terminal client: /search [#room] words. ';' would end the attribute.
        const room = chanArg(w[0]) ? w[0] : '';
        const words = (room ? w.slice(1) : w).join(' ').replace(/;/g, ' ').trim();
        if (!words) return usage('/search [#room] WORDS');
        S.searchFor = { key: S.active ? S.active.key : '', words };
        return send('SEARCH :text=' + words + (room ? ';in=' + room : ''));
      }
      case 'quit': case 'exit':
        S.userQuit = true;
        return send('QUIT' + (rest ? ' :' + rest : ''));
      case 'help': for (const h of HELP) note(S.active, h); return;
      case 'quote': case 'raw': if (!rest) return usage('/quote IRC LINE'); return send(rest);
      case 'op': case 'deop': case 'voice': case 'devoice': {
        const room = roomOf(w[0]);
        const who = chanArg(w[0]) ? w[1] : w[0];
        if (!room || !who) return usage('/' + cmd + ' [#room] NAME');
        const mode = { op: '+o', deop: '-o', voice: '+v', devoice: '-v' }[cmd];
        return send('MODE ' + room + ' ' + mode + ' ' + who);
      }
      case 'ban': case 'unban': {
        const room = roomOf(w[0]);
        const mask = chanArg(w[0]) ? w[1] : w[0];
        if (!room || !mask) return usage('/' + cmd + ' [#room] MASK');
        return send('MODE ' + room + (cmd === 'ban' ? ' +b ' : ' -b ') + mask);
      }
      case 'bans': {
        const room = roomOf(w[0]);
        if (!room) return usage('/bans [#room]');
        return send('MODE ' + room + ' b');
      }
      case 'kick': {
        const room = roomOf(w[0]);
        const who = chanArg(w[0]) ? w[1] : w[0];
        const why = tail(chanArg(w[0]) ? 2 : 1);
        if (!room || !who) return usage('/kick [#room] NAME [reason]');
        return send('KICK ' + room + ' ' + who + (why ? ' :' + why : ''));
      }
      case 'invite': {
        const room = chanArg(w[1]) || roomOf('');
        if (!w[0] || !room) return usage('/invite NAME [#room]');
        return send('INVITE ' + w[0] + ' ' + room);
      }
      case 'mode': {
        const room = roomOf(w[0]);
        if (!room) return usage('/mode [#room] [+-modes args]');
        const args = chanArg(w[0]) ? tail(1) : rest;
        return send('MODE ' + room + (args ? ' ' + args : ''));
      }
      case 'oper': if (!w[1]) return usage('/oper NAME PASSWORD'); return send('OPER ' + w[0] + ' ' + w[1]);
      case 'kill': if (!w[0]) return usage('/kill NAME [reason]'); return send('KILL ' + w[0] + (w[1] ? ' :' + tail(1) : ''));
      case 'wallops': if (!rest) return usage('/wallops text'); return send('WALLOPS :' + rest);
      case 'stats': return send('STATS' + (w[0] ? ' ' + w[0] : ''));
      default: return err('unknown command: /' + cmd + ' (try /help)');
    }
  }

  function onSay(ev) {
    ev.preventDefault();
    const input = $('input');
    const line = input.value;
    if (!line.trim()) return;
    input.value = '';
    S.sent.push(line);
    if (S.sent.length > 100) S.sent.shift();
    S.sentAt = -1;
    if (!S.registered) { err('not connected: wait for the reconnect'); input.value = line; return; }
    if (S.active) { leave(S.active); }
    if (line.startsWith('//')) say(line.slice(1));
    else if (line[0] === '/') command(line);
    else say(line);
  }

  function onKey(ev) {
    const input = $('input');
    if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown')) {
      ev.preventDefault();
      const i = S.order.indexOf(S.active);
      const n = S.order.length;
      if (n) show(S.order[(i + (ev.key === 'ArrowUp' ? n - 1 : 1)) % n]);
      return;
    }
    if (ev.target !== input || !S.active) return;
    if (ev.key === 'PageUp' || ev.key === 'PageDown') {
      ev.preventDefault();
      const log = S.active.log;
      log.scrollTop += (ev.key === 'PageUp' ? -1 : 1) * log.clientHeight * 0.9;
    } else if ((ev.key === 'ArrowUp' || ev.key === 'ArrowDown') && S.sent.length) {
      if (ev.key === 'ArrowUp' && input.value && S.sentAt < 0) return;
      ev.preventDefault();
      if (S.sentAt < 0) S.sentAt = S.sent.length;
      S.sentAt += ev.key === 'ArrowUp' ? -1 : 1;
      if (S.sentAt < 0) S.sentAt = 0;
      if (S.sentAt >= S.sent.length) { S.sentAt = -1; input.value = ''; return; }
      input.value = S.sent[S.sentAt];
    }
  }

  // ---- start ----

  function start() {
    $('login-form').addEventListener('submit', onLoginSubmit);
    $('say').addEventListener('submit', onSay);
    document.addEventListener('keydown', onKey);
    $('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('join-name').value.trim();
      if (!v) return;
      $('join-name').value = '';
      command('/join ' + v);
      $('input').focus();
    });
    $('leave').addEventListener('click', () => {
      const b = S.active;
      if (!b) return;
      if (b.kind === 'room' && b.joined) send('PART ' + b.name);
      else if (b.kind !== 'server') dropBuffer(b);
    });
    $('retry').addEventListener('click', () => { S.userQuit = false; S.attempt = 0; connect(); });
    $('notify').addEventListener('click', () => {
      Notification.requestPermission().then(notifyButton, notifyButton);
    });
    $('menu').addEventListener('click', () => {
      const open = $('side').classList.toggle('open');
      $('menu').setAttribute('aria-expanded', String(open));
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) leave(S.active);
      else if (S.active) { S.active.unread = 0; S.active.hot = false; badge(S.active); }
    });
    window.addEventListener('pagehide', () => { for (const b of S.order) { if (viewing(b)) leave(b); saveRead(b); } });
    showLogin('');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
