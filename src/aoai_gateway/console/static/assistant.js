// The voice assistant page: push-to-talk (MediaRecorder while the button or the space bar is held) or a typed
// command -> POST /v1/assistant/sessions/{id}/turns with `stream: true`, each server-sent event shown as it
// arrives and each sentence of the spoken reply played as soon as it comes. Everything the model, a tool or the
// transcript says is shown with textContent, never as HTML.

const KEY = "aoai-gateway-key";
const root = document.getElementById("assistant");
const apiBase = root.dataset.apiBase;
const speech = root.dataset.speech === "true";
const hasHome = root.dataset.home === "true";
const $ = (id) => document.getElementById(id);
const MIN_RECORDING_MS = 250;

let session = null;
let busy = false;

const { gatewayClient } = await import(root.dataset.client);
const { key, headers, showStatus, refusal } = gatewayClient("as");

function setReady(ready) {
  for (const id of ["as-talk", "as-send", "as-new", "as-home-refresh", "as-home-reset"]) {
    const element = $(id);
    if (element) element.disabled = !ready || (busy && (id === "as-talk" || id === "as-send"));
  }
}

async function newSession() {
  const response = await fetch(`${apiBase}/assistant/sessions`, { method: "POST", headers: headers() });
  if (!response.ok) {
    showStatus(await refusal(response));
    return false;
  }
  session = (await response.json()).id;
  $("as-turns").replaceChildren();
  $("as-confirm").hidden = true;
  root.dataset.session = session;
  return true;
}

async function useKey() {
  showStatus("");
  if (!key()) {
    showStatus("Paste your key first.");
    return;
  }
  sessionStorage.setItem(KEY, key());
  if (!(await newSession())) return;
  setReady(true);
  root.dataset.ready = "true";
  if (hasHome) await refreshHome();
}

// The simulated home: one table per kind of device, one row each, its fields as columns.
function homeTable(title, devices) {
  const table = document.createElement("table");
  const caption = document.createElement("caption");
  caption.textContent = title.replaceAll("_", " ");
  table.append(caption);
  const rows = Object.entries(devices);
  const single = rows.length > 0 && rows.every(([, value]) => typeof value !== "object" || value === null);
  const entries = single ? [[title.replaceAll("_", " "), devices]] : rows;
  const fields = [...new Set(entries.flatMap(([, value]) => Object.keys(value)))];
  const head = table.createTHead().insertRow();
  for (const name of ["", ...fields]) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = name ? name.replaceAll("_", " ") : "name";
    head.append(cell);
  }
  const body = table.createTBody();
  for (const [name, value] of entries) {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name.replaceAll("_", " ");
    row.append(th);
    for (const field of fields) {
      const shown = value[field];
      row.insertCell().textContent = shown === null || shown === undefined ? "—" : String(shown);
    }
  }
  const wrap = document.createElement("div");
  wrap.className = "scroll";
  wrap.tabIndex = 0; // a table wider than a phone scrolls, by keyboard too
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-label", caption.textContent);
  wrap.append(table);
  return wrap;
}

async function refreshHome(reset = false) {
  if (!hasHome || !key()) return;
  const response = await fetch(`${apiBase}/assistant/home${reset ? "/reset" : ""}`, {
    method: reset ? "POST" : "GET",
    headers: headers(),
  });
  const view = $("as-home");
  if (!response.ok) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = await refusal(response);
    view.replaceChildren(note);
    return;
  }
  const state = await response.json();
  view.replaceChildren(...Object.entries(state).map(([name, devices]) => homeTable(name, devices)));
  root.dataset.homeVersion = String(Number(root.dataset.homeVersion || "0") + 1);
}

// Reply audio: one file per sentence, played one after the other as they arrive.
const player = $("as-player");
const queue = [];
let playing = false;
let played = 0;

function enqueue(data) {
  const bytes = Uint8Array.from(atob(data.data), (c) => c.charCodeAt(0));
  const type = { mp3: "audio/mpeg", wav: "audio/wav", opus: "audio/ogg", flac: "audio/flac" }[data.format];
  queue.push(URL.createObjectURL(new Blob([bytes], { type: type || "application/octet-stream" })));
  if (!playing) playNext();
}

function playNext() {
  const next = queue.shift();
  if (player.src.startsWith("blob:")) URL.revokeObjectURL(player.src);
  if (!next) {
    playing = false;
    return;
  }
  playing = true;
  player.src = next;
  player.play().catch(() => {
    // Autoplay refused: the controls are there, and `ended` goes on with the queue.
    $("as-mic").textContent = "Press play to hear the reply.";
  });
}

player.addEventListener("ended", () => {
  played += 1;
  root.dataset.played = String(played);
  playNext();
});

// Server-sent events from a fetch body: `event:` and `data:` lines, a blank line after each.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) yield { kind, data: JSON.parse(data) };
    }
  }
}

function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

function stage(turn, kind, label, text, code = false) {
  const item = document.createElement("li");
  item.className = `stage ${kind}`;
  item.dataset.stage = kind;
  const name = document.createElement("span");
  name.className = "role";
  name.textContent = label;
  const body = document.createElement(code ? "pre" : "p");
  body.className = "content";
  body.textContent = text;
  item.append(name, body);
  turn.querySelector(".stages").append(item);
  return body;
}

function newTurn(label) {
  const turn = document.createElement("li");
  turn.className = "turn";
  turn.dataset.done = "false";
  const title = document.createElement("h3");
  title.textContent = label;
  const stages = document.createElement("ol");
  stages.className = "stages";
  turn.append(title, stages);
  $("as-turns").append(turn);
  return turn;
}

function show(turn, event, state) {
  const { kind, data } = event;
  if (kind === "transcript") {
    stage(turn, "transcript", data.source === "audio" ? "Heard" : "Typed", data.text || "(nothing)");
  } else if (kind === "tool_call") {
    const extra = data.confirmed === undefined ? "" : data.confirmed ? " (confirmed)" : " (not confirmed)";
    stage(turn, "tool-call", `Tool call: ${data.name}${extra}`, pretty(data.arguments), true);
  } else if (kind === "tool_result") {
    const failed = !data.ok;
    const body = stage(turn, "tool-result", `${failed ? "Tool error" : "Tool result"}: ${data.name}`,
      failed ? String(data.error) : pretty(data.result), true);
    if (failed) body.parentElement.classList.add("failed");
    if (hasHome) refreshHome();
  } else if (kind === "confirmation_required") {
    stage(turn, "confirm", "Needs your confirmation", `${data.name} ${pretty(data.arguments)}`, true);
    $("as-confirm-text").textContent = `Shall I run ${data.name} with ${JSON.stringify(data.arguments)}?`;
    $("as-confirm").hidden = false;
  } else if (kind === "reply_delta") {
    if (!state.reply) state.reply = stage(turn, "reply", "Reply", "");
    state.reply.textContent += data.text;
  } else if (kind === "reply") {
    if (!state.reply) state.reply = stage(turn, "reply", "Reply", "");
    state.reply.textContent = data.text;
  } else if (kind === "audio") {
    stage(turn, "audio", "Speaking", data.text || "the reply");
    enqueue(data);
  } else if (kind === "error") {
    const message = (data.error && data.error.message) || "The turn failed.";
    stage(turn, "error", "Error", message).parentElement.classList.add("failed");
    showStatus(message);
  }
}

async function takeTurn(label, body) {
  if (busy || !session) return;
  busy = true;
  setReady(true);
  showStatus("");
  $("as-confirm").hidden = true;
  const turn = newTurn(label);
  const state = { reply: null };
  try {
    const response = await fetch(`${apiBase}/assistant/sessions/${encodeURIComponent(session)}/turns`, {
      method: "POST",
      headers: body instanceof FormData ? headers() : headers({ "Content-Type": "application/json" }),
      body: body instanceof FormData ? body : JSON.stringify(body),
    });
    if (!response.ok) {
      turn.remove();
      showStatus(await refusal(response));
      return;
    }
    for await (const event of events(response)) show(turn, event, state);
  } catch (error) {
    showStatus(`The turn broke off: ${error.message}`);
  } finally {
    turn.dataset.done = "true";
    busy = false;
    setReady(true);
    if (hasHome) refreshHome();
  }
}

function sendText(text, extra = {}) {
  return takeTurn("You typed", { text, speech, stream: true, ...extra });
}

// Push-to-talk: recording while held. `wanted` is false once the hold ended, even before the microphone opened.
let recorder = null;
let wanted = false;

async function startTalking() {
  if (recorder || busy || !session || wanted) return;
  wanted = true;
  const talk = $("as-talk");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    wanted = false;
    $("as-mic").textContent = `No microphone: ${error.message}`;
    return;
  }
  if (!wanted) {
    stream.getTracks().forEach((track) => track.stop());
    return;
  }
  const parts = [];
  const started = Date.now();
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => parts.push(event.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    recorder = null;
    talk.textContent = "Hold to talk";
    talk.setAttribute("aria-pressed", "false");
    const held = Date.now() - started;
    if (held < MIN_RECORDING_MS) {
      $("as-mic").textContent = "Too short: hold while you speak.";
      return;
    }
    $("as-mic").textContent = `Sent ${(held / 1000).toFixed(1)} seconds of speech.`;
    const form = new FormData();
    form.append("file", new Blob(parts, { type }), type.includes("ogg") ? "speech.ogg" : "speech.webm");
    form.append("speech", String(speech));
    form.append("stream", "true");
    takeTurn("You said", form);
  });
  recorder.start();
  talk.textContent = "Listening… let go to send";
  talk.setAttribute("aria-pressed", "true");
  $("as-mic").textContent = "Listening…";
}

function stopTalking() {
  wanted = false;
  if (recorder && recorder.state !== "inactive") recorder.stop();
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON|A|AUDIO|SUMMARY)$/.test(target.tagName)) && target.id !== "as-talk";
}

const talk = $("as-talk");
talk.addEventListener("pointerdown", (event) => {
  talk.setPointerCapture(event.pointerId);
  startTalking();
});
talk.addEventListener("pointerup", stopTalking);
talk.addEventListener("pointercancel", stopTalking);
talk.addEventListener("contextmenu", (event) => event.preventDefault()); // a long press is a hold, not a menu
talk.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.repeat) return;
  event.preventDefault();
  if (recorder) stopTalking();
  else startTalking();
});
document.addEventListener("keydown", (event) => {
  if (event.code !== "Space" || typing(event.target) || talk.disabled) return;
  event.preventDefault();
  if (!event.repeat) startTalking();
});
document.addEventListener("keyup", (event) => {
  if (event.code !== "Space" || typing(event.target)) return;
  event.preventDefault();
  stopTalking();
});

$("as-load").addEventListener("click", useKey);
$("as-typed").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("as-text").value.trim();
  if (!text) return;
  $("as-text").value = "";
  sendText(text);
});
$("as-yes").addEventListener("click", () => sendText("Yes, go ahead.", { confirm: true }));
$("as-no").addEventListener("click", () => sendText("No, cancel that.", { confirm: false }));
$("as-new").addEventListener("click", () => newSession());
if (hasHome) {
  $("as-home-refresh").addEventListener("click", () => refreshHome());
  $("as-home-reset").addEventListener("click", () => refreshHome(true));
}
const saved = sessionStorage.getItem(KEY);
if (saved) {
  $("as-key").value = saved;
  useKey();
}
