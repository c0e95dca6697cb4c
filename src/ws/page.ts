/**
 * The page a plain GET of the WebSocket path serves (docs/contract.md §6): it joins the
 * broadcast over a WebSocket on the same address and path, shows every message, and sends
 * what is typed. One self-contained file, no build step, no external asset, so it works
 * offline and every engine serves the same bytes (options.ts hands it to each as `ws.page`).
 *
 * Stable ids for tests and for people who script it: #state (connecting, open, or
 * "closed CODE REASON"), #messages (one child per message, its text the message's),
 * #input and #send.
 */
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
  #messages li.binary { color: #666; font-style: italic; }
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
  <button id="send" type="submit">Send</button>
</form>
<script>
(function () {
  'use strict';
  var state = document.getElementById('state');
  var list = document.getElementById('messages');
  var input = document.getElementById('input');
  var form = document.getElementById('form');
  // The same address and path as this page; a URL fragment is not allowed in a WebSocket URL.
  var socket = new WebSocket(location.href.replace(/^http/, 'ws').replace(/#.*$/, ''));
  socket.binaryType = 'arraybuffer';

  function show(text, cls) {
    var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    var item = document.createElement('li');
    item.textContent = text;
    if (cls) item.className = cls;
    list.appendChild(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function setState(text, cls) {
    state.textContent = text;
    state.className = cls;
  }

  socket.onopen = function () { setState('open', 'open'); };
  socket.onclose = function (event) {
    setState('closed ' + event.code + (event.reason ? ' ' + event.reason : ''), 'closed');
  };
  socket.onmessage = function (event) {
    if (typeof event.data === 'string') show(event.data, '');
    else show('[binary ' + event.data.byteLength + ' bytes]', 'binary');
  };
  form.onsubmit = function (event) {
    event.preventDefault();
    if (socket.readyState !== WebSocket.OPEN || input.value === '') return;
    socket.send(input.value);
    input.value = '';
  };
})();
</script>
</body>
</html>
`;
