// Atelier Studio: sign in with a brand key, upload, and follow each upload live.
//
// One server-sent event stream per brand (GET /v1/events) feeds every card: a snapshot of the
// brand's recent assets, then each change as the status service folds it. The stream is read with
// fetch so the key travels in the Authorization header, never in a URL. An upload in "preview, then
// final" mode is two assets (a preview and a production render of the same file), shown on one card;
// both carry the studio's reference "studio/<upload id>/<file name>", which groups them again after
// a reload. Text from the server is only ever set as text, never as markup.
"use strict";

const STAGES = ["uploaded", "tagged", "routed", "stylized", "exported"];
const STAGE_WORDS = {
  uploaded: "uploaded", tagged: "tagged", routed: "routed", stylized: "stylized",
  exported: "ready", failed: "failed", unknown: "queued",
};
// The artist's attention span: under 3 s feels immediate, over 5 s breaks the flow.
const ATTENTION_MS = [3000, 5000];
// The status service sends a keepalive every 15 s: a stream silent this long is dead.
const STREAM_SILENCE_MS = 45000;
const SHOWN_FORMATS = ["webp", "jpeg", "png", "avif", "gif"];
const SERVICE_COLOURS = {
  uploader: "#5b7be0", tagger: "#2f9e6b", router: "#8a5cd6", stylizer: "#e5684e",
  exporter: "#d9931c", status: "#6b6878",
};
const KEY_SLOT = "atelier.studio.key";
const BRAND_SLOT = "atelier.studio.brand";

const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  key: sessionStorage.getItem(KEY_SLOT) || "",
  brand: sessionStorage.getItem(BRAND_SLOT) || "",
  profile: null,
  groups: new Map(),      // upload id -> group
  assetGroup: new Map(),  // asset id -> upload id
  stream: null,           // the AbortController of the open stream
  session: 0,             // bumped whenever the brand's cards are cleared: late answers of before are dropped
  opening: 0,             // bumped by every brand switch asked for: only the latest one's profile is shown
};

// ---- API -----------------------------------------------------------------------------------

function headers() {
  return { Authorization: `Bearer ${state.key}` };
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    const failure = new Error(message);
    failure.status = response.status;
    throw failure;
  }
  return body;
}

// ---- Sign in -------------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  const { brands } = await api("/v1/brands");
  if (!brands.length) throw new Error("this key may act for no brand");
  const brand = brands.includes(state.brand) ? state.brand : brands[0];
  sessionStorage.setItem(KEY_SLOT, key);
  const switcher = $("#brand-switch");
  switcher.replaceChildren(...brands.map((name) => new Option(name, name)));
  switcher.hidden = brands.length < 2;
  await openBrand(brand);
}

// Show a brand: its profile first; the page changes only once it came (a later switch wins). Until
// then the brand shown stays live: a profile that fails to come leaves its stream and uploads as they were.
async function openBrand(brand) {
  const asked = ++state.opening;
  const profile = await api(`/v1/brands/${encodeURIComponent(brand)}`);
  if (asked !== state.opening) return;
  const session = ++state.session;
  if (state.stream) state.stream.abort();
  state.brand = brand;
  state.profile = profile;
  sessionStorage.setItem(BRAND_SLOT, brand);
  state.groups.clear();
  state.assetGroup.clear();
  $("#cards").replaceChildren();
  $("#brand-switch").value = brand;
  $("#brand-name").textContent = profile.display_name;
  $("#style").replaceChildren(
    new Option("Let the brand rules decide", ""),
    ...profile.styles.map((style) => new Option(style, style)),
  );
  for (const input of document.querySelectorAll("#modes input")) {
    const tiers = input.value === "both" ? ["preview", "production"] : [input.value];
    input.disabled = !tiers.every((tier) => profile.tiers.includes(tier));
    input.closest("label").hidden = input.disabled;
  }
  const checked = $("#modes input:checked");
  if (checked.disabled) $("#modes input:not(:disabled)").checked = true;
  const targets = profile.latency_targets_ms;
  $("#targets").textContent = [
    ...Object.entries(targets).map(([tier, ms]) => `${tier === "preview" ? "Preview" : "Final"} target ${seconds(ms)}`),
    `a preview's wait turns amber past ${ATTENTION_MS[0] / 1000} s and red past ${ATTENTION_MS[1] / 1000} s (the attention span) or its target`,
  ].join(" · ");
  $("#signin-panel").hidden = true;
  $("#studio").hidden = false;
  $("#who").hidden = false;
  render();
  follow(session);
}

function signOut() {
  state.opening++;
  state.session++;
  if (state.stream) state.stream.abort();
  state.stream = null;
  sessionStorage.removeItem(KEY_SLOT);
  sessionStorage.removeItem(BRAND_SLOT);
  state.key = "";
  state.groups.clear();
  state.assetGroup.clear();
  $("#cards").replaceChildren();
  $("#studio").hidden = true;
  $("#who").hidden = true;
  $("#signin-panel").hidden = false;
  $("#key").value = "";
}

// ---- The live stream -----------------------------------------------------------------------

async function follow(session) {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  const live = $("#live");
  let retryMs = 1000;
  while (!controller.signal.aborted && session === state.session) {
    try {
      const response = await fetch(`/v1/events?brand=${encodeURIComponent(state.brand)}&limit=60`, {
        headers: { ...headers(), Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status === 401) { signOut(); return; }
      if (!response.ok) throw new Error(`${response.status}`);
      live.textContent = "live";
      live.classList.add("on");
      retryMs = 1000;
      await readEvents(response.body, onEvent, STREAM_SILENCE_MS);
    } catch (failure) {
      if (controller.signal.aborted) return;
    }
    live.textContent = "reconnecting";
    live.classList.remove("on");
    // Backing off, with jitter: after a restart of the service, every page does not come back at once.
    await new Promise((resolve) => setTimeout(resolve, retryMs * (0.5 + Math.random())));
    retryMs = Math.min(retryMs * 2, 10000);
  }
}

// Server-sent events from a byte stream: blocks separated by a blank line, fields "event" and "data".
// A stream silent for `silenceMs` (keepalives come every 15 s) is dead, though the connection may not
// say so for minutes (a laptop that slept, a network that changed): the read ends, and the caller reconnects.
async function readEvents(body, handle, silenceMs) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await unlessSilent(reader.read(), silenceMs);
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) handle(event, JSON.parse(data.join("\n")));
      }
    }
  } finally {
    reader.cancel().catch(() => {});  // Whatever ended the read, the connection is let go.
  }
}

// `read`, or a rejection once `ms` passed without it.
function unlessSilent(read, ms) {
  let timer;
  const silence = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the stream was silent for ${ms / 1000} s`)), ms);
  });
  return Promise.race([read, silence]).finally(() => clearTimeout(timer));
}

function onEvent(event, data) {
  const assets = event === "snapshot" ? data.assets.slice().reverse() : event === "status" ? [data] : [];
  for (const asset of assets) {
    try {
      absorb(asset);
    } catch (failure) {
      console.warn("an asset could not be shown", asset.asset_id, failure);  // One bad asset stops no others.
    }
  }
  render();
}

// ---- Groups: one card per uploaded file ----------------------------------------------------

// The API takes a reference of up to 256 characters of text without control characters: a file's
// name is cut to fit (by characters, as the API counts them, not UTF-16 units) and stripped of those.
function studioReference(id, name) {
  const prefix = `studio/${id}/`;
  const text = Array.from(name.replace(/[\u0000-\u001f\u007f-\u009f]/g, ""));
  return prefix + text.slice(0, 256 - prefix.length).join("").trim();
}

function parseReference(sourceUri) {
  const match = /^studio\/([\w-]+)\/(.*)$/.exec(sourceUri || "");
  return match ? { id: match[1], name: match[2] } : null;
}

function groupFor(asset) {
  const known = state.groups.get(state.assetGroup.get(asset.asset_id));
  if (known) return known;
  const reference = parseReference(asset.source_uri);
  const id = reference ? reference.id : asset.asset_id;
  let group = state.groups.get(id);
  if (!group) group = newGroup(id, reference ? reference.name : sourceName(asset));
  state.assetGroup.set(asset.asset_id, id);
  return group;
}

// A name for an asset that did not come from the studio: the file it was dropped or announced as.
function sourceName(asset) {
  const source = asset.source_uri || "";
  if (!source || source === "http") return `upload ${asset.asset_id.slice(0, 8)}`;
  return source.replace(/^[a-z0-9]+:\/*/i, "").split("/").pop() || source;
}

function newGroup(id, name) {
  const group = { id, name, runs: {}, errors: [], localUrl: "", order: Date.now() };
  state.groups.set(id, group);
  return group;
}

function absorb(asset) {
  if (asset.brand !== state.brand) return;
  const group = groupFor(asset);
  const tier = asset.tier === "preview" ? "preview" : "production";
  const run = group.runs[tier] || (group.runs[tier] = { tier });
  const was = run.asset && run.asset.stage;
  run.asset = asset;
  run.assetId = asset.asset_id;
  const uploaded = Date.parse((asset.timeline || {}).uploaded_at || "");
  if (!run.startedAt && uploaded) run.startedAt = uploaded;
  if (!group.localUrl && uploaded) group.order = uploaded;
  if (!isFinal(asset)) {
    if (was === "failed") run.doneAt = 0;  // Open again: a failure replayed once its cause was fixed.
  } else if (!run.doneAt) {
    // Seen live: the artist's wait ends now; from history: by the pipeline's own clock.
    const ended = Date.parse((asset.timeline || {}).exported_at || (asset.failure || {}).failed_at || "");
    run.doneAt = run.liveStart ? Date.now() : ended || uploaded;
  }
}

function isFinal(asset) {
  return asset.stage === "exported" || asset.stage === "failed";
}

// ---- Uploads -------------------------------------------------------------------------------

function uploadId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function upload(files) {
  const mode = $("#modes input:checked").value;
  const tiers = mode === "both" ? ["preview", "production"] : [mode];
  const style = $("#style").value;
  await Promise.all(Array.from(files).map((file) => uploadOne(file, tiers, style)));
}

async function uploadOne(file, tiers, style) {
  const { session, brand } = { session: state.session, brand: state.brand };
  const group = newGroup(uploadId(), file.name);
  group.localUrl = URL.createObjectURL(file);
  render();
  await Promise.all(tiers.map(async (tier) => {
    const run = (group.runs[tier] = { tier, liveStart: Date.now() });
    run.startedAt = run.liveStart;
    const form = new FormData();
    form.append("brand", brand);  // An admin key acts for the brand shown.
    form.append("tier", tier);
    form.append("style", style);
    form.append("reference", studioReference(group.id, file.name));
    form.append("file", file);
    try {
      const accepted = await api("/v1/assets", { method: "POST", body: form });
      if (session !== state.session) return;  // Signed out or switched brand meanwhile.
      run.assetId = accepted.asset_id;
      state.assetGroup.set(accepted.asset_id, group.id);
      if (!run.asset) run.asset = { asset_id: accepted.asset_id, stage: "uploaded", reached: ["uploaded"], tier, trace_id: accepted.trace_id };
    } catch (failure) {
      run.error = failure.message;
      run.doneAt = Date.now();
    }
    if (session === state.session) render();
  }));
}

// ---- Rendering -----------------------------------------------------------------------------

function seconds(ms) {
  return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function waitClass(ms, tier) {
  const target = (state.profile.latency_targets_ms || {})[tier] || ATTENTION_MS[1];
  const limits = tier === "preview" ? [Math.min(ATTENTION_MS[0], target), Math.min(ATTENTION_MS[1], target)] : [target * 0.75, target];
  return ms <= limits[0] ? "good" : ms <= limits[1] ? "warn" : "bad";
}

// The rendition a card shows: a format browsers display, the preview or web size before others.
function shownRendition(asset) {
  const renditions = ((asset && asset.renditions) || []).filter((rendition) => {
    const object = rendition.object || {};
    const type = object.content_type || object.key || "";
    return object.url && SHOWN_FORMATS.some((format) => type.includes(format));
  });
  const rank = (rendition) => {
    const place = ["preview", "web", "thumbnail"].indexOf(rendition.profile);
    return place < 0 ? 99 : place;
  };
  return renditions.sort((a, b) => rank(a) - rank(b))[0] || null;
}

function render() {
  const cards = $("#cards");
  const groups = Array.from(state.groups.values()).sort((a, b) => b.order - a.order);
  for (const [index, group] of groups.entries()) {
    if (!group.element) group.element = makeCard(group);
    if (cards.children[index] !== group.element) cards.insertBefore(group.element, cards.children[index] || null);
    fillCard(group);
  }
  $("#empty").hidden = groups.length > 0;
  $("#count").textContent = groups.length ? `${groups.length} upload${groups.length > 1 ? "s" : ""}` : "";
}

function makeCard(group) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  card.dataset.group = group.id;
  const before = $(".before", card);
  // An original a browser cannot show (HEIC, TIFF, or not an image at all) leaves the frame to the final.
  before.addEventListener("error", () => { before.hidden = true; fillCard(group); });
  before.addEventListener("load", () => { if (before.hidden) { before.hidden = false; fillCard(group); } });
  const compare = $(".compare", card);
  compare.addEventListener("input", () => $(".frame", card).style.setProperty("--cut", `${compare.value}%`));
  return card;
}

function fillCard(group) {
  const card = group.element;
  const preview = group.runs.preview;
  const final = group.runs.production;
  const runs = [preview, final].filter(Boolean);
  const main = final || preview;
  $(".name", card).textContent = group.name;
  $(".name", card).title = group.name;

  // The frame: the original, then the preview, then the final with a before/after slider.
  const original = group.localUrl || (main && main.asset && main.asset.original && main.asset.original.url) || "";
  const finalShown = final && shownRendition(final.asset);
  const previewShown = preview && shownRendition(preview.asset);
  const before = $(".before", card);
  const after = $(".after", card);
  const label = $(".frame-label", card);
  const frame = $(".frame", card);
  const previewOnTop = !finalShown && previewShown;
  setSrc(before, previewOnTop ? previewShown.object.url : original);
  before.className = previewOnTop ? "before rendition preview" : "before";
  if (finalShown) {
    setSrc(after, finalShown.object.url);
    after.hidden = false;
    after.className = "after rendition final";
    // Before and after side by side, where the browser can show the original (not HEIC or TIFF).
    const comparing = Boolean(original) && !before.hidden;
    $(".compare", card).hidden = !comparing;
    frame.classList.toggle("comparing", comparing);
    after.style.clipPath = comparing ? "" : "none";
    label.textContent = comparing ? "before | after" : "final";
    shown(card, "final");
  } else if (previewShown) {
    label.textContent = final ? "preview · final on its way" : "preview";
    shown(card, "preview");
  } else if (runs.length && runs.every((run) => run.error)) {
    label.textContent = "refused";
  } else {
    label.textContent = original ? "original" : "";
  }
  label.hidden = !label.textContent;

  // One row per render: stage steps, stage in words, the wait.
  const rows = $(".runs", card);
  runs.forEach((run, index) => {
    if (!run.row) {
      run.row = $("#run-template").content.firstElementChild.cloneNode(true);
      run.row.dataset.tier = run.tier;
    }
    if (rows.children[index] !== run.row) rows.insertBefore(run.row, rows.children[index] || null);
    fillRun(run.row, run);
  });

  // Route, badges, palette, tags, errors, links.
  const routed = runs.map((run) => run.asset && run.asset.route).filter(Boolean);
  const route = routed[routed.length - 1];
  const routeText = $(".route", card);
  routeText.replaceChildren();
  if (route) {
    // The reason says why this style ("rule ...") and why this pool; the pool's part matters when degraded.
    const [why, ...pool] = route.reason.split("; ");
    const bold = document.createElement("b");
    bold.textContent = `${route.style}${route.strength < 1 ? ` at ${Math.round(route.strength * 100)}%` : ""}`;
    routeText.append(bold, ` · ${why}${route.degraded && pool.length ? `; ${pool.join("; ")}` : ""}`);
    routeText.title = route.reason;
  }
  const badges = [];
  for (const run of runs) {
    const asset = run.asset || {};
    if (asset.route && asset.route.degraded && !asset.upgraded) badges.push(["degraded", "degraded", "Served by the fast model under load; a full render follows"]);
    if (asset.upgraded) badges.push(["upgraded", "upgraded", "Re-rendered at full fidelity after a degraded render"]);
    if (asset.stylized && asset.stylized.cache_hit) badges.push(["cached", "cached", "The same image, style and model were rendered before"]);
    if (asset.stage === "failed" || run.error) badges.push(["failed", "failed", ""]);
  }
  $(".badges", card).replaceChildren(...dedupe(badges).map(([kind, text, title]) => {
    const badge = document.createElement("span");
    badge.className = `badge ${kind}`;
    badge.textContent = text;
    if (title) badge.title = title;
    return badge;
  }));
  const tags = runs.map((run) => run.asset && run.asset.tags).find(Boolean);
  $(".palette", card).replaceChildren(...((tags && tags.palette) || []).map((colour) => {
    const swatch = document.createElement("span");
    swatch.style.background = /^#[0-9a-f]{6}$/i.test(colour.hex) ? colour.hex : "transparent";
    swatch.style.flex = `${Math.max(colour.share, 0.02)}`;
    swatch.title = colour.hex;
    return swatch;
  }));
  $(".tags", card).replaceChildren(...tagWords(tags).map((word) => {
    const item = document.createElement("li");
    item.textContent = word;
    return item;
  }));
  // A failure shows while it is the asset's state: not one a replay went past, nor a re-render's on an exported asset.
  const errors = runs.map((run) => run.error || (run.asset && run.asset.stage === "failed" && run.asset.failure.message)).filter(Boolean);
  const errorText = $(".error", card);
  errorText.textContent = dedupe(errors).join(" · ");
  errorText.hidden = !errors.length;
  card.classList.toggle("failed", errors.length > 0);
  const done = runs.length > 0 && runs.every((run) => run.error || (run.asset && isFinal(run.asset)));
  card.classList.toggle("done", done);
  const reached = Math.max(0, ...runs.map((run) => ((run.asset && run.asset.reached) || []).length));
  $(".progress span", card).style.width = `${(reached / STAGES.length) * 100}%`;
  fillLinks(card, runs);
}

// What the card has shown, in order ("preview,final"): the artist's view of the loop, kept on the card.
function shown(card, what) {
  const seen = (card.dataset.shown || "").split(",").filter(Boolean);
  if (!seen.includes(what)) card.dataset.shown = [...seen, what].join(",");
}

function fillRun(row, run) {
  const asset = run.asset || {};
  const reached = new Set(asset.reached || []);
  for (const step of row.querySelectorAll(".steps li")) step.classList.toggle("reached", reached.has(step.dataset.stage));
  row.classList.toggle("failed", asset.stage === "failed" || Boolean(run.error));
  $(".tier", row).textContent = run.tier === "preview" ? "Preview" : "Final";
  const stage = run.error ? "refused" : STAGE_WORDS[asset.stage] || asset.stage || "sending";
  $(".stage", row).textContent = stage;
  $(".stage", row).title = asset.export && asset.export.model ? `rendered by ${asset.export.model}` : "";
  const wait = $(".wait", row);
  if (run.error || !run.startedAt) {
    wait.textContent = "";
    row.dataset.done = "true";
    return;
  }
  const end = run.doneAt || Date.now();
  const ms = Math.max(0, end - run.startedAt);
  const target = (state.profile.latency_targets_ms || {})[run.tier];
  wait.className = `wait ${waitClass(ms, run.tier)}`;
  wait.replaceChildren(seconds(ms));
  if (target) {
    const small = document.createElement("small");
    small.textContent = ` / ${seconds(target)}`;
    wait.append(small);
  }
  wait.title = run.doneAt ? "The artist's wait, upload to rendition" : "Waiting…";
  row.dataset.done = run.doneAt ? "true" : "false";
  row.dataset.waitMs = String(Math.round(ms));
}

function fillLinks(card, runs) {
  const downloads = [];
  const traces = [];
  for (const run of runs) {
    const asset = run.asset || {};
    for (const rendition of asset.renditions || []) {
      if (!rendition.object || !rendition.object.url) continue;
      const link = document.createElement("a");
      link.href = rendition.object.url;
      link.target = "_blank";
      link.rel = "noopener";
      const { width, height } = rendition.object;
      link.textContent = rendition.profile;
      link.title = `${rendition.profile}${width ? `, ${width}×${height}` : ""}`;
      downloads.push(link);
    }
    if (run.assetId) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "trace-link";
      button.textContent = run.tier === "preview" ? "preview" : "final";
      button.addEventListener("click", () => showTrace(run.assetId));
      traces.push(button);
    }
  }
  const line = (label, items) => {
    const group = document.createElement("span");
    const name = document.createElement("span");
    name.className = "link-label";
    name.textContent = label;
    group.append(name, ...items);
    return group;
  };
  $(".links", card).replaceChildren(
    ...(downloads.length ? [line("Download", downloads)] : []),
    ...(traces.length ? [line("Trace", traces)] : []),
  );
}

function tagWords(tags) {
  if (!tags) return [];
  const words = [];
  if (tags.category && tags.category !== "other") words.push(tags.category);
  for (const subject of tags.subjects || []) if (words.length < 4) words.push(subject.label);
  for (const label of tags.labels || []) words.push(label.replace(/_/g, " "));
  if (tags.orientation) words.push(tags.orientation);
  return dedupe(words).slice(0, 8);
}

function dedupe(items) {
  const seen = new Set();
  return items.filter((item) => {
    const key = JSON.stringify(item);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

// An image's source, changed only when it is another object: presigned URLs differ at every signing.
function setSrc(image, url) {
  const identity = url.split("?")[0];
  if (url && image.dataset.identity !== identity) {
    image.dataset.identity = identity;
    image.src = url;
  }
  if (!url) {
    delete image.dataset.identity;
    image.removeAttribute("src");
  }
}

// The waits count while renders run: only those numbers change, nothing is fetched.
setInterval(() => {
  for (const group of state.groups.values()) {
    for (const run of Object.values(group.runs)) {
      if (run.row && !run.doneAt && !run.error) fillRun(run.row, run);
    }
  }
}, 100);

// ---- Trace waterfall -----------------------------------------------------------------------

// The trace dialog: fetched until its spans stop growing (each service exports its spans in batches).
let traceShown = 0;

async function showTrace(assetId) {
  const token = ++traceShown;
  const dialog = $("#trace");
  const note = $("#trace-note");
  $("#waterfall").replaceChildren();
  note.textContent = "Loading…";
  $("#trace-id").textContent = "";
  $("#trace-ui").hidden = true;
  dialog.showModal();
  let drawn = -1;
  for (let attempt = 0; attempt < 12; attempt++) {
    if (token !== traceShown || !dialog.open) return;
    let trace = null;
    try {
      trace = await api(`/v1/assets/${encodeURIComponent(assetId)}/trace`);
    } catch (failure) {
      if (failure.status !== 404) { note.textContent = failure.message; return; }
      if (drawn < 0) note.textContent = "Waiting for the first spans…";
    }
    if (token !== traceShown) return;
    if (trace) {
      if (trace.spans.length === drawn) return;  // Complete: nothing came since the last look.
      drawn = trace.spans.length;
      drawTrace(trace);
    }
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

function drawTrace(trace) {
  const note = $("#trace-note");
  const waterfall = $("#waterfall");
  $("#trace-id").textContent = trace.trace_id;
  if (trace.ui_url) {
    $("#trace-ui").href = trace.ui_url;
    $("#trace-ui").hidden = false;
  }
  const spans = trace.spans;
  const total = Math.max(1, ...spans.map((span) => span.start_ms + span.duration_ms));
  const services = new Set(spans.map((span) => span.service));
  note.textContent = spans.length
    ? `${spans.length} spans across ${services.size} services, ${seconds(total)} from upload to the last span`
    : trace.ui_url ? "Follow the link to the trace." : "No trace store is configured (ATELIER_TRACE_QUERY_URL).";
  waterfall.replaceChildren(...spans.map((span) => {
    const row = document.createElement("div");
    row.className = `span-row${span.error ? " error" : ""}`;
    const name = document.createElement("div");
    name.className = "span-name";
    const service = document.createElement("span");
    service.className = "svc";
    service.textContent = span.service;
    service.style.color = serviceColour(span.service);
    name.append(service, span.name);
    name.title = `${span.service}: ${span.name}`;
    const track = document.createElement("div");
    track.className = "span-track";
    const bar = document.createElement("div");
    bar.className = "span-bar";
    bar.style.left = `${(span.start_ms / total) * 100}%`;
    bar.style.width = `${(span.duration_ms / total) * 100}%`;
    bar.style.setProperty("--svc", serviceColour(span.service));
    track.append(bar);
    const ms = document.createElement("div");
    ms.className = "span-ms";
    ms.textContent = span.duration_ms >= 100 ? `${Math.round(span.duration_ms)} ms` : `${span.duration_ms.toFixed(1)} ms`;
    row.append(name, track, ms);
    return row;
  }));
}

function serviceColour(service) {
  const base = Object.keys(SERVICE_COLOURS).find((name) => service.includes(name));
  return base ? SERVICE_COLOURS[base] : "#888";
}

// ---- Wiring --------------------------------------------------------------------------------

function wire() {
  $("#signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#signin-error");
    error.hidden = true;
    $("#signin-button").disabled = true;
    try {
      await signIn($("#key").value.trim());
    } catch (failure) {
      state.key = "";
      error.textContent = failure.status === 401 ? "That key is unknown or revoked." : failure.message;
      error.hidden = false;
    } finally {
      $("#signin-button").disabled = false;
    }
  });
  $("#signout").addEventListener("click", signOut);
  $("#brand-switch").addEventListener("change", (event) => {
    openBrand(event.target.value).catch((failure) => {
      $("#brand-switch").value = state.brand;
      window.alert(`That brand could not be opened: ${failure.message}`);
    });
  });
  $("#files").addEventListener("change", (event) => {
    upload(event.target.files);
    event.target.value = "";
  });
  const zone = $("#zone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = Array.from(event.dataTransfer.files).filter((file) => file.type.startsWith("image/") || !file.type);
    if (files.length) upload(files);
  });
  $("#trace-close").addEventListener("click", () => $("#trace").close());
  if (state.key) {
    // Back after a reload: a revoked key signs out; any other failure keeps the key for a retry.
    signIn(state.key).catch((failure) => {
      if (failure.status === 401) { signOut(); return; }
      const error = $("#signin-error");
      error.textContent = `Could not reach Atelier (${failure.message}); sign in again to retry.`;
      error.hidden = false;
      $("#key").value = state.key;
    });
  }
}

wire();
