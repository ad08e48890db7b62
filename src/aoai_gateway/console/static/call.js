// One call's page: the transcript follows the recording. Clicking a segment seeks the player there; as it plays,
// the segment being spoken is highlighted (and announced to screen readers by aria-current). No inline script:
// the times come from the segments' data attributes, written by the server.

const player = document.getElementById("player");
const segments = Array.from(document.querySelectorAll("#transcript .segment"));

function current(time) {
  // The last segment that has started; segments are in order, so a binary search keeps long calls cheap.
  let low = 0;
  let high = segments.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (Number(segments[middle].dataset.start) <= time) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

let shown = -1;
function highlight() {
  const index = current(player.currentTime);
  if (index === shown) return;
  if (shown >= 0) {
    segments[shown].classList.remove("current");
    segments[shown].removeAttribute("aria-current");
  }
  shown = index;
  if (index >= 0) {
    segments[index].classList.add("current");
    segments[index].setAttribute("aria-current", "true");
  }
}

if (player && segments.length) {
  for (const segment of segments) {
    segment.addEventListener("click", () => {
      player.currentTime = Number(segment.dataset.start);
      highlight();
      player.play().catch(() => {}); // autoplay rules may refuse: the seek still happened
    });
  }
  player.addEventListener("timeupdate", highlight);
  player.addEventListener("seeked", highlight);
}
