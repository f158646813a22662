// handsup web client: join a room with a participant token, listen at once
// over WHEP, follow the room's events, raise a hand, speak when promoted,
// and moderate with the moderate grant. Plain JavaScript, no build step.
'use strict';

const $ = (id) => document.getElementById(id);
const stageRoles = new Set(['speaker', 'moderator']);

// The session: what the token says and what the room looks like.
const S = {
  room: '', token: '', id: '', role: 'listener', moderate: false,
  pc: null, transceiver: null, location: '', mic: null, publishing: false,
  stopEvents: null, stage: new Map(), hands: [], listeners: 0,
  handUp: false, muted: false, tier: '', events: '',
};

// Hooks for tests driving the page in a browser (see browser_test.go):
// offerSDP and answerSDP, when set, rewrite the WHEP offer as sent and
// the answer as applied (a test puts a relay in the path this way).
window.handsupTest = { events: [], S, toneDB, inbound, micConstraints: null, offerSDP: null, answerSDP: null };

// claims reads a participant token's payload without checking it (the
// server does): the middle part of the JWT, with the room ("room"), the
// identity ("sub") and the grants ("grants": listen, speak, moderate).
function claims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return {};
  try {
    return JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    return {};
  }
}

// roleGrant is the grant joining in a role takes.
const roleGrant = { listener: 'listen', speaker: 'speak', moderator: 'moderate' };

function status(msg) { $('status').textContent = msg; }

// api calls the handsup API with the token as the bearer credential; it
// throws on an error status with the server's message.
async function api(method, path, body, type = 'application/json') {
  const headers = { Authorization: 'Bearer ' + S.token };
  if (body !== undefined) headers['Content-Type'] = type;
  const res = await fetch(path, { method, headers, body });
  if (!res.ok) {
    let msg = res.status + '';
    try { msg += ' ' + (await res.json()).error; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

const roomPath = () => '/v1/rooms/' + encodeURIComponent(S.room);
const participantPath = (id) => roomPath() + '/participants/' + encodeURIComponent(id);

// ---- entering -------------------------------------------------------

function setup() {
  const m = location.pathname.match(/^\/rooms\/([^/]+)$/);
  if (m) $('room').value = decodeURIComponent(m[1]);
  const remember = () => {
    const saved = sessionStorage.getItem('handsup.token.' + $('room').value);
    if (saved) $('token').value = saved;
  };
  remember();
  $('room').addEventListener('change', remember);
  $('token').addEventListener('input', () => {
    // Offer only the roles the token's grants allow, listener first.
    const c = claims($('token').value.trim());
    const grants = c.grants || [];
    for (const o of $('role').options) o.disabled = grants.length > 0 && !grants.includes(roleGrant[o.value]);
    if ($('role').selectedOptions[0]?.disabled) $('role').value = [...$('role').options].find((o) => !o.disabled)?.value || 'listener';
    if (c.room && !$('room').value) $('room').value = c.room;
  });
  $('enter').addEventListener('submit', (e) => { e.preventDefault(); enter().catch((err) => status('Could not join: ' + err.message)); });
  $('start-audio').addEventListener('click', startAudio);
  $('hand').addEventListener('click', () => toggleHand().catch((err) => status(err.message)));
  $('mute').addEventListener('click', () => toggleMute().catch((err) => status(err.message)));
  $('leave').addEventListener('click', leave);
}

async function enter() {
  S.room = $('room').value.trim();
  S.token = $('token').value.trim();
  const c = claims(S.token);
  S.id = c.sub || '';
  S.role = $('role').value;
  S.moderate = S.role === 'moderator' || (c.grants || []).includes('moderate');
  sessionStorage.setItem('handsup.token.' + S.room, S.token);
  history.replaceState(null, '', '/rooms/' + encodeURIComponent(S.room)); // never the token
  status('Joining…');
  await listen();
  $('enter').hidden = true;
  $('in-room').hidden = false;
  $('room-name').textContent = S.room;
  $('moderation').hidden = !S.moderate;
  S.stopEvents = openEvents(onEvent);
  setInterval(updateQuality, 2000);
  if (stageRoles.has(S.role)) {
    S.stage.set(S.id, { role: S.role, muted: false, level: 0 }); // until the snapshot says
    await publish();
  }
  render();
  status('');
}

// ---- media ----------------------------------------------------------

// listen joins over WHEP: a receive-only offer, gathered in full (no
// trickle), answered by the server; Location is this participant's
// resource for every later call.
async function listen() {
  const pc = new RTCPeerConnection();
  S.pc = pc;
  S.transceiver = pc.addTransceiver('audio', { direction: 'recvonly' });
  preferRED(S.transceiver);
  pc.ontrack = (e) => playRemote(new MediaStream([e.track]));
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' && S.location) restartICE();
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const q = new URLSearchParams({ role: S.role });
  if (S.id) q.set('id', S.id);
  const hook = window.handsupTest;
  const offer = pc.localDescription.sdp;
  const res = await api('POST', roomPath() + '/whep?' + q, hook.offerSDP ? hook.offerSDP(offer) : offer, 'application/sdp');
  S.location = res.headers.get('Location');
  S.id = S.location.split('/').pop();
  const answer = await res.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: hook.answerSDP ? hook.answerSDP(answer) : answer });
  // The STUN and TURN servers come with the answer: the connection
  // gathers with them from its next ICE restart on.
  const iceServers = linkedICEServers(res.headers.get('Link'));
  if (iceServers.length) pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
}

// linkedICEServers reads the STUN and TURN servers of a WHIP/WHEP answer's
// Link headers (RFC 9725 §4.6: rel="ice-server", TURN with username,
// credential and credential-type), which fetch joins with commas.
function linkedICEServers(header) {
  const out = [];
  for (const link of (header || '').split(/,\s*(?=<)/)) {
    const m = link.match(/^\s*<([^>]*)>(.*)$/);
    if (!m) continue;
    const params = {};
    for (const [, k, v] of m[2].matchAll(/;\s*([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
      params[k.toLowerCase()] = v.startsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v.trim();
    }
    if (params.rel !== 'ice-server') continue;
    const server = { urls: m[1] };
    if (params.username) server.username = params.username;
    if (params.credential) server.credential = params.credential;
    out.push(server);
  }
  return out;
}

// preferRED offers audio/red first, as Chrome can: the server then sends
// each frame with the previous one, which hides single losses.
function preferRED(tr) {
  const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('audio');
  if (!caps || !tr.setCodecPreferences) return;
  const red = caps.codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== 'audio/red');
  if (red.length) tr.setCodecPreferences([...red, ...rest]);
}

// gathered waits for ICE gathering to finish, at most two seconds.
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 2000);
  });
}

let audioCtx = null;
let analyser = null;

function playRemote(stream) {
  const audio = $('audio');
  audio.srcObject = stream;
  audio.play().catch(() => { $('start-audio').hidden = false; });
  // An analyser on what is heard, for the tests and a future meter.
  audioCtx = new AudioContext({ sampleRate: 48000 });
  analyser = audioCtx.createAnalyser();
  analyser.fftSize = 4096;
  const sink = audioCtx.createGain();
  sink.gain.value = 0; // the audio element plays it; this only measures
  audioCtx.createMediaStreamSource(stream).connect(analyser);
  analyser.connect(sink).connect(audioCtx.destination);
  if (audioCtx.state === 'suspended') $('start-audio').hidden = false;
}

function startAudio() {
  $('audio').play().catch(() => {});
  if (audioCtx) audioCtx.resume();
  $('start-audio').hidden = true;
}

// publish sends the microphone on the same connection: the track goes on
// the transceiver that receives, and a sendrecv offer is PATCHed to
// Location.
async function publish() {
  if (S.publishing) return;
  S.publishing = true;
  try {
    const constraints = window.handsupTest.micConstraints || { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    const stream = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    S.mic = stream.getAudioTracks()[0];
    S.mic.enabled = !S.muted;
    await S.transceiver.sender.replaceTrack(S.mic);
    S.transceiver.direction = 'sendrecv';
    await renegotiate();
    status('You are on stage.');
  } catch (err) {
    S.publishing = false;
    status('Could not publish the microphone: ' + err.message);
  }
  render();
}

// unpublish stops the microphone when the participant leaves the stage.
async function unpublish() {
  if (!S.publishing) return;
  S.publishing = false;
  if (S.mic) S.mic.stop();
  S.mic = null;
  await S.transceiver.sender.replaceTrack(null);
  S.transceiver.direction = 'recvonly';
  await renegotiate().catch((err) => status(err.message));
  render();
}

async function renegotiate(options) {
  await S.pc.setLocalDescription(await S.pc.createOffer(options));
  await gathered(S.pc);
  const res = await api('PATCH', S.location, S.pc.localDescription.sdp, 'application/sdp');
  await S.pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
}

// restartICE reconnects after the network changed: new ICE credentials,
// gathered with the STUN and TURN servers the answer named, PATCHed to
// Location; the server keeps the participant's id, role, hand and stream.
async function restartICE() {
  status('Reconnecting…');
  try {
    await renegotiate({ iceRestart: true });
    status('');
  } catch (err) {
    status('Connection lost: ' + err.message);
  }
}

// ---- events ---------------------------------------------------------

const eventTypes = ['snapshot', 'joined', 'left', 'role_changed', 'muted', 'hand_raised', 'hand_lowered', 'active_speakers', 'room_closed'];

// openEvents delivers the room's events to onEvent and resumes after a
// break (Last-Event-ID). With a cookie the server sets for the token, a
// plain EventSource does it all; a server without that endpoint is read
// with fetch() and the Authorization header instead. It returns a stop
// function.
function openEvents(onEvent) {
  const url = roomPath() + '/events';
  let stopped = false;
  let stop = () => { stopped = true; };
  api('POST', url + '/cookie').then(() => {
    if (stopped) return;
    // EventSource reconnects by itself, with Last-Event-ID; the server
    // replays what it missed, or sends a snapshot.
    const es = new EventSource(url, { withCredentials: true });
    S.events = 'eventsource';
    for (const t of eventTypes) es.addEventListener(t, (e) => onEvent(JSON.parse(e.data), e.lastEventId));
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) status('Room events stopped (refused by the server).');
    };
    stop = () => es.close();
  }, async () => {
    S.events = 'fetch';
    let lastId = '';
    let ctrl = null;
    stop = () => { stopped = true; if (ctrl) ctrl.abort(); };
    for (let wait = 1000; !stopped; wait = Math.min(wait * 2, 15000)) {
      try {
        ctrl = new AbortController();
        const headers = { Authorization: 'Bearer ' + S.token, Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch(url, { headers, signal: ctrl.signal });
        if (!res.ok) throw new Error('events: ' + res.status);
        wait = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
            let data = '';
            for (const line of buf.slice(0, i).split('\n')) {
              if (line.startsWith('id:')) lastId = line.slice(3).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (data) onEvent(JSON.parse(data), lastId);
          }
        }
      } catch (err) {
        if (stopped) return;
        status('Room events unavailable (' + err.message + '); retrying.');
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  });
  return () => stop();
}

function onEvent(e, id) {
  window.handsupTest.events.push({ type: e.type, id: id || '', participant: e.participant || '' });
  const p = e.participant;
  switch (e.type) {
    case 'snapshot':
      S.stage = new Map((e.stage || []).map((m) => [m.id, { role: m.role, muted: m.muted, level: 0 }]));
      S.hands = e.hands || [];
      S.listeners = e.listeners || 0;
      S.handUp = S.hands.includes(S.id);
      if (S.stage.has(S.id)) S.muted = S.stage.get(S.id).muted;
      levels(e.speakers || []);
      break;
    case 'joined':
      if (stageRoles.has(e.role)) S.stage.set(p, { role: e.role, muted: false, level: 0 });
      else S.listeners++;
      break;
    case 'left':
      if (!S.stage.delete(p)) S.listeners = Math.max(0, S.listeners - 1);
      S.hands = S.hands.filter((h) => h !== p);
      if (p === S.id) gone(leftReasons[e.reason] || 'You left the room.');
      break;
    case 'role_changed':
      if (stageRoles.has(e.role)) {
        if (!S.stage.has(p)) S.listeners = Math.max(0, S.listeners - 1);
        S.stage.set(p, { ...(S.stage.get(p) || { muted: false, level: 0 }), role: e.role });
      } else if (S.stage.delete(p)) {
        S.listeners++;
      }
      if (p === S.id) {
        S.role = e.role;
        if (stageRoles.has(e.role)) publish(); else unpublish();
      }
      break;
    case 'muted':
      if (S.stage.has(p)) S.stage.get(p).muted = e.muted;
      if (p === S.id) { S.muted = e.muted; if (S.mic) S.mic.enabled = !e.muted; }
      break;
    case 'hand_raised':
      if (!S.hands.includes(p)) S.hands.push(p);
      if (p === S.id) S.handUp = true;
      break;
    case 'hand_lowered':
      S.hands = S.hands.filter((h) => h !== p);
      if (p === S.id) S.handUp = false;
      break;
    case 'active_speakers':
      levels(e.speakers || []);
      break;
    case 'room_closed':
      gone('The room has closed.');
      break;
  }
  render();
}

// leftReasons say why this participant is no longer in the room, by the
// left event's reason.
const leftReasons = {
  left: 'You left the room.',
  kicked: 'A moderator removed you from the room.',
  timeout: 'The connection was lost.',
  room_closed: 'The room has closed.',
};

// levels sets each stage member's level, 0 (silent) to 1 (loud), from the
// RFC 6464 levels of the active speakers (0 loud .. 127 silent).
function levels(speakers) {
  for (const m of S.stage.values()) m.level = 0;
  for (const sp of speakers) {
    const m = S.stage.get(sp.id);
    if (m) m.level = Math.max(0, 1 - sp.level / 60);
  }
}

// ---- actions --------------------------------------------------------

async function toggleHand() {
  const res = await api(S.handUp ? 'DELETE' : 'POST', participantPath(S.id) + '/hand');
  S.handUp = (await res.json()).hand_raised;
  render();
}

async function toggleMute() {
  const muted = !S.muted;
  if (S.mic) S.mic.enabled = !muted; // at once, whatever the server says
  S.muted = muted;
  render();
  await api('PATCH', participantPath(S.id), JSON.stringify({ muted }));
}

function moderate(method, id, body) {
  api(method, participantPath(id), body && JSON.stringify(body)).catch((err) => status(err.message));
}

async function leave() {
  if (S.location) await api('DELETE', S.location).catch(() => {});
  gone('You left the room.');
}

function gone(msg) {
  if (S.stopEvents) S.stopEvents();
  S.stopEvents = null;
  if (S.pc) S.pc.close();
  if (S.mic) S.mic.stop();
  S.location = '';
  $('in-room').hidden = true;
  $('quality').hidden = true;
  $('enter').hidden = false;
  status(msg);
}

// ---- view -----------------------------------------------------------

function button(label, onClick) {
  const b = document.createElement('button');
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function person(id, tag) {
  const li = document.createElement('li');
  li.dataset.id = id;
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = id + (id === S.id ? ' (you)' : '');
  li.append(name);
  if (tag) {
    const t = document.createElement('span');
    t.className = 'tag';
    t.textContent = tag;
    li.append(t);
  }
  return li;
}

function render() {
  $('me').textContent = `You are ${S.id} (${S.role}).`;
  const onStage = stageRoles.has(S.role);
  $('hand').hidden = onStage;
  $('hand').textContent = S.handUp ? 'Lower hand' : 'Raise hand';
  $('hand').setAttribute('aria-pressed', S.handUp);
  $('mute').hidden = !onStage;
  $('mute').textContent = S.muted ? 'Unmute' : 'Mute';
  $('mute').setAttribute('aria-pressed', S.muted);

  const stage = $('stage');
  stage.replaceChildren(...[...S.stage].map(([id, m]) => {
    const li = person(id, m.role);
    li.style.setProperty('--level', m.level.toFixed(2));
    li.classList.toggle('speaking', m.level > 0);
    li.classList.toggle('is-muted', m.muted);
    if (S.moderate && id !== S.id) {
      li.append(button(m.muted ? 'Unmute' : 'Mute', () => moderate('PATCH', id, { muted: !m.muted })));
      li.append(button('Move to audience', () => moderate('PATCH', id, { role: 'listener' })));
      li.append(button('Remove', () => moderate('DELETE', id)));
    }
    return li;
  }));
  $('audience').textContent = `${S.listeners} listening`;

  $('hands').replaceChildren(...S.hands.map((id) => {
    const li = person(id, '');
    if (S.moderate) {
      li.append(button('Invite to speak', () => moderate('PATCH', id, { role: 'speaker' })));
      li.append(button('Remove', () => moderate('DELETE', id)));
    }
    return li;
  }));
}

// ---- connection quality ----------------------------------------------

let last = null;

// inbound is the received audio's getStats() counters.
async function inbound() {
  const out = { energy: 0, duration: 0, samples: 0, concealed: 0, silent: 0, lost: 0, received: 0, jitter: 0, rtt: 0, codec: '' };
  if (!S.pc) return out;
  const stats = await S.pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.energy = s.totalAudioEnergy || 0;
      out.duration = s.totalSamplesDuration || 0;
      out.samples = s.totalSamplesReceived || 0;
      out.concealed = s.concealedSamples || 0;
      out.silent = s.silentConcealedSamples || 0; // comfort noise in DTX pauses
      out.lost = s.packetsLost || 0;
      out.received = s.packetsReceived || 0;
      out.jitter = s.jitter || 0;
      const c = s.codecId && stats.get(s.codecId);
      if (c) out.codec = c.mimeType;
    }
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') out.rtt = s.currentRoundTripTime || 0;
  });
  return out;
}

// updateQuality shows loss, round trip, jitter and concealment over the
// last two seconds, and the server's tier for this listener when the
// token may read it.
async function updateQuality() {
  if (!S.pc) return;
  const now = await inbound();
  if (last) {
    const recv = now.received - last.received;
    const lost = now.lost - last.lost;
    const loss = recv + lost > 0 ? lost / (recv + lost) : 0;
    const samples = now.samples - last.samples;
    const concealed = now.concealed - last.concealed - (now.silent - last.silent);
    const concealment = samples > 0 ? concealed / samples : 0;
    const grade = loss < 0.02 && concealment < 0.02 && now.rtt < 0.25 ? 'good' : loss < 0.08 && concealment < 0.08 ? 'fair' : 'poor';
    const badge = $('quality');
    badge.hidden = false;
    badge.className = 'badge ' + grade;
    badge.textContent = `${grade} · ${(100 * loss).toFixed(1)}% loss · ${Math.round(now.rtt * 1000)} ms` + (S.tier ? ' · ' + S.tier : '');
    badge.title = `jitter ${Math.round(now.jitter * 1000)} ms, concealed ${(100 * concealment).toFixed(1)}%, codec ${now.codec}`;
  }
  last = now;
  if (S.location && Math.random() < 0.4) {
    api('GET', S.location).then((r) => r.json()).then((v) => { S.tier = v.tier || ''; }, () => {});
  }
}

// toneDB measures freq Hz in what this page hears over ms milliseconds:
// the analyser's level at that frequency and the median level of all
// frequencies, in dB, averaged.
async function toneDB(freq, ms) {
  if (!analyser) return { tone: -200, floor: -200 };
  const bins = new Float32Array(analyser.frequencyBinCount);
  const width = audioCtx.sampleRate / analyser.fftSize;
  const k = Math.round(freq / width);
  let tone = 0;
  let floor = 0;
  let n = 0;
  for (const end = performance.now() + ms; performance.now() < end; n++) {
    analyser.getFloatFrequencyData(bins);
    const db = bins.map((v) => Math.max(v, -200)); // -Infinity in silence
    tone += Math.max(...db.slice(k - 2, k + 3));
    floor += [...db].sort((a, b) => a - b)[db.length >> 1];
    await new Promise((r) => setTimeout(r, 100));
  }
  return { tone: tone / n, floor: floor / n };
}

setup();
