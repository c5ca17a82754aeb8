// The pre-call check shared by the patient's visit page and the station's assisted page: camera
// preview, microphone level, a test sound, and a connection verdict from round trips to our own
// server (a verdict a patient can act on, not numbers). The page holds the markup (#preview,
// #camera-state, #mic-level, #speaker-test/#speaker-state, #network-test/#network-state).
const $ = (id) => document.getElementById(id);

export function preCallCheck() {
  const t = JSON.parse($("precall-i18n").textContent); // web/templates/clinics/_precall.html
  let preview = null;

  async function checkDevices() {
    try {
      preview = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 } } });
      $("preview").srcObject = preview;
      $("camera-state").textContent = t.camera_ok;
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      context.createMediaStreamSource(preview).connect(analyser);
      const samples = new Uint8Array(analyser.fftSize);
      const draw = () => {
        if (!preview) { context.close(); return; } // stopped: release the audio context too
        analyser.getByteTimeDomainData(samples);
        let peak = 0;
        for (const s of samples) peak = Math.max(peak, Math.abs(s - 128) / 128);
        $("mic-level").value = peak;
        requestAnimationFrame(draw);
      };
      draw();
    } catch {
      $("camera-state").textContent = t.camera_failed;
    }
  }

  function stop() {
    preview?.getTracks().forEach((track) => track.stop());
    preview = null;
    $("preview").srcObject = null;
  }

  function playTone() {
    const context = new AudioContext();
    const oscillator = context.createOscillator();
    oscillator.frequency.value = 660;
    oscillator.connect(context.destination);
    oscillator.start();
    oscillator.stop(context.currentTime + 0.8);
    oscillator.addEventListener("ended", () => context.close());
    $("speaker-state").textContent = t.speaker_question;
  }

  async function testNetwork() {
    $("network-state").textContent = t.network_testing;
    const times = [];
    for (let i = 0; i < 5; i += 1) {
      const start = performance.now();
      await fetch("/healthz", { cache: "no-store" });
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    const verdict = times[2] < 150 ? "good" : times[2] < 400 ? "fair" : "poor";
    $("network-state").textContent = t[`network_${verdict}`];
    $("network-state").dataset.verdict = verdict;
  }

  $("speaker-test").addEventListener("click", playTone);
  $("network-test").addEventListener("click", testNetwork);
  checkDevices();
  testNetwork();
  return { stop };
}
