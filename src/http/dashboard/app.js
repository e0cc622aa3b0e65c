// powerd's dashboard: plain JavaScript and hand-drawn SVG, no libraries.
//
// State lives in the URL hash (#start=...&end=...&step=1h&ship=42), so every
// view can be linked to and the back button works. Each panel asks the JSON
// API itself: /data/fleet and /topusers for the window, /data, /forecast and
// /alerts (one ship) for the ship view, /alerts (pages of 1,000 ships) for
// the alerts table, /ships for the search box. Nothing draws more than one
// series per chart, so 10,000 stored ships cost nothing here.
//
// With `serve --auth-file`, the API wants `Authorization: Bearer <token>`.
// A refused call (401, 403) shows the token form; the token is kept in
// sessionStorage (this tab only) and sent as that header, never in a URL,
// the hash or the console. A server without tokens never sees the form.
'use strict';

(() => {
  const BUCKET_MS = 900000;
  const HOUR_MS = 3600000;
  const DAY_MS = 86400000;
  const STEP_MS = { '15m': BUCKET_MS, '1h': HOUR_MS, '1d': DAY_MS };
  const SHIP_VIEW_MAX_MS = 14 * DAY_MS;
  const ALERT_WINDOW_MAX_MS = 7 * DAY_MS;
  const ALERT_ROWS_MAX = 200;
  const TOP_COUNT = 10;
  const SHIPS_PER_PAGE = 20;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const TOKEN_KEY = 'powerd.token';
  const PANELS = {
    fleet: { section: 'fleet-panel', note: 'fleet-note', content: 'fleet-chart', redraw: 'fleet' },
    top: { section: 'top-panel', note: 'top-note', content: 'top-users' },
    ship: { section: 'ship-panel', note: 'ship-note', content: 'ship-chart', redraw: 'ship' },
    ships: { section: 'ships-panel', note: 'ships-page', content: 'ship-list' },
    alerts: { section: 'alerts-panel', note: 'alerts-note', content: 'alerts-rows' },
  };
  const ALL_PANELS = Object.keys(PANELS);

  const state = { start: null, end: null, step: null, ship: null, prefix: '', shipPage: 1 };
  const generation = { fleet: 0, top: 0, ship: 0, alerts: 0, ships: 0 };
  const redraw = { fleet: null, ship: null };

  // ---- errors and progress --------------------------------------------

  let errorCount = 0;
  function reportError(error) {
    errorCount += 1;
    document.body.dataset.errors = String(errorCount);
    setStatus('Error: ' + (error && error.message ? error.message : String(error)));
    console.error(error);
  }
  window.addEventListener('error', (event) => {
    errorCount += 1;
    document.body.dataset.errors = String(errorCount);
    setStatus('Error: ' + event.message);
  });
  window.addEventListener('unhandledrejection', (event) => reportError(event.reason));

  // `panels`: the PANELS keys the promise fills, told when it is refused.
  let pending = 0;
  async function track(promise, panels) {
    pending += 1;
    document.body.dataset.state = 'loading';
    try {
      const result = await promise;
      for (const name of panels || []) delete $(PANELS[name].section).dataset.refused;
      return result;
    } catch (error) {
      if (error instanceof AuthError) refused(error, panels || []);
      else reportError(error);
      return undefined;
    } finally {
      pending -= 1;
      if (pending === 0) settled();
    }
  }

  function settled() {
    document.body.dataset.state = refusal ? 'needs-token' : 'ready';
    if (refusal) document.body.dataset.auth = refusal;
    else if (token !== null) document.body.dataset.auth = 'sent';
    else delete document.body.dataset.auth;
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  // ---- time and numbers -------------------------------------------------

  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const parseTime = (text) => {
    const ms = Date.parse(text);
    return Number.isFinite(ms) ? ms : null;
  };
  const toInput = (ms) => new Date(ms).toISOString().slice(0, 16);
  const fromInput = (text) => parseTime(text + ':00Z');
  const showTime = (ms) => iso(ms).slice(0, 16).replace('T', ' ');
  const ceilTo = (ms, unit) => Math.ceil(ms / unit) * unit;

  function showKwh(value) {
    if (value >= 1e6) return (value / 1e6).toFixed(2) + ' GWh';
    if (value >= 1e4) return (value / 1e3).toFixed(1) + ' MWh';
    if (value >= 100) return value.toFixed(0) + ' kWh';
    if (value >= 10) return value.toFixed(1) + ' kWh';
    return value.toFixed(2) + ' kWh';
  }

  // An axis label: the unit chosen by the axis' top, three digits at most.
  function axisKwh(value, top) {
    const [unit, name] = top >= 1e6 ? [1e6, 'GWh'] : top >= 1e4 ? [1e3, 'MWh'] : [1, 'kWh'];
    return Number((value / unit).toPrecision(3)) + ' ' + name;
  }

  function showDuration(ms) {
    const minutes = Math.round(ms / 60000);
    if (minutes < 60) return minutes + ' min';
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + ' h' + (minutes % 60 ? ' ' + (minutes % 60) + ' min' : '');
    return (hours / 24).toFixed(1) + ' days';
  }

  // ---- the API ------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || 'HTTP ' + status);
      this.status = status;
      this.field = body ? body.field : null;
    }
  }

  // A 401 or 403: `sent` is the token the call carried (null: none), to
  // tell a refusal of the current token from one of a token since replaced.
  class AuthError extends ApiError {
    constructor(status, body, sent) {
      super(status, body);
      this.sent = sent;
    }
  }

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== '') query.set(name, String(value));
    }
    const text = query.toString();
    const sent = token;
    const headers = { accept: 'application/json' };
    if (sent !== null) headers.authorization = 'Bearer ' + sent;
    const response = await fetch(path + (text ? '?' + text : ''), { headers });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401 || response.status === 403) throw new AuthError(response.status, body, sent);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // ---- the token ------------------------------------------------------------

  // sessionStorage can be unavailable (storage disabled): the token then
  // lasts as long as the page.
  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (_) {
      return null;
    }
  }

  function storeToken(value) {
    try {
      if (value === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, value);
    } catch (_) {
      // Kept in memory only.
    }
  }

  let token = storedToken();
  // Why the last load was refused: null, 'needed' (401, no token sent),
  // 'refused' (401 for the token sent) or 'forbidden' (403).
  let refusal = null;

  function showTokenControls() {
    $('token-forget').hidden = token === null;
  }

  function askForToken(message) {
    $('token-message').textContent = message;
    $('token-panel').hidden = false;
    $('token-input').focus();
  }

  function refused(error, panels) {
    if (error.sent !== token) return;
    const kind = error.status === 403 ? 'forbidden' : error.sent === null ? 'needed' : 'refused';
    const server = `(${error.status}: ${error.message})`;
    const short = {
      needed: 'needs a read token',
      refused: 'the token was refused',
      forbidden: 'the token may not read',
    }[kind];
    for (const name of panels) {
      const panel = PANELS[name];
      $(panel.section).dataset.refused = String(error.status);
      $(panel.content).textContent = '';
      if (panel.redraw) redraw[panel.redraw] = null;
      $(panel.note).textContent = `Refused (${error.status}): ${short}.`;
    }
    if (refusal === kind) return;
    refusal = kind;
    askForToken({
      needed: `This powerd needs a read token ${server}. Paste one below.`,
      refused: `The token was refused: revoked or mistyped? ${server}. Paste a read token below, or forget this one.`,
      forbidden: `This token may not read ${server}. Paste a token with the read scope below.`,
    }[kind]);
  }

  // Forget any refusal, and load every panel again (with the token now set).
  function reload() {
    refusal = null;
    $('token-panel').hidden = true;
    showTokenControls();
    setStatus('');
    return track(load());
  }

  // ---- the hash -------------------------------------------------------------

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const start = parseTime(params.get('start') || '');
    const end = parseTime(params.get('end') || '');
    if (start !== null && end !== null && start < end) {
      state.start = start;
      state.end = end;
    }
    const step = params.get('step');
    if (step in STEP_MS) state.step = step;
    const ship = params.get('ship');
    state.ship = ship && /^\d{1,20}$/.test(ship) ? ship : null;
  }

  function hashFor(changes) {
    const next = Object.assign({}, state, changes);
    const params = new URLSearchParams();
    params.set('start', iso(next.start));
    params.set('end', iso(next.end));
    params.set('step', next.step);
    if (next.ship !== null) params.set('ship', next.ship);
    return '#' + params.toString();
  }

  function navigate(changes) {
    const hash = hashFor(changes);
    if (hash !== location.hash) location.hash = hash;
  }

  const openShip = (ship) => navigate({ ship: String(ship) });

  function defaultStep(spanMs) {
    if (spanMs <= 2 * DAY_MS) return '15m';
    if (spanMs <= 31 * DAY_MS) return '1h';
    return '1d';
  }

  // The last 7 days of stored data, ending on the hour after its end.
  async function defaultWindow() {
    const stored = await api('/data/fleet', { step: '1d' });
    const storedEnd = stored.end ? parseTime(stored.end) : null;
    const end = ceilTo(storedEnd === null ? Date.now() : storedEnd, HOUR_MS);
    state.end = end;
    state.start = end - 7 * DAY_MS;
    if (storedEnd === null) setStatus('Nothing is stored yet: POST /data to add readings.');
  }

  // ---- SVG charts -------------------------------------------------------------

  function svg(name, attributes, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceStep(rough) {
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    for (const factor of [1, 2, 2.5, 5, 10]) {
      if (factor * power >= rough) return factor * power;
    }
    return 10 * power;
  }

  const TIME_TICKS = [
    BUCKET_MS, 2 * BUCKET_MS, HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS,
    DAY_MS, 2 * DAY_MS, 7 * DAY_MS, 14 * DAY_MS, 28 * DAY_MS, 91 * DAY_MS, 364 * DAY_MS,
  ];

  // An empty chart with axes over [x0, x1) × [0, yMax]: returns scales and layers.
  function makeChart(container, x0, x1, yMax, name) {
    container.textContent = '';
    const width = Math.max(320, Math.round(container.clientWidth || 800));
    const height = 260;
    const margin = { left: 70, right: 14, top: 10, bottom: 24 };
    const root = svg('svg', {
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': name,
      'data-x0': iso(x0),
      'data-x1': iso(x1),
    });
    container.appendChild(root);
    const top = niceStep((yMax > 0 ? yMax : 1) / 4) * 4;
    const x = (t) => margin.left + ((t - x0) / (x1 - x0)) * (width - margin.left - margin.right);
    const y = (v) => height - margin.bottom - (v / top) * (height - margin.top - margin.bottom);
    const axis = svg('g', { class: 'axis' }, root);
    const yStep = top / 4;
    for (let i = 0; i <= 4; i += 1) {
      const v = i * yStep;
      svg('line', { x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }, axis);
      const label = svg('text', { x: margin.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, axis);
      label.textContent = v === 0 ? '0' : axisKwh(v, top);
    }
    const span = x1 - x0;
    const tick = TIME_TICKS.find((t) => span / t <= 7) || TIME_TICKS[TIME_TICKS.length - 1];
    for (let t = ceilTo(x0, tick); t <= x1; t += tick) {
      const label = svg('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, axis);
      const text = iso(t);
      label.textContent = tick >= DAY_MS ? text.slice(5, 10) : span > DAY_MS
        ? text.slice(5, 10) + ' ' + text.slice(11, 16) : text.slice(11, 16);
      svg('line', { x1: x(t), x2: x(t), y1: height - margin.bottom, y2: height - margin.bottom + 4 }, axis);
    }
    const layers = {
      back: svg('g', { class: 'back' }, root),
      data: svg('g', { class: 'data' }, root),
      front: svg('g', { class: 'front' }, root),
    };
    return { root, x, y, width, height, margin, layers, container };
  }

  // Path through the points' centres; a break wherever intervals are missing.
  function linePath(points, chart, stepMs) {
    let d = '';
    let previous = null;
    for (const point of points) {
      const joined = previous !== null && point.t - previous <= stepMs;
      d += (joined ? 'L' : 'M') + chart.x(point.t + stepMs / 2).toFixed(1) + ',' + chart.y(point.v).toFixed(1);
      previous = point.t;
    }
    return d;
  }

  function areaPath(points, chart, stepMs) {
    let d = '';
    let segment = [];
    const flush = () => {
      if (!segment.length) return;
      const base = chart.y(0).toFixed(1);
      const first = chart.x(segment[0].t + stepMs / 2).toFixed(1);
      const last = chart.x(segment[segment.length - 1].t + stepMs / 2).toFixed(1);
      d += 'M' + first + ',' + base;
      for (const p of segment) d += 'L' + chart.x(p.t + stepMs / 2).toFixed(1) + ',' + chart.y(p.v).toFixed(1);
      d += 'L' + last + ',' + base + 'Z';
      segment = [];
    };
    let previous = null;
    for (const point of points) {
      if (previous !== null && point.t - previous > stepMs) flush();
      segment.push(point);
      previous = point.t;
    }
    flush();
    return d;
  }

  // A tooltip for the nearest point of `points` under the pointer.
  function hover(chart, points, stepMs, describe) {
    if (!points.length) return;
    const line = svg('line', { class: 'hover-line', y1: chart.margin.top, y2: chart.height - chart.margin.bottom, visibility: 'hidden' }, chart.layers.front);
    const tip = document.createElement('div');
    tip.className = 'tooltip';
    tip.hidden = true;
    chart.container.appendChild(tip);
    chart.root.addEventListener('mousemove', (event) => {
      const box = chart.root.getBoundingClientRect();
      const px = ((event.clientX - box.left) / box.width) * chart.width;
      let best = null;
      let bestDistance = Infinity;
      for (const point of points) {
        const distance = Math.abs(chart.x(point.t + stepMs / 2) - px);
        if (distance < bestDistance) {
          best = point;
          bestDistance = distance;
        }
      }
      if (!best) return;
      const at = chart.x(best.t + stepMs / 2);
      line.setAttribute('x1', at);
      line.setAttribute('x2', at);
      line.setAttribute('visibility', 'visible');
      tip.hidden = false;
      tip.textContent = describe(best);
      const left = (at / chart.width) * box.width;
      tip.style.left = Math.min(left + 8, box.width - tip.offsetWidth) + 'px';
      tip.style.top = '4px';
    });
    chart.root.addEventListener('mouseleave', () => {
      line.setAttribute('visibility', 'hidden');
      tip.hidden = true;
    });
  }

  // ---- the fleet chart --------------------------------------------------------

  async function renderFleet() {
    const mine = ++generation.fleet;
    $('fleet-caption').textContent = `${showTime(state.start)} – ${showTime(state.end)} UTC, per ${state.step}`;
    const body = await api('/data/fleet', { start: iso(state.start), end: iso(state.end), step: state.step });
    if (mine !== generation.fleet) return;
    const stepMs = STEP_MS[state.step];
    const points = body.data.map((d) => ({ t: parseTime(d.datetime), v: d.sum, ships: d.ships, avg: d.avg }));
    const total = points.reduce((sum, p) => sum + p.v, 0);
    const draw = () => {
      const yMax = points.reduce((max, p) => Math.max(max, p.v), 0);
      const chart = makeChart($('fleet-chart'), state.start, state.end, yMax, 'fleet energy per interval');
      chart.root.id = 'fleet-svg';
      chart.root.dataset.count = String(points.length);
      chart.root.dataset.step = state.step;
      svg('path', { class: 'fleet-area', d: areaPath(points, chart, stepMs) }, chart.layers.data);
      svg('path', {
        class: 'fleet-line',
        id: 'fleet-line',
        d: linePath(points, chart, stepMs),
        'data-count': String(points.length),
      }, chart.layers.data);
      hover(chart, points, stepMs, (p) =>
        `${showTime(p.t)}: ${showKwh(p.v)} from ${p.ships} ship${p.ships === 1 ? '' : 's'} (mean ${showKwh(p.avg)})`);
    };
    redraw.fleet = draw;
    draw();
    $('fleet-note').textContent = points.length
      ? `${points.length} intervals with data, ${showKwh(total)} in all.`
      : 'No data in this window.';
  }

  // ---- top users -------------------------------------------------------------------

  function shipButton(ship, text) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'ship';
    button.dataset.ship = String(ship);
    button.textContent = text || 'Ship ' + ship;
    button.addEventListener('click', (event) => {
      event.stopPropagation();
      openShip(ship);
    });
    return button;
  }

  async function renderTop() {
    const mine = ++generation.top;
    const body = await api('/topusers', { count: TOP_COUNT, start: iso(state.start), end: iso(state.end) });
    if (mine !== generation.top) return;
    const list = $('top-users');
    list.textContent = '';
    const most = body.ships.length ? body.ships[0].consumption : 0;
    for (const entry of body.ships) {
      const item = document.createElement('li');
      item.dataset.ship = String(entry.spaceship_id);
      item.appendChild(shipButton(entry.spaceship_id));
      const bar = document.createElement('span');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = (most > 0 ? (100 * entry.consumption) / most : 0).toFixed(1) + '%';
      bar.appendChild(fill);
      item.appendChild(bar);
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = showKwh(entry.consumption);
      item.appendChild(value);
      list.appendChild(item);
    }
    $('top-note').textContent = body.ships.length ? '' : 'No ship has data in this window.';
  }

  // ---- one ship ----------------------------------------------------------------------

  async function renderShip() {
    const mine = ++generation.ship;
    const ship = state.ship;
    const container = $('ship-chart');
    if (ship === null) {
      container.textContent = '';
      redraw.ship = null;
      $('ship-title').textContent = 'Ship';
      $('ship-note').textContent = 'Pick a ship from the top users, the alerts or the search.';
      return;
    }
    $('ship-title').textContent = 'Ship ' + ship;
    container.dataset.ship = ship;
    const viewEnd = state.end;
    const viewStart = Math.max(state.start, viewEnd - SHIP_VIEW_MAX_MS);
    let data;
    try {
      data = await api('/data', { spaceship_id: ship, start: iso(viewStart), end: iso(viewEnd) });
    } catch (error) {
      if (error.status !== 404) throw error;
      if (mine !== generation.ship) return;
      container.textContent = '';
      redraw.ship = null;
      $('ship-note').textContent = `Ship ${ship} has no stored data.`;
      return;
    }
    const points = data.data.map((d) => ({ t: parseTime(d.datetime), v: d.value, coverage: d.coverage || 900 }));
    // The forecast continues the curve: the next 24 hours after its last data.
    const forecastStart = points.length ? points[points.length - 1].t + BUCKET_MS : viewEnd;
    const forecastEnd = forecastStart + DAY_MS;
    const alertStart = Math.max(viewStart, viewEnd - ALERT_WINDOW_MAX_MS);
    const after = BigInt(ship) > 0n ? (BigInt(ship) - 1n).toString() : null;
    const [forecast, alerts] = await Promise.all([
      api('/forecast', { spaceship_id: ship, start: iso(forecastStart), end: iso(forecastEnd) })
        .catch((error) => {
          if (error.status === 422 || error.status === 404) return { unavailable: error.message };
          throw error;
        }),
      api('/alerts', { start: iso(alertStart), end: iso(viewEnd), after, per_page: 1, limit: 1 })
        .then((page) => page.ships.find((s) => String(s.spaceship_id) === ship) || null),
    ]);
    if (mine !== generation.ship) return;
    // Each bucket's own 80% interval (`low`, `high`) makes the band.
    const curve = forecast.unavailable ? [] : forecast.data.map((d) => ({ t: parseTime(d.datetime), v: d.value, low: d.low, high: d.high }));
    const draw = () => {
      const x1 = curve.length ? forecastEnd : viewEnd;
      const yMax = Math.max(
        points.reduce((max, p) => Math.max(max, p.v), 0),
        curve.reduce((max, p) => Math.max(max, p.high), 0),
      );
      // A ship whose data begins inside the window is shown from its start.
      const x0 = points.length ? Math.max(viewStart, Math.floor(points[0].t / HOUR_MS) * HOUR_MS) : viewStart;
      const chart = makeChart(container, x0, x1, yMax, `ship ${ship}: 15-minute energy and forecast`);
      chart.root.id = 'ship-svg';
      chart.root.dataset.ship = ship;
      const clip = (t) => Math.min(Math.max(t, x0), x1);
      for (const run of alerts ? alerts.missing : []) {
        const a = clip(parseTime(run.start));
        const b = clip(parseTime(run.end));
        svg('rect', {
          class: 'gap', x: chart.x(a), width: Math.max(1, chart.x(b) - chart.x(a)),
          y: chart.margin.top, height: chart.height - chart.margin.top - chart.margin.bottom,
          'data-start': run.start, 'data-end': run.end,
        }, chart.layers.back);
      }
      if (curve.length) {
        let band = '';
        curve.forEach((p, i) => {
          band += (i ? 'L' : 'M') + chart.x(p.t + BUCKET_MS / 2).toFixed(1) + ',' + chart.y(p.high).toFixed(1);
        });
        for (let i = curve.length - 1; i >= 0; i -= 1) {
          band += 'L' + chart.x(curve[i].t + BUCKET_MS / 2).toFixed(1) + ',' + chart.y(curve[i].low).toFixed(1);
        }
        svg('path', { class: 'forecast-band', id: 'forecast-band', d: band + 'Z', 'data-count': String(curve.length) }, chart.layers.back);
        svg('line', {
          class: 'now', x1: chart.x(forecastStart), x2: chart.x(forecastStart),
          y1: chart.margin.top, y2: chart.height - chart.margin.bottom,
        }, chart.layers.back);
      }
      svg('path', { class: 'ship-line', id: 'ship-line', d: linePath(points, chart, BUCKET_MS), 'data-count': String(points.length) }, chart.layers.data);
      if (curve.length) {
        svg('path', { class: 'forecast-line', id: 'forecast-line', d: linePath(curve, chart, BUCKET_MS), 'data-count': String(curve.length) }, chart.layers.data);
      }
      for (const p of points) {
        if (p.coverage < 900) {
          svg('circle', { class: 'partial', cx: chart.x(p.t + BUCKET_MS / 2), cy: chart.y(p.v), r: 3, 'data-datetime': iso(p.t) }, chart.layers.front);
        }
      }
      for (const outlier of alerts ? alerts.outliers : []) {
        const t = parseTime(outlier.datetime);
        svg('circle', { class: 'outlier', cx: chart.x(t + BUCKET_MS / 2), cy: chart.y(outlier.value), r: 4, 'data-datetime': outlier.datetime }, chart.layers.front);
      }
      hover(chart, points.concat(curve.map((p) => Object.assign({ forecast: true }, p))), BUCKET_MS, (p) =>
        `${showTime(p.t)}: ${p.forecast ? 'forecast ' : ''}${p.v.toFixed(3)} kWh` +
        (p.coverage && p.coverage < 900 ? ` (partial: ${p.coverage} s covered)` : ''));
    };
    redraw.ship = draw;
    draw();
    const parts = [];
    parts.push(points.length
      ? `${points.length} stored intervals from ${showTime(points[0].t)} to ${showTime(points[points.length - 1].t + BUCKET_MS)} UTC.`
      : 'No data in this window.');
    if (forecast.unavailable) {
      parts.push('No forecast: ' + forecast.unavailable);
    } else {
      parts.push(`Forecast for the next 24 h from ${showTime(forecastStart)}: ${showKwh(forecast.expected_consumption)} ` +
        `(80%: ${showKwh(forecast.interval.low)} – ${showKwh(forecast.interval.high)}; the band is each interval's own 80% range).`);
      const unusual = forecast.model.unusual_days;
      if (unusual.length) {
        parts.push(`It read ${unusual.length === 1 ? 'one day' : `${unusual.length} days`} as unusual and set ` +
          `${unusual.length === 1 ? 'it' : 'them'} aside (a holiday, an outage, a spike): ` +
          `${unusual.map((d) => showTime(parseTime(d))).join(', ')} UTC.`);
      }
    }
    if (alerts) {
      parts.push(`Alerts in the last ${showDuration(viewEnd - alertStart)}: ${alerts.missing_buckets} missing, ` +
        `${alerts.partial_buckets} partial, ${alerts.outlier_buckets} outlier intervals.`);
    }
    $('ship-note').textContent = parts.join(' ');
  }

  // ---- ship search ------------------------------------------------------------------

  async function renderShipList() {
    const mine = ++generation.ships;
    const body = await api('/ships', { prefix: state.prefix, page: state.shipPage, per_page: SHIPS_PER_PAGE });
    if (mine !== generation.ships) return;
    const list = $('ship-list');
    list.textContent = '';
    for (const ship of body.ships) {
      const item = document.createElement('li');
      item.appendChild(shipButton(ship));
      list.appendChild(item);
    }
    $('ships-page').textContent = body.total
      ? `page ${body.page} of ${body.pages} · ${body.total} ship${body.total === 1 ? '' : 's'}`
      : 'no ships match';
    $('ships-prev').disabled = body.page <= 1;
    $('ships-next').disabled = body.page >= body.pages;
    return body;
  }

  // ---- alerts ----------------------------------------------------------------------------

  function runText(run) {
    return `${showTime(parseTime(run.start))}–${iso(parseTime(run.end)).slice(11, 16)} (${showDuration(run.buckets * BUCKET_MS)})`;
  }

  function alertRow(found) {
    const row = document.createElement('tr');
    const kinds = [];
    if (found.missing_buckets) kinds.push('missing');
    if (found.partial_buckets) kinds.push('partial');
    if (found.outlier_buckets) kinds.push('outlier');
    row.dataset.ship = String(found.spaceship_id);
    row.dataset.kinds = kinds.join(' ');
    if (state.ship === String(found.spaceship_id)) row.className = 'selected';
    const cell = (content, className) => {
      const td = document.createElement('td');
      if (className) td.className = className;
      if (typeof content === 'string') td.textContent = content;
      else td.appendChild(content);
      row.appendChild(td);
      return td;
    };
    cell(shipButton(found.spaceship_id));
    cell(found.missing_buckets ? `${found.missing_buckets} (${showDuration(found.missing_buckets * BUCKET_MS)})` : '—', 'n' + (found.missing_buckets ? ' bad' : ''));
    cell(found.partial_buckets ? `${found.partial_buckets} (−${showDuration(found.partial_missing_seconds * 1000)})` : '—', 'n');
    cell(found.outlier_buckets ? String(found.outlier_buckets) : '—', 'n' + (found.outlier_buckets ? ' bad' : ''));
    const where = [];
    for (const run of found.missing.slice(0, 3)) where.push('missing ' + runText(run));
    if (found.missing.length > 3 || found.missing_buckets > found.missing.reduce((n, r) => n + r.buckets, 0)) where.push('…');
    for (const run of found.partial.slice(0, 2)) where.push(`partial ${showTime(parseTime(run.start))} (${run.covered_seconds} s of ${run.buckets * 900} s)`);
    for (const outlier of found.outliers.slice(0, 3)) {
      where.push(`outlier ${showTime(parseTime(outlier.datetime))}: ${outlier.value.toFixed(2)} kWh, usually ${outlier.expected.toFixed(2)}`);
    }
    cell(where.join('; '));
    row.addEventListener('click', () => openShip(found.spaceship_id));
    return row;
  }

  function severity(found) {
    return found.missing_buckets + 4 * found.outlier_buckets + found.partial_buckets / 4;
  }

  // Every ship is examined, 1,000 per request; the table keeps the
  // ALERT_ROWS_MAX most severe, so the page stays small whatever the fleet.
  async function renderAlerts() {
    const mine = ++generation.alerts;
    const end = state.end;
    const start = Math.max(state.start, end - ALERT_WINDOW_MAX_MS);
    $('alerts-caption').textContent = `${showTime(start)} – ${showTime(end)} UTC` +
      (start > state.start ? ' (the window\'s last 7 days)' : '');
    const body = $('alerts').tBodies[0];
    body.textContent = '';
    let shown = [];
    let alerting = 0;
    let after = null;
    let examined = 0;
    let total = 0;
    let active = 0;
    do {
      const page = await api('/alerts', {
        start: iso(start), end: iso(end), after, per_page: 1000, limit: 1000,
      });
      if (mine !== generation.alerts) return;
      alerting += page.ships.length;
      examined += page.ships_examined;
      active += page.ships_active;
      total = page.ships_total;
      after = page.next_after;
      shown = shown.concat(page.ships);
      shown.sort((a, b) => severity(b) - severity(a) || a.spaceship_id - b.spaceship_id);
      shown.length = Math.min(shown.length, ALERT_ROWS_MAX);
      body.textContent = '';
      for (const ship of shown) body.appendChild(alertRow(ship));
      $('alerts-note').textContent = `${alerting} ship${alerting === 1 ? '' : 's'} with alerts` +
        (alerting > shown.length ? ` (the ${shown.length} most severe shown)` : '') +
        `; examined ${examined} of ${total} ships (${active} with data in the window or the week before)` +
        (after !== null ? '…' : '.');
    } while (after !== null);
  }

  // ---- wiring --------------------------------------------------------------------------------

  function showWindowInputs() {
    $('start').value = toInput(state.start);
    $('end').value = toInput(state.end);
    $('step').value = state.step;
  }

  function renderWindow() {
    showWindowInputs();
    setStatus('');
    return Promise.all([
      track(renderFleet(), ['fleet']),
      track(renderTop(), ['top']),
      track(renderAlerts(), ['alerts']),
      track(renderShip(), ['ship']),
    ]);
  }

  const windowKey = () => `${state.start}/${state.end}/${state.step}`;

  function bind() {
    $('window-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const start = fromInput($('start').value);
      const end = fromInput($('end').value);
      if (start === null || end === null || start >= end) {
        setStatus('Pick a start before the end.');
        return;
      }
      navigate({ start, end, step: $('step').value });
    });
    window.addEventListener('hashchange', () => {
      const before = windowKey();
      const shipBefore = state.ship;
      readHash();
      if (windowKey() !== before) renderWindow();
      else if (state.ship !== shipBefore) {
        track(renderShip(), ['ship']);
        for (const row of $('alerts').tBodies[0].rows) {
          row.className = row.dataset.ship === state.ship ? 'selected' : '';
        }
      }
    });
    $('ship-search').addEventListener('submit', async (event) => {
      event.preventDefault();
      const prefix = $('ship-prefix').value.trim();
      if (!/^\d{0,20}$/.test(prefix)) {
        setStatus('A ship id is digits only.');
        return;
      }
      state.prefix = prefix;
      state.shipPage = 1;
      const body = await track(renderShipList(), ['ships']);
      if (body && prefix && body.ships.some((s) => String(s) === prefix)) openShip(prefix);
    });
    $('ships-prev').addEventListener('click', () => {
      state.shipPage = Math.max(1, state.shipPage - 1);
      track(renderShipList(), ['ships']);
    });
    $('ships-next').addEventListener('click', () => {
      state.shipPage += 1;
      track(renderShipList(), ['ships']);
    });
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('token-input');
      const value = input.value.trim();
      // A header value: printable ASCII (a token is pwd_ and 64 hex digits).
      if (!/^[\x21-\x7e]+$/.test(value)) {
        $('token-message').textContent = 'A token is printable text without spaces, like pwd_ and 64 hex digits.';
        return;
      }
      input.value = '';
      token = value;
      storeToken(token);
      reload();
    });
    $('token-forget').addEventListener('click', () => {
      token = null;
      storeToken(null);
      reload();
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (redraw.fleet) redraw.fleet();
        if (redraw.ship) redraw.ship();
      }, 150);
    });
  }

  async function load() {
    if (state.start === null) await track(defaultWindow(), ALL_PANELS);
    if (state.start === null) return;
    if (state.step === null) state.step = defaultStep(state.end - state.start);
    history.replaceState(null, '', hashFor({}));
    await Promise.all([renderWindow(), track(renderShipList(), ['ships'])]);
  }

  async function start() {
    readHash();
    bind();
    showTokenControls();
    return load();
  }

  track(start());
})();
