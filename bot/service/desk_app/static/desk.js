// The desk Mini App: plain JavaScript, no build step, nothing loaded from outside.
// Who the user is comes from Telegram's init data in the URL fragment (#tgWebAppData=...), kept
// in memory and sent in the X-Telegram-Init-Data header on every call; the server checks it.
"use strict";

(function () {
  const state = {
    init: "",
    me: null,
    texts: {},
    filters: { page: 0 },
    chip: "open",
  };

  // ---- Telegram's launch parameters, as telegram-web-app.js reads them ----
  function launchParams() {
    const hash = window.location.hash.replace(/^#/, "");
    const params = new URLSearchParams(hash);
    let start = params.get("tgWebAppStartParam") || "";
    if (!start && params.get("tgWebAppData")) {
      start = new URLSearchParams(params.get("tgWebAppData")).get("start_param") || "";
    }
    return {
      init: params.get("tgWebAppData") || "",
      theme: params.get("tgWebAppThemeParams") || "",
      start: start,
    };
  }

  const THEME_KEYS = [
    "bg_color", "text_color", "hint_color", "link_color",
    "button_color", "button_text_color", "secondary_bg_color",
  ];

  function applyTheme(raw) {
    let theme = {};
    try {
      theme = raw ? JSON.parse(raw) : {};
    } catch (e) {
      theme = {};
    }
    const root = document.documentElement;
    THEME_KEYS.forEach(function (key) {
      const value = theme[key];
      if (typeof value === "string" && /^#[0-9a-fA-F]{3,8}$/.test(value)) {
        root.style.setProperty("--tg-" + key.replace(/_/g, "-"), value);
      }
    });
    const bg = theme.bg_color || "#ffffff";
    root.dataset.scheme = luminance(bg) < 0.5 ? "dark" : "light";
  }

  function luminance(hex) {
    let h = hex.replace("#", "");
    if (h.length === 3) h = h.split("").map(function (c) { return c + c; }).join("");
    const n = parseInt(h.slice(0, 6), 16);
    if (isNaN(n)) return 1;
    return (0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
  }

  // ---- texts ----
  function t(key, values) {
    const texts = state.texts;
    let text = texts[key];
    if (text === undefined) text = texts["desk_front." + key];
    if (text === undefined && texts.desk_front) text = texts.desk_front[key];
    // The server's and the views' own keys (state_pending, registered, ...) where the page has none.
    if (text === undefined) text = texts["desk_views." + key];
    if (text === undefined) text = texts["desk_server." + key];
    if (text === undefined) text = key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split("{" + name + "}").join(String(values[name]));
      });
    }
    return text;
  }

  // ---- DOM helpers ----
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      const value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "on") Object.keys(value).forEach(function (ev) { node.addEventListener(ev, value[ev]); });
      else if (name === "test") node.setAttribute("data-test", value);
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function main() { return document.getElementById("main"); }

  function show(view) {
    const m = main();
    m.replaceChildren(view);
    window.scrollTo(0, 0);
  }

  // "YYYY-MM-DD HH:MM" in the operator's time zone (`zone` of /desk/api/me), as the cards
  // in the group show times; the API's times are UTC.
  function fmtDate(value) {
    if (!value) return "";
    const moment = new Date(value);
    const zone = state.me && state.me.zone;
    if (isNaN(moment.getTime()) || !zone) return String(value).replace("T", " ").slice(0, 16);
    const parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(moment).forEach(function (part) { parts[part.type] = part.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  // The card text is Telegram's HTML subset; only that subset survives, as text and links.
  const ALLOWED = { B: "b", STRONG: "b", I: "i", EM: "i", U: "u", S: "s", CODE: "code", PRE: "pre", A: "a", BR: "br", BLOCKQUOTE: "blockquote" };

  function safeHtml(html) {
    const parsed = new DOMParser().parseFromString("<div>" + (html || "") + "</div>", "text/html");
    const out = el("div", {});
    function copy(from, to) {
      from.childNodes.forEach(function (node) {
        if (node.nodeType === 3) {
          to.appendChild(document.createTextNode(node.nodeValue));
        } else if (node.nodeType === 1) {
          const tag = ALLOWED[node.tagName];
          if (!tag) {
            copy(node, to);
            return;
          }
          const made = document.createElement(tag);
          if (tag === "a") {
            const href = node.getAttribute("href") || "";
            if (/^(https?:|tg:)/i.test(href)) made.setAttribute("href", href);
            made.setAttribute("rel", "noopener noreferrer");
            made.setAttribute("target", "_blank");
          }
          copy(node, made);
          to.appendChild(made);
        }
      });
    }
    copy(parsed.body.firstChild || parsed.body, out);
    return out;
  }

  // ---- the API ----
  function api(path, options) {
    const opts = options || {};
    const headers = { "X-Telegram-Init-Data": state.init, Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch("/desk/api/" + path, {
      method: opts.method || "GET",
      headers: headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      return response.text().then(function (text) {
        let data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          const error = new Error("HTTP " + response.status);
          error.status = response.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  function errorText(error) {
    if (error && error.data && error.data.message) return error.data.message;
    if (error && error.status === 401) return t("refused_auth");
    if (error && error.status === 403) return t("refused_role");
    if (error && error.status === 404) return t("not_found");
    return t("failed");
  }

  function refuse(error) {
    document.getElementById("nav").hidden = true;
    const status = error && error.status ? error.status : 0;
    let message = t("refused_auth");
    if (status === 403) message = t("refused_role");
    else if (status && status !== 401) message = t("failed");
    if (!state.me) {
      // No texts yet: say it in both languages.
      message = status === 403
        ? "Доступ только для сотрудников. / Staff only."
        : "Откройте из Telegram. / Open it from Telegram.";
    }
    show(el("section", { class: "refusal", test: "refusal", "data-status": String(status) }, [
      el("p", { text: message }),
    ]));
  }

  // ---- navigation ----
  const VIEWS = {};

  function go(name, arg) {
    document.querySelectorAll("#nav button").forEach(function (button) {
      button.classList.toggle("active", button.dataset.view === name);
    });
    VIEWS[name](arg);
  }

  function setupNav() {
    const nav = document.getElementById("nav");
    nav.querySelectorAll("button").forEach(function (button) {
      button.textContent = t("nav_" + button.dataset.view);
      button.addEventListener("click", function () { go(button.dataset.view); });
    });
    if (state.me && state.me.role !== "dpo") {
      // An agent sees the same menu; the server refuses what the role may not do.
      nav.dataset.role = state.me.role;
    }
    nav.hidden = false;
  }

  // ---- Requests ----
  const CHIPS = {
    open: {},
    overdue: { overdue: 1 },
    due_week: { due_within: 7 },
    mine: { mine: 1 },
    carrying_out: { status: "carrying_out" },
    waiting: { status: "waiting_user" },
  };
  const STATUSES = ["received", "in_progress", "waiting_user", "carrying_out", "done", "refused", "blocked"];
  const TYPES = ["access", "disclosures", "rectification", "erasure", "restriction", "objection",
    "portability", "withdrawal", "complaint"];

  function query(filters) {
    const params = new URLSearchParams();
    ["status", "type", "overdue", "due_within", "mine", "q", "page"].forEach(function (key) {
      const value = filters[key];
      if (value !== undefined && value !== null && value !== "" && value !== 0) params.set(key, String(value));
    });
    if (filters.page) params.set("page", String(filters.page));
    const text = params.toString();
    return text ? "?" + text : "";
  }

  function select(test, options, value, onChange) {
    const node = el("select", { test: test, on: { change: function () { onChange(node.value); } } },
      options.map(function (option) {
        return el("option", { value: option[0], text: option[1], selected: option[0] === value });
      }));
    return node;
  }

  VIEWS.requests = function () {
    const f = state.filters;
    const chips = el("div", { class: "chips", test: "chips" }, Object.keys(CHIPS).map(function (key) {
      return el("button", {
        type: "button", test: "filter-" + key, class: state.chip === key ? "chip active" : "chip",
        on: { click: function () {
          state.chip = key;
          state.filters = Object.assign({ page: 0 }, CHIPS[key]);
          VIEWS.requests();
        } },
      }, [t("chip_" + key) + " ", el("span", { class: "count", test: "count-" + key, text: "·" })]);
    }));
    function refine(key) {
      return function (value) {
        state.chip = "";
        f[key] = value;
        f.page = 0;
        VIEWS.requests();
      };
    }
    const statusPick = select("filter-status", [["", t("any_status")], ["all", t("all_statuses")]].concat(STATUSES.map(function (s) {
      return [s, t("status_" + s)];
    })), f.status || "", refine("status"));
    const typePick = select("filter-type", [["", t("any_type")]].concat(TYPES.map(function (s) {
      return [s, t("type_" + s)];
    })), f.type || "", refine("type"));
    const within = el("input", { type: "number", min: "0", max: "366", inputmode: "numeric",
      test: "filter-due-within", placeholder: t("due_within"), value: f.due_within || "" });
    within.addEventListener("change", function () { refine("due_within")(within.value.replace(/\D/g, "")); });
    const search = el("input", { type: "search", inputmode: "numeric", test: "search",
      placeholder: t("search"), value: f.q || "" });
    const searchForm = el("form", { class: "search", on: { submit: function (event) {
      event.preventDefault();
      refine("q")(search.value.trim());
    } } }, [search, el("button", { type: "submit", test: "search-go", text: t("find") })]);
    const body = el("div", { test: "requests-body" }, [el("p", { class: "hint", text: "…" })]);
    show(el("section", { test: "view-requests", class: "view" }, [
      chips, el("div", { class: "filters" }, [statusPick, typePick, within]), searchForm, body,
    ]));
    api("requests" + query(f)).then(function (data) {
      Object.keys(data.counts || {}).forEach(function (key) {
        const node = document.querySelector('[data-test="count-' + key + '"]');
        if (node) node.textContent = String(data.counts[key]);
      });
      body.replaceChildren(requestsTable(data), pager(data));
    }).catch(function (error) {
      if (error.status === 401 || error.status === 403) return refuse(error);
      body.replaceChildren(el("p", { class: "error", test: "error", text: errorText(error) }));
    });
  };

  function requestsTable(data) {
    if (!data.items || !data.items.length) return el("p", { class: "hint", test: "requests-empty", text: t("empty") });
    const head = el("tr", {}, ["col_id", "col_type", "col_status", "col_due", "col_user"].map(function (key) {
      return el("th", { text: t(key) });
    }));
    const rows = data.items.map(function (item) {
      return el("tr", {
        test: "request-row", "data-id": String(item.id), class: item.overdue ? "overdue" : "",
        tabindex: "0", on: { click: function () { go("request", item.id); },
          keydown: function (e) { if (e.key === "Enter") go("request", item.id); } },
      }, [
        el("td", { text: "#" + item.id }),
        el("td", { text: item.type_label || item.type }),
        el("td", { text: item.status_label || item.status }),
        el("td", { test: "due", text: fmtDate(item.due_at).slice(0, 10) + (item.overdue ? " ⚠" : "") }),
        el("td", { text: String(item.user_id || "") }),
      ]);
    });
    return el("table", { class: "grid", test: "requests-table" }, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  }

  function pager(data) {
    const f = state.filters;
    const pages = Math.max(1, data.pages || 1);
    const page = data.page || 0;
    return el("div", { class: "pager" }, [
      el("button", { type: "button", test: "page-prev", disabled: page <= 0,
        on: { click: function () { f.page = page - 1; VIEWS.requests(); } }, text: "‹" }),
      el("span", { test: "page-info", text: t("page", { page: page + 1, pages: pages, total: data.total || 0 }) }),
      el("button", { type: "button", test: "page-next", disabled: page + 1 >= pages,
        on: { click: function () { f.page = page + 1; VIEWS.requests(); } }, text: "›" }),
    ]);
  }

  // ---- A request ----
  VIEWS.request = function (id) {
    const view = el("section", { test: "view-request", class: "view", "data-id": String(id) }, [
      el("p", { class: "hint", text: "…" }),
    ]);
    show(view);
    api("requests/" + id).then(function (data) {
      renderRequest(view, id, data, null);
    }).catch(function (error) {
      if (error.status === 401) return refuse(error);
      view.replaceChildren(el("p", { class: "error", test: "error", text: errorText(error) }));
    });
  };

  function renderRequest(view, id, data, outcome) {
    const back = el("button", { type: "button", class: "link", test: "back", text: "← " + t("nav_requests"),
      on: { click: function () { go("requests"); } } });
    const parts = [back, el("h2", { text: "#" + id })];
    if (outcome) parts.push(outcome);
    parts.push(el("div", { class: "card", test: "card-text" }, [safeHtml(data.card_text)]));
    parts.push(actionsBlock(view, id, data));
    if (data.checklist && data.checklist.length) {
      parts.push(el("h3", { text: t("checklist") }));
      parts.push(el("ul", { class: "checklist", test: "checklist" }, data.checklist.map(function (job) {
        return el("li", { test: "checklist-item", "data-status": job.status, "data-job": String(job.job_id) }, [
          el("b", { text: job.name || job.system }), " ", el("span", { text: job.line || job.status }),
        ].concat(jobButtons(view, id, data, job)));
      })));
    }
    parts.push(el("h3", { text: t("timeline") }));
    parts.push(el("ol", { class: "timeline", test: "timeline" }, (data.timeline || []).map(function (entry) {
      return el("li", { test: "timeline-item", "data-kind": entry.kind, class: "who-" + entry.who }, [
        el("time", { text: fmtDate(entry.at) }),
        el("span", { class: "who", text: t("who_" + entry.who) + (entry.staff_id ? " " + entry.staff_id : "") }),
        el("p", { text: entry.text || "" }),
      ]);
    })));
    view.replaceChildren.apply(view, parts);
  }

  function jobButtons(view, id, data, job) {
    return (data.actions || []).filter(function (a) { return a.job_id === job.job_id; }).map(function (a) {
      return el("button", { type: "button", class: "small", test: "job-" + a.action, text: a.label,
        disabled: a.allowed === false,
        on: { click: function () { ask(view, id, a); } } });
    });
  }

  function actionsBlock(view, id, data) {
    const box = el("div", { class: "actions", test: "actions" });
    const groups = {};
    (data.actions || []).forEach(function (a) {
      if (a.job_id) return;
      if (a.ground !== undefined && a.ground !== null) {
        (groups[a.action] = groups[a.action] || []).push(a);
        return;
      }
      box.appendChild(el("button", { type: "button", test: "action-" + a.action, text: a.label,
        disabled: a.allowed === false, title: a.allowed === false ? t("role_limited") : null,
        on: { click: function () { ask(view, id, a); } } }));
    });
    Object.keys(groups).forEach(function (name) {
      const options = groups[name];
      const picker = el("select", { test: "ground-picker", "data-action": name }, options.map(function (a, i) {
        return el("option", { value: String(i), text: a.label, disabled: a.allowed === false });
      }));
      box.appendChild(el("div", { class: "ground" }, [picker, el("button", {
        type: "button", test: "action-" + name, text: t("action_pick"),
        on: { click: function () { ask(view, id, options[Number(picker.value)]); } },
      })]));
    });
    if ((data.actions || []).some(function (a) { return a.allowed === false; })) {
      box.appendChild(el("p", { class: "hint", test: "role-hint", text: t("role_limited") }));
    }
    box.appendChild(el("div", { test: "action-form", class: "action-form" }));
    return box;
  }

  function ask(view, id, action) {
    const form = view.querySelector('[data-test="action-form"]');
    const needsDate = action.action === "restrict" || action.action === "block";
    if (!action.needs_text && !needsDate) {
      send(view, id, { action: action.action, ground: action.ground, job_id: action.job_id });
      return;
    }
    const text = el("textarea", { test: "action-text", rows: "4", maxlength: "4000", placeholder: t("reason") });
    const until = needsDate ? el("input", { type: "date", test: "action-until" }) : null;
    // A clarification beyond the agent's limit: the DPO's reason for it as well.
    const beyond = action.needs_beyond
      ? el("textarea", { test: "action-beyond", rows: "2", maxlength: "1000", placeholder: t("beyond") })
      : null;
    const submit = el("button", { type: "submit", test: "action-submit", text: action.label });
    form.replaceChildren(el("form", { on: { submit: function (event) {
      event.preventDefault();
      const body = { action: action.action, ground: action.ground, job_id: action.job_id };
      if (action.needs_text) body.text = text.value;
      if (until && until.value) body.until = until.value;
      if (beyond) body.beyond = beyond.value;
      send(view, id, body);
    } } }, [el("label", { text: action.label }), action.needs_text ? text : null, beyond, until, submit]));
    (action.needs_text ? text : until).focus();
  }

  function send(view, id, body) {
    const clean = {};
    Object.keys(body).forEach(function (k) { if (body[k] !== undefined && body[k] !== null) clean[k] = body[k]; });
    view.querySelectorAll('[data-test="actions"] button').forEach(function (b) { b.disabled = true; });
    function settle(outcome) {
      // The request as it is now; an erased one is gone: the outcome alone then.
      return api("requests/" + id).then(function (data) {
        renderRequest(view, id, data, outcome);
      }).catch(function () {
        view.replaceChildren(el("button", { type: "button", class: "link", test: "back",
          text: "← " + t("nav_requests"), on: { click: function () { go("requests"); } } }), outcome);
      });
    }
    api("requests/" + id + "/action", { method: "POST", body: clean }).then(function (result) {
      return settle(outcomeNode(result.outcome, result.message));
    }, function (error) {
      if (error.status === 401) return refuse(error);
      // 404: decided and erased meanwhile (from the card, say): closed, nothing more to do.
      if (error.status === 404) return settle(outcomeNode("closed", t("outcome_closed")));
      return settle(outcomeNode("error", errorText(error)));
    });
  }

  function outcomeNode(outcome, message) {
    return el("p", { class: "outcome outcome-" + outcome, test: "outcome", "data-outcome": outcome,
      role: "status", text: message || t("outcome_" + outcome) });
  }

  // ---- Generic rendering for the person, the breaches and the figures ----
  function label(key) {
    const text = t("field_" + key);
    return text === "field_" + key ? key.replace(/_/g, " ") : text;
  }

  function cell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "boolean") return value ? "✓" : "—";
    if (typeof value === "object") return JSON.stringify(value);
    if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) return fmtDate(value);
    return String(value);
  }

  function table(rows, test, onRow) {
    if (!rows.length) return el("p", { class: "hint", test: test + "-empty", text: t("empty") });
    const keys = [];
    rows.forEach(function (row) {
      Object.keys(row).forEach(function (k) {
        // A code with its label beside it: the label only.
        if (keys.indexOf(k) < 0 && !(k + "_label" in row) && !(k === "purpose" && "label" in row)) keys.push(k);
      });
    });
    return el("div", { class: "scroll" }, [el("table", { class: "grid", test: test }, [
      el("thead", {}, [el("tr", {}, keys.map(function (k) { return el("th", { text: label(k) }); }))]),
      el("tbody", {}, rows.map(function (row) {
        const attrs = { test: test + "-row" };
        if (onRow) {
          attrs.tabindex = "0";
          attrs.class = "link-row";
          attrs.on = { click: function () { onRow(row); } };
        }
        return el("tr", attrs, keys.map(function (k) { return el("td", { text: stateText(k, row[k]) }); }));
      })),
    ])]);
  }

  function asRows(value) {
    if (Array.isArray(value)) {
      return value.map(function (v) { return v !== null && typeof v === "object" ? v : { value: v }; });
    }
    if (value && typeof value === "object") {
      return Object.keys(value).map(function (k) {
        const v = value[k];
        return v !== null && typeof v === "object" && !Array.isArray(v) ? Object.assign({ key: k }, v) : { key: label(k), value: v };
      });
    }
    return [];
  }

  function sections(data, prefix) {
    const out = [];
    Object.keys(data || {}).forEach(function (key) {
      const value = data[key];
      if (value !== null && typeof value === "object") {
        out.push(el("h3", { text: label(key) }));
        const open = key === "requests" ? function (row) { go("request", row.id); } : null;
        out.push(table(asRows(value), prefix + "-" + key, open));
      } else {
        out.push(el("p", { class: "kv" }, [el("b", { text: label(key) + ": " }), cell(value)]));
      }
    });
    return out;
  }

  VIEWS.person = function (userId) {
    const input = el("input", { type: "text", inputmode: "numeric", test: "person-id", placeholder: t("user_id"),
      value: userId ? String(userId) : "" });
    const result = el("div", { test: "person-data" });
    const form = el("form", { class: "search", on: { submit: function (event) {
      event.preventDefault();
      const id = input.value.trim();
      if (!/^\d+$/.test(id)) {
        result.replaceChildren(el("p", { class: "error", test: "error", text: t("digits_only") }));
        return;
      }
      result.replaceChildren(el("p", { class: "hint", text: "…" }));
      api("people/" + id).then(function (data) {
        result.replaceChildren.apply(result, sections(data, "person"));
      }).catch(function (error) {
        if (error.status === 401) return refuse(error);
        result.replaceChildren(el("p", { class: "error", test: "error", text: errorText(error) }));
      });
    } } }, [input, el("button", { type: "submit", test: "person-go", text: t("find") })]);
    show(el("section", { test: "view-person", class: "view" }, [el("h2", { text: t("nav_person") }), form, result]));
    if (userId) form.requestSubmit();
  };

  VIEWS.breaches = function () {
    const body = el("div", { test: "breaches-body" }, [el("p", { class: "hint", text: "…" })]);
    show(el("section", { test: "view-breaches", class: "view" }, [el("h2", { text: t("nav_breaches") }), body]));
    api("breaches").then(function (data) {
      const list = Array.isArray(data) ? data : (data.items || data.breaches);
      if (!Array.isArray(list)) return body.replaceChildren.apply(body, sections(data, "breaches"));
      if (!list.length) return body.replaceChildren(el("p", { class: "hint", test: "breaches-empty", text: t("empty") }));
      body.replaceChildren.apply(body, list.map(breachCard));
    }).catch(function (error) {
      if (error.status === 401) return refuse(error);
      body.replaceChildren(el("p", { class: "error", test: "error", text: errorText(error) }));
    });
  };

  function breachCard(breach) {
    const plain = {};
    const nested = [];
    Object.keys(breach).forEach(function (k) {
      const v = breach[k];
      if (v !== null && typeof v === "object") nested.push(k);
      else plain[k] = v;
    });
    const parts = [el("h3", { text: "#" + breach.id + (breach.what ? " · " + breach.what : "") })];
    Object.keys(plain).forEach(function (k) {
      if (k === "id" || k === "what" || plain[k] === "" || plain[k] === null) return;
      const attrs = { class: "kv" };
      if (k === "state") attrs["data-state"] = String(plain[k]);
      parts.push(el("p", attrs, [el("b", { text: label(k) + ": " }), stateText(k, plain[k])]));
    });
    nested.forEach(function (k) {
      const v = breach[k];
      if (Array.isArray(v) && v.length && typeof v[0] !== "object") {
        parts.push(el("p", { class: "kv" }, [el("b", { text: label(k) + ": " }), v.join(", ")]));
        return;
      }
      parts.push(el("h4", { text: label(k) }));
      parts.push(table(Array.isArray(v) ? asRows(v) : [v], "breach-" + k));
    });
    return el("article", { class: "breach", test: "breach", "data-id": String(breach.id) }, parts);
  }

  function stateText(key, value) {
    if (key !== "state") return cell(value);
    const text = t("state_" + value);
    return text === "state_" + value ? cell(value) : text;
  }

  // ---- Figures: each series as an SVG bar chart drawn here, and the same numbers as a table ----
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function rowLabel(row, numeric) {
    return Object.keys(row).filter(function (k) { return numeric.indexOf(k) < 0; }).map(function (k) {
      return cell(row[k]);
    }).join(" · ");
  }

  function chart(rows, field, test, labelKeys) {
    const numeric = labelKeys
      ? Object.keys(rows[0] || {}).filter(function (k) { return labelKeys.indexOf(k) < 0; })
      : Object.keys(rows[0] || {}).filter(function (k) { return typeof rows[0][k] === "number"; });
    const values = rows.map(function (r) { return typeof r[field] === "number" ? r[field] : 0; });
    const max = Math.max.apply(null, values.concat([0])) || 1;
    const barH = 18, gap = 6, labelW = 130, width = 340;
    const height = rows.length * (barH + gap) + gap;
    const bars = [];
    rows.forEach(function (row, i) {
      const y = gap + i * (barH + gap);
      const w = Math.max(1, Math.round((width - labelW - 50) * values[i] / max));
      const text = rowLabel(row, numeric);
      bars.push(svg("text", { x: labelW - 6, y: y + barH - 5, "text-anchor": "end", class: "axis" }, [
        document.createTextNode(text.length > 19 ? text.slice(0, 18) + "…" : text)]));
      bars.push(svg("rect", { x: labelW, y: y, width: w, height: barH, rx: 3, class: "bar", "data-test": "bar" }));
      bars.push(svg("text", { x: labelW + w + 4, y: y + barH - 5, class: "value" }, [
        document.createTextNode(cell(Math.round(values[i] * 100) / 100))]));
    });
    return svg("svg", { viewBox: "0 0 " + width + " " + height, width: "100%", role: "img",
      "aria-label": label(field), "data-test": test, class: "chart" }, bars);
  }

  VIEWS.figures = function () {
    const body = el("div", { test: "figures-body" }, [el("p", { class: "hint", text: "…" })]);
    show(el("section", { test: "view-figures", class: "view" }, [el("h2", { text: t("nav_figures") }), body]));
    api("figures").then(function (data) {
      if (data && Array.isArray(data.on_time) && Array.isArray(data.open_by_age)) {
        return body.replaceChildren.apply(body, figureParts(data));
      }
      const parts = [];
      Object.keys(data || {}).forEach(function (key) {
        const rows = asRows(data[key]);
        if (!rows.length || typeof data[key] !== "object") return;
        parts.push(el("h3", { text: label(key) }));
        const numeric = Object.keys(rows[0]).filter(function (k) { return typeof rows[0][k] === "number"; });
        numeric.forEach(function (field) {
          parts.push(el("h4", { text: label(field) }));
          parts.push(chart(rows, field, "chart-" + key + "-" + field));
        });
        parts.push(table(rows, "figures-table-" + key));
      });
      if (!parts.length) parts.push(el("p", { class: "hint", text: t("empty") }));
      body.replaceChildren.apply(body, parts);
    }).catch(function (error) {
      if (error.status === 401) return refuse(error);
      body.replaceChildren(el("p", { class: "error", test: "error", text: errorText(error) }));
    });
  };

  function lookup(list, key) {
    const out = {};
    (list || []).forEach(function (item) { out[item[key]] = item.label; });
    return out;
  }

  // On-time rate and median days per type and month, open requests by age, consents per
  // purpose and month: a chart of each, and the same numbers as a table.
  function figureParts(data) {
    const types = lookup(data.types, "type");
    const purposes = lookup(data.purposes, "purpose");
    const parts = [];
    const onTime = data.on_time.map(function (r) {
      return { month: r.month, type: types[r.type] || r.type, closed: r.closed, on_time: r.on_time,
        rate: Math.round(r.rate * 1000) / 10, median_days: r.median_days };
    });
    parts.push(el("h3", { text: label("on_time") }));
    if (onTime.length) {
      parts.push(el("h4", { text: label("rate") }));
      parts.push(chart(onTime, "rate", "chart-rate", ["month", "type"]));
      parts.push(el("h4", { text: label("median_days") }));
      parts.push(chart(onTime, "median_days", "chart-median", ["month", "type"]));
    }
    parts.push(table(onTime, "figures-on-time"));
    const ages = data.open_by_age.map(function (r) {
      const text = t("age_bucket", { bucket: r.bucket });
      return { bucket: text === "age_bucket" ? r.bucket : text, count: r.count };
    });
    parts.push(el("h3", { text: label("open_by_age") }));
    parts.push(chart(ages, "count", "chart-age", ["bucket"]));
    parts.push(table(ages, "figures-age"));
    // Consents granted: a chart per purpose (months down), one table (a column per purpose).
    parts.push(el("h3", { text: label("consents") }));
    const byPurpose = {};
    const byMonth = {};
    (data.consents || []).forEach(function (r) {
      const name = purposes[r.purpose] || r.purpose;
      (byPurpose[name] = byPurpose[name] || []).push({ month: r.month, granted: r.granted });
      (byMonth[r.month] = byMonth[r.month] || { month: r.month })[name] = r.granted;
    });
    Object.keys(byPurpose).forEach(function (name, i) {
      parts.push(el("h4", { text: name }));
      parts.push(chart(byPurpose[name], "granted", "chart-consents-" + i, ["month"]));
    });
    parts.push(table(Object.keys(byMonth).sort().map(function (m) { return byMonth[m]; }), "figures-consents"));
    return parts;
  }

  // ---- Register a request that did not come through the bot ----
  const CHANNELS = ["email", "post", "in_person", "other"];
  const MAX_SCAN = 5 * 1024 * 1024;

  function field(name, input) {
    return el("label", { class: "field" }, [el("span", { text: t("reg_" + name) }), input]);
  }

  function readScan(file) {
    return new Promise(function (resolve, reject) {
      if (!file) return resolve(null);
      if (file.size > MAX_SCAN) return reject(new Error("too big"));
      const reader = new FileReader();
      reader.onload = function () {
        resolve({ name: file.name, base64: String(reader.result).replace(/^data:[^,]*,/, "") });
      };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsDataURL(file);
    });
  }

  VIEWS.register = function () {
    const type = select("reg-type", TYPES.map(function (s) { return [s, t("type_" + s)]; }), "access", function () {});
    const channel = select("reg-channel", CHANNELS.map(function (s) { return [s, t("channel_" + s)]; }), "email", function () {});
    const today = new Date().toISOString().slice(0, 10);
    const received = el("input", { type: "date", test: "reg-received", value: today, max: today, required: true });
    const identity = el("textarea", { test: "reg-identity", rows: "2", required: true, maxlength: "2000" });
    const user = el("input", { type: "text", inputmode: "numeric", test: "reg-user", pattern: "\\d*" });
    const text = el("textarea", { test: "reg-text", rows: "5", required: true, maxlength: "8000" });
    const scan = el("input", { type: "file", test: "reg-file", accept: "image/*,application/pdf" });
    const result = el("div", { test: "reg-result", role: "status" });
    const submit = el("button", { type: "submit", test: "reg-submit", text: t("reg_submit") });
    const form = el("form", { class: "register", on: { submit: function (event) {
      event.preventDefault();
      submit.disabled = true;
      readScan(scan.files[0]).then(function (attachment) {
        const body = { type: type.value, channel: channel.value, received_on: received.value,
          identity_check: identity.value.trim(), text: text.value.trim() };
        if (user.value.trim()) body.user_id = Number(user.value.trim());
        if (attachment) body.attachment = attachment;
        return api("external", { method: "POST", body: body });
      }).then(function (data) {
        let note = t(data.linked ? "registered_linked" : "registered", { id: data.id });
        if (note === "registered" || note === "registered_linked") note = t("reg_done", { id: data.id });
        if (data.attachment === "failed") note = t("scan_failed");
        result.replaceChildren(outcomeNode("ok", note), el("button", {
          type: "button", test: "reg-open", text: t("open_request"),
          on: { click: function () { go("request", data.id); } } }));
        form.reset();
      }).catch(function (error) {
        if (error.status === 401) return refuse(error);
        result.replaceChildren(outcomeNode("error", error.status ? errorText(error) : t("reg_too_big")));
      }).then(function () { submit.disabled = false; });
    } } }, [
      field("type", type), field("channel", channel), field("received", received), field("identity", identity),
      field("user", user), field("text", text), field("file", scan), submit,
    ]);
    show(el("section", { test: "view-register", class: "view" }, [el("h2", { text: t("nav_register") }), form, result]));
  };

  window.Desk = { go: go, t: t, el: el, api: api, state: state, show: show, fmtDate: fmtDate,
    safeHtml: safeHtml, errorText: errorText, views: VIEWS };

  function start() {
    const params = launchParams();
    applyTheme(params.theme);
    state.init = params.init;
    if (!state.init) {
      refuse({ status: 401 });
      return;
    }
    api("me").then(function (me) {
      state.me = me;
      state.texts = me.texts || {};
      document.documentElement.lang = me.locale || "ru";
      document.title = t("title");
      document.getElementById("title").textContent = t("title");
      setupNav();
      const match = /^req_(\d+)$/.exec(params.start);
      if (match) go("request", Number(match[1]));
      else go("requests");
    }).catch(refuse);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
