// fedzo's comparison page: draws both batches from the model's geometry and sends the person's answer.
// It talks to the agent that served it and to nothing else (the server's Content-Security-Policy
// forbids anything else). It is never told the returns or which side is the candidate.
"use strict";
(function () {
  const POLL_MS = 1000;                        // how often the page asks the agent what waits
  const PIXELS_PER_METRE = { side: 110, top: 90 };
  const PALETTE = ["#3b6ea8", "#d9822b", "#3a9a5b", "#b84a62", "#7a5cb0", "#2f9aa0", "#a08a2f", "#5a5a5a"];
  const token = new URLSearchParams(location.search).get("token");
  const headers = token ? { "X-Fedzo-Token": token } : {};
  const $ = (id) => document.getElementById(id);
  const canvases = { left: $("left"), right: $("right") };

  const state = {
    shown: null,          // the comparison on screen: decoded clips and its timeline
    playing: true,
    speed: 1,
    t: 0,                 // seconds into the shown comparison's loop
    lastTick: null,
    deadline: null,       // performance.now() / 1000 at which the round stops waiting (null: it waits)
    waiting: 0,
    sending: false,
  };

  // ---- clips ----

  function decodeClip(clip) {
    const text = atob(clip.poses);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return { frames: clip.frames, geoms: clip.geoms, poses: new Float32Array(bytes.buffer) };
  }

  function prepare(comparison) {
    const left = comparison.left.map(decodeClip);
    const right = comparison.right.map(decodeClip);
    // Episode i of both sides starts from the same state; it lasts as long as the longer of the
    // two, and the side whose episode ended first holds its last frame meanwhile.
    const spans = left.map((clip, i) => Math.max(clip.frames, right[i].frames, 1));
    const total = spans.reduce((a, b) => a + b, 0);
    return { comparison, left, right, spans, total, fps: comparison.scene.fps };
  }

  function position(shown, t) {
    let f = Math.floor(t * shown.fps) % shown.total;
    for (let i = 0; i < shown.spans.length; i++) {
      if (f < shown.spans[i]) return { episode: i, frame: f };
      f -= shown.spans[i];
    }
    return { episode: 0, frame: 0 };
  }

  // ---- geometry ----

  // The columns of a unit quaternion's rotation matrix: the geom's own x, y and z axes in the world.
  function axes(w, x, y, z) {
    return [
      [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)],
      [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)],
      [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)],
    ];
  }

  // World point -> plane coordinates: a side view looks along y (x right, z up), a top view down z.
  function flat(view, p) {
    return view === "top" ? [p[0], p[1]] : [p[0], p[2]];
  }

  function hull(points) {
    const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const half = (list) => {
      const out = [];
      for (const p of list) {
        while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], p) <= 0) out.pop();
        out.push(p);
      }
      out.pop();
      return out;
    };
    return half(pts).concat(half(pts.slice().reverse()));
  }

  function drawGeom(ctx, view, screen, scale, geom, pose, colour) {
    const p = [pose[0], pose[1], pose[2]];
    const [ax, ay, az] = axes(pose[3], pose[4], pose[5], pose[6]);
    const s = geom.size;
    const at = (q) => screen(flat(view, q));
    const along = (v, k) => [p[0] + v[0] * k, p[1] + v[1] * k, p[2] + v[2] * k];
    ctx.fillStyle = colour;
    ctx.strokeStyle = "#222";
    ctx.lineWidth = 1;
    if (geom.type === "capsule" || geom.type === "cylinder") {
      const a = at(along(az, -s[1])), b = at(along(az, s[1]));
      ctx.lineCap = geom.type === "capsule" ? "round" : "butt";
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.strokeStyle = "#222";
      ctx.lineWidth = 2 * s[0] * scale + 2;        // a dark rim one pixel wide
      ctx.stroke();
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2 * s[0] * scale;
      ctx.stroke();
    } else if (geom.type === "sphere" || geom.type === "ellipsoid") {
      const c = at(p);
      const r = (geom.type === "sphere" ? s[0] : (s[0] + s[1] + s[2]) / 3) * scale;
      ctx.beginPath();
      ctx.arc(c[0], c[1], r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    } else if (geom.type === "box") {
      const corners = [];
      for (const i of [-1, 1]) for (const j of [-1, 1]) for (const k of [-1, 1]) {
        corners.push(at([0, 1, 2].map((n) => p[n] + i * ax[n] * s[0] + j * ay[n] * s[1] + k * az[n] * s[2])));
      }
      const outline = hull(corners);
      ctx.beginPath();
      outline.forEach((q, n) => (n ? ctx.lineTo(q[0], q[1]) : ctx.moveTo(q[0], q[1])));
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  function drawGround(ctx, view, scene, camera, screen, width, height) {
    const step = 0.5;
    const first = Math.floor((camera[0] - width / 2 / PIXELS_PER_METRE[view]) / step) * step;
    const last = camera[0] + width / 2 / PIXELS_PER_METRE[view];
    ctx.strokeStyle = "#ccc";
    ctx.fillStyle = "#777";
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    if (view === "top") {
      for (let x = first; x <= last; x += step) {
        const [sx] = screen([x, 0]);
        ctx.beginPath(); ctx.moveTo(sx, 0); ctx.lineTo(sx, height); ctx.stroke();
        if (Math.abs(x - Math.round(x)) < 1e-6) ctx.fillText(`${Math.round(x)} m`, sx + 2, height - 4);
      }
      return;
    }
    const planes = scene.fixed.filter((g) => g.type === "plane");
    for (const plane of planes) {
      const [, groundY] = screen([camera[0], plane.pose[2]]);
      ctx.fillStyle = "#e4e1d8";
      ctx.fillRect(0, groundY, width, height - groundY);
      ctx.strokeStyle = "#8a8578";
      ctx.beginPath(); ctx.moveTo(0, groundY); ctx.lineTo(width, groundY); ctx.stroke();
      ctx.fillStyle = "#6d685c";
      for (let x = first; x <= last; x += step) {
        const [sx] = screen([x, 0]);
        const whole = Math.abs(x - Math.round(x)) < 1e-6;
        ctx.beginPath(); ctx.moveTo(sx, groundY); ctx.lineTo(sx, groundY + (whole ? 10 : 5)); ctx.stroke();
        if (whole) ctx.fillText(`${Math.round(x)} m`, sx + 2, groundY + 22);
      }
    }
  }

  function drawSide(canvas, shown, clips, where) {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    const scene = shown.comparison.scene;
    const view = scene.view;
    const scale = PIXELS_PER_METRE[view];
    const clip = clips[where.episode];
    const ended = where.frame >= clip.frames;
    const f = Math.min(where.frame, clip.frames - 1);
    const pose = (g) => clip.poses.subarray((f * clip.geoms + g) * 7, (f * clip.geoms + g + 1) * 7);
    // The camera follows the body: the mean position of its moving geoms.
    let cx = 0, cy = 0;
    for (let g = 0; g < clip.geoms; g++) {
      const q = flat(view, pose(g));
      cx += q[0] / clip.geoms; cy += q[1] / clip.geoms;
    }
    const camera = view === "top" ? [cx, cy] : [cx, 0];
    const originY = view === "top" ? height / 2 : height * 0.82;
    const screen = (q) => [width / 2 + (q[0] - camera[0]) * scale, originY - (q[1] - camera[1]) * scale];
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    drawGround(ctx, view, scene, camera, screen, width, height);
    scene.moving.forEach((geom, g) => drawGeom(ctx, view, screen, scale, geom, pose(g), PALETTE[g % PALETTE.length]));
    ctx.fillStyle = "#333";
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(`episode ${where.episode + 1} of ${clips.length}` + (ended ? " (ended)" : ""), 8, 16);
  }

  function render() {
    const shown = state.shown;
    if (!shown) return;
    const where = position(shown, state.t);
    drawSide(canvases.left, shown, shown.left, where);
    drawSide(canvases.right, shown, shown.right, where);
  }

  function tick(now) {
    if (state.lastTick !== null && state.playing && state.shown) {
      state.t += Math.min(0.25, (now - state.lastTick) / 1000) * state.speed;
    }
    state.lastTick = now;
    render();
    showStatus();
    requestAnimationFrame(tick);
  }

  // ---- talking to the agent ----

  function showStatus() {
    const shown = state.shown;
    if (!shown) {
      $("status").textContent = "Waiting for the agent's next comparison ...";
      $("clock").textContent = "";
      return;
    }
    const c = shown.comparison;
    let time = "the round waits for you";
    if (state.deadline !== null) {
      const left = Math.max(0, Math.round(state.deadline - performance.now() / 1000));
      time = `the round closes in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    }
    $("status").textContent = `agent ${c.agent} · round ${c.round + 1} · comparison ${c.comparison + 1}` +
      ` · ${state.waiting} waiting · ${time}`;
    $("clock").textContent = `${(state.t % (shown.total / shown.fps)).toFixed(1)} s`;
  }

  function show(comparison) {
    state.shown = comparison ? prepare(comparison) : null;
    state.t = 0;
    document.body.classList.toggle("idle", !comparison);
    document.body.dataset.comparison = comparison ? comparison.id : "";   // which one is on screen
    showStatus();
  }

  async function poll() {
    try {
      // The clips come once: while a comparison is on screen the page asks only for the counts.
      const have = state.shown ? `?have=${state.shown.comparison.id}` : "";
      const response = await fetch(`api/next${have}`, { headers, cache: "no-store" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      state.waiting = body.waiting;
      if (!state.shown && body.comparison) show(body.comparison);
      if (state.shown && body.id === state.shown.comparison.id) {
        state.deadline = body.seconds_left === null ? null : performance.now() / 1000 + body.seconds_left;
      }
    } catch (error) {
      $("message").textContent = `cannot reach the agent: ${error.message}`;
    }
  }

  async function answer(side) {
    const shown = state.shown;
    if (!shown || state.sending) return;
    state.sending = true;
    try {
      const response = await fetch("api/answer", {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, headers),
        body: JSON.stringify({ id: shown.comparison.id, answer: side }),
      });
      const body = await response.json();
      // Answered, or closed already (another tab answered it): either way this one is done.
      $("message").textContent = response.ok ? "" : body.error;
      show(null);
      await poll();
    } catch (error) {
      $("message").textContent = `the answer did not reach the agent: ${error.message}`;
    } finally {
      state.sending = false;
    }
  }

  // ---- controls ----

  function togglePlay() {
    state.playing = !state.playing;
    $("play").textContent = state.playing ? "pause" : "play";
  }

  $("play").addEventListener("click", togglePlay);
  $("speed").addEventListener("change", (e) => { state.speed = Number(e.target.value); });
  $("answer-left").addEventListener("click", () => answer("left"));
  $("answer-right").addEventListener("click", () => answer("right"));
  $("answer-tie").addEventListener("click", () => answer("tie"));
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT") return;
    const keys = { ArrowLeft: "left", ArrowRight: "right", " ": "tie" };
    if (e.key in keys) {
      e.preventDefault();
      answer(keys[e.key]);
    } else if (e.key === "p") {
      togglePlay();
    }
  });

  setInterval(poll, POLL_MS);
  poll();
  requestAnimationFrame(tick);
})();
