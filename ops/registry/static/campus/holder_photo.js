// The holder page's webcam (issue 19, item 8): a frame of the camera, cropped to the photo
// standard's 295×421 and marked 300 dpi, goes as a JPEG through the same upload form — and so
// through the same photo-standard check (R-CARD-8) — as a file chosen by hand.
(function () {
  "use strict";
  const start = document.getElementById("camera-start");
  const form = document.getElementById("holder-photo-form");
  if (!start || !form) return;
  const box = document.getElementById("camera");
  const video = document.getElementById("camera-video");
  const shoot = document.getElementById("camera-shoot");
  const status = document.getElementById("camera-status");
  const input = document.getElementById("photo-file");
  const source = document.getElementById("photo-source");
  const WIDTH = 295, HEIGHT = 421, DPI = 300;
  let stream = null;

  start.addEventListener("click", async function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = start.dataset.unsupported;
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
    } catch (err) {
      status.textContent = start.dataset.denied;
      return;
    }
    video.srcObject = stream;
    box.hidden = false;
    await video.play();
    shoot.disabled = false;
  });

  shoot.addEventListener("click", function () {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return;
    // the largest 295:421 crop in the middle of the frame
    let cw = vw, ch = Math.round((vw * HEIGHT) / WIDTH);
    if (ch > vh) { ch = vh; cw = Math.round((vh * WIDTH) / HEIGHT); }
    const canvas = document.createElement("canvas");
    canvas.width = WIDTH;
    canvas.height = HEIGHT;
    canvas.getContext("2d").drawImage(video, (vw - cw) / 2, (vh - ch) / 2, cw, ch, 0, 0, WIDTH, HEIGHT);
    shoot.disabled = true;
    canvas.toBlob(async function (blob) {
      const bytes = withDpi(new Uint8Array(await blob.arrayBuffer()));
      const files = new DataTransfer();
      files.items.add(new File([bytes], "camera.jpg", { type: "image/jpeg" }));
      input.files = files.files;
      source.value = "camera";
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      form.submit();
    }, "image/jpeg", 0.92);
  });

  // A canvas JPEG has a JFIF header with no resolution (density 1:1, no unit); the photo is
  // printed at 300 dpi, so say so: units = dots per inch, X and Y density = 300.
  function withDpi(b) {
    const jfif = b.length > 18 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff && b[3] === 0xe0 &&
      b[6] === 0x4a && b[7] === 0x46 && b[8] === 0x49 && b[9] === 0x46 && b[10] === 0;
    if (jfif) {
      b[13] = 1;
      b[14] = DPI >> 8; b[15] = DPI & 0xff;
      b[16] = DPI >> 8; b[17] = DPI & 0xff;
    }
    return b;
  }
})();
