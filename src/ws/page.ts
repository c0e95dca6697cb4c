/**
 * The page a plain GET of the WebSocket path serves (docs/contract.md §6): a small chat
 * client. It joins the broadcast over a WebSocket on the same address and path, shows
 * every message with its arrival time, and sends what is typed. When the connection
 * closes it says why and reconnects with backoff (0.5 s, doubling up to 10 s); Send is
 * disabled while the socket is not open. One self-contained file, no build step, no
 * external asset, so it works offline and every engine serves the same bytes (options.ts
 * hands it to each as `ws.page`).
 *
 * Each message is marked: `own` (this page sent it: its echo, matched in order against
 * what the page sent), `history` (replayed on join: what arrives right after the socket
 * opens, within HISTORY_MS and before the page sends anything; the server sends a
 * newcomer the replay before anything else), or `live` (from another client).
 *
 * The list keeps the newest MAX_ITEMS (2000) lines: older ones leave the page, so a
 * page left open on a busy broadcast does not grow without end. A `token` in the page's
 * own URL (`/?token=...`) is passed on to the WebSocket it opens (`?token=...`: the
 * server's token check, docs/contract.md S15); nothing else of the query is.
 *
 * Served with pageSecurityHeaders() (below): the page may run only its own inline
 * script and style (a Content-Security-Policy with their SHA-256 hashes), connect only
 * to its own origin, and be framed by no one.
 *
 * Stable ids and classes for tests and for people who script it: #state ("connecting",
 * "open", or "closed CODE REASON, reconnecting in N s"), #messages (one li.msg per
 * message, with class own, history or live, its text in .text and its arrival time in
 * a time element; li.note for "disconnected"/"reconnected" lines), #input and #send.
 */
import { createHash } from 'node:crypto';

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>echocast</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; display: flex; flex-direction: column; height: 100vh; color: #222; }
  header { padding: .5rem 1rem; background: #f3f3f3; border-bottom: 1px solid #ddd; display: flex; gap: 1rem; align-items: baseline; }
  header h1 { font-size: 1rem; margin: 0; }
  #state { font-size: .85rem; color: #666; }
  #state.open { color: #08660f; }
  #state.closed { color: #a01010; }
  #messages { flex: 1; overflow-y: auto; margin: 0; padding: .5rem 1rem; list-style: none; font-family: ui-monospace, monospace; }
  #messages li { padding: .1rem 0; white-space: pre-wrap; word-break: break-word; border-bottom: 1px solid #f0f0f0; }
  #messages li.binary .text { color: #666; font-style: italic; }
  #messages time { color: #888; font-size: .8rem; margin-right: .6rem; }
  #messages .tag { font-size: .75rem; border-radius: 3px; padding: 0 .3rem; margin-right: .4rem; background: #eee; }
  #messages li.own .tag { background: #dde9ff; color: #123a7a; }
  #messages li.history { color: #777; }
  #messages li.note { color: #a01010; font: .85rem system-ui, sans-serif; }
  form { display: flex; gap: .5rem; padding: .5rem 1rem; border-top: 1px solid #ddd; }
  #input { flex: 1; padding: .4rem; font: inherit; }
  #send { padding: .4rem 1rem; font: inherit; }
</style>
</head>
<body>
<header><h1>echocast</h1><span id="state">connecting</span></header>
<ul id="messages"></ul>
<form id="form" autocomplete="off">
  <input id="input" placeholder="Type a message, Enter sends" autofocus>
  <button id="send" type="submit" disabled>Send</button>
</form>
<script>
(function () {
  'use strict';
  var HISTORY_MS = 500; // what arrives this soon after opening, before this page sends, is the replay
  var MAX_ITEMS = 2000; // lines the list keeps: the oldest leave first
  var $ = function (id) { return document.getElementById(id); };
  var state = $('state'), list = $('messages'), input = $('input'), send = $('send');
  var token = new URLSearchParams(location.search).get('token'); // passed on: the same address and path, and it
  var target = location.protocol.replace(/^http/, 'ws') + '//' + location.host + location.pathname + (token === null ? '' : '?token=' + encodeURIComponent(token));
  var socket = null, attempt = 0, wasOpen = false, sent = [], openedAt = 0, historyOpen = false;
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function clock(d) { return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds()); }
  function add(tag, cls, text, parent) {
    var el = document.createElement(tag);
    el.className = cls;
    el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }
  var follow = null; // at the list's end when this frame's first line came: follow it once per frame, not per line
  function append(item) {
    if (follow === null) {
      follow = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      requestAnimationFrame(function () { if (follow) list.scrollTop = list.scrollHeight; follow = null; });
    }
    list.appendChild(item);
    while (list.childElementCount > MAX_ITEMS) list.removeChild(list.firstElementChild);
  }
  function show(text, kind, binary) {
    var item = add('li', 'msg ' + kind + (binary ? ' binary' : ''), '');
    add('time', '', clock(new Date()), item);
    if (kind !== 'live') add('span', 'tag', kind === 'own' ? 'you' : 'history', item);
    add('span', 'text', text, item);
    append(item);
  }
  function note(text) { append(add('li', 'note', clock(new Date()) + ' ' + text)); }
  function setState(text, cls) {
    state.textContent = text;
    state.className = cls;
    send.disabled = cls !== 'open';
  }
  function connect() {
    setState(attempt === 0 ? 'connecting' : 'connecting (attempt ' + (attempt + 1) + ')', 'connecting');
    socket = new WebSocket(target);
    socket.binaryType = 'arraybuffer';
    socket.onopen = function () {
      if (wasOpen) note('reconnected');
      attempt = 0; wasOpen = true; sent = []; openedAt = Date.now(); historyOpen = true;
      setState('open', 'open');
    };
    socket.onclose = function (event) {
      var why = event.code + (event.reason ? ' ' + event.reason : '');
      if (state.className === 'open') note('disconnected: ' + why);
      var delay = Math.min(10000, 500 * Math.pow(2, attempt++));
      setState('closed ' + why + ', reconnecting in ' + delay / 1000 + ' s', 'closed');
      setTimeout(connect, delay);
    };
    socket.onmessage = function (event) {
      var binary = typeof event.data !== 'string';
      var text = binary ? '[binary ' + event.data.byteLength + ' bytes]' : event.data;
      historyOpen = historyOpen && Date.now() - openedAt <= HISTORY_MS;
      var own = !historyOpen && !binary && sent[0] === text;
      if (own) sent.shift();
      show(text, historyOpen ? 'history' : own ? 'own' : 'live', binary);
    };
  }
  $('form').onsubmit = function (event) {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN || input.value === '') return;
    historyOpen = false;
    socket.send(input.value);
    if (sent.push(input.value) > 100) sent.shift();
    input.value = '';
  };
  connect();
})();
</script>
</body>
</html>
`;

/** SHA-256 of the text between `<tag>` and `</tag>` in the page, as a CSP source ('sha256-…'). */
function hashOf(page: string, tag: 'script' | 'style'): string {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page);
  if (!match) throw new Error(`the built-in page has no <${tag}>`);
  return `'sha256-${createHash('sha256').update(match[1]!, 'utf8').digest('base64')}'`;
}

/**
 * The headers a page is served with, beside its type and length, on every engine (the js
 * listener writes them, the native engines get them as `wsPageHeaders`): no MIME
 * sniffing, a Content-Security-Policy that lets only the page's own inline script and
 * style run (their hashes, computed from the exact text served) and lets it connect only
 * to its own origin ('self' covers ws:// and wss:// to the same host in CSP Level 3), no
 * framing by any page, and no Referer (the URL may hold a token).
 */
export function pageSecurityHeaders(page: string): Readonly<Record<string, string>> {
  if (cached?.page === page) return cached.headers;
  const headers = Object.freeze({
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': [
      "default-src 'none'",
      `script-src ${hashOf(page, 'script')}`,
      `style-src ${hashOf(page, 'style')}`,
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'Referrer-Policy': 'no-referrer',
  });
  cached = { page, headers };
  return headers;
}

let cached: { page: string; headers: Readonly<Record<string, string>> } | null = null;

/** pageSecurityHeaders(page) as HTTP header lines, each ending in CRLF (the native engines' form). */
export function pageSecurityHeaderLines(page: string): string {
  return Object.entries(pageSecurityHeaders(page))
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
}
