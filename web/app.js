// The chat page: asks POST api/answer, renders cited answers, keeps the thread in localStorage.
// Every piece of text (questions, answers, snippets, glossary, UI strings) is inserted with
// textContent / createTextNode; links are only ever made to https://ethereum.org.
"use strict";

(() => {
  const STORE_LANG = "restake-qa.lang";
  const STORE_THREAD = "restake-qa.thread";
  const HISTORY_TURNS = 6; // a few recent turns carry the topic (never more than the server's limit)
  const MAX_STORED_TURNS = 50;
  // The server's limits (GET api/limits); until they arrive nothing is cut on this side.
  const limits = { maxQuestionChars: Infinity, maxHistoryTurns: HISTORY_TURNS };
  const REQUEST_TIMEOUT_MS = 60000;
  // The page in each interface language (answers quote the asker's version of it).
  const SOURCE_PAGES = {
    "zh-tw": "https://ethereum.org/zh-tw/restaking/",
    "zh-cn": "https://ethereum.org/zh/restaking/",
    en: "https://ethereum.org/en/restaking/",
  };
  // Words that contain a glossary term but mean something else (去中心化 is not 中心化).
  const NOT_TERMS = ["去中心化"];

  const I18N = {
    "zh-tw": {
      htmlLang: "zh-Hant-TW",
      pageTitle: "再質押問答 · ethereum.org",
      title: "再質押問答",
      tagline: "根據 ethereum.org 再質押頁面回答",
      skip: "跳到提問欄",
      languageLabel: "介面語言",
      clear: "清除對話",
      welcomeTitle: "您好！我可以回答關於再質押的問題。",
      welcomeBefore: "我只根據",
      welcomeSource: "ethereum.org 的再質押頁面",
      welcomeAfter: "回答，每一句都會附上出處，點擊編號即可查看原文段落。頁面沒有提到的內容，我會直接告訴您。",
      chipsTitle: "可以試試這些問題：",
      chips: ["什麼是再質押？", "再質押有哪些風險？", "什麼是 AVS？", "什麼是罰沒？", "再質押能賺多少錢？", "提取再質押的 ETH 要等多久？"],
      threadLabel: "對話",
      composerLabel: "提問",
      questionLabel: "您的問題",
      placeholder: "輸入關於再質押的問題…",
      sendLabel: "送出問題",
      hint: "Enter 送出，Shift+Enter 換行",
      you: "您的問題",
      assistant: "回答",
      thinking: "正在查找頁面內容…",
      sources: "來源",
      openSection: "在 ethereum.org 開啟此段落",
      original: "繁體中文原文",
      newTab: "（在新分頁開啟）",
      citeLabel: (n, title) => `來源 ${n}：${title}`,
      termLabel: (term) => `詞彙說明：${term}`,
      english: "英文",
      suggestions: "相關章節：",
      sourceColumn: "出處",
      resolved: "依上文理解為：",
      copy: "複製回答",
      copied: "已複製",
      copyFailed: "無法複製",
      pageTop: "頁首",
      errorNetwork: "無法連線到伺服器，請確認網路或伺服器後再試一次。",
      errorTimeout: "伺服器太久沒有回應，請稍後再試一次。",
      errorRate: (s) => `提問太頻繁了，請在 ${s} 秒後再試。`,
      errorHttp: (status, msg) => `伺服器回覆錯誤（${status}）：${msg}`,
      errorBadReply: "伺服器的回覆無法解讀。",
      errorTooLong: (n) => `問題最多 ${n} 個字。`,
      kept: "您的問題仍在輸入框中，可以再送出一次。",
      detail: (m) => `（${m}）`,
    },
    "zh-cn": {
      htmlLang: "zh-Hans-CN",
      pageTitle: "再质押问答 · ethereum.org",
      title: "再质押问答",
      tagline: "根据 ethereum.org 再质押页面回答",
      skip: "跳到提问栏",
      languageLabel: "界面语言",
      clear: "清除对话",
      welcomeTitle: "您好！我可以回答关于再质押的问题。",
      welcomeBefore: "我只根据",
      welcomeSource: "ethereum.org 的再质押页面",
      welcomeAfter: "回答，每一句都会附上出处，点击编号即可查看原文段落。页面没有提到的内容，我会直接告诉您。",
      chipsTitle: "可以试试这些问题：",
      chips: ["什么是再质押？", "再质押有哪些风险？", "什么是 AVS？", "什么是罚没？", "再质押能赚多少钱？", "提取再质押的 ETH 要等多久？"],
      threadLabel: "对话",
      composerLabel: "提问",
      questionLabel: "您的问题",
      placeholder: "输入关于再质押的问题…",
      sendLabel: "发送问题",
      hint: "Enter 发送，Shift+Enter 换行",
      you: "您的问题",
      assistant: "回答",
      thinking: "正在查找页面内容…",
      sources: "来源",
      openSection: "在 ethereum.org 打开此段落",
      original: "繁体中文原文",
      newTab: "（在新标签页打开）",
      citeLabel: (n, title) => `来源 ${n}：${title}`,
      termLabel: (term) => `词汇说明：${term}`,
      english: "英文",
      suggestions: "相关章节：",
      sourceColumn: "出处",
      resolved: "根据上文理解为：",
      copy: "复制回答",
      copied: "已复制",
      copyFailed: "无法复制",
      pageTop: "页首",
      errorNetwork: "无法连接到服务器，请检查网络或服务器后再试一次。",
      errorTimeout: "服务器太久没有响应，请稍后再试一次。",
      errorRate: (s) => `提问太频繁了，请在 ${s} 秒后再试。`,
      errorHttp: (status, msg) => `服务器返回错误（${status}）：${msg}`,
      errorBadReply: "无法解读服务器的回复。",
      errorTooLong: (n) => `问题最多 ${n} 个字。`,
      kept: "您的问题仍在输入框中，可以再发送一次。",
      detail: (m) => `（${m}）`,
    },
    en: {
      htmlLang: "en",
      pageTitle: "Restaking Q&A · ethereum.org",
      title: "Restaking Q&A",
      tagline: "Answers from ethereum.org's restaking page",
      skip: "Skip to the question box",
      languageLabel: "Interface language",
      clear: "Clear chat",
      welcomeTitle: "Hi! I answer questions about restaking.",
      welcomeBefore: "I answer only from ",
      welcomeSource: "ethereum.org's restaking page",
      welcomeAfter: " (in English, Traditional and Simplified Chinese), and cite the section behind every sentence: click a number to see the passage. If the page does not cover something, I will say so.",
      chipsTitle: "Try one of these:",
      chips: ["What is restaking?", "What are the risks of restaking?", "What is an AVS?", "What is slashing?", "How much can I earn from restaking?", "How long does it take to withdraw restaked ETH?"],
      threadLabel: "Conversation",
      composerLabel: "Ask a question",
      questionLabel: "Your question",
      placeholder: "Ask about restaking…",
      sendLabel: "Send question",
      hint: "Enter sends, Shift+Enter adds a line",
      you: "Your question",
      assistant: "Answer",
      thinking: "Searching the page…",
      sources: "Sources",
      openSection: "Open this section on ethereum.org",
      original: "Traditional-Chinese original",
      newTab: " (opens in a new tab)",
      citeLabel: (n, title) => `Source ${n}: ${title}`,
      termLabel: (term) => `Glossary: ${term}`,
      english: "English",
      suggestions: "Related sections:",
      sourceColumn: "Source",
      resolved: "Read with the conversation as: ",
      copy: "Copy answer",
      copied: "Copied",
      copyFailed: "Could not copy",
      pageTop: "top of page",
      errorNetwork: "Could not reach the server. Check the connection or the server and try again.",
      errorTimeout: "The server took too long to answer. Please try again later.",
      errorRate: (s) => `Too many questions; please try again in ${s} s.`,
      errorHttp: (status, msg) => `The server answered with an error (${status}): ${msg}`,
      errorBadReply: "The server's reply could not be read.",
      errorTooLong: (n) => `Questions are at most ${n} characters.`,
      kept: "Your question is still in the box; you can send it again.",
      detail: (m) => ` (${m})`,
    },
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    thread: $("thread"), chips: $("chips"), form: $("composer"), input: $("question"),
    send: $("send"), lang: $("ui-language"), clear: $("clear"), popover: $("popover"),
  };

  // storage (may be unavailable or full: the page still works, it just forgets) ----------------
  const storage = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch { return null; }
    },
    set(key, value) {
      try { window.localStorage.setItem(key, value); return true; } catch { return false; }
    },
    remove(key) {
      try { window.localStorage.removeItem(key); } catch { /* nothing stored then */ }
    },
  };

  // The interface language: the one chosen before, else the browser's first Chinese or English
  // one (en-US → English; zh-CN, zh-SG, zh-Hans → Simplified; other Chinese → Traditional), else
  // Traditional Chinese, the page's own language.
  function browserLanguage() {
    const tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
    for (const tag of tags) {
      const code = String(tag).toLowerCase();
      if (code === "en" || code.startsWith("en-")) return "en";
      if (/^zh-(cn|sg|my|hans)\b/.test(code)) return "zh-cn";
      if (code === "zh" || code.startsWith("zh-")) return "zh-tw";
    }
    return "zh-tw";
  }
  let lang = I18N[storage.get(STORE_LANG)] ? storage.get(STORE_LANG) : browserLanguage();
  const t = () => I18N[lang];
  // the BCP 47 tag of a page version (its front-matter lang) or an asker's language
  const langTag = (code) => (code === "en" ? "en" : code === "zh" || code === "zh-cn" ? "zh-Hans-CN" : "zh-Hant-TW");

  // small DOM helpers -------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // citations point at ethereum.org; the links a line of the page carries (a video's address,
  // a project's site) may point anywhere, over https
  function safeUrl(value, anyHost = false) {
    try {
      const url = new URL(String(value));
      if (url.protocol === "https:" && (anyHost || url.hostname === "ethereum.org" || url.hostname.endsWith(".ethereum.org"))) {
        return url.href;
      }
    } catch { /* not a URL */ }
    return null;
  }

  function externalLink(href, text, className, anyHost = false) {
    const url = safeUrl(href, anyHost);
    if (!url) return el("span", className, text);
    const a = el("a", className, text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.append(el("span", "visually-hidden", t().newTab));
    return a;
  }

  const str = (v) => (typeof v === "string" ? v : "");

  let pending = false;
  let glossary = null; // {regex, byForm: Map(form → term)}

  // the thread in localStorage ----------------------------------------------------------------
  const LAYOUTS = ["text", "list", "steps", "table"];

  function slimItem(s) {
    return {
      text: s.text,
      citations: Array.isArray(s.citations) ? s.citations.filter(Number.isInteger) : [],
      label: str(s.label),
      cells: Array.isArray(s.cells) ? s.cells.map(str) : [],
      links: Array.isArray(s.links)
        ? s.links.filter((k) => k && typeof k === "object").map((k) => ({ text: str(k.text), url: str(k.url) }))
        : [],
    };
  }

  function slimResponse(body) {
    if (!body || typeof body !== "object" || !Array.isArray(body.sentences)) return null;
    const items = Array.isArray(body.items) ? body.items : body.sentences;
    return {
      answer: str(body.answer),
      layout: LAYOUTS.includes(body.layout) ? body.layout : "text",
      lead: str(body.lead),
      headers: Array.isArray(body.headers) ? body.headers.map(str) : [],
      sentences: items.filter((s) => s && typeof s.text === "string").map(slimItem),
      citations: (Array.isArray(body.citations) ? body.citations : [])
        .filter((c) => c && Number.isInteger(c.n))
        .map((c) => ({
          n: c.n,
          title: str(c.title),
          anchor: str(c.anchor),
          url: str(c.url),
          snippet: str(c.snippet),
          lang: str(c.lang),
          original: c.original && typeof c.original === "object"
            ? { title: str(c.original.title), url: str(c.original.url), lang: str(c.original.lang) }
            : null,
        })),
      refused: body.refused === true,
      message: str(body.message),
      note: str(body.note),
      suggestions: (Array.isArray(body.suggestions) ? body.suggestions : [])
        .filter((s) => s && typeof s === "object")
        .map((s) => ({ title: str(s.title), anchor: str(s.anchor), url: str(s.url), lang: str(s.lang) })),
      language: str(body.language),
      resolved_question: str(body.resolved_question),
      answer_id: str(body.answer_id),
      feedback: body.feedback === "up" || body.feedback === "down" ? body.feedback : "",
    };
  }

  function loadThread() {
    try {
      const data = JSON.parse(storage.get(STORE_THREAD) || "null");
      if (!data || !Array.isArray(data.turns)) return [];
      return data.turns
        .map((turn) => ({ question: str(turn && turn.question), response: slimResponse(turn && turn.response), error: null }))
        .filter((turn) => turn.question && turn.response);
    } catch {
      return [];
    }
  }

  function saveThread() {
    let kept = turns.filter((turn) => turn.response).slice(-MAX_STORED_TURNS)
      .map((turn) => ({ question: turn.question, response: turn.response }));
    while (!storage.set(STORE_THREAD, JSON.stringify({ version: 1, turns: kept })) && kept.length) {
      kept = kept.slice(1); // full: drop the oldest turns
    }
  }

  // limits ------------------------------------------------------------------------------------
  async function loadLimits() {
    try {
      const res = await fetch("api/limits", { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      const body = await res.json();
      if (Number.isInteger(body.max_question_chars) && body.max_question_chars > 0) {
        limits.maxQuestionChars = body.max_question_chars;
        ui.input.maxLength = body.max_question_chars;
      }
      if (Number.isInteger(body.max_history_turns) && body.max_history_turns >= 0) {
        limits.maxHistoryTurns = Math.min(HISTORY_TURNS, body.max_history_turns);
      }
    } catch { /* the server still checks every question */ }
  }

  // glossary ----------------------------------------------------------------------------------
  async function loadGlossary() {
    try {
      const res = await fetch("api/glossary", { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      const body = await res.json();
      glossary = buildGlossary(Array.isArray(body.terms) ? body.terms : []);
      renderThread();
    } catch { /* answers simply show no term explanations */ }
  }

  function escapeRegex(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  function buildGlossary(terms) {
    const byForm = new Map();
    for (const term of terms) {
      if (!term || typeof term.term !== "string" || typeof term.explanation !== "string") continue;
      const entry = { term: term.term, english: str(term.english), explanation: term.explanation };
      const list = (v) => (Array.isArray(v) ? v : []);
      const forms = [term.term, ...list(term.aliases), ...list(term.simplified)];
      for (const form of forms) {
        if (typeof form === "string" && form.trim().length >= 2 && !byForm.has(form)) byForm.set(form, entry);
      }
    }
    if (!byForm.size) return null;
    // Longest first, so 再質押者 wins over 再質押; Latin forms only as whole words (ETH, not stETH's ETH).
    const forms = [...byForm.keys(), ...NOT_TERMS.filter((w) => !byForm.has(w))];
    const parts = forms.sort((a, b) => b.length - a.length).map((form) =>
      /^[\x20-\x7e]+$/.test(form) ? `(?<![A-Za-z0-9])${escapeRegex(form)}(?![A-Za-z0-9])` : escapeRegex(form));
    return { regex: new RegExp(parts.join("|"), "g"), byForm };
  }

  // Text with each glossary term's first appearance in the answer as a focusable term button.
  function withTerms(text, seen) {
    const frag = document.createDocumentFragment();
    if (!glossary) {
      frag.append(document.createTextNode(text));
      return frag;
    }
    let last = 0;
    for (const match of text.matchAll(glossary.regex)) {
      const entry = glossary.byForm.get(match[0]);
      if (!entry || seen.has(entry.term)) continue;
      seen.add(entry.term);
      frag.append(document.createTextNode(text.slice(last, match.index)));
      const button = el("button", "term", match[0]);
      button.type = "button";
      button.setAttribute("aria-label", t().termLabel(match[0]));
      button._term = entry;
      frag.append(button);
      last = match.index + match[0].length;
    }
    frag.append(document.createTextNode(text.slice(last)));
    return frag;
  }

  // rendering ---------------------------------------------------------------------------------
  function applyLanguage() {
    const s = t();
    document.documentElement.lang = s.htmlLang;
    document.title = s.pageTitle;
    ui.lang.value = lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const value = s[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    }
    for (const node of document.querySelectorAll("[data-i18n-aria]")) node.setAttribute("aria-label", s[node.dataset.i18nAria]);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = s[node.dataset.i18nPlaceholder];
    $("source-link").href = SOURCE_PAGES[lang];
    ui.chips.replaceChildren(...s.chips.map((q) => {
      const chip = el("button", "chip", q);
      chip.type = "button";
      chip.addEventListener("click", () => ask(q));
      return chip;
    }));
    renderThread();
  }

  function renderThread() {
    closePopover(false);
    ui.thread.replaceChildren(...turns.flatMap(renderTurn));
  }

  function renderTurn(turn) {
    const user = el("li", "msg user");
    user.append(el("span", "visually-hidden", t().you), el("p", "bubble", turn.question));
    const bot = el("li", "msg bot");
    turn.node = bot;
    fillBot(turn);
    return [user, bot];
  }

  function fillBot(turn) {
    const bot = turn.node;
    const s = t();
    bot.className = "msg bot";
    bot.removeAttribute("role");
    bot.replaceChildren();
    if (turn.pending) {
      bot.classList.add("thinking");
      bot.setAttribute("role", "status");
      const bubble = el("div", "bubble");
      bubble.append(el("span", "dots"), el("span", null, s.thinking));
      bot.append(bubble);
    } else if (turn.error) {
      bot.classList.add("error");
      bot.setAttribute("role", "alert");
      const bubble = el("div", "bubble");
      bubble.append(el("p", null, turn.error));
      if (turn.kept) bubble.append(el("p", "muted", s.kept));
      bot.append(bubble);
    } else if (turn.response) {
      bot.append(el("span", "visually-hidden", s.assistant), renderAnswer(turn.response));
    }
  }

  function renderAnswer(r) {
    const s = t();
    const bubble = el("div", "bubble answer");
    // the quotations' language: a Simplified answer is shown in Simplified whatever it quotes
    const quoted = r.citations.length ? r.citations[0].lang : r.language;
    bubble.lang = r.language === "zh-cn" ? "zh-Hans-CN" : langTag(quoted || r.language);
    if (r.refused) {
      bubble.classList.add("refused");
      const message = el("p", null, r.message || s.suggestions);
      message.lang = langTag(r.language);
      bubble.append(message);
      if (r.suggestions.length) {
        const list = el("ul", "suggestions");
        for (const sug of r.suggestions) {
          const li = el("li");
          li.append(externalLink(sug.url, sug.title || s.pageTop));
          if (sug.lang) li.lang = langTag(sug.lang);
          list.append(li);
        }
        bubble.append(list);
      }
    } else {
      bubble.append(...renderBody(r));
      if (r.note) {
        const note = el("p", "note muted", r.note);
        note.lang = langTag(r.language);
        bubble.append(note);
      }
      if (r.citations.length) bubble.append(renderSources(r.citations));
    }
    if (r.resolved_question) bubble.append(el("p", "resolved muted", s.resolved + r.resolved_question));
    const actions = el("div", "actions");
    actions.lang = s.htmlLang;
    const copy = el("button", "ghost small copy", s.copy);
    copy.type = "button";
    copy.addEventListener("click", async () => {
      const ok = await copyText(plainText(r));
      copy.textContent = ok ? s.copied : s.copyFailed;
      setTimeout(() => { copy.textContent = t().copy; }, 2000);
    });
    actions.append(copy);
    addFeedback(actions, r);
    bubble.append(actions);
    return bubble;
  }

  // the quoted items, laid out by what the question asked for: running text, a list of rows or
  // items, numbered steps, or a small table (a comparison); every item keeps its [n] markers
  function renderBody(r) {
    const byN = new Map(r.citations.map((c) => [c.n, c]));
    const seen = new Set();
    const out = [];
    const layout = r.layout || "text";
    if (r.lead && layout !== "text") out.push(el("p", "answer-lead", r.lead));
    if (layout === "list" || layout === "steps") {
      const list = el(layout === "steps" ? "ol" : "ul", "answer-list");
      for (const item of r.sentences) {
        const li = el("li", "sentence");
        const rest = item.label && item.text.startsWith(item.label) ? item.text.slice(item.label.length) : null;
        if (rest !== null) {
          li.append(el("strong", null, item.label), withTerms(rest, seen));
        } else {
          li.append(withTerms(layout === "steps" ? item.text.replace(/^\s*\d+[.、)]?\s*/, "") : item.text, seen));
        }
        li.append(...citeButtons(item.citations, byN), ...itemLinks(item));
        list.append(li);
      }
      out.push(list);
    } else if (layout === "table" && r.headers.length) {
      const table = el("table", "answer-table");
      const head = el("tr");
      for (const h of r.headers) head.append(el("th", null, h));
      const srcHead = el("th", null, t().sourceColumn);
      srcHead.lang = t().htmlLang;
      head.append(srcHead);
      const thead = el("thead");
      thead.append(head);
      const tbody = el("tbody");
      for (const item of r.sentences) {
        const tr = el("tr");
        const cells = item.cells.length ? item.cells : [item.text];
        for (let i = 0; i < r.headers.length; i++) {
          const td = el("td");
          td.append(withTerms(cells[i] || "", seen));
          tr.append(td);
        }
        const cite = el("td", "cite-cell");
        cite.append(...citeButtons(item.citations, byN));
        tr.append(cite);
        tbody.append(tr);
      }
      table.append(thead, tbody);
      const wrap = el("div", "table-wrap");
      wrap.append(table);
      out.push(wrap);
    } else {
      const text = el("p", "answer-text");
      for (const sentence of r.sentences) {
        const span = el("span", "sentence");
        span.append(withTerms(sentence.text, seen), ...citeButtons(sentence.citations, byN), ...itemLinks(sentence));
        text.append(span, document.createTextNode(" "));
      }
      out.push(text);
    }
    return out;
  }

  // the page's own links for a quoted line: 「(再質押詳解 ↗ · YouTube ↗)」
  function itemLinks(item) {
    const links = (item.links || []).filter((k) => safeUrl(k.url, true));
    if (!links.length) return [];
    const box = el("span", "item-links");
    box.append(" (");
    links.forEach((k, i) => {
      if (i) box.append(" · ");
      box.append(externalLink(k.url, k.text || k.url, "item-link", true));
    });
    box.append(")");
    return [box];
  }

  function citeButtons(numbers, byN) {
    const s = t();
    const out = [];
    for (const n of numbers) {
      const c = byN.get(n);
      if (!c) continue;
      const marker = el("button", "cite", String(n));
      marker.type = "button";
      marker.dataset.n = String(n);
      marker.setAttribute("aria-label", s.citeLabel(n, c.title || s.pageTop));
      marker._citation = c;
      out.push(marker);
    }
    return out;
  }

  // reader feedback: thumbs up/down on a logged answer (POST api/feedback with its answer_id) --
  const FEEDBACK_TEXT = {
    "zh-tw": { up: "這個回答有幫助", down: "這個回答沒有幫助", thanks: "謝謝您的回饋！", failed: "回饋沒有送出，請再試一次。" },
    "zh-cn": { up: "这个回答有帮助", down: "这个回答没有帮助", thanks: "谢谢您的反馈！", failed: "反馈没有发送，请再试一次。" },
    en: { up: "This answer helped", down: "This answer did not help", thanks: "Thanks for the feedback!", failed: "The feedback was not sent; please try again." },
  };
  const THUMB = "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6c-.4.4-.6.9-.6 1.4v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z";

  function addFeedback(actions, r) {
    if (!r.answer_id) return; // the server keeps no log: nothing to vote on
    const words = FEEDBACK_TEXT[lang] || FEEDBACK_TEXT["zh-tw"];
    const status = el("span", "feedback-status muted");
    status.setAttribute("role", "status");
    const buttons = ["up", "down"].map((vote) => {
      const button = el("button", `ghost small feedback ${vote}`);
      button.type = "button";
      button.dataset.vote = vote;
      button.setAttribute("aria-label", words[vote]);
      button.title = words[vote];
      button.setAttribute("aria-pressed", String(r.feedback === vote));
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("width", "16");
      svg.setAttribute("height", "16");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", THUMB);
      path.setAttribute("fill", "currentColor");
      if (vote === "down") svg.setAttribute("transform", "rotate(180)");
      svg.append(path);
      button.append(svg);
      button.addEventListener("click", async () => {
        try {
          const res = await fetch("api/feedback", {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "application/json" },
            body: JSON.stringify({ answer_id: r.answer_id, vote }),
          });
          if (!res.ok) throw new Error(String(res.status));
          r.feedback = vote;
          for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.vote === vote));
          status.textContent = words.thanks;
          saveThread();
        } catch {
          status.textContent = words.failed;
        }
      });
      return button;
    });
    actions.append(...buttons, status);
  }

  function renderSources(citations) {
    const s = t();
    const box = el("div", "sources");
    box.lang = langTag(citations[0] && citations[0].lang); // section titles are the quoted version's
    const heading = el("h3", null, s.sources);
    heading.lang = s.htmlLang;
    box.append(heading);
    const groups = new Map(); // one line per section, with all its citation numbers
    for (const c of citations) {
      const key = c.url || c.title;
      if (!groups.has(key)) groups.set(key, { c, ns: [] });
      groups.get(key).ns.push(c.n);
    }
    const list = el("ul");
    for (const { c, ns } of groups.values()) {
      const li = el("li");
      li.append(el("span", "source-n", ns.map((n) => `[${n}]`).join("")), " ");
      if (c.lang) li.lang = langTag(c.lang);
      li.append(externalLink(c.url, c.title || s.pageTop, "source-link"));
      if (c.original && c.original.url) {
        // the same section in the page's main version, beside the quoted one
        const original = externalLink(c.original.url, s.original, "source-original");
        original.lang = s.htmlLang;
        li.append(" · ", original);
      }
      list.append(li);
    }
    box.append(list);
    return box;
  }

  function plainText(r) {
    if (r.refused) {
      return [r.message, ...r.suggestions.map((x) => `${x.title} ${x.url}`)].filter(Boolean).join("\n");
    }
    const marked = (x) => x.text + x.citations.map((n) => `[${n}]`).join("");
    const lines = r.layout && r.layout !== "text" ? r.sentences.map((x) => `- ${marked(x)}`).join("\n") : r.sentences.map(marked).join(" ");
    const body = r.lead && r.layout !== "text" ? `${r.lead}\n${lines}` : lines;
    const sources = r.citations.map((c) => `[${c.n}] ${c.title} ${c.url}`).join("\n");
    return `${body}\n\n${t().sources}\n${sources}`;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch { /* fall back below */ }
    }
    const area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    const focused = document.activeElement;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    if (focused && focused.focus) focused.focus();
    return ok;
  }

  // the popover for citations and glossary terms ----------------------------------------------
  const pop = { trigger: null, pinned: false, timer: 0 };

  function popoverContent(trigger) {
    const s = t();
    if (trigger._citation) {
      const c = trigger._citation;
      const title = el("p", "pop-title");
      title.append(el("span", "pop-n", `[${c.n}]`), " ", c.title || s.pageTop);
      const link = externalLink(c.url, `${s.openSection} ↗`, "pop-link");
      link.lang = s.htmlLang;
      return [title, el("blockquote", "pop-snippet", c.snippet), link];
    }
    const term = trigger._term;
    const title = el("p", "pop-title", term.term);
    if (term.english) title.append(el("span", "pop-english", ` · ${term.english}`));
    return [title, el("p", "pop-text", term.explanation)];
  }

  function openPopover(trigger, pinned) {
    clearTimeout(pop.timer);
    if (pop.trigger && pop.trigger !== trigger) closePopover(false);
    pop.trigger = trigger;
    pop.pinned = pop.pinned || pinned;
    ui.popover.replaceChildren(...popoverContent(trigger));
    // snippets, section titles and explanations are the page's own words, in the version quoted
    ui.popover.lang = langTag(trigger._citation ? trigger._citation.lang : "zh-tw");
    ui.popover.classList.toggle("pop-term", !trigger._citation);
    ui.popover.hidden = false;
    trigger.setAttribute("aria-describedby", "popover");
    placePopover();
  }

  function placePopover() {
    if (!pop.trigger || ui.popover.hidden) return;
    const r = pop.trigger.getBoundingClientRect();
    const box = ui.popover;
    const vw = document.documentElement.clientWidth;
    const vh = window.innerHeight;
    box.style.maxWidth = `${Math.min(360, vw - 16)}px`;
    const w = box.offsetWidth;
    const h = box.offsetHeight;
    const left = Math.min(Math.max(8, r.left + r.width / 2 - w / 2), vw - w - 8);
    const below = r.bottom + 8;
    const top = below + h > vh - 8 && r.top - h - 8 > 8 ? r.top - h - 8 : below;
    box.style.left = `${left + window.scrollX}px`;
    box.style.top = `${top + window.scrollY}px`;
  }

  function closePopover(restoreFocus) {
    clearTimeout(pop.timer);
    const trigger = pop.trigger;
    pop.trigger = null;
    pop.pinned = false;
    ui.popover.hidden = true;
    if (trigger) trigger.removeAttribute("aria-describedby");
    if (trigger && restoreFocus) trigger.focus();
  }

  function closeSoon() {
    clearTimeout(pop.timer);
    if (!pop.pinned) pop.timer = setTimeout(() => closePopover(false), 250);
  }

  const triggerOf = (target) => (target instanceof Element ? target.closest(".cite, .term") : null);

  ui.thread.addEventListener("pointerover", (e) => {
    const trigger = triggerOf(e.target);
    if (trigger && e.pointerType === "mouse" && !(pop.pinned && pop.trigger !== trigger)) openPopover(trigger, false);
  });
  ui.thread.addEventListener("pointerout", (e) => {
    const trigger = triggerOf(e.target);
    if (trigger && trigger === pop.trigger && e.pointerType === "mouse" && !trigger.contains(e.relatedTarget)) closeSoon();
  });
  ui.popover.addEventListener("pointerenter", () => clearTimeout(pop.timer));
  ui.popover.addEventListener("pointerleave", (e) => { if (e.pointerType === "mouse") closeSoon(); });
  ui.thread.addEventListener("click", (e) => {
    const trigger = triggerOf(e.target);
    if (!trigger) return;
    if (pop.trigger === trigger && pop.pinned) closePopover(false);
    else openPopover(trigger, true);
  });
  ui.thread.addEventListener("focusin", (e) => {
    const trigger = triggerOf(e.target);
    if (trigger && trigger.matches(":focus-visible")) openPopover(trigger, false);
  });
  ui.thread.addEventListener("focusout", (e) => {
    const trigger = triggerOf(e.target);
    if (trigger && trigger === pop.trigger && !ui.popover.contains(e.relatedTarget)) closeSoon();
  });
  document.addEventListener("click", (e) => {
    if (pop.trigger && !triggerOf(e.target) && !ui.popover.contains(e.target)) closePopover(false);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || !pop.trigger) return;
    const active = document.activeElement;
    closePopover(active === pop.trigger || ui.popover.contains(active));
  });
  window.addEventListener("resize", placePopover);
  window.addEventListener("scroll", placePopover, { passive: true });

  // asking ------------------------------------------------------------------------------------
  class RequestError extends Error {
    constructor(message) {
      super(message);
      this.name = "RequestError";
    }
  }

  function describeFailure(status, body, retryAfter) {
    const s = t();
    const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
    if (status === 429) {
      return s.errorRate(Number.parseInt(retryAfter, 10) || 1) + (message ? s.detail(message) : "");
    }
    return s.errorHttp(status, message || s.errorBadReply);
  }

  async function requestAnswer(question, history) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch("api/answer", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ question, history, language: lang }),
        signal: controller.signal,
      });
    } catch (err) {
      throw new RequestError(err && err.name === "AbortError" ? t().errorTimeout : t().errorNetwork);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    if (!res.ok) throw new RequestError(describeFailure(res.status, body, res.headers.get("Retry-After")));
    const slim = slimResponse(body);
    if (!slim) throw new RequestError(t().errorBadReply);
    return slim;
  }

  function setPending(value) {
    pending = value;
    ui.send.disabled = value;
    ui.thread.setAttribute("aria-busy", value ? "true" : "false");
    document.body.classList.toggle("pending", value);
  }

  function scrollToEnd() {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    window.scrollTo({ top: document.documentElement.scrollHeight, behavior: smooth ? "smooth" : "auto" });
  }

  async function ask(raw) {
    const question = raw.trim();
    if (!question || pending) return;
    if (question.length > limits.maxQuestionChars) {
      const turn = { question: question.slice(0, 80) + "…", error: t().errorTooLong(limits.maxQuestionChars), kept: true };
      turns.push(turn);
      ui.thread.append(...renderTurn(turn));
      scrollToEnd();
      return;
    }
    const history = turns.filter((x) => x.response).slice(-limits.maxHistoryTurns)
      .map((x) => ({ question: x.question, answer: x.response.refused ? "" : x.response.answer }));
    const turn = { question, response: null, error: null, pending: true };
    turns.push(turn);
    if (ui.input.value.trim() === question) {
      ui.input.value = "";
      autosize();
    }
    ui.thread.append(...renderTurn(turn));
    setPending(true);
    scrollToEnd();
    try {
      turn.response = await requestAnswer(question, history);
      saveThread();
    } catch (err) {
      turn.error = err instanceof RequestError ? err.message : t().errorNetwork;
      if (!ui.input.value.trim()) {
        ui.input.value = question; // nothing is lost: the question goes back into the box
        autosize();
      }
      turn.kept = ui.input.value === question;
    } finally {
      turn.pending = false;
      setPending(false);
      if (turns.includes(turn)) fillBot(turn);
      scrollToEnd();
    }
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
  }

  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    ask(ui.input.value);
    ui.input.focus();
  });
  ui.input.addEventListener("keydown", (e) => {
    // isComposing: Enter that picks a word in a Chinese input method must not send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      ui.form.requestSubmit();
    }
  });
  ui.input.addEventListener("input", autosize);

  ui.lang.addEventListener("change", () => {
    lang = I18N[ui.lang.value] ? ui.lang.value : "zh-tw";
    storage.set(STORE_LANG, lang);
    applyLanguage();
  });

  ui.clear.addEventListener("click", () => {
    turns = [];
    storage.remove(STORE_THREAD);
    renderThread();
    window.scrollTo({ top: 0 });
    ui.input.focus();
  });

  // another tab changed the thread or the language
  window.addEventListener("storage", (e) => {
    if (e.key === STORE_THREAD && !pending) {
      turns = loadThread();
      renderThread();
    } else if (e.key === STORE_LANG && I18N[e.newValue]) {
      lang = e.newValue;
      applyLanguage();
    }
  });

  let turns = loadThread(); // [{question, response|null, error|null, kept, pending, node}]
  applyLanguage();
  setPending(false);
  loadLimits();
  loadGlossary();
  document.body.classList.add("ready");
})();
