// What the console's pages that call the gateway's API with a key share: the key field, the status line and a
// refused answer put in words. A page module loads it by its versioned URL (`data-client` on the page's root):
//   const { gatewayClient } = await import(root.dataset.client);
//   const client = gatewayClient("pg");   // the elements #pg-key and #pg-status

export function gatewayClient(prefix) {
  const key = () => document.getElementById(`${prefix}-key`).value.trim();
  return {
    key,
    headers(extra = {}) {
      return { Authorization: `Bearer ${key()}`, ...extra };
    },
    showStatus(text) {
      const status = document.getElementById(`${prefix}-status`);
      status.textContent = text;
      status.hidden = !text;
    },
    refusal,
  };
}

// A refusal in words: the gateway's message (never HTML: callers show it with textContent), and when to try
// again for a 429.
async function refusal(response) {
  let message = `The gateway answered ${response.status}.`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  const prefix = { 401: "Key refused", 403: "Not allowed", 404: "Not found", 429: "Slow down" }[response.status];
  let text = `${prefix || "Error"} (${response.status}): ${message}`;
  const retry = response.headers.get("retry-after");
  if (response.status === 429 && retry) text += ` Try again in ${retry} seconds.`;
  return text;
}
