// An event's live view: polls the page's JSON summary (same origin, the admin session's cookie) every few
// seconds and redraws the totals, the per-minute chart and table, and the top attendees in place.
// Every value is set with textContent, so an attendee's name stays text. Paused while the tab is hidden.

const root = document.getElementById("live");
const SVG = "http://www.w3.org/2000/svg";
const ROW = 26; // console/charts.py: ROW
const LABEL_CHARACTERS = 21;

function cell(tag, text, attributes = {}) {
  const element = document.createElement(tag);
  element.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function row(header, values) {
  const tr = document.createElement("tr");
  tr.append(cell("th", header, { scope: "row" }));
  for (const value of values) {
    if (value instanceof Node) {
      const td = document.createElement("td");
      td.append(value);
      tr.append(td);
    } else {
      tr.append(cell("td", value));
    }
  }
  return tr;
}

function svgText(x, y, text) {
  const element = document.createElementNS(SVG, "text");
  element.setAttribute("x", x);
  element.setAttribute("y", y);
  element.textContent = text;
  return element;
}

function drawChart(minutes) {
  const chart = document.getElementById("live-chart");
  const width = Number(root.dataset.width);
  const labelWidth = Number(root.dataset.labelWidth);
  const barHeight = Number(root.dataset.barHeight);
  const valueX = Number(root.dataset.valueX);
  const span = valueX - 6 - labelWidth;
  const top = Math.max(0, ...minutes.map((m) => m.requests)) || 1;
  const parts = [];
  minutes.forEach((minute, index) => {
    const y = index * ROW;
    let label = minute.minute.slice(11, 16);
    if (label.length > LABEL_CHARACTERS) label = `${label.slice(0, LABEL_CHARACTERS - 1)}…`;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", labelWidth);
    bar.setAttribute("y", y + 2);
    bar.setAttribute("width", Math.max(1, (span * minute.requests) / top).toFixed(1));
    bar.setAttribute("height", barHeight);
    parts.push(svgText(0, y + 15, label), bar, svgText(valueX.toFixed(1), y + 15, minute.requests));
  });
  chart.replaceChildren(...parts);
  chart.setAttribute("viewBox", `0 0 ${width} ${Math.max(ROW, ROW * minutes.length)}`);
}

function draw(live) {
  for (const element of root.querySelectorAll("[data-live]")) {
    const value = String(live[element.dataset.live]);
    element.textContent = element.dataset.live === "until" ? value.slice(11, 19) : value;
  }
  drawChart(live.per_minute);
  document
    .getElementById("live-minutes")
    .replaceChildren(
      ...live.per_minute.map((m) => row(m.minute.slice(11, 16), [m.requests, m.tokens, m.errors])),
    );
  document.getElementById("live-leaders").replaceChildren(
    ...live.top_attendees.map((a) => row(a.name ?? "(unknown)", [cell("code", a.key_id), a.requests, a.tokens, a.errors])),
  );
  document.getElementById("live-none").hidden = live.top_attendees.length > 0;
  root.dataset.updated = live.until;
}

async function refresh() {
  const problem = document.getElementById("live-error");
  try {
    const answer = await fetch(root.dataset.source, { credentials: "same-origin", cache: "no-store" });
    const body = await answer.json();
    if (!answer.ok) throw new Error(`${answer.status}: ${body.error?.message ?? "the summary could not be read"}`);
    draw(body);
    problem.hidden = true;
  } catch (error) {
    problem.textContent = `Not updated: ${error.message}`;
    problem.hidden = false;
  }
}

if (root) {
  const every = Math.max(2, Number(root.dataset.every) || 10) * 1000;
  setInterval(() => {
    if (!document.hidden) refresh();
  }, every);
}
