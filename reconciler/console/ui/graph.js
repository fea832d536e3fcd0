// graph.js: the console's graph view. layout() is a pure, deterministic
// function from the API's graph (and the view state: focus, collapsed
// namespaces) to positions: the same input always draws the same picture.
// draw() turns a layout into SVG with DOM calls only (no parsed markup of API
// data), so a name in the mesh can never become markup.
"use strict";

const GitmeshGraph = (() => {
  const SVGNS = "http://www.w3.org/2000/svg";
  const NODE_W = 180, NODE_H = 46, COL_W = 290, ROW_H = 66, BAND_HEAD = 24, PAD = 16;
  // Above this many boxes a picture stops being readable: the view lists
  // the nodes instead (virtualised) and draws the focused neighbourhood.
  const LARGE = 250;
  const EXTERNAL_GROUP = "(external)";

  // groupOf is a node's band; a collapsed namespace's box (kind "group",
  // namespace its group) belongs to its own band too.
  const groupOf = (n) => n.kind === "external" ? EXTERNAL_GROUP : (n.namespace || "default");
  const byStr = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  // visible picks the nodes and edges to draw: the focused node and its
  // neighbours, or everything with collapsed namespaces folded into one
  // box each. Edges are re-pointed at the boxes and merged.
  function visible(g, state) {
    const nodes = new Map();
    const rep = new Map(); // node id -> id of the box that shows it
    if (state.focus && g.nodes.some((n) => n.id === state.focus)) {
      const keep = new Set([state.focus]);
      for (const e of g.edges) {
        if (e.from === state.focus) keep.add(e.to);
        if (e.to === state.focus) keep.add(e.from);
      }
      for (const n of g.nodes) if (keep.has(n.id)) { nodes.set(n.id, n); rep.set(n.id, n.id); }
    } else {
      for (const n of g.nodes) {
        const grp = groupOf(n);
        if (state.collapsed.has(grp)) {
          const id = "group/" + grp;
          if (!nodes.has(id)) nodes.set(id, { id, kind: "group", name: grp, namespace: grp, members: 0, health: "UNMANAGED", worst: 0 });
          const box = nodes.get(id);
          box.members++;
          const r = RANK[n.health] || 0;
          if (r > box.worst) { box.worst = r; box.health = n.health; }
          rep.set(n.id, id);
        } else {
          nodes.set(n.id, n);
          rep.set(n.id, n.id);
        }
      }
    }
    const edges = new Map();
    const focused = state.focus && nodes.has(state.focus);
    for (const e of g.edges) {
      // Focused, only the focus's own edges: callers left, callees right.
      if (focused && e.from !== state.focus && e.to !== state.focus) continue;
      const from = rep.get(e.from), to = rep.get(e.to);
      if (!from || !to || from === to) continue;
      const id = from + "->" + to;
      if (edges.has(id)) { edges.get(id).merged++; continue; }
      edges.set(id, from === e.from && to === e.to ? Object.assign({ merged: 1 }, e) : { id, from, to, kind: "merged", merged: 1 });
    }
    return { nodes: [...nodes.values()].sort((a, b) => byStr(a.id, b.id)), edges: [...edges.values()].sort((a, b) => byStr(a.id, b.id)) };
  }

  const RANK = { "UNMANAGED": 0, "NO PROXY": 1, "SYNCED": 2, "STALE": 3, "NACKED": 4 };

  // layers assigns each node a column: the longest path from a node
  // nothing calls, with cycles broken at the edges a depth-first walk in
  // id order finds going back.
  function layers(nodes, edges) {
    const out = new Map(nodes.map((n) => [n.id, []]));
    const indeg = new Map(nodes.map((n) => [n.id, 0]));
    for (const e of edges) { out.get(e.from).push(e.to); indeg.set(e.to, indeg.get(e.to) + 1); }
    const state = new Map(), back = new Set(), order = [];
    const visit = (root) => {
      // Iterative DFS: a 1,000-deep chain must not overflow the stack.
      const stack = [[root, 0]];
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = out.get(top[0])[top[1]++];
        if (next === undefined) { state.set(top[0], 2); order.push(top[0]); stack.pop(); continue; }
        const s = state.get(next);
        if (s === 1) back.add(top[0] + "->" + next);
        else if (!s) { state.set(next, 1); stack.push([next, 0]); }
      }
    };
    for (const n of nodes) if (indeg.get(n.id) === 0 && !state.get(n.id)) visit(n.id);
    for (const n of nodes) if (!state.get(n.id)) visit(n.id);
    const layer = new Map(nodes.map((n) => [n.id, 0]));
    for (let i = order.length - 1; i >= 0; i--) { // reverse post-order: topological
      const id = order[i];
      for (const to of out.get(id)) {
        if (!back.has(id + "->" + to)) layer.set(to, Math.max(layer.get(to), layer.get(id) + 1));
      }
    }
    return { layer, back };
  }

  // layout places nodes: one column per layer, one horizontal band per
  // namespace (external services last), nodes in a band's column ordered
  // by where their callers are, then by id.
  function layout(g, state) {
    const v = visible(g, state);
    if (v.nodes.length > LARGE) return { large: true, count: v.nodes.length };
    const { layer, back } = layers(v.nodes, v.edges);
    const preds = new Map(v.nodes.map((n) => [n.id, []]));
    for (const e of v.edges) if (!back.has(e.id)) preds.get(e.to).push(e.from);
    const groups = [...new Set(v.nodes.map(groupOf))].sort((a, b) => (a === EXTERNAL_GROUP) - (b === EXTERNAL_GROUP) || byStr(a, b));
    const maxLayer = Math.max(0, ...layer.values());
    const pos = new Map();
    const bands = [];
    let y = PAD;
    for (const grp of groups) {
      const members = v.nodes.filter((n) => groupOf(n) === grp);
      let rows = 1;
      for (let l = 0; l <= maxLayer; l++) {
        const col = members.filter((n) => layer.get(n.id) === l);
        const bary = (n) => {
          const ys = preds.get(n.id).filter((p) => pos.has(p)).map((p) => pos.get(p).y);
          return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
        };
        const keyed = col.map((n) => [bary(n), n]).sort((a, b) => (a[0] - b[0]) || byStr(a[1].id, b[1].id));
        keyed.forEach(([, n], i) => pos.set(n.id, { x: PAD + l * COL_W, y: y + BAND_HEAD + i * ROW_H }));
        rows = Math.max(rows, col.length);
      }
      const h = BAND_HEAD + rows * ROW_H;
      bands.push({ name: grp, y, h, collapsed: state.collapsed.has(grp) });
      y += h + 10;
    }
    return { nodes: v.nodes, edges: v.edges, pos, bands, layer, width: PAD * 2 + (maxLayer + 1) * COL_W, height: y + PAD };
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, cls) {
    const t = el("text", { x, y }, parent);
    if (cls) t.setAttribute("class", cls);
    t.textContent = s;
    return t;
  }
  const healthClass = (h) => (h || "UNMANAGED").replace(/ /g, "-");

  // edgeLabel says what the caller's proxy does: the destination's split
  // per route, then measured rates.
  // A route that sends everything to the only version says nothing.
  function edgeLabel(e, target) {
    const lines = [];
    const routes = new Map();
    for (const w of e.weights || []) {
      if (!w.version) continue;
      if (!routes.has(w.route)) routes.set(w.route, []);
      routes.get(w.route).push(w);
    }
    const single = !target || !target.versions || target.versions.length <= 1;
    for (const [r, ws] of routes) {
      if (single && ws.length === 1 && ws[0].weight === 100) continue;
      lines.push({ s: r + ": " + ws.map((w) => w.version + " " + w.weight + "%").join(" · ") });
    }
    if (e.requestsPerSecond !== undefined) {
      lines.push({ s: fmtRate(e.requestsPerSecond) + " rps · " + fmtRate(e.errorsPerSecond || 0) + " err/s", cls: "rate" });
      // The measured split beside the configured one.
      const ms = (e.measured || []).filter((m) => m.version);
      if (ms.length > 1 && e.requestsPerSecond > 0) {
        lines.push({ s: "measured: " + ms.map((m) => m.version + " " + Math.round(100 * m.requestsPerSecond / e.requestsPerSecond) + "%").join(" · "), cls: "rate" });
      }
    }
    if (e.merged > 1) lines.push({ s: e.merged + " edges" });
    return lines;
  }
  const fmtRate = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

  // draw renders a layout into container, replacing what was there.
  function draw(container, lay, opts) {
    const svg = el("svg", { width: lay.width, height: lay.height, viewBox: `0 0 ${lay.width} ${lay.height}`, role: "img", "aria-label": "mesh graph" });
    const defs = el("defs", {}, svg);
    const m = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z" }, m);
    for (const b of lay.bands) {
      const g = el("g", { class: "group", "data-group": b.name }, svg);
      el("rect", { x: 4, y: b.y, width: lay.width - 8, height: b.h, rx: 6 }, g);
      const t = text(g, 12, b.y + 16, (b.collapsed ? "▸ " : "▾ ") + b.name);
      t.addEventListener("click", () => opts.onToggleGroup(b.name));
    }
    const q = (opts.search || "").toLowerCase();
    const match = (n) => q !== "" && n.name.toLowerCase().includes(q);
    for (const e of lay.edges) {
      const a = lay.pos.get(e.from), b = lay.pos.get(e.to);
      const g = el("g", { class: "edge " + e.kind + (e.errorsPerSecond > 0 ? " errors" : ""), "data-id": e.id }, svg);
      let d, lx, ly, anchor = "middle";
      if (b.x > a.x) {
        // The label sits at the arrow's head, where edges of one caller
        // have already parted.
        const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
        d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
        lx = x2 - 8; ly = y2 - 6; anchor = "end";
      } else {
        // Back or same-column edge: a loop under the boxes.
        const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y + NODE_H, dip = Math.max(y1, y2) + 28;
        d = `M ${x1} ${y1} C ${x1} ${dip}, ${x2} ${dip}, ${x2} ${y2}`;
        lx = (x1 + x2) / 2; ly = dip;
      }
      el("path", { d, "marker-end": "url(#arrow)" }, g);
      const label = edgeLabel(e, lay.nodes.find((n) => n.id === e.to));
      label.forEach((l, i) => text(g, lx, ly - (label.length - 1 - i) * 13, l.s, l.cls).setAttribute("text-anchor", anchor));
      if (q !== "" && !match(lay.nodes.find((n) => n.id === e.from)) && !match(lay.nodes.find((n) => n.id === e.to))) g.classList.add("dim");
    }
    for (const n of lay.nodes) {
      const p = lay.pos.get(n.id);
      const g = el("g", { class: "node " + healthClass(n.health), "data-id": n.id, transform: `translate(${p.x},${p.y})` }, svg);
      if (q !== "") g.classList.add(match(n) ? "match" : "dim");
      if (opts.selected === n.id) g.classList.add("match");
      const title = el("title", {}, g);
      title.textContent = n.id + " — " + n.health + (n.nacks ? "\n" + n.nacks.join("\n") : "");
      el("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 5 }, g);
      text(g, 8, 17, n.kind === "group" ? n.name + " (" + n.members + ")" : n.name);
      const kind = n.kind === "group" ? "namespace, collapsed" : n.kind === "service" ? n.proxy : n.kind === "gateway" ? n.proxy + " gateway" : "external";
      text(g, 8, 35, kind, "kind");
      let vx = 8 + 7 * kind.length + 8;
      for (const ver of n.versions || []) {
        const w = 8 + 7 * ver.name.length;
        if (vx + w > NODE_W - 4) break;
        const chip = el("g", { class: "version " + healthClass(ver.health), transform: `translate(${vx},25)` }, g);
        el("rect", { width: w, height: 14, rx: 3, class: "swatch-rect h-" + healthClass(ver.health) }, chip);
        const vt = text(chip, 4, 11, ver.name);
        vt.setAttribute("fill", "#fff");
        const vtitle = el("title", {}, chip);
        vtitle.textContent = ver.class + ": " + ver.health + " (" + ver.proxies + " proxies)";
        vx += w + 4;
      }
      g.addEventListener("click", () => (n.kind === "group" ? opts.onToggleGroup(n.name) : opts.onSelect(n.id)));
    }
    container.replaceChildren(svg);
  }

  return { layout, draw, visible, layers, LARGE, EXTERNAL_GROUP, healthClass, groupOf };
})();
