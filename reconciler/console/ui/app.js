// app.js: the console's views. It polls the read-only status API every
// few seconds (only what the open view needs), builds every element with
// DOM calls and textContent (never parsed markup of API data), and sends
// nothing but GET requests.
"use strict";

(() => {
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  const state = {
    view: "graph", focus: "", selected: "", scrolledFor: "", search: "", collapsed: new Set(), autoCollapsed: false,
    graph: null, proxies: null, revisions: null, tests: null, status: null, drift: null, proxy: "", proxyTab: "config",
  };

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  // link makes an external link: a new tab, no referrer, no opener.
  const link = (href, label) => h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
  const statusTag = (s) => h("span", { class: "status " + String(s).replace(/ /g, "-") }, s);
  const when = (t) => (t ? new Date(t).toLocaleString() : "");

  async function get(path) {
    const r = await fetch(path, { method: "GET", headers: { Accept: "application/json" }, cache: "no-store" });
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      const err = new Error(path + ": " + msg);
      err.status = r.status;
      throw err;
    }
    return r.json();
  }

  function showError(err) {
    const f = $("error");
    if (!err) { f.hidden = true; return; }
    f.hidden = false;
    f.textContent = String(err.message || err);
  }

  // ---- summary ----
  function renderSummary() {
    const s = state.status;
    if (!s) return;
    const kids = [];
    kids.push(s.live ? "live " + s.live.short + (s.live.message ? " · " + s.live.message : "") : "nothing served yet");
    if (s.lastAttempt && s.lastAttempt.result === "failed") kids.push(" · ", h("span", { class: "bad" }, "newest " + s.lastAttempt.revision.short + " failed"));
    kids.push(" · " + s.classes + " classes");
    $("summary").replaceChildren(...kids);
  }

  // ---- graph ----
  function renderGraph() {
    const g = state.graph;
    if (!g) return;
    // A large mesh opens with its namespaces collapsed, once: the user's
    // own choices are kept across polls.
    if (!state.autoCollapsed && g.nodes.length > GitmeshGraph.LARGE) {
      state.autoCollapsed = true;
      const groups = new Set(g.nodes.map(GitmeshGraph.groupOf));
      if (groups.size > 1) for (const grp of groups) state.collapsed.add(grp);
    }
    const lay = GitmeshGraph.layout(g, state);
    const box = $("graph");
    $("unfocus").hidden = !state.focus;
    let note = g.nodes.length + " nodes, " + g.edges.length + " edges, revision " + (g.revision || "none").slice(0, 12);
    if (g.note) note += " · " + g.note;
    if (g.rates && g.rates.error) note += " · rates unavailable: " + g.rates.error;
    else if (g.rates && g.rates.windowSeconds) note += " · rates over " + g.rates.windowSeconds + "s";
    $("graph-note").textContent = note;
    if (lay.large) {
      renderList(box, g);
    } else {
      GitmeshGraph.draw(box, lay, {
        search: state.search, selected: state.selected,
        onSelect: (id) => { state.focus = id; state.selected = id; renderGraph(); },
        onToggleGroup: (grp) => { state.collapsed.has(grp) ? state.collapsed.delete(grp) : state.collapsed.add(grp); renderGraph(); },
      });
      // A new focus brings its node into sight; polls keep the user's scroll.
      if (state.focus !== state.scrolledFor) {
        state.scrolledFor = state.focus;
        const at = state.focus && lay.pos.get(state.focus);
        box.scrollLeft = at ? Math.max(0, at.x - 120) : 0;
        box.scrollTop = at ? Math.max(0, at.y - 120) : 0;
      }
    }
    box.dataset.ready = "true";
    renderDetails();
    renderProblems();
  }

  // renderList is the view of a mesh too large to draw: a virtualised
  // list (only the rows in sight exist) filtered by the search box; a
  // click focuses a node and draws its neighbourhood.
  function renderList(box, g) {
    const q = state.search.toLowerCase();
    const rows = g.nodes.filter((n) => q === "" || n.name.toLowerCase().includes(q));
    const ROW = 28;
    const list = h("div", { class: "vlist", "data-rows": String(rows.length) });
    const spacer = h("div");
    spacer.style.height = rows.length * ROW + "px";
    list.append(spacer);
    const paint = () => {
      const first = Math.floor(list.scrollTop / ROW), last = Math.min(rows.length, first + Math.ceil(list.clientHeight / ROW) + 5);
      const items = [];
      for (let i = first; i < last; i++) {
        const n = rows[i];
        const r = h("div", { class: "row", "data-id": n.id, onclick: () => { state.focus = n.id; state.selected = n.id; renderGraph(); } },
          h("span", { class: "swatch h-" + GitmeshGraph.healthClass(n.health) }),
          h("span", { class: "name" }, n.name), h("span", { class: "ns" }, GitmeshGraph.groupOf(n)),
          h("span", { class: "muted" }, n.health + " · " + n.proxies + " proxies"));
        r.style.top = i * ROW + "px";
        items.push(r);
      }
      list.replaceChildren(spacer, ...items);
    };
    list.addEventListener("scroll", paint);
    // A poll redraws the list: keep the user's place in it.
    const old = box.querySelector(".vlist");
    const top = old ? old.scrollTop : 0;
    box.replaceChildren(h("div", { class: "note list-note" }, rows.length + " nodes: too many to draw; search, or click one to see its neighbours"), list);
    list.scrollTop = top;
    paint();
  }

  function renderDetails() {
    const aside = $("details");
    const n = state.graph && state.graph.nodes.find((x) => x.id === state.selected);
    if (!n) { aside.hidden = true; return; }
    aside.hidden = false;
    const kids = [h("h2", {}, n.name), h("div", { class: "muted" }, n.kind + (n.namespace ? " in " + n.namespace : "") + (n.proxy ? " · " + n.proxy : "")),
      h("p", {}, "health ", statusTag(n.health), " · " + n.proxies + " proxies")];
    if (n.versions) {
      kids.push(h("table", {}, h("tr", {}, h("th", {}, "version"), h("th", {}, "health"), h("th", {}, "proxies")),
        n.versions.map((v) => h("tr", {}, h("td", {}, v.name), h("td", {}, statusTag(v.health)), h("td", {}, String(v.proxies))))));
    }
    if (n.hosts) kids.push(h("p", {}, "hosts: " + n.hosts.join(", ")));
    if (n.tracesUrl) kids.push(h("p", {}, link(n.tracesUrl, "traces of " + n.name + " ↗")));
    for (const t of n.nacks || []) kids.push(h("div", { class: "nack" }, t));
    const edges = state.graph.edges.filter((e) => e.from === n.id || e.to === n.id);
    if (edges.length) kids.push(h("p", { class: "muted" }, edges.length + " edges: " + edges.map((e) => e.from === n.id ? "→ " + e.to : "← " + e.from).join(", ")));
    aside.replaceChildren(...kids);
  }

  // renderProblems lists every node that is not fine, with its NACK text,
  // so a rejection is readable without a click.
  function renderProblems() {
    const bad = state.graph.nodes.filter((n) => n.health === "NACKED" || n.health === "STALE");
    const box = $("problems");
    if (!bad.length) { box.replaceChildren(); return; }
    box.replaceChildren(h("h3", {}, "Proxies out of sync"),
      ...bad.map((n) => h("div", { class: "problem", "data-id": n.id }, statusTag(n.health), " " + n.name + " ",
        (n.nacks || []).map((t) => h("div", { class: "nack" }, t)))));
  }

  // where is a finding's or test's position, linked into the repository
  // browser: the server fills x.link (api.FindingLink owns
  // --repo-url-template and the mesh's path in the repository) whenever
  // a template is configured and the position names a file.
  function where(x) {
    const pos = x.pos && x.pos.file ? x.pos.file + ":" + (x.pos.line || 1) + ":" + (x.pos.col || 1) : "-";
    return x.link ? link(x.link, pos) : pos;
  }

  // ---- revisions ----
  function findingRow(f) {
    return h("tr", { class: "finding" }, h("td", { class: "sev-" + f.severity }, f.severity), h("td", { class: "mono" }, f.code),
      h("td", { class: "mono" }, where(f)), h("td", { class: "mono" }, f.path || ""), h("td", {}, f.message));
  }
  function renderRevisions() {
    const r = state.revisions;
    if (!r) return;
    const kids = [];
    kids.push(h("div", { class: "card", id: "live" }, h("h2", {}, "Live"),
      r.live ? [h("div", { class: "mono" }, r.live.id), h("div", {}, r.live.message || ""), h("div", { class: "muted" }, (r.live.author || "") + " · committed " + when(r.live.committed) + " · applied " + when(r.live.appliedAt) + (r.live.restored ? " · restored from disk" : ""))]
        : h("div", { class: "muted" }, "nothing served yet")));
    if (r.failed) {
      const a = r.failed;
      kids.push(h("div", { class: "card failed", id: "failed" }, h("h2", {}, "Newest revision failed: ", h("span", { class: "mono" }, a.revision.short)),
        h("div", {}, a.revision.message || ""), h("div", { class: "muted" }, (a.revision.author || "") + " · step " + a.failedStep + " · " + when(a.startedAt)),
        h("pre", {}, a.error || ""),
        h("table", { id: "findings" }, h("tr", {}, ["severity", "code", "where", "path", "finding"].map((c) => h("th", {}, c))),
          (r.findings || []).map(findingRow)),
        a.diagnosticsTotal > (r.findings || []).length ? h("div", { class: "muted" }, a.diagnosticsTotal + " findings in all; the first " + (r.findings || []).length + " are listed") : null));
    }
    kids.push(h("div", { class: "card" }, h("h2", {}, "Applied revisions"),
      h("table", { id: "history" }, h("tr", {}, ["revision", "message", "author", "committed", "applied"].map((c) => h("th", {}, c))),
        r.applied.map((v) => h("tr", {}, h("td", { class: "mono" }, v.short), h("td", {}, v.message || ""), h("td", {}, v.author || ""), h("td", {}, when(v.committed)), h("td", {}, when(v.appliedAt)))))));
    $("view-revisions").replaceChildren(...kids);
  }

  // ---- tests ----
  // The traffic tests as the reconciler's pipeline judged them: the live
  // revision's and, when the newest revision failed after running them,
  // its own (the failing ones are also its GM1104 findings).
  function testRow(x) {
    return h("tr", { class: "test " + (x.passed ? "passed" : "failed"), "data-test": x.name },
      h("td", {}, statusTag(x.passed ? "passed" : "failed")),
      h("td", { class: "mono" }, x.name), h("td", { class: "mono" }, where(x)),
      h("td", {}, x.outcome || ""), h("td", {}, (x.problems || []).map((p) => h("div", { class: "nack" }, p))));
  }
  function testTable(id, run) {
    const kids = [h("div", { class: "muted" }, run.total + " tests · " + run.passed + " passed · " + run.failed + " failed" +
      (run.total > run.tests.length ? " · the first " + run.tests.length + " listed, failed first" : ""))];
    if (run.tests.length) {
      kids.push(h("table", { id }, h("tr", {}, ["result", "test", "where", "outcome", "problems"].map((c) => h("th", {}, c))),
        // Failed tests first (a stable sort: each part keeps name order).
        [...run.tests].sort((a, b) => a.passed - b.passed).map(testRow)));
    } else {
      kids.push(h("p", { class: "muted" }, "the repository declares no traffic tests"));
    }
    return kids;
  }
  function renderTests() {
    const r = state.tests;
    if (!r) return;
    const kids = [];
    if (r.failed) {
      kids.push(h("div", { class: "card failed", id: "failed-tests-card" }, h("h2", {}, "Newest revision failed: ", h("span", { class: "mono" }, r.failed.revision.slice(0, 12))),
        testTable("failed-tests", r.failed)));
    }
    kids.push(h("div", { class: "card", id: "live-tests-card" }, h("h2", {}, "Live revision", r.live ? [": ", h("span", { class: "mono" }, r.live.revision.slice(0, 12))] : ""),
      r.live ? testTable("live-tests", r.live) : h("p", { class: "muted" }, r.note || "")));
    $("view-tests").replaceChildren(...kids);
  }

  // ---- proxies ----
  const typeName = (u) => ({ "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "SDS", "type.googleapis.com/envoy.config.cluster.v3.Cluster": "CDS",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS", "type.googleapis.com/envoy.config.listener.v3.Listener": "LDS",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "RDS" }[u] || u);
  function renderProxies() {
    const p = state.proxies;
    if (!p) return;
    const rows = p.proxies.map((x) => h("tr", { class: "clickable" + (x.nodeId === state.proxy ? " selected" : ""), "data-node": x.nodeId, onclick: () => selectProxy(x.nodeId) },
      h("td", { class: "mono" }, x.nodeId), h("td", { class: "mono" }, x.class), h("td", {}, x.protocol), h("td", {}, statusTag(x.status)),
      h("td", { class: "mono" }, (x.revision || "").slice(0, 12)),
      h("td", {}, x.types.map((t) => h("div", { class: "type" }, typeName(t.typeUrl) + " ", statusTag(t.status),
        " acked " + (t.ackedVersion || "-"), t.lastNack ? h("div", { class: "nack" }, "NACK " + t.lastNack.version + ": " + t.lastNack.error) : null)))));
    const kids = [h("table", { id: "proxies" }, h("tr", {}, ["node", "class", "protocol", "status", "revision", "types (ACK / NACK)"].map((c) => h("th", {}, c))), rows)];
    if (!p.proxies.length) kids.push(h("p", { class: "muted" }, "no proxy connected"));
    if (p.rejections.length) {
      kids.push(h("h3", {}, "Refused streams"), h("table", {}, h("tr", {}, ["node", "peer", "reason", "error", "count", "last"].map((c) => h("th", {}, c))),
        p.rejections.map((r) => h("tr", {}, h("td", { class: "mono" }, r.nodeId), h("td", {}, r.peer || ""), h("td", {}, r.reason || r.code), h("td", {}, r.error), h("td", {}, String(r.count || 1)), h("td", {}, when(r.at))))));
    }
    $("proxy-list").replaceChildren(...kids);
  }
  async function selectProxy(node) {
    state.proxy = node;
    renderProxies();
    await renderProxyDetail();
  }
  async function renderProxyDetail() {
    const box = $("proxy-detail");
    if (!state.proxy) { box.hidden = true; return; }
    box.hidden = false;
    const enc = encodeURIComponent(state.proxy);
    const tabs = h("div", { class: "toolbar" }, h("strong", { class: "mono" }, state.proxy),
      h("button", { type: "button", id: "show-config", onclick: () => { state.proxyTab = "config"; renderProxyDetail(); } }, "config dump"),
      h("button", { type: "button", id: "show-diff", onclick: () => { state.proxyTab = "diff"; renderProxyDetail(); } }, "last revision's diff"));
    let body;
    try {
      if (state.proxyTab === "config") {
        body = h("pre", { id: "config-dump" }, JSON.stringify(await get("/api/v1/proxies/" + enc + "/config"), null, 2));
      } else {
        const d = await get("/api/v1/proxies/" + enc + "/diff");
        body = h("div", { id: "proxy-diff" }, h("p", { class: "muted" }, (d.previousRevision ? d.previousRevision.slice(0, 12) + " → " : "") + d.revision.slice(0, 12) + " " + (d.change || "") + (d.note ? " · " + d.note : "")),
          d.types.map((t) => h("div", { class: "card" }, h("h2", {}, t.type),
            (t.added || []).map((n) => h("div", { class: "mono" }, "+ " + n)), (t.removed || []).map((n) => h("div", { class: "mono" }, "- " + n)),
            (t.changed || []).map((c) => h("div", {}, h("div", { class: "mono" }, "~ " + c.name), h("pre", {}, c.lines.join("\n")))))));
      }
    } catch (err) {
      body = h("p", { class: "nack" }, String(err.message));
    }
    box.replaceChildren(tabs, body);
  }

  // ---- drift ----
  function renderDrift() {
    const d = state.drift;
    const box = $("view-drift");
    if (d === null) return;
    if (d.unavailable) { box.replaceChildren(h("p", { class: "muted" }, d.unavailable)); return; }
    box.replaceChildren(...[h("div", { class: "card" }, h("h2", {}, "Drift report"), h("div", { class: "muted" }, "generated " + when(d.generatedAt) + " · serving " + ((d.revision && d.revision.served) || "nothing").slice(0, 12) +
        (d.revision && d.revision.newest ? " · newest " + d.revision.newest.slice(0, 12) + ": " + (d.revision.newestStatus || "") : "") +
        (d.publish && d.publish.enabled ? " · committed " + (d.publish.lastCommit || "not yet").slice(0, 12) : ""))),
      h("table", { id: "drift" }, h("tr", {}, ["severity", "code", "objects", "finding", "since"].map((c) => h("th", {}, c))),
        d.findings.map((f) => h("tr", {}, h("td", { class: "sev-" + f.severity }, f.severity), h("td", { class: "mono" }, f.code), h("td", { class: "mono" }, f.objects.join("\n")), h("td", {}, f.message), h("td", {}, when(f.firstSeen))))),
      d.findings.length ? null : h("p", { class: "muted" }, "no drift: the mesh runs what Git says")].filter(Boolean));
  }

  // ---- polling ----
  async function poll() {
    try {
      state.status = await get("/api/v1/status");
      renderSummary();
      switch (state.view) {
        case "graph": state.graph = await get("/api/v1/graph"); renderGraph(); break;
        case "revisions": state.revisions = await get("/api/v1/revisions"); renderRevisions(); break;
        case "tests": state.tests = await get("/api/v1/tests"); renderTests(); break;
        case "proxies": state.proxies = await get("/api/v1/proxies"); renderProxies(); break;
        case "drift":
          try { state.drift = await get("/api/v1/drift"); } catch (err) {
            if (err.status !== 404 && err.status !== 503) throw err;
            state.drift = { unavailable: err.status === 404 ? "this gitmesh serves no drift report" : "no drift report yet" };
          }
          renderDrift();
          break;
      }
      showError(null);
    } catch (err) {
      showError(err);
    }
  }
  let timer = 0;
  function schedule() { clearTimeout(timer); poll().finally(() => { timer = setTimeout(schedule, POLL_MS); }); }

  const VIEWS = ["graph", "revisions", "tests", "proxies", "drift"];
  function show(view) {
    state.view = VIEWS.includes(view) ? view : "graph";
    for (const v of VIEWS) $("view-" + v).hidden = v !== state.view;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
    schedule();
  }

  function legend() {
    $("legend").replaceChildren(...[["SYNCED", "all proxies synced"], ["STALE", "some stale"], ["NACKED", "a proxy rejected its config"], ["NO PROXY", "no proxy connected"], ["UNMANAGED", "no gitmesh proxy"]]
      .map(([s, t]) => h("span", {}, h("span", { class: "swatch h-" + s.replace(/ /g, "-") }), t)));
  }

  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  $("search").addEventListener("input", (e) => { state.search = e.target.value; renderGraph(); });
  $("search").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !state.graph) return;
    const q = state.search.toLowerCase();
    const n = state.graph.nodes.find((x) => x.name.toLowerCase().includes(q));
    if (n) { state.focus = n.id; state.selected = n.id; renderGraph(); }
  });
  $("unfocus").addEventListener("click", () => { state.focus = ""; state.selected = ""; renderGraph(); });
  legend();
  show(location.hash.slice(1));
})();
