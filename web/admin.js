// The operator's console: sign in with the admin token (kept in sessionStorage, sent as a
// Bearer header, never in a URL), the live index, rebuild with live progress, roll back,
// upload a page version with a server-side preview, the builds, the question log and the
// sections of the live index. Every piece of text is inserted with textContent.
"use strict";

(() => {
  const STORE_TOKEN = "restake-qa.admin-token";
  const POLL_MS = 400;
  const $ = (id) => document.getElementById(id);

  const session = {
    get() { try { return window.sessionStorage.getItem(STORE_TOKEN) || ""; } catch { return ""; } },
    set(v) { try { window.sessionStorage.setItem(STORE_TOKEN, v); } catch { /* kept in memory only */ } },
    clear() { try { window.sessionStorage.removeItem(STORE_TOKEN); } catch { /* nothing kept */ } },
  };
  let token = session.get();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(value) {
    try {
      const url = new URL(String(value));
      if (url.protocol === "https:") return url.href;
    } catch { /* not a URL */ }
    return null;
  }

  function link(href, text) {
    const url = safeUrl(href);
    if (!url) return el("span", null, text);
    const a = el("a", null, text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }

  function show(node, visible) { node.hidden = !visible; }

  // the API -----------------------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}`, ...(options.headers || {}) };
    let res;
    try {
      res = await fetch(path, { ...options, headers });
    } catch {
      throw new ApiFailure(0, "network", "Could not reach the server.", null);
    }
    if (options.raw && res.ok) return res;
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    if (!res.ok) {
      const error = body && body.error ? body.error : {};
      if (res.status === 401 && !$("console").hidden) signOut("The server no longer accepts your token; sign in again.");
      throw new ApiFailure(res.status, error.code || "http_error", error.message || `HTTP ${res.status}`, error);
    }
    return body;
  }

  function failureText(err) {
    if (!(err instanceof ApiFailure)) return "Something went wrong in the page.";
    if (err.status === 401) return "Wrong token: the server did not accept it.";
    if (err.status === 403 && err.code === "admin_disabled") {
      return "The console is off on this server: set RESTAKE_QA_ADMIN_TOKEN and restart it.";
    }
    return err.status ? `${err.message} (${err.status} ${err.code})` : err.message;
  }

  // signing in -------------------------------------------------------------------------------
  const signIn = { form: $("sign-in-form"), input: $("token"), error: $("sign-in-error") };

  async function enter(candidate) {
    token = candidate;
    try {
      const status = await api("api/admin/status");
      session.set(token);
      show(signIn.error, false);
      show($("sign-in"), false);
      show($("console"), true);
      show($("sign-out"), true);
      renderStatus(status);
      loadBuilds();
      loadQuestions();
      loadPages();
      if (status.reindex) followJob(status.reindex.id);
      return true;
    } catch (err) {
      token = "";
      session.clear();
      signIn.error.textContent = failureText(err);
      show(signIn.error, true);
      signIn.input.setAttribute("aria-invalid", "true");
      signIn.input.focus();
      return false;
    }
  }

  function signOut(message) {
    token = "";
    session.clear();
    show($("console"), false);
    show($("sign-out"), false);
    show($("sign-in"), true);
    signIn.input.value = "";
    if (message) {
      signIn.error.textContent = message;
      show(signIn.error, true);
    }
  }

  signIn.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = signIn.input.value.trim();
    if (!value) {
      signIn.error.textContent = "Enter the admin token.";
      show(signIn.error, true);
      return;
    }
    signIn.input.removeAttribute("aria-invalid");
    enter(value);
  });
  $("sign-out").addEventListener("click", () => signOut(""));

  // the live index -----------------------------------------------------------------------------
  let live = null;

  async function refreshStatus() {
    try {
      renderStatus(await api("api/admin/status"));
    } catch (err) {
      $("live-message").textContent = failureText(err);
    }
  }

  function renderStatus(status) {
    live = status;
    const facts = $("live-facts");
    const index = status.index;
    const rows = [];
    if (index) {
      const c = index.counts || {};
      rows.push(["Version", index.version, "live-version"]);
      rows.push(["Built", when(index.built_at)]);
      rows.push(["Model", `${index.model.id} (${index.model.dimension} dimensions)`]);
      rows.push(["Counts", `${c.sections} sections · ${c.chunks} chunks · ${c.sentences} sentences`]);
      rows.push(["Previous build", index.previous || "none kept"]);
    } else {
      rows.push(["Version", "no index is live", "live-version"]);
    }
    if (status.health && status.health.error) rows.push(["Problem", status.health.error]);
    const log = status.question_log || {};
    rows.push(["Question log", log.enabled
      ? `${log.questions} questions · ${log.refused} refused · ${log.thumbs_down} thumbs-down · kept ${log.retention_days || "∞"} days`
      : "off"]);
    facts.replaceChildren(...rows.flatMap(([term, value, id]) => {
      const dd = el("dd", null, value);
      if (id) dd.id = id;
      return [el("dt", null, term), dd];
    }));
    const note = $("corpus-note");
    const corpus = status.corpus || {};
    if (corpus.error) note.textContent = `The corpus does not parse: ${corpus.error}`;
    else if (corpus.changed_since_build) note.textContent = "The corpus folder has changes that are not built yet.";
    show(note, Boolean(corpus.error || corpus.changed_since_build));
    $("rollback").disabled = !(index && index.previous);
  }

  // rebuilds and their progress --------------------------------------------------------------
  let polling = null;

  async function startRebuild() {
    $("live-message").textContent = "";
    try {
      const job = await api("api/reindex", { method: "POST" });
      followJob(job.job_id);
    } catch (err) {
      if (err.code === "reindex_running" && err.body && err.body.job_id) followJob(err.body.job_id);
      else $("live-message").textContent = failureText(err);
    }
  }

  function followJob(id) {
    clearTimeout(polling);
    show($("job"), true);
    $("job-id").textContent = id;
    $("job-status").textContent = "Running…";
    $("job-progress").replaceChildren();
    setBusy(true);
    const poll = async () => {
      let job;
      try {
        job = await api(`api/reindex/${encodeURIComponent(id)}`);
      } catch (err) {
        $("job-status").textContent = failureText(err);
        setBusy(false);
        return;
      }
      const list = $("job-progress");
      for (const line of job.progress.slice(list.children.length)) list.append(el("li", null, line));
      if (job.status === "running") {
        polling = setTimeout(poll, POLL_MS);
        return;
      }
      setBusy(false);
      $("job-status").textContent = job.status === "done" ? summary(job.report) : `Failed: ${job.error}`;
      $("job-status").className = `job-status ${job.status}`;
      refreshStatus();
      loadBuilds();
      loadPages();
    };
    poll();
  }

  function summary(report) {
    if (!report) return "Done.";
    if (report.up_to_date) return `Done: ${report.version} is up to date; nothing changed.`;
    return `Done: published ${report.version} — sections +${report.sections_added.length} ` +
      `~${report.sections_changed.length} −${report.sections_removed.length}, ` +
      `${report.embedded} texts embedded, ${report.reused} reused.`;
  }

  function setBusy(busy) {
    for (const id of ["rebuild", "rollback", "save", "rollback-yes"]) $(id).disabled = busy;
    if (!busy) $("rollback").disabled = !(live && live.index && live.index.previous);
  }

  $("rebuild").addEventListener("click", startRebuild);

  // rollback, confirmed inline -------------------------------------------------------------------
  $("rollback").addEventListener("click", () => {
    const target = live && live.index && live.index.previous;
    if (!target) return;
    $("rollback-question").textContent = `Make ${target} live again, with the corpus files it was built from?`;
    show($("rollback-confirm"), true);
    $("rollback-yes").focus();
  });
  $("rollback-no").addEventListener("click", () => {
    show($("rollback-confirm"), false);
    $("rollback").focus();
  });
  $("rollback-yes").addEventListener("click", async () => {
    show($("rollback-confirm"), false);
    setBusy(true);
    try {
      const outcome = await api("api/admin/rollback", { method: "POST" });
      const restored = outcome.content
        ? ` Corpus files restored: ${outcome.content.restored.concat(outcome.content.removed).join(", ") || "none needed"}.`
        : ` ${outcome.content_note || ""}`;
      $("live-message").textContent = `Rolled back: ${outcome.version} is live again.${restored}`;
    } catch (err) {
      $("live-message").textContent = failureText(err);
    }
    setBusy(false);
    refreshStatus();
    loadBuilds();
    loadPages();
  });

  // uploads ----------------------------------------------------------------------------------
  let previewed = null; // {file, result}

  function uploadError(message) {
    $("upload-error").textContent = message;
    show($("upload-error"), Boolean(message));
  }

  $("page-file").addEventListener("change", () => {
    previewed = null;
    show($("preview"), false);
    uploadError("");
  });

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("page-file").files[0];
    if (!file) {
      uploadError("Choose a .md file first.");
      return;
    }
    if (!file.name.endsWith(".md")) {
      uploadError(`${file.name} is not a .md file.`);
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    uploadError("");
    try {
      const result = await api("api/admin/pages/preview", { method: "POST", body: form });
      previewed = { file, result };
      renderPreview(result);
    } catch (err) {
      previewed = null;
      show($("preview"), false);
      uploadError(failureText(err));
    }
  });

  function problemList(box, items, render) {
    const list = box.querySelector("ul");
    list.replaceChildren(...items.map((item) => el("li", null, render(item))));
    show(box, items.length > 0);
  }

  function renderPreview(r) {
    $("preview-title").textContent = `Preview of ${r.name} (${r.lang})`;
    const counts = { added: 0, changed: 0, unchanged: 0 };
    for (const s of r.sections) counts[s.status] += 1;
    $("preview-summary").textContent = (r.replaces ? `Replaces the corpus's ${r.name}. ` : `A new page: ${r.page_url}. `) +
      (r.identical ? "It is identical to the file in the corpus. " : "") +
      `${r.sections.length} sections: ${counts.added} added, ${counts.changed} changed, ${counts.unchanged} unchanged, ` +
      `${r.removed.length} removed compared with the live page.`;
    problemList($("preview-errors"), r.errors, (x) => x);
    problemList($("preview-warnings"), r.warnings, (w) => `${w.line ? `line ${w.line}: ` : ""}${w.message} [${w.kind}]`);
    const changes = $("preview-changes");
    changes.querySelector(".changes").replaceChildren(...r.changes.map((c) => {
      const box = el("div", "change");
      box.append(el("p", "change-title", `${c.title} (#${c.anchor})`));
      if (c.title_before) box.append(el("p", "muted", `title was: ${c.title_before}`));
      for (const text of c.removed) box.append(el("p", "removed", text));
      for (const text of c.added) box.append(el("p", "added", text));
      box.lang = "zh-Hant-TW";
      return box;
    }));
    show(changes, r.changes.length > 0);
    $("preview-sections").querySelector("tbody").replaceChildren(...r.sections.map((s) => {
      const tr = el("tr", `status-${s.status}`);
      const title = el("td", null, s.title);
      title.lang = "zh-Hant-TW";
      tr.append(title, el("td", "mono", s.anchor ? `#${s.anchor}` : "(top)"), el("td", null, `${s.lines[0]}–${s.lines[1]}`),
        el("td", null, s.chunks), el("td", "status", s.status));
      return tr;
    }));
    $("save").disabled = !r.can_save;
    show($("preview"), true);
    $("preview-title").scrollIntoView({ block: "nearest" });
  }

  $("discard").addEventListener("click", () => {
    previewed = null;
    $("page-file").value = "";
    show($("preview"), false);
  });

  $("save").addEventListener("click", async () => {
    if (!previewed) return;
    const form = new FormData();
    form.append("file", previewed.file, previewed.file.name);
    form.append("expected_sha256", previewed.result.replaces ? previewed.result.replaces.sha256 : "");
    try {
      const saved = await api("api/admin/pages", { method: "POST", body: form });
      $("live-message").textContent = `Saved ${saved.name}` + (saved.kept ? `; the previous file is kept in ${saved.kept}.` : ".");
      show($("preview"), false);
      $("page-file").value = "";
      previewed = null;
      if (saved.job_id) followJob(saved.job_id);
      $("live").scrollIntoView({ block: "start" });
    } catch (err) {
      uploadError(failureText(err));
    }
  });

  // builds -----------------------------------------------------------------------------------
  function changeText(changes) {
    if (!changes) return "not recorded";
    const n = (k) => (changes[k] || []).length;
    return `+${n("sections_added")} ~${n("sections_changed")} −${n("sections_removed")}`;
  }

  async function loadBuilds() {
    let data;
    try {
      data = await api("api/admin/builds");
    } catch (err) {
      $("builds-table").querySelector("tbody").replaceChildren(el("tr", null, failureText(err)));
      return;
    }
    $("builds-table").querySelector("tbody").replaceChildren(...data.builds.map((b) => {
      const tr = el("tr", b.live ? "live" : "");
      const version = el("td", "mono", b.version);
      if (b.live) version.append(" ", el("span", "badge", "live"));
      if (b.version === data.rollback_to) version.append(" ", el("span", "badge subtle", "rollback target"));
      const changes = el("td");
      if (b.changes) {
        const details = el("details");
        details.append(el("summary", null, changeText(b.changes)));
        for (const [label, key] of [["added", "sections_added"], ["changed", "sections_changed"], ["removed", "sections_removed"]]) {
          for (const item of b.changes[key] || []) details.append(el("p", `change-${label}`, `${label}: ${item}`));
        }
        changes.append(details);
      } else {
        changes.textContent = b.error || "not recorded";
      }
      tr.append(version, el("td", null, when(b.built_at)), el("td", null, b.counts ? b.counts.sections : "—"), changes,
        el("td", null, b.sources ? "yes" : "no"));
      return tr;
    }));
  }

  // the question log -------------------------------------------------------------------------
  function questionItem(q) {
    const li = el("li", "question");
    const text = el("p", "question-text", q.question);
    text.lang = q.language === "en" ? "en" : q.language === "zh-cn" ? "zh-Hans-CN" : "zh-Hant-TW";
    const meta = [];
    if (q.refused) meta.push(`refused${q.refusal_reason ? ` (${q.refusal_reason})` : ""}`);
    if (q.feedback === "down") meta.push("thumbs-down");
    if (q.feedback === "up") meta.push("thumbs-up");
    meta.push(q.language || "?", when(q.asked_at), `index ${q.index_version || "?"}`);
    if (typeof q.top_score === "number") meta.push(`score ${q.top_score.toFixed(3)}`);
    li.append(text, el("p", "muted small", meta.join(" · ")));
    return li;
  }

  async function loadQuestions() {
    const kind = $("question-kind").value;
    const box = $("question-groups");
    let data;
    try {
      data = await api(`api/admin/questions?kind=${encodeURIComponent(kind)}`);
    } catch (err) {
      box.replaceChildren(el("p", "error", failureText(err)));
      $("export").disabled = true;
      return;
    }
    const s = data.stats;
    $("question-stats").textContent = `${s.questions} questions logged (${s.refused} refused, ` +
      `${s.thumbs_up} thumbs-up, ${s.thumbs_down} thumbs-down), kept ${s.retention_days || "∞"} days.`;
    $("export").disabled = data.groups.length === 0;
    if (!data.groups.length) {
      box.replaceChildren(el("p", "muted", "No such questions yet."));
      return;
    }
    box.replaceChildren(...data.groups.map((g) => {
      const section = el("section", "group");
      const h = el("h3");
      const title = g.section.title || "(no nearest section)";
      h.append(g.section.url ? link(g.section.url, title) : title, " ",
        el("span", "muted small", `${g.section.anchor ? `#${g.section.anchor} · ` : ""}${g.questions.length}`));
      h.lang = "zh-Hant-TW";
      const list = el("ul", "questions");
      list.append(...g.questions.map(questionItem));
      section.append(h, list);
      return section;
    }));
  }

  $("question-kind").addEventListener("change", loadQuestions);
  $("questions-refresh").addEventListener("click", loadQuestions);
  $("export").addEventListener("click", async () => {
    const kind = $("question-kind").value;
    try {
      const res = await api(`api/admin/questions/export?kind=${encodeURIComponent(kind)}`, { raw: true });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a");
      a.href = url;
      a.download = `questions-${kind}.jsonl`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      $("question-stats").textContent = failureText(err);
    }
  });

  // the sections browser -----------------------------------------------------------------------
  async function loadPages() {
    const select = $("page-select");
    let data;
    try {
      data = await api("api/admin/pages");
    } catch (err) {
      $("page-sections").replaceChildren(el("p", "error", failureText(err)));
      return;
    }
    const chosen = select.value;
    const byLang = new Map();
    for (const p of data.pages) {
      if (!byLang.has(p.lang)) byLang.set(p.lang, []);
      byLang.get(p.lang).push(p);
    }
    select.replaceChildren(...[...byLang].map(([lang, pages]) => {
      const group = el("optgroup");
      group.label = lang;
      group.append(...pages.map((p) => {
        const option = el("option", null, `${p.source} — ${p.title} (${p.sections} sections, ${p.chunks} chunks)`);
        option.value = p.source;
        return option;
      }));
      return group;
    }));
    if (chosen && data.pages.some((p) => p.source === chosen)) select.value = chosen;
    if (select.value) loadPage(select.value);
  }

  async function loadPage(source) {
    const box = $("page-sections");
    let data;
    try {
      data = await api(`api/admin/pages/${encodeURIComponent(source)}`);
    } catch (err) {
      box.replaceChildren(el("p", "error", failureText(err)));
      return;
    }
    const lang = data.lang === "en" ? "en" : data.lang === "zh" || data.lang === "zh-cn" ? "zh-Hans-CN" : "zh-Hant-TW";
    box.replaceChildren(...data.sections.map((s) => {
      const details = el("details", "section");
      const summaryLine = el("summary");
      const title = el("span", "section-title", s.title);
      title.lang = lang;
      summaryLine.append(title, " ", el("span", "mono muted", s.anchor ? `#${s.anchor}` : "(top)"), " ",
        el("span", "muted small", `${s.chunks.length} chunks · ${s.sentences.length} sentences · lines ${s.lines[0]}–${s.lines[1]}`));
      details.append(summaryLine);
      details.append(el("h3", "sub", "Chunks"));
      const chunks = el("ol", "chunks");
      chunks.lang = lang;
      chunks.append(...s.chunks.map((c) => {
        const li = el("li", null, c.text);
        li.append(" ", el("span", "muted small", `${c.tokens} tokens`));
        return li;
      }));
      details.append(chunks, el("h3", "sub", "Sentences an answer may quote"));
      const sentences = el("ol", "sentences");
      sentences.lang = lang;
      sentences.append(...s.sentences.map((x) => el("li", null, x)));
      details.append(sentences, link(s.url, "Open on ethereum.org"));
      return details;
    }));
  }

  $("page-select").addEventListener("change", () => loadPage($("page-select").value));

  // start ------------------------------------------------------------------------------------
  if (token) enter(token);
  else signIn.input.focus();
})();
