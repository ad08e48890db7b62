// Shared behaviour of every console page: copy buttons, and the key page handing its key to the playground.
// No inline script anywhere: the Content-Security-Policy allows this origin's files only.

const KEY = "aoai-gateway-key";

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      const text = target.value !== undefined && target.tagName === "INPUT" ? target.value : target.textContent;
      const note = document.querySelector(`[data-copied-for="${button.dataset.copy}"]`);
      try {
        await navigator.clipboard.writeText(text);
        if (note) note.textContent = "Copied.";
      } catch {
        // No clipboard (an http page elsewhere than localhost): select it for Ctrl+C instead.
        if (target.select) target.select();
        if (note) note.textContent = "Select and copy it by hand.";
      }
    });
  }
}

function rememberKey() {
  const shown = document.querySelector("[data-gateway-key]");
  if (shown) sessionStorage.setItem(KEY, shown.dataset.gatewayKey);
}

copyButtons();
rememberKey();
