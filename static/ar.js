// Share page behaviour: progress bar, load and error messages, the AR button below the stage,
// the poster hand-over and the real sizes drawn on the model ("Show sizes").
const viewer = document.querySelector("model-viewer");
const message = document.getElementById("message");
const hint = document.getElementById("hint");
const bar = document.querySelector(".progress .bar");
const arButton = document.getElementById("ar-button");
const sizesButton = document.getElementById("sizes-toggle");
const lines = [...document.querySelectorAll("#dim-lines line")];

function say(text) {
  message.textContent = text;
  message.hidden = !text;
}

viewer.addEventListener("progress", (event) => {
  const p = event.detail.totalProgress;
  if (bar) bar.style.width = `${Math.round(p * 100)}%`;
  viewer.classList.toggle("loading", p < 1);
});

// The poster (pipeline/export/poster.py: azimuth 25 deg, elevation 20 deg, a long lens, the
// object's larger side 80% of the square) is scaled to where model-viewer will frame the model:
// its camera stands 105% of the bounding sphere's ideal distance away (the sphere fits the
// field of view) and widens the view when the stage is narrower than the model. The sphere and
// the outline come from the model's box here, so the fit is close, not exact, for round shapes.
const FOV = (12 / 2) * Math.PI / 180;
const [AZ, EL] = (viewer.dataset.posterView || "25 20").split(" ").map((v) => Number(v) * Math.PI / 180);
function fitPoster() {
  const [w, h, d] = (viewer.dataset.sizeM || "").split(" ").map(Number);
  const W = viewer.clientWidth, H = viewer.clientHeight;
  if (!(w > 0 && h > 0 && d > 0 && W > 0 && H > 0)) return;
  const r = 0.5 * Math.hypot(w, h, d);
  const ideal = r / Math.sin(FOV);
  const idealAspect = (0.5 * Math.hypot(w, d)) / (ideal - h / 2) / Math.tan(FOV);
  const widen = Math.max(1, idealAspect / (W / H));
  const pxPerM = H / (2 * 1.05 * ideal * Math.tan(FOV) * widen);
  const across = w * Math.abs(Math.cos(AZ)) + d * Math.abs(Math.sin(AZ));
  const tall = h * Math.cos(EL) + (w * Math.abs(Math.sin(AZ)) + d * Math.abs(Math.cos(AZ))) * Math.sin(EL);
  viewer.style.setProperty("--poster-size", `${(pxPerM * Math.max(across, tall) / 0.8).toFixed(1)}px`);
}
fitPoster();
new ResizeObserver(fitPoster).observe(viewer);

// The "drag to turn" wiggle redraws the model every frame for as long as nobody touches it: after
// a few rounds a shopper has seen it, and a page left open should not keep a phone's GPU busy.
const PROMPT_MS = 12000;

// The poster is a background layer of the stage (ar.css): drop it once the model is drawn.
viewer.addEventListener("model-visibility", (event) => {
  if (!event.detail.visible) return;
  viewer.classList.add("model-shown");
  setTimeout(() => { viewer.interactionPrompt = "none"; }, PROMPT_MS);
  // The view the model first appears in, for checking it against the poster's (tests read it).
  const o = viewer.getCameraOrbit();
  viewer.dataset.shownView = [o.theta, o.phi].map((r) => (r * 180 / Math.PI).toFixed(2)).concat(
    viewer.getFieldOfView().toFixed(2)).join(" ");
});

viewer.addEventListener("load", () => {
  document.body.dataset.modelLoaded = "1";
  say("");
  placeSizes();
  if (sizesButton) sizesButton.hidden = false;
  // canActivateAR is true on phones that can place the model; elsewhere, explain how to get there.
  if (viewer.canActivateAR) {
    if (arButton) arButton.hidden = false;
    if (hint) hint.textContent = "Tap the button to place it in your space at its true size.";
  }
});

if (arButton) arButton.addEventListener("click", () => viewer.activateAR());

viewer.addEventListener("error", (event) => {
  document.body.dataset.modelError = event.detail && event.detail.type ? event.detail.type : "error";
  say("The 3D model could not be shown. Check your connection and reload the page.");
});

viewer.addEventListener("ar-status", (event) => {
  if (event.detail.status === "failed") {
    say("AR could not start on this device. You can still turn the model with your finger.");
  }
});

// ---- Real sizes: model-viewer's dimension hotspots on the corners of the model's bounding box.
// The labels' text comes from the server (the same words as the size list below the stage).

function placeSizes() {
  const c = viewer.getBoundingBoxCenter();
  const s = viewer.getDimensions();
  const x = s.x / 2, y = s.y / 2, z = s.z / 2;
  const at = (name, px, py, pz) => viewer.updateHotspot({ name, position: `${px} ${py} ${pz}` });
  at("hotspot-dot+X-Y+Z", c.x + x, c.y - y, c.z + z);
  at("hotspot-dim+X-Y", c.x + x * 1.2, c.y - y * 1.1, c.z);
  at("hotspot-dot+X-Y-Z", c.x + x, c.y - y, c.z - z);
  at("hotspot-dim+X-Z", c.x + x * 1.2, c.y, c.z - z * 1.2);
  at("hotspot-dot+X+Y-Z", c.x + x, c.y + y, c.z - z);
  at("hotspot-dim+Y-Z", c.x, c.y + y * 1.1, c.z - z * 1.2);
  at("hotspot-dot-X+Y-Z", c.x - x, c.y + y, c.z - z);
  at("hotspot-dim-X-Z", c.x - x * 1.2, c.y, c.z - z * 1.2);
  at("hotspot-dot-X-Y-Z", c.x - x, c.y - y, c.z - z);
  requestAnimationFrame(drawLines);
}

function drawLine(line, from, to, label) {
  const a = viewer.queryHotspot(from), b = viewer.queryHotspot(to), l = viewer.queryHotspot(label);
  if (!a || !b) return;
  line.setAttribute("x1", a.canvasPosition.x);
  line.setAttribute("y1", a.canvasPosition.y);
  line.setAttribute("x2", b.canvasPosition.x);
  line.setAttribute("y2", b.canvasPosition.y);
  line.classList.toggle("hide", Boolean(l) && !l.facingCamera);
}

function drawLines() {
  if (!viewer.classList.contains("show-sizes") || lines.length < 4) return;
  drawLine(lines[0], "hotspot-dot+X-Y+Z", "hotspot-dot+X-Y-Z", "hotspot-dim+X-Y");
  drawLine(lines[1], "hotspot-dot+X-Y-Z", "hotspot-dot+X+Y-Z", "hotspot-dim+X-Z");
  drawLine(lines[2], "hotspot-dot+X+Y-Z", "hotspot-dot-X+Y-Z", "hotspot-dim+Y-Z");
  drawLine(lines[3], "hotspot-dot-X+Y-Z", "hotspot-dot-X-Y-Z", "hotspot-dim-X-Z");
}

viewer.addEventListener("camera-change", drawLines);

if (sizesButton) {
  sizesButton.addEventListener("click", () => {
    const on = !viewer.classList.contains("show-sizes");
    viewer.classList.toggle("show-sizes", on);
    // Step back while the sizes show, so labels beside the model stay on the stage.
    const o = viewer.getCameraOrbit();
    viewer.cameraOrbit = `${o.theta}rad ${o.phi}rad ${o.radius * (on ? 1.35 : 1 / 1.35)}m`;
    sizesButton.setAttribute("aria-pressed", String(on));
    sizesButton.textContent = on ? "Hide sizes" : "Show sizes";
    requestAnimationFrame(drawLines);
  });
}
