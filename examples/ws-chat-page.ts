/**
 * The page of examples/ws-chat-server.ts: plain HTML and JavaScript, no build step. It connects to
 * `/ws?room=NAME` (the room from its own `?room=`, default `lobby`), shows what the room says,
 * sends what is typed, and reconnects by itself — after a server reload (1001), a lost network or
 * a dead server — with a backoff of 250 ms doubling to 5 s. Its state is in `data-state` on
 * `<body>` (`connecting`, `open`, `closed`), `window.chatOpens` counts the connections it opened,
 * and each message is an `<li>` in `#log`, so that a test driving a browser can follow it.
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>multireactor chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #log { list-style: none; padding: 0; min-height: 12rem; border: 1px solid #ccc; border-radius: 4px; }
  #log li { padding: 0.2rem 0.5rem; }
  #log li.system { color: #777; font-style: italic; }
  form { display: flex; gap: 0.5rem; }
  #text { flex: 1; }
  #status { font-size: 0.85rem; color: #555; }
</style>
</head>
<body data-state="connecting">
<h1>Room <span id="room"></span></h1>
<p id="status">connecting…</p>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something"><button>Send</button></form>
<script>
(() => {
  const params = new URLSearchParams(location.search);
  const room = params.get('room') || 'lobby';
  const name = params.get('name') || 'guest-' + Math.random().toString(36).slice(2, 7);
  document.getElementById('room').textContent = room;
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const text = document.getElementById('text');
  let ws;
  let delay = 250;

  function show(line, cls) {
    const li = document.createElement('li');
    li.textContent = line;
    if (cls) li.className = cls;
    log.appendChild(li);
    li.scrollIntoView();
  }

  function setState(state, detail) {
    document.body.dataset.state = state;
    status.textContent = detail;
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(scheme + '//' + location.host + '/ws?room=' + encodeURIComponent(room) + '&name=' + encodeURIComponent(name));
    setState('connecting', 'connecting…');
    ws.onopen = () => {
      delay = 250;
      window.chatOpens = (window.chatOpens || 0) + 1;
      setState('open', 'connected as ' + name);
    };
    ws.onmessage = (event) => {
      let m;
      try { m = JSON.parse(event.data); } catch { return; }
      if (m.type === 'message') show(m.from + ': ' + m.text);
      else if (m.type === 'joined') show(m.name + ' joined', 'system');
      else if (m.type === 'left') show(m.name + ' left', 'system');
    };
    ws.onclose = (event) => {
      setState('closed', 'disconnected (' + event.code + (event.reason ? ' ' + event.reason : '') + '), reconnecting…');
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  document.getElementById('form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (text.value === '' || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'message', text: text.value }));
    text.value = '';
  });
  connect();
})();
</script>
</body>
</html>
`;
