// The playground: the gateway's own OpenAI routes, called from the browser with the attendee's key.
// Everything a model or the gateway says is shown with textContent, never as HTML.

const KEY = "aoai-gateway-key";
const root = document.getElementById("playground");
const apiBase = root.dataset.apiBase;
const $ = (id) => document.getElementById(id);
const history = [];

const { gatewayClient } = await import(root.dataset.client);
const { key, headers, showStatus, refusal } = gatewayClient("pg");

function fill(select, names, prefer) {
  select.replaceChildren(...names.map((name) => new Option(name, name)));
  const chosen = names.find(prefer);
  if (chosen) select.value = chosen;
}

async function loadModels() {
  showStatus("");
  if (!key()) {
    showStatus("Paste your key first.");
    return;
  }
  sessionStorage.setItem(KEY, key());
  const response = await fetch(`${apiBase}/models`, { headers: headers() });
  if (!response.ok) {
    showStatus(await refusal(response));
    return;
  }
  const names = (await response.json()).data.map((m) => m.id);
  const speech = /whisper|transcribe/;
  const voice = /tts/;
  fill($("pg-model"), names.filter((n) => !speech.test(n) && !voice.test(n)), () => true);
  fill($("pg-stt-model"), names.filter((n) => speech.test(n)), () => true);
  fill($("pg-tts-model"), names.filter((n) => voice.test(n)), () => true);
  root.dataset.ready = "true";
}

function addMessage(role, text) {
  const item = document.createElement("li");
  item.className = `message ${role}`;
  const who = document.createElement("span");
  who.className = "role";
  who.textContent = role;
  const body = document.createElement("p");
  body.className = "content";
  body.textContent = text;
  item.append(who, body);
  $("pg-messages").append(item);
  return item;
}

// Server-sent events from a fetch body: each `data:` line is a JSON chunk until `[DONE]`.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function send(event) {
  event.preventDefault();
  const prompt = $("pg-prompt").value.trim();
  if (!prompt) return;
  if (!key()) {
    showStatus("Paste your key first.");
    return;
  }
  showStatus("");
  history.push({ role: "user", content: prompt });
  addMessage("user", prompt);
  $("pg-prompt").value = "";
  const messages = [];
  const system = $("pg-system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history);
  const body = { model: $("pg-model").value, messages, stream: true };
  const temperature = parseFloat($("pg-temperature").value);
  if (!Number.isNaN(temperature)) body.temperature = temperature;
  const maxTokens = parseInt($("pg-max-tokens").value, 10);
  if (!Number.isNaN(maxTokens)) body.max_tokens = maxTokens;
  const reply = addMessage("assistant", "");
  reply.dataset.streaming = "true";
  const content = reply.querySelector(".content");
  $("pg-send").disabled = true;
  try {
    const response = await fetch(`${apiBase}/chat/completions`, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      reply.remove();
      history.pop();
      showStatus(await refusal(response));
      return;
    }
    for await (const chunk of events(response)) {
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) content.textContent += delta.content;
    }
    history.push({ role: "assistant", content: content.textContent });
  } catch (error) {
    showStatus(`The stream broke off: ${error.message}`);
  } finally {
    reply.dataset.streaming = "false";
    $("pg-send").disabled = false;
  }
}

// A recording from the microphone, when there is one; a file chosen afterwards replaces it.
let recording = null;
let recorder = null;

async function toggleRecording() {
  const button = $("pg-record");
  const note = $("pg-recorded");
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    note.textContent = `No microphone: ${error.message}`;
    return;
  }
  const parts = [];
  const started = Date.now();
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => parts.push(event.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "mp4" : "webm";
    recording = new File(parts, `recording.${extension}`, { type });
    recorder = null;
    button.textContent = "Record";
    button.setAttribute("aria-pressed", "false");
    note.textContent = `Recorded ${((Date.now() - started) / 1000).toFixed(1)} seconds.`;
    $("pg-audio").value = "";
  });
  recorder.start();
  button.textContent = "Stop";
  button.setAttribute("aria-pressed", "true");
  note.textContent = "Recording…";
}

async function transcribe() {
  const file = $("pg-audio").files[0] || recording;
  const out = $("pg-transcript");
  if (!file) {
    out.textContent = "Choose an audio file or record one first.";
    return;
  }
  showStatus("");
  out.textContent = "Transcribing…";
  const form = new FormData();
  form.append("model", $("pg-stt-model").value);
  form.append("file", file, file.name);
  const response = await fetch(`${apiBase}/audio/transcriptions`, { method: "POST", headers: headers(), body: form });
  if (!response.ok) {
    out.textContent = "";
    showStatus(await refusal(response));
    return;
  }
  out.textContent = (await response.json()).text;
}

async function speak() {
  showStatus("");
  const response = await fetch(`${apiBase}/audio/speech`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ model: $("pg-tts-model").value, voice: $("pg-voice").value, input: $("pg-tts-text").value }),
  });
  if (!response.ok) {
    showStatus(await refusal(response));
    return;
  }
  const player = $("pg-audio-out");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(await response.blob());
  player.hidden = false;
  root.dataset.spoken = "true";
  player.play().catch(() => {}); // autoplay may be refused; the controls are there
}

$("pg-load").addEventListener("click", loadModels);
$("pg-chat").addEventListener("submit", send);
$("pg-clear").addEventListener("click", () => {
  history.length = 0;
  $("pg-messages").replaceChildren();
});
$("pg-transcribe").addEventListener("click", transcribe);
$("pg-record").addEventListener("click", toggleRecording);
$("pg-audio").addEventListener("change", () => {
  recording = null;
  $("pg-recorded").textContent = "";
});
$("pg-speak").addEventListener("click", speak);
const saved = sessionStorage.getItem(KEY);
if (saved) {
  $("pg-key").value = saved;
  loadModels();
}
