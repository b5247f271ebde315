// autoexpose report: renders the data block (src/report/data.rs) into the list, the detail
// view and the lineage drawing. Every text from the data is untrusted (names come from BI
// tools): it reaches the page only through textContent, createTextNode and setAttribute of
// attributes that are never URLs or handlers; the only href set is an http/https dashboard
// URL or a "#..." route. Nothing parses data as markup; nothing is fetched.
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PAGE_SIZE = 100;
  var MAX_DRAWN = 400;
  var raw = JSON.parse(document.getElementById('autoexpose-data').textContent);
  if (raw.format !== 1) {
    throw new Error('autoexpose report: data format ' + raw.format + ' is not the one this page reads (1)');
  }
  var S = raw.s;
  function s(i) { return i < 0 ? null : S[i]; }
  var TOOL_NAMES = { tableau: 'Tableau', powerbi: 'Power BI', inventory: 'Inventory' };
  function toolName(t) { return Object.prototype.hasOwnProperty.call(TOOL_NAMES, t) ? TOOL_NAMES[t] : String(t); }

  var integrations = raw.integrations.map(function (a) {
    return { name: s(a[0]), tool: s(a[1]), instance: s(a[2]) };
  });
  var nodes = raw.nodes.map(function (a, i) {
    return { i: i, kind: s(a[0]), name: s(a[1]), uid: s(a[2]), sourceName: s(a[3]), parents: a[4], tests: a[5], children: [], exposures: [] };
  });
  nodes.forEach(function (n) { n.parents.forEach(function (p) { nodes[p].children.push(n.i); }); });
  var exposures = raw.exposures.map(function (a, i) {
    var integ = integrations[a[0]];
    var e = {
      i: i, integ: integ, folder: s(a[1]), name: s(a[2]), label: s(a[3]), type: s(a[4]),
      owner: s(a[5]), email: s(a[6]), url: s(a[7]), mode: s(a[8]), status: s(a[9]), file: s(a[10]),
      health: s(a[11]), reasons: a[12].map(s),
      deps: a[13].map(function (d) { return { node: d[0], relation: s(d[1]), via: s(d[2]), key: s(d[3]) }; }),
      unmatched: a[14].map(function (u) {
        return { relation: s(u[0]), via: s(u[1]), key: s(u[2]), reason: s(u[3]), suggestion: s(u[4]), candidates: u[5].map(s) };
      }),
      refreshes: a[15].map(function (r) {
        return { run: r[0], at: s(r[1]), dry: r[2] === 1, targetKind: s(r[3]), targetName: s(r[4]), decision: s(r[5]),
          reason: s(r[6]), detail: s(r[7]), job: s(r[8]) };
      })
    };
    e.lastRefresh = e.refreshes.length ? e.refreshes[0] : null;
    var hay = [e.name, e.label, e.owner, e.email, e.folder];
    e.deps.forEach(function (d) {
      if (d.node >= 0) { hay.push(nodes[d.node].name); nodes[d.node].exposures.push(i); }
      hay.push(d.relation, d.key);
    });
    e.hay = hay.filter(function (x) { return x; }).join('\n').toLowerCase();
    return e;
  });

  // ---- small DOM helpers: text only ----
  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); }); }
    (children || []).forEach(function (c) {
      n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return n;
  }
  function text(v) { return document.createTextNode(v === null || v === undefined ? '' : String(v)); }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } }
  function isWebUrl(u) {
    if (typeof u !== 'string') { return false; }
    try { var p = new URL(u); return p.protocol === 'http:' || p.protocol === 'https:'; } catch (e) { return false; }
  }
  function toolBadge(tool) {
    var known = Object.prototype.hasOwnProperty.call(TOOL_NAMES, tool);
    return el('span', { 'class': 'tool tool-' + (known ? tool : 'other') }, [toolName(tool)]);
  }
  function healthBadge(h) {
    var known = ['Healthy', 'Caution', 'Degraded', 'Unknown'].indexOf(h) >= 0;
    return el('span', { 'class': 'health health-' + (known ? h : 'Unknown') }, [h || 'Unknown']);
  }
  function refreshText(r) {
    if (!r) { return ''; }
    var t = r.decision + (r.job ? ' (' + r.job + ')' : '') + (r.dry ? ' [dry run]' : '');
    return r.at + ' ' + t;
  }

  // ---- the list ----
  var COLUMNS = [
    { key: 'name', title: 'Name', get: function (e) { return e.name; } },
    { key: 'label', title: 'Label', get: function (e) { return e.label; } },
    { key: 'health', title: 'Health', get: function (e) { return e.health; } },
    { key: 'type', title: 'Type', get: function (e) { return e.type; } },
    { key: 'owner', title: 'Owner', get: function (e) { return e.owner; } },
    { key: 'email', title: 'Owner email', get: function (e) { return e.email; } },
    { key: 'integration', title: 'Integration', get: function (e) { return e.integ.name; } },
    { key: 'mode', title: 'Exposure mode', get: function (e) { return e.mode; } },
    { key: 'deps', title: 'Dependencies', num: true, get: function (e) { return e.deps.length; } },
    { key: 'unmatched', title: 'Unmatched', num: true, get: function (e) { return e.unmatched.length; } },
    { key: 'refresh', title: 'Last refresh', get: function (e) { return e.lastRefresh ? e.lastRefresh.at : ''; } }
  ];
  var state = { q: '', integration: '', instance: '', folder: '', health: '', unmatched: '', sort: 'name', dir: 1, page: 0 };
  var shown = [];

  function distinct(get) {
    var seen = Object.create(null);
    var out = [];
    exposures.forEach(function (e) {
      var v = get(e);
      if (v !== null && v !== undefined && !(v in seen)) { seen[v] = true; out.push(v); }
    });
    return out.sort();
  }
  function fillSelect(id, values, all) {
    var sel = document.getElementById(id);
    if (all !== null) { sel.appendChild(el('option', { value: '' }, [all])); }
    values.forEach(function (v) { sel.appendChild(el('option', { value: v }, [v])); });
    sel.addEventListener('change', function () { state[id.slice(2)] = sel.value; state.page = 0; refresh(); });
  }

  // The exposures in the current sort order, sorted again only when the order changes (not
  // on every key typed into the search): 20k exposures filter in a few milliseconds.
  var sorted = null;
  function sortedExposures() {
    if (sorted) { return sorted; }
    var col = COLUMNS.filter(function (c) { return c.key === state.sort; })[0];
    var keys = exposures.map(function (e) {
      var v = col.get(e);
      return col.num ? v : v === null || v === undefined ? '' : String(v).toLowerCase();
    });
    sorted = exposures.slice().sort(function (a, b) {
      var x = keys[a.i], y = keys[b.i];
      var r = col.num ? x - y : x < y ? -1 : x > y ? 1 : 0;
      return r * state.dir || a.i - b.i;
    });
    return sorted;
  }

  function refresh() {
    var q = state.q.trim().toLowerCase();
    var words = q ? q.split(/\s+/) : [];
    shown = sortedExposures().filter(function (e) {
      if (state.integration && e.integ.name !== state.integration) { return false; }
      if (state.instance && e.integ.instance !== state.instance) { return false; }
      if (state.folder && e.folder !== state.folder) { return false; }
      if (state.health && e.health !== state.health) { return false; }
      if (state.unmatched === 'yes' && !e.unmatched.length) { return false; }
      if (state.unmatched === 'no' && e.unmatched.length) { return false; }
      for (var w = 0; w < words.length; w++) { if (e.hay.indexOf(words[w]) < 0) { return false; } }
      return true;
    });
    renderList();
  }

  function renderHead() {
    var head = document.getElementById('list-head');
    clear(head);
    COLUMNS.forEach(function (c) {
      var b = el('button', { type: 'button', 'data-sort': c.key }, [c.title]);
      if (state.sort === c.key) { b.setAttribute('aria-sort', state.dir > 0 ? 'ascending' : 'descending'); }
      b.addEventListener('click', function () {
        if (state.sort === c.key) { state.dir = -state.dir; } else { state.sort = c.key; state.dir = 1; }
        sorted = null;
        renderHead();
        refresh();
      });
      head.appendChild(el('th', c.num ? { 'class': 'num' } : null, [b]));
    });
  }

  function renderList() {
    var body = document.getElementById('list-body');
    clear(body);
    var pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    if (state.page >= pages) { state.page = pages - 1; }
    var start = state.page * PAGE_SIZE;
    var frag = document.createDocumentFragment();
    shown.slice(start, start + PAGE_SIZE).forEach(function (e) {
      var tr = el('tr', { 'class': 'row', 'data-index': String(e.i) });
      var open = el('a', { 'class': 'open', href: '#exposure=' + e.i }, [e.name]);
      tr.appendChild(el('td', null, [open]));
      tr.appendChild(el('td', null, [text(e.label)]));
      tr.appendChild(el('td', null, [healthBadge(e.health)]));
      tr.appendChild(el('td', null, [text(e.type)]));
      tr.appendChild(el('td', null, [text(e.owner)]));
      tr.appendChild(el('td', null, [text(e.email)]));
      tr.appendChild(el('td', null, [toolBadge(e.integ.tool), text(' ' + e.integ.name)]));
      tr.appendChild(el('td', null, [text(e.mode)]));
      tr.appendChild(el('td', { 'class': 'num' }, [text(e.deps.length)]));
      tr.appendChild(el('td', { 'class': 'num' }, [text(e.unmatched.length)]));
      tr.appendChild(el('td', null, [text(refreshText(e.lastRefresh))]));
      frag.appendChild(tr);
    });
    body.appendChild(frag);
    var count = document.getElementById('count');
    count.textContent = shown.length === exposures.length
      ? exposures.length + ' exposures'
      : shown.length + ' of ' + exposures.length + ' exposures';
    count.setAttribute('data-shown', String(shown.length));
    count.setAttribute('data-total', String(exposures.length));
    document.getElementById('page').textContent = 'page ' + (state.page + 1) + ' of ' + pages;
    document.getElementById('prev').disabled = state.page === 0;
    document.getElementById('next').disabled = state.page >= pages - 1;
  }

  // ---- detail views ----
  function facts(pairs) {
    var dl = el('dl', { 'class': 'facts' });
    pairs.forEach(function (p) {
      dl.appendChild(el('dt', null, [p[0]]));
      var dd = el('dd');
      if (p[1] instanceof Node) { dd.appendChild(p[1]); } else { dd.appendChild(text(p[1] === null ? '—' : p[1])); }
      dl.appendChild(dd);
    });
    return dl;
  }
  function table(id, headers, rows) {
    var t = el('table', { id: id });
    var tr = el('tr');
    headers.forEach(function (h) { tr.appendChild(el('th', null, [h])); });
    t.appendChild(el('thead', null, [tr]));
    var body = el('tbody');
    rows.forEach(function (cells) {
      var r = el('tr');
      cells.forEach(function (c) { r.appendChild(el('td', null, [c instanceof Node ? c : text(c)])); });
      body.appendChild(r);
    });
    t.appendChild(body);
    return t;
  }
  function nodeLink(n) {
    var a = el('a', { href: '#node=' + n.i, 'class': 'node-link' }, [n.name]);
    return el('span', null, [a, text(' '), el('span', { 'class': 'muted' }, [n.kind])]);
  }

  function showExposure(e) {
    var view = document.getElementById('detail-view');
    clear(view);
    view.appendChild(el('a', { href: '#', 'class': 'back' }, ['\u2190 all exposures']));
    var h = el('h2', { id: 'detail-title' }, [e.label]);
    view.appendChild(h);
    view.appendChild(el('p', null, [el('code', { id: 'detail-name' }, [e.name]), text(' '), toolBadge(e.integ.tool), text(' '), healthBadge(e.health)]));
    var link = e.url === null ? null
      : isWebUrl(e.url) ? el('a', { id: 'dashboard-link', href: e.url, target: '_blank', rel: 'noopener noreferrer' }, [e.url])
        : el('span', { id: 'dashboard-link' }, [e.url]);
    view.appendChild(facts([
      ['Type', e.type], ['Owner', e.owner], ['Owner email', e.email],
      ['Integration', e.integ.name + ' (' + toolName(e.integ.tool) + ')'],
      ['Site / workspace', e.integ.instance], ['Folder', e.folder], ['Exposure mode', e.mode],
      ['Status', e.status], ['YAML file', e.file], ['Dashboard', link === null ? null : link]
    ]));
    view.appendChild(el('h3', null, ['Health']));
    var ul = el('ul', { 'class': 'reasons', id: 'health-reasons' });
    if (!e.reasons.length) { ul.appendChild(el('li', { 'class': 'muted' }, [e.health === 'Healthy' ? 'no problems found' : 'no signals recorded'])); }
    e.reasons.forEach(function (r) { ul.appendChild(el('li', null, [r])); });
    view.appendChild(el('p', null, [healthBadge(e.health)]));
    view.appendChild(ul);
    view.appendChild(el('h3', null, ['Lineage: upstream of this exposure']));
    view.appendChild(drawUpstream(e));

    view.appendChild(el('h3', null, ['Dependencies (' + e.deps.length + ')']));
    view.appendChild(table('deps', ['dbt node', 'BI table', 'Path', 'Key'], e.deps.map(function (d) {
      return [d.node >= 0 ? nodeLink(nodes[d.node]) : '?', d.relation, d.via, el('code', null, [d.key])];
    })));
    view.appendChild(el('h3', null, ['Unmatched tables (' + e.unmatched.length + ')']));
    view.appendChild(table('unmatched', ['BI table', 'Path', 'Key', 'Reason', 'Suggestion', 'Near matches'], e.unmatched.map(function (u) {
      return [u.relation, u.via, u.key === null ? '' : el('code', null, [u.key]), u.reason, u.suggestion, u.candidates.join(', ')];
    })));
    view.appendChild(el('h3', null, ['Refresh history (' + e.refreshes.length + ')']));
    view.appendChild(table('refreshes', ['Run', 'Decided at', 'Decision', 'Target', 'Reason', 'Detail', 'Job'], e.refreshes.map(function (r) {
      return [String(r.run) + (r.dry ? ' (dry run)' : ''), r.at, r.decision,
        (r.targetKind ? r.targetKind + ' ' : '') + (r.targetName || ''), r.reason || '', r.detail || '', r.job || ''];
    })));
    showView('detail');
  }

  function showNode(n) {
    var view = document.getElementById('detail-view');
    clear(view);
    view.appendChild(el('a', { href: '#', 'class': 'back' }, ['\u2190 all exposures']));
    view.appendChild(el('h2', { id: 'detail-title' }, [n.name]));
    view.appendChild(el('p', null, [el('code', null, [n.uid]), text(' ' + n.kind)]));
    var down = downstream(n);
    view.appendChild(facts([
      ['Kind', n.kind], ['Source', n.sourceName], ['Tests on it', String(n.tests)],
      ['Parents', String(n.parents.length)], ['Exposures downstream', String(down.exposures.length)]
    ]));
    view.appendChild(el('h3', null, ['Lineage: downstream of this node']));
    view.appendChild(drawDownstream(n, down));
    view.appendChild(el('h3', null, ['Exposures downstream (' + down.exposures.length + ')']));
    view.appendChild(table('downstream', ['Exposure', 'Label', 'Integration', 'Health'], down.exposures.map(function (i) {
      var e = exposures[i];
      return [el('a', { href: '#exposure=' + i }, [e.name]), e.label, e.integ.name, healthBadge(e.health)];
    })));
    showView('detail');
  }

  function showView(which) {
    document.getElementById('list-view').hidden = which !== 'list';
    document.getElementById('detail-view').hidden = which !== 'detail';
    window.scrollTo(0, 0);
  }

  // ---- lineage ----
  // Upstream: the exposure's dependencies and all their ancestors. Each node's column is its
  // longest distance from the exposure, so sources sit left and the exposure right.
  function drawUpstream(e) {
    var depth = {};
    var queue = [];
    e.deps.forEach(function (d) { if (d.node >= 0) { depth[d.node] = 1; queue.push(d.node); } });
    var guard = 0;
    while (queue.length && guard++ < 200000) {
      var n = queue.shift();
      nodes[n].parents.forEach(function (p) {
        if (!(p in depth) || depth[p] < depth[n] + 1) {
          if (depth[n] + 1 <= nodes.length) { depth[p] = depth[n] + 1; queue.push(p); }
        }
      });
    }
    var items = [{ id: 'e', label: e.name, kind: 'exposure', tool: e.integ.tool, col: 0, focus: true, route: '#exposure=' + e.i }];
    var edges = [];
    Object.keys(depth).forEach(function (k) {
      var n = nodes[k];
      items.push({ id: 'n' + k, label: n.name, kind: n.kind, col: depth[k], route: '#node=' + k, uid: n.uid });
      n.parents.forEach(function (p) { if (p in depth) { edges.push(['n' + p, 'n' + k]); } });
    });
    e.deps.forEach(function (d) { if (d.node >= 0) { edges.push(['n' + d.node, 'e']); } });
    var max = 0;
    items.forEach(function (it) { if (it.col > max) { max = it.col; } });
    items.forEach(function (it) { it.col = max - it.col; });
    return drawing(items, edges);
  }

  function downstream(n) {
    var depth = {};
    depth[n.i] = 0;
    var queue = [n.i];
    var guard = 0;
    while (queue.length && guard++ < 200000) {
      var c = queue.shift();
      nodes[c].children.forEach(function (k) {
        if (!(k in depth) || depth[k] < depth[c] + 1) {
          if (depth[c] + 1 <= nodes.length) { depth[k] = depth[c] + 1; queue.push(k); }
        }
      });
    }
    var ex = {};
    Object.keys(depth).forEach(function (k) {
      nodes[k].exposures.forEach(function (i) { ex[i] = Math.max(ex[i] || 0, depth[k] + 1); });
    });
    var list = Object.keys(ex).map(Number).sort(function (a, b) { return a - b; });
    return { depth: depth, exposureDepth: ex, exposures: list };
  }

  function drawDownstream(n, down) {
    var items = [];
    var edges = [];
    Object.keys(down.depth).forEach(function (k) {
      var m = nodes[k];
      items.push({ id: 'n' + k, label: m.name, kind: m.kind, col: down.depth[k], focus: Number(k) === n.i, route: '#node=' + k, uid: m.uid });
      m.parents.forEach(function (p) { if (p in down.depth) { edges.push(['n' + p, 'n' + k]); } });
    });
    down.exposures.forEach(function (i) {
      var e = exposures[i];
      items.push({ id: 'e' + i, label: e.name, kind: 'exposure', tool: e.integ.tool, col: down.exposureDepth[i], route: '#exposure=' + i });
      e.deps.forEach(function (d) { if (d.node in down.depth) { edges.push(['n' + d.node, 'e' + i]); } });
    });
    return drawing(items, edges);
  }

  // A layered drawing: one column per depth, nodes sorted by kind and name within it, edges
  // as curves from the right side of a node to the left side of the next.
  function drawing(items, edges) {
    var wrap = el('div', { 'class': 'lineage', id: 'lineage' });
    var dropped = 0;
    if (items.length > MAX_DRAWN) {
      dropped = items.length - MAX_DRAWN;
      items = items.slice(0, MAX_DRAWN);
    }
    var W = 180, H = 38, GX = 44, GY = 12, PAD = 14;
    var cols = {};
    items.forEach(function (it) { (cols[it.col] = cols[it.col] || []).push(it); });
    var at = {};
    var width = 0, height = 0;
    Object.keys(cols).map(Number).sort(function (a, b) { return a - b; }).forEach(function (c, ci) {
      cols[c].sort(function (a, b) { return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.label < b.label ? -1 : a.label > b.label ? 1 : 0; });
      cols[c].forEach(function (it, r) {
        at[it.id] = { x: PAD + ci * (W + GX), y: PAD + r * (H + GY) };
        width = Math.max(width, at[it.id].x + W + PAD);
        height = Math.max(height, at[it.id].y + H + PAD);
      });
    });
    var svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('role', 'img');
    edges.forEach(function (ed) {
      var a = at[ed[0]], b = at[ed[1]];
      if (!a || !b) { return; }
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      var p = document.createElementNS(SVGNS, 'path');
      p.setAttribute('class', 'edge');
      p.setAttribute('d', 'M' + x1 + ' ' + y1 + ' C' + mx + ' ' + y1 + ' ' + mx + ' ' + y2 + ' ' + x2 + ' ' + y2);
      svg.appendChild(p);
    });
    items.forEach(function (it) {
      var pos = at[it.id];
      var g = document.createElementNS(SVGNS, 'g');
      g.setAttribute('class', 'node' + (it.focus ? ' focus' : ''));
      g.setAttribute('data-kind', it.kind);
      g.setAttribute('data-name', it.label);
      if (it.tool) { g.setAttribute('data-tool', it.tool); }
      g.setAttribute('transform', 'translate(' + pos.x + ' ' + pos.y + ')');
      var title = document.createElementNS(SVGNS, 'title');
      title.textContent = it.label + (it.uid ? ' (' + it.uid + ')' : '');
      g.appendChild(title);
      var r = document.createElementNS(SVGNS, 'rect');
      r.setAttribute('width', String(W));
      r.setAttribute('height', String(H));
      r.setAttribute('rx', '5');
      g.appendChild(r);
      var k = document.createElementNS(SVGNS, 'text');
      k.setAttribute('class', 'kind');
      k.setAttribute('x', '8');
      k.setAttribute('y', '13');
      k.textContent = it.kind + (it.tool ? ' \u00b7 ' + toolName(it.tool) : '');
      g.appendChild(k);
      var t = document.createElementNS(SVGNS, 'text');
      t.setAttribute('class', 'label');
      t.setAttribute('x', '8');
      t.setAttribute('y', '29');
      t.textContent = it.label.length > 26 ? it.label.slice(0, 25) + '\u2026' : it.label;
      g.appendChild(t);
      g.addEventListener('click', function () { location.hash = it.route; });
      svg.appendChild(g);
    });
    wrap.appendChild(svg);
    if (dropped) {
      wrap.appendChild(el('p', { 'class': 'muted' }, [dropped + ' more nodes not drawn; see the tables.']));
    }
    return wrap;
  }

  // ---- routing: #exposure=N, #node=N, or the list ----
  function route() {
    var m = /^#(exposure|node)=(\d+)$/.exec(location.hash);
    if (m && m[1] === 'exposure' && exposures[Number(m[2])]) { showExposure(exposures[Number(m[2])]); return; }
    if (m && m[1] === 'node' && nodes[Number(m[2])]) { showNode(nodes[Number(m[2])]); return; }
    showView('list');
  }

  // ---- start ----
  var summary = exposures.length + ' exposures from ' + integrations.length + ' integration' + (integrations.length === 1 ? '' : 's')
    + ', ' + nodes.length + ' dbt nodes' + (raw.generated ? '; data as of ' + raw.generated : '');
  document.getElementById('summary').textContent = summary;
  fillSelect('f-integration', integrations.map(function (x) { return x.name; }).sort(), 'all integrations');
  fillSelect('f-instance', distinct(function (e) { return e.integ.instance; }), 'all sites / workspaces');
  fillSelect('f-folder', distinct(function (e) { return e.folder; }), 'all folders');
  fillSelect('f-health', distinct(function (e) { return e.health; }), 'any health');
  fillSelect('f-unmatched', [], null);
  var search = document.getElementById('search');
  // input: each key; change and search: a value cleared or set at once (the field's own clear
  // button, WebDriver's Element Clear).
  ['input', 'change', 'search'].forEach(function (type) {
    search.addEventListener(type, function () {
      if (state.q === search.value) { return; }
      state.q = search.value;
      state.page = 0;
      refresh();
    });
  });
  document.getElementById('filters').addEventListener('submit', function (ev) { ev.preventDefault(); });
  document.getElementById('prev').addEventListener('click', function () { state.page--; renderList(); });
  document.getElementById('next').addEventListener('click', function () { state.page++; renderList(); });
  window.addEventListener('hashchange', route);
  renderHead();
  refresh();
  route();
  document.body.setAttribute('data-ready', 'true');
}());
