// lama-video mask painter: plain JavaScript, no build step.
//
// The server keeps all state (see lama_video/ui/session.py); this page only holds the mask of the
// frame being painted, in a canvas the size of the preview frames. Each finished stroke is sent to
// the server as a PNG (PUT /api/mask/<frame>), so a closed tab loses nothing.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_RGB = "rgb(255, 48, 96)";
const OVERLAY_RGB = "rgb(255, 200, 0)"; // the static overlay's mask (same on every frame)
const FRAME_CACHE = 240; // decoded preview frames kept in memory (LRU)
const UNDO_DEPTH = 40; // undo steps kept per frame

const app = {
  info: null,
  cur: 0,
  view: "edit",
  tool: "brush",
  size: 24,
  keyframes: new Set(),
  absent: new Set(), // keyframes that say the object is not in the frame (empty masks)
  plates: [], // frames with a clean plate
  rev: -1, // server's mask revision we have seen
  frames: new Map(), // index -> Image (LRU)
  tracks: new Map(), // index -> Image | null
  results: new Map(), // index -> Image | null
  reviews: new Map(), // index -> Image | null (result tinted by where pixels came from)
  resultMasks: new Map(), // index -> Image | null
  overlayImg: null, // the static overlay's mask (Image), shown on every frame
  trackStamp: 0,
  resultStamp: 0,
  mask: document.createElement("canvas"), // editable mask of `maskFrame` (KEY_RGB, alpha = mask)
  maskFrame: -1,
  maskHasPaint: false,
  undo: new Map(), // index -> [ImageData]
  stroke: null, // {x, y} last point, or {box: [x0, y0]} while dragging a box
  pointer: null, // last pointer position in preview pixels (for the brush circle)
  uploads: Promise.resolve(),
  pending: 0, // uploads sent but not answered (another tab's changes are not loaded meanwhile)
  jobState: "",
  jobId: 0,
  playing: false,
  ready: false, // the first frame is on screen (tests wait for this)
};
window.lamaApp = app;

// ---------------------------------------------------------------------------------- helpers

async function api(method, url, body, type) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.body = body;
    opts.headers["Content-Type"] = type || "application/json";
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (err) {
    return { ok: false, status: 0, data: { error: "the server is not answering (was it stopped?)" } };
  }
  let data = null;
  if ((r.headers.get("Content-Type") || "").includes("json")) data = await r.json();
  return { ok: r.ok, status: r.status, data: data || {} };
}

function loadImage(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

function say(text, kind) {
  const m = $("msg");
  m.textContent = text;
  m.className = kind || "";
}

function pad6(i) {
  return String(i).padStart(6, "0");
}

async function getFrame(i) {
  if (app.frames.has(i)) {
    const img = app.frames.get(i);
    app.frames.delete(i);
    app.frames.set(i, img);
    return img;
  }
  const img = await loadImage(`/api/frame/${i}.jpg`);
  if (img) {
    app.frames.set(i, img);
    while (app.frames.size > FRAME_CACHE) app.frames.delete(app.frames.keys().next().value);
  }
  return img;
}

async function getCached(cache, url, i) {
  if (cache.has(i)) return cache.get(i);
  const img = await loadImage(url);
  cache.set(i, img);
  if (cache.size > FRAME_CACHE) cache.delete(cache.keys().next().value);
  return img;
}

const getTrack = (i) => getCached(app.tracks, `/api/track/${i}.png?v=${app.trackStamp}`, i);
const getResult = (i) => getCached(app.results, `/api/result/${i}.jpg?v=${app.resultStamp}`, i);
const getReview = (i) => getCached(app.reviews, `/api/review/${i}.jpg?v=${app.resultStamp}`, i);
const getResultMask = (i) =>
  getCached(app.resultMasks, `/api/result-mask/${i}.png?v=${app.resultStamp}`, i);

// ------------------------------------------------------------------------------ mask editing

const editingOverlay = () => $("edit-overlay").checked;
const paintRGB = () => (editingOverlay() ? OVERLAY_RGB : KEY_RGB);

async function loadOverlay() {
  app.overlayImg = app.info && app.info.overlay ? await loadImage(`/api/overlay.png?v=${Date.now()}`) : null;
}

function maskCtx() {
  return app.mask.getContext("2d", { willReadFrequently: true });
}

async function loadMask(i) {
  const ctx = maskCtx();
  ctx.globalCompositeOperation = "source-over";
  ctx.clearRect(0, 0, app.mask.width, app.mask.height);
  app.maskFrame = i;
  app.maskHasPaint = false;
  if (editingOverlay()) {
    // The overlay's mask is the same on every frame: edit it on whichever frame is shown.
    if (!app.info.overlay) return;
    const img = await loadImage(`/api/overlay.png?r=${Date.now()}`);
    if (img && app.maskFrame === i && !app.stroke && editingOverlay()) {
      ctx.drawImage(img, 0, 0, app.mask.width, app.mask.height);
      app.maskHasPaint = true;
    }
    return;
  }
  if (!app.keyframes.has(i) || app.absent.has(i)) return;
  const img = await loadImage(`/api/mask/${i}.png?r=${Date.now()}`);
  if (img && app.maskFrame === i && !app.stroke) {
    ctx.drawImage(img, 0, 0, app.mask.width, app.mask.height);
    app.maskHasPaint = true;
  }
}

function pushUndo() {
  const stack = app.undo.get(app.cur) || [];
  stack.push(maskCtx().getImageData(0, 0, app.mask.width, app.mask.height));
  if (stack.length > UNDO_DEPTH) stack.shift();
  app.undo.set(app.cur, stack);
}

function maskIsEmpty() {
  const d = maskCtx().getImageData(0, 0, app.mask.width, app.mask.height).data;
  for (let k = 3; k < d.length; k += 4) if (d[k] >= 128) return false;
  return true;
}

// Start a stroke on a frame without paint: begin from its tracked mask, so correcting a frame
// where tracking slipped is a small edit rather than repainting the object.
async function seedFromTrack() {
  if (editingOverlay() || app.keyframes.has(app.cur) || app.maskHasPaint || !$("show-track").checked) return;
  const img = app.tracks.get(app.cur);
  if (!img) return;
  const ctx = maskCtx();
  ctx.drawImage(img, 0, 0, app.mask.width, app.mask.height);
  ctx.globalCompositeOperation = "source-in";
  ctx.fillStyle = KEY_RGB;
  ctx.fillRect(0, 0, app.mask.width, app.mask.height);
  ctx.globalCompositeOperation = "source-over";
  app.maskHasPaint = true;
}

function upload() {
  const i = app.maskFrame;
  const empty = maskIsEmpty();
  app.maskHasPaint = !empty;
  const blobP = new Promise((res) => app.mask.toBlob(res, "image/png"));
  app.pending++;
  if (editingOverlay()) {
    app.uploads = app.uploads.then(async () => {
      const blob = await blobP;
      const r = await api("PUT", "/api/overlay", blob, "image/png");
      app.pending--;
      if (!r.ok) {
        say(`could not save the overlay mask: ${r.data.error || r.status}`, "error");
        return;
      }
      app.rev = r.data.rev;
      app.info.overlay = r.data.overlay;
      await loadOverlay();
      say(r.data.kept ? "overlay mask saved (used on every frame)" : "no overlay mask now");
    });
    return app.uploads;
  }
  app.uploads = app.uploads.then(async () => {
    const blob = await blobP;
    const r = await api("PUT", `/api/mask/${i}`, blob, "image/png");
    app.pending--;
    if (!r.ok) {
      say(`could not save the mask of frame ${i}: ${r.data.error || r.status}`, "error");
      return;
    }
    app.rev = r.data.rev;
    setKeyframes(r.data.keyframes, r.data.absent);
    say(r.data.kept ? `frame ${i} saved as a keyframe` : `frame ${i} has no paint now`);
  });
  return app.uploads;
}

function toPreview(ev) {
  const c = $("view");
  const r = c.getBoundingClientRect();
  return {
    x: ((ev.clientX - r.left) * c.width) / r.width,
    y: ((ev.clientY - r.top) * c.height) / r.height,
  };
}

function paintTo(p) {
  const ctx = maskCtx();
  ctx.globalCompositeOperation = app.tool === "erase" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = paintRGB();
  ctx.lineWidth = app.size;
  ctx.lineCap = ctx.lineJoin = "round";
  const from = app.stroke;
  ctx.beginPath();
  if (from.x === p.x && from.y === p.y) {
    ctx.arc(p.x, p.y, app.size / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
  }
  ctx.globalCompositeOperation = "source-over";
  app.stroke = { x: p.x, y: p.y };
}

async function onDown(ev) {
  if (app.view !== "edit" || ev.button !== 0 || !app.ready) return;
  ev.preventDefault();
  $("view").setPointerCapture(ev.pointerId);
  stopPlay();
  const p = toPreview(ev);
  app.stroke = app.tool === "box" ? { box: [p.x, p.y], x: p.x, y: p.y } : { x: p.x, y: p.y };
  if (app.maskFrame !== app.cur) await loadMask(app.cur);
  await seedFromTrack();
  pushUndo();
  if (app.tool !== "box") paintTo(p);
  draw();
}

function onMove(ev) {
  const p = toPreview(ev);
  app.pointer = p;
  if (app.stroke) {
    if (app.stroke.box) {
      app.stroke.x = p.x;
      app.stroke.y = p.y;
    } else {
      paintTo(p);
    }
  }
  draw();
}

function onUp(ev) {
  if (!app.stroke) return;
  const s = app.stroke;
  app.stroke = null;
  if (s.box) {
    const p = toPreview(ev);
    const [x0, y0] = s.box;
    const ctx = maskCtx();
    ctx.fillStyle = paintRGB();
    ctx.fillRect(Math.min(x0, p.x), Math.min(y0, p.y), Math.abs(p.x - x0), Math.abs(p.y - y0));
  }
  draw();
  upload();
}

async function undo() {
  const stack = app.undo.get(app.cur);
  if (!stack || !stack.length || app.maskFrame !== app.cur) {
    say("nothing to undo on this frame");
    return;
  }
  maskCtx().putImageData(stack.pop(), 0, 0);
  draw();
  await upload();
}

// The object is not in this frame (it enters later or has left): an empty keyframe, where the
// tracks stop (remove --keyframe-mask N:blank.png). Painting on the frame again undoes it.
async function markAbsent() {
  if (editingOverlay()) return;
  const i = app.cur;
  await app.uploads;
  const r = await api("POST", `/api/absent/${i}`);
  if (!r.ok) {
    say(`could not mark frame ${i}: ${r.data.error || r.status}`, "error");
    return;
  }
  app.rev = r.data.rev;
  app.undo.delete(i);
  setKeyframes(r.data.keyframes, r.data.absent);
  await loadMask(i);
  draw();
  say(`frame ${i}: the object is absent here; the tracks stop at this frame (paint to undo)`);
}

async function clearFrame() {
  if (app.maskFrame !== app.cur) await loadMask(app.cur);
  pushUndo();
  maskCtx().clearRect(0, 0, app.mask.width, app.mask.height);
  draw();
  await upload();
}

// ------------------------------------------------------------------------------------ drawing

function fitCanvas(c, maxW, maxH) {
  const { proxy_width: w, proxy_height: h } = app.info;
  const s = Math.min(maxW / w, maxH / h);
  c.style.width = `${Math.floor(w * s)}px`;
  c.style.height = `${Math.floor(h * s)}px`;
}

function layout() {
  if (!app.info) return;
  const maxH = Math.max(160, window.innerHeight - 300);
  const maxW = document.querySelector("main").clientWidth - 24;
  fitCanvas($("view"), maxW, maxH);
  fitCanvas($("orig"), (maxW - 12) / 2, maxH);
  fitCanvas($("res"), (maxW - 12) / 2, maxH);
}

let drawSeq = 0;
async function draw() {
  const seq = ++drawSeq;
  const i = app.cur;
  if (app.view === "result") {
    const showMask = $("show-removed").checked;
    const [a, b, m] = await Promise.all([
      getFrame(i),
      $("show-origin").checked ? getReview(i) : getResult(i),
      showMask ? getResultMask(i) : null,
    ]);
    if (seq !== drawSeq) return;
    for (const [id, img] of [["orig", a], ["res", b]]) {
      const ctx = $(id).getContext("2d");
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, $(id).width, $(id).height);
      if (img) ctx.drawImage(img, 0, 0, $(id).width, $(id).height);
      if (id === "orig" && m) {
        ctx.globalAlpha = 0.4;
        ctx.drawImage(m, 0, 0, $(id).width, $(id).height);
        ctx.globalAlpha = 1;
      }
    }
    return;
  }
  const frame = await getFrame(i);
  const showTrack = $("show-track").checked && app.trackStamp;
  const track = showTrack && !app.keyframes.has(i) ? await getTrack(i) : null;
  if (seq !== drawSeq) return;
  const c = $("view");
  const ctx = c.getContext("2d");
  ctx.globalAlpha = 1;
  if (frame) ctx.drawImage(frame, 0, 0, c.width, c.height);
  else {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, c.width, c.height);
  }
  const overlayEdit = editingOverlay();
  const editing =
    app.maskFrame === i &&
    (overlayEdit || app.maskHasPaint || app.stroke || app.keyframes.has(i));
  if (editing) {
    ctx.globalAlpha = 0.55;
    ctx.drawImage(app.mask, 0, 0);
  } else if (track) {
    ctx.globalAlpha = 0.45;
    ctx.drawImage(track, 0, 0, c.width, c.height);
  }
  if (app.overlayImg && !(editing && overlayEdit)) {
    ctx.globalAlpha = 0.45;
    ctx.drawImage(app.overlayImg, 0, 0, c.width, c.height);
  }
  ctx.globalAlpha = 1;
  if (app.stroke && app.stroke.box) {
    const [x0, y0] = app.stroke.box;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1;
    ctx.strokeRect(x0, y0, app.stroke.x - x0, app.stroke.y - y0);
    ctx.setLineDash([]);
  } else if (app.pointer && app.tool !== "box") {
    ctx.strokeStyle = app.tool === "erase" ? "#fff" : paintRGB();
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(app.pointer.x, app.pointer.y, app.size / 2, 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (frame && !app.ready) {
    app.ready = true;
    document.body.dataset.ready = "1";
  }
}

// ------------------------------------------------------------------------------ navigation

async function goto(i) {
  const n = app.info.n_frames;
  i = Math.max(0, Math.min(n - 1, i | 0));
  if (app.stroke) return;
  app.cur = i;
  $("scrub").value = i;
  $("frame-no").textContent = frameLabel(i);
  for (const b of document.querySelectorAll("#keyframes button")) {
    b.classList.toggle("current", Number(b.dataset.frame) === i);
  }
  if (app.view === "edit" && app.maskFrame !== i) await loadMask(i);
  if (app.cur === i) await draw();
  // Prefetch the next frames so stepping and playing are smooth.
  for (let k = 1; k <= 3 && i + k < n; k++) getFrame(i + k);
}

// The timeline: keyframes, and the frames where tracking is least sure (a keyframe painted near
// one of those helps most), each a click away.
function drawMarks() {
  const marks = $("marks");
  marks.textContent = "";
  const n = Math.max(1, app.info.n_frames - 1);
  for (const k of app.keyframes) {
    const t = document.createElement("i");
    t.style.left = `${(100 * k) / n}%`;
    marks.appendChild(t);
  }
  for (const k of app.plates || []) {
    const t = document.createElement("i");
    t.className = "plate";
    t.dataset.frame = k;
    t.title = `clean plate on frame ${k}`;
    t.style.left = `${(100 * k) / n}%`;
    marks.appendChild(t);
  }
  const track = app.info.track || {};
  const weak = track.fresh ? track.suggested || [] : [];
  weak.forEach((k, rank) => {
    const t = document.createElement("b");
    t.className = "weak";
    t.dataset.frame = k;
    t.style.left = `${(100 * k) / n}%`;
    t.title = `tracking is ${rank ? "also unsure" : "least sure"} here (frame ${k}): paint a keyframe near it`;
    t.setAttribute("role", "button");
    t.setAttribute("aria-label", t.title);
    t.onclick = () => goto(k);
    marks.appendChild(t);
  });
}

function frameLabel(i) {
  const mark = app.absent.has(i) ? " ∅ (absent)" : app.keyframes.has(i) ? " ★" : "";
  return `frame ${i} / ${app.info.n_frames - 1}${mark}`;
}

function setKeyframes(list, absent) {
  const before = [...app.keyframes].join(",") + "|" + [...app.absent].join(",");
  app.keyframes = new Set(list);
  app.absent = new Set(absent || []);
  drawMarks(); // also when only the tracking's suggestions changed
  if (list.join(",") + "|" + [...app.absent].join(",") === before && $("keyframes").dataset.filled) return;
  $("keyframes").dataset.filled = "1";
  const box = $("keyframes");
  box.textContent = "";
  if (!list.length) {
    box.innerHTML = "<em>none yet: paint the object on a frame</em>";
  }
  for (const k of list) {
    const b = document.createElement("button");
    const gone = app.absent.has(k);
    b.textContent = gone ? `${k} ∅` : k;
    b.dataset.frame = k;
    b.classList.toggle("absent", gone);
    b.title = gone ? `go to frame ${k}, where the object is absent` : `go to keyframe ${k}`;
    b.classList.toggle("current", k === app.cur);
    b.onclick = () => goto(k);
    box.appendChild(b);
  }
  $("frame-no").textContent = frameLabel(app.cur);
}

// Clean plates: frames painted clean by hand (remove --reference); listed, reachable, deletable.
function setPlates(list) {
  const box = $("plates");
  const key = list.join(",");
  if (box.dataset.list === key) return;
  box.dataset.list = key;
  app.plates = list;
  drawMarks();
  box.textContent = "";
  if (!list.length) box.innerHTML = "<em>none</em>";
  for (const k of list) {
    const b = document.createElement("button");
    b.textContent = k;
    b.dataset.frame = k;
    b.title = `go to frame ${k}`;
    b.onclick = () => goto(k);
    const del = document.createElement("button");
    del.textContent = "✕";
    del.className = "del-plate";
    del.dataset.frame = k;
    del.title = `forget the clean plate of frame ${k}`;
    del.onclick = async () => {
      const r = await api("DELETE", `/api/plate/${k}`);
      if (r.ok) setPlates(r.data.plates);
      say(r.ok ? `clean plate of frame ${k} removed` : r.data.error, r.ok ? "" : "error");
    };
    box.append(b, del);
  }
}

async function uploadPlate(file) {
  const i = app.cur;
  const r = await api("PUT", `/api/plate/${i}`, file, file.type || "image/png");
  if (r.ok) setPlates(r.data.plates);
  say(r.ok ? `clean plate stored for frame ${i}; Remove uses it` : r.data.error, r.ok ? "" : "error");
}

function setView(v) {
  app.view = v;
  $("edit-view").hidden = v !== "edit";
  $("result-view").hidden = v !== "result";
  $("view-edit").classList.toggle("active", v === "edit");
  $("view-result").classList.toggle("active", v === "result");
  document.body.classList.toggle("result-mode", v === "result");
  if (v === "edit" && app.maskFrame !== app.cur) loadMask(app.cur).then(draw);
  else draw();
}

function stopPlay() {
  app.playing = false;
  $("btn-play").textContent = "▶";
}

async function play() {
  if (app.playing) return stopPlay();
  app.playing = true;
  $("btn-play").textContent = "❚❚";
  const n = app.info.n_frames;
  const dt = 1000 / (app.info.fps || 25);
  let i = app.cur >= n - 1 ? 0 : app.cur;
  while (app.playing && i < n) {
    const t0 = performance.now();
    await goto(i);
    if (app.view === "result") for (let k = 1; k <= 3 && i + k < n; k++) getResult(i + k);
    const wait = dt - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    i++;
  }
  stopPlay();
}

function setTool(t) {
  app.tool = t;
  $("view").style.cursor = t === "box" ? "crosshair" : "none";
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.id === `tool-${t}`);
  draw();
}

function setSize(s) {
  app.size = Math.max(2, Math.min(200, s | 0));
  $("brush-size").value = app.size;
  $("brush-size-out").textContent = app.size;
  draw();
}

// ------------------------------------------------------------------------------------- jobs

function showJob(job) {
  const running = job.state === "running";
  $("btn-track").disabled = running;
  $("btn-remove").disabled = running;
  $("btn-detect").disabled = running;
  $("btn-cancel").hidden = !running;
  $("progress").hidden = !running;
  document.body.dataset.job = `${job.kind}:${job.state}`;
  if (running) {
    $("progress").max = job.total || 1;
    $("progress").value = job.done;
    const phase =
      { track: "tracking", masks: "saving masks", remove: "removing", preview: "preview", detect: "looking for overlays" }[
        job.phase
      ] || "starting";
    $("job-text").textContent = `${phase} ${job.done}/${job.total || "?"}`;
  } else if (job.state === "error" || job.state === "cancelled") {
    $("job-text").textContent = job.state;
  } else if (job.state === "done") {
    $("job-text").textContent = job.message || "done";
  }
}

async function refreshInfo() {
  const r = await api("GET", "/api/info");
  if (!r.ok) return;
  const info = r.data;
  app.info = info;
  const track = info.track;
  $("track-state").textContent = !track.available
    ? "tracking: not run"
    : track.fresh
      ? "tracking: up to date"
      : "tracking: out of date (masks changed; press Track)";
  $("track-state").className = track.fresh ? "fresh" : "";
  if (!track.available) app.trackStamp = 0;
  else if (!app.trackStamp) app.trackStamp = Date.now();
  if (info.result.available && info.result.stamp !== app.resultStamp) {
    app.resultStamp = info.result.stamp;
    app.results.clear();
    app.reviews.clear();
    app.resultMasks.clear();
  }
  $("view-result").disabled = !info.result.available;
  $("btn-save").disabled = !info.result.available;
  setKeyframes(info.keyframes, info.absent);
  setPlates(info.plates || []);
  if (info.overlay !== Boolean(app.overlayImg)) await loadOverlay();
  app.rev = info.rev;
}

async function onJobFinished(job) {
  app.tracks.clear();
  app.trackStamp = Date.now();
  await refreshInfo();
  if (job.kind === "detect" && job.state === "done") {
    await loadOverlay();
    if (editingOverlay()) await loadMask(app.cur);
    say(`${job.message}; shown in yellow on every frame: tick "overlay" to edit it, then Remove`, "ok");
    draw();
    return;
  }
  if (job.state === "error") say(job.message, "error");
  else if (job.state === "cancelled") say(job.message);
  else if (job.kind === "remove") {
    say(`${job.message}. Playing the result beside the original; Save writes it.`, "ok");
    setView("result");
    await goto(0);
    play();
    return;
  } else say(`${job.message} (orange on the timeline); scrub through the clip and paint where the mask slipped`, "ok");
  draw();
}

async function poll() {
  const r = await api("GET", "/api/job");
  if (r.ok) {
    const s = r.data;
    const job = s.job;
    const finished = app.jobState === "running" && job.state !== "running" && job.job_id === app.jobId;
    app.jobState = job.state;
    app.jobId = job.job_id;
    // A finished job's results are loaded before the page shows it as finished.
    if (finished) await onJobFinished(job);
    showJob(job);
    if (s.rev !== app.rev && !app.stroke && app.pending === 0) {
      // Another tab changed the masks: show its work.
      await refreshInfo();
      if (app.view === "edit") {
        await loadMask(app.cur);
        draw();
      }
    }
    $("proxy-state").textContent = s.proxy_error
      ? `frames: ${s.proxy_error}`
      : s.proxy_done
        ? ""
        : `preparing frames ${s.proxy_ready}/${app.info.n_frames}`;
  }
  setTimeout(poll, app.jobState === "running" ? 300 : 800);
}

async function startJob(kind) {
  await app.uploads; // the last stroke must be on disk before the job reads the masks
  const r = await api("POST", `/api/${kind}`);
  if (!r.ok) {
    say(r.data.error || `${kind} failed (${r.status})`, "error");
    return;
  }
  app.jobState = "running";
  app.jobId = r.data.job_id;
  showJob(r.data);
  const doing = {
    track: "tracking the painted masks through the clip…",
    remove: "removing the object…",
    detect: "looking for static overlays (logos, watermarks, burnt-in text)…",
  };
  say(doing[kind]);
}

async function save(overwrite) {
  const body = JSON.stringify({
    output: $("out-path").value,
    masks: $("mask-path").value,
    overwrite,
  });
  const r = await api("POST", "/api/save", body);
  if (r.ok) {
    say(`saved: ${r.data.written.join(", ")}`, "ok");
  } else if (r.status === 409 && r.data.exists && !overwrite) {
    if (window.confirm(`Already exists:\n${r.data.exists.join("\n")}\n\nOverwrite?`)) return save(true);
    say("not saved: nothing was overwritten; change the paths or confirm", "error");
  } else {
    say(r.data.error || `save failed (${r.status})`, "error");
  }
}

// ------------------------------------------------------------------------------------- start

async function main() {
  await refreshInfo();
  const info = app.info;
  if (!info) {
    say("cannot reach the server", "error");
    return;
  }
  document.title = `lama-video · ${info.name}`;
  $("clip-name").textContent = info.name;
  $("clip-meta").textContent = `${info.width}×${info.height}, ${info.n_frames} frames, ${info.fps.toFixed(2)} fps, engine ${info.engine}`;
  for (const c of [$("view"), $("orig"), $("res"), app.mask]) {
    c.width = info.proxy_width;
    c.height = info.proxy_height;
  }
  $("scrub").max = info.n_frames - 1;
  $("out-path").value = info.defaults.output;
  $("mask-path").value = info.defaults.masks;
  setSize(Math.round(Math.max(info.proxy_width, info.proxy_height) / 12));
  layout();

  const v = $("view");
  v.addEventListener("pointerdown", onDown);
  v.addEventListener("pointermove", onMove);
  v.addEventListener("pointerup", onUp);
  v.addEventListener("pointercancel", onUp);
  v.addEventListener("pointerleave", () => {
    app.pointer = null;
    if (!app.stroke) draw();
  });
  $("scrub").addEventListener("input", (e) => {
    stopPlay();
    goto(Number(e.target.value));
  });
  $("btn-prev").onclick = () => { stopPlay(); goto(app.cur - 1); };
  $("btn-next").onclick = () => { stopPlay(); goto(app.cur + 1); };
  $("btn-play").onclick = play;
  $("tool-brush").onclick = () => setTool("brush");
  $("tool-erase").onclick = () => setTool("erase");
  $("tool-box").onclick = () => setTool("box");
  $("brush-size").addEventListener("input", (e) => setSize(Number(e.target.value)));
  $("btn-undo").onclick = undo;
  $("btn-clear").onclick = clearFrame;
  $("btn-absent").onclick = markAbsent;
  $("show-track").onchange = draw;
  $("show-removed").onchange = draw;
  $("show-origin").onchange = draw;
  $("btn-track").onclick = () => startJob("track");
  $("btn-remove").onclick = () => startJob("remove");
  $("btn-detect").onclick = () => startJob("detect");
  $("btn-full").onclick = (e) => {
    e.currentTarget.href = `/api/full/${app.cur}.png`;
    e.currentTarget.download = `frame${String(app.cur).padStart(5, "0")}.png`;
  };
  $("plate-file").onchange = async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) await uploadPlate(file);
  };
  $("edit-overlay").onchange = async () => {
    await app.uploads;
    await loadMask(app.cur);
    draw();
  };
  $("btn-cancel").onclick = () => api("POST", "/api/job/cancel");
  $("btn-save").onclick = () => save(false);
  $("view-edit").onclick = () => setView("edit");
  $("view-result").onclick = () => setView("result");
  window.addEventListener("resize", layout);
  window.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "checkbox") return; // its own keys
    if (e.key === "ArrowLeft") { stopPlay(); goto(app.cur - 1); }
    else if (e.key === "ArrowRight") { stopPlay(); goto(app.cur + 1); }
    else if (e.key === " ") { e.preventDefault(); play(); }
    else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
    else if (e.key === "b") setTool("brush");
    else if (e.key === "e") setTool("erase");
    else if (e.key === "x") setTool("box");
    else if (e.key === "[") setSize(app.size - 4);
    else if (e.key === "]") setSize(app.size + 4);
    else return;
  });

  if (info.track.available) app.trackStamp = Date.now();
  await goto(info.keyframes.length ? info.keyframes[0] : 0);
  poll();
  say(info.keyframes.length
    ? "masks from the last session are back; Track to check them, Remove when ready"
    : "paint over the object (drag), on one or more frames; then Track and Remove");
}

main();
