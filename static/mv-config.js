// Runs before model-viewer loads: keep every decoder local, so nothing is fetched from a CDN.
// Plinth never emits Draco, KTX2, meshopt or Lottie, so these paths are never requested.
self.ModelViewerElement = Object.assign(self.ModelViewerElement || {}, {
  dracoDecoderLocation: "/assets/decoders/draco/",
  ktx2TranscoderLocation: "/assets/decoders/basis/",
  lottieLoaderLocation: "/assets/decoders/lottie.js",
});
