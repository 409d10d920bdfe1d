// Share page behaviour: progress bar, load and error messages, and the "use your phone" hint.
const viewer = document.querySelector("model-viewer");
const message = document.getElementById("message");
const hint = document.getElementById("hint");
const bar = document.querySelector(".progress .bar");

function say(text) {
  message.textContent = text;
  message.hidden = !text;
}

viewer.addEventListener("progress", (event) => {
  const p = event.detail.totalProgress;
  if (bar) bar.style.width = `${Math.round(p * 100)}%`;
  viewer.classList.toggle("loading", p < 1);
});

viewer.addEventListener("load", () => {
  document.body.dataset.modelLoaded = "1";
  say("");
  // canActivateAR is true on phones that can place the model; elsewhere, explain how to get there.
  if (viewer.canActivateAR) hint.textContent = "Tap the button to place it in your space at its true size.";
});

viewer.addEventListener("error", (event) => {
  document.body.dataset.modelError = event.detail && event.detail.type ? event.detail.type : "error";
  say("The 3D model could not be shown. Check your connection and reload the page.");
});

viewer.addEventListener("ar-status", (event) => {
  if (event.detail.status === "failed") {
    say("AR could not start on this device. You can still turn the model with your finger.");
  }
});
