// The states of a console's main list, one box each page places above its list (operator board, liaison cards,
// grid worker's reports, supervisor's call log):
//   loading   first load under way: a spinner and 正在加载… (never "no calls", never 已断开)
//   empty     loaded, nothing to show: the page's own words (暂无…)
//   failed    the load failed: what happened in words (the database unavailable, the hub unreachable, …) and a
//             重试 button; a list loaded before stays visible under it, marked as not current
//   stale     the live connection dropped after a load: 正在重连 with the time the data is from
//   ok        nothing to say: the box is hidden
// The box carries data-state, so tests and styles read the state rather than guess it from text.
import { addStrings, t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { fmtTime } from "/shared/format.js";

addStrings({
  "zh-CN": {
    "ls.loading": "正在加载…", "ls.retry": "重试", "ls.failed": "加载失败",
    "ls.unavailable": "指挥平台的数据库暂时不可用，数据未能加载。请稍后重试；如持续出现，请联系系统管理员。",
    "ls.network": "无法连接到指挥平台，数据未能加载。请检查网络后重试。",
    "ls.server": "指挥平台出错（{status}），数据未能加载。请稍后重试。",
    "ls.forbidden": "您的账号无权查看这些数据。",
    "ls.stale": "实时连接已断开，正在重连…… 下面是 {t} 的数据，可能已有变化。",
    "ls.staleNoData": "实时连接已断开，正在重连……",
    "ls.keptRows": "下面是上次加载（{t}）的数据，可能已有变化。",
  },
  en: {
    "ls.loading": "Loading…", "ls.retry": "Retry", "ls.failed": "Could not load",
    "ls.unavailable": "The hub's database is unavailable; nothing could be loaded. Retry in a moment; if it persists, call the administrator.",
    "ls.network": "Cannot reach the hub; nothing could be loaded. Check the network and retry.",
    "ls.server": "The hub failed ({status}); nothing could be loaded. Retry in a moment.",
    "ls.forbidden": "Your account may not see this.",
    "ls.stale": "Live connection lost, reconnecting… The list below is from {t} and may have changed.",
    "ls.staleNoData": "Live connection lost, reconnecting…",
    "ls.keptRows": "The list below is from the last load ({t}) and may have changed.",
  },
});

/** A load failure in words: {status} (0 or absent: no answer) and {code} as the consoles' api() helpers throw them. */
export function loadErrorText(err) {
  const status = Number(err && err.status) || 0;
  const code = err && err.code;
  if (code === "unavailable" || status === 503) return t("ls.unavailable");
  if (code === "forbidden" || status === 403) return t("ls.forbidden");
  if (!status || code === "network") return t("ls.network");
  return t("ls.server", { status });
}

/** Show one state in `box`; `retry` is called by the 重试 button; `loadedAt` (ms) dates a list kept on screen. */
export function showLoadState(box, kind, { text = "", error = null, retry = null, loadedAt = null } = {}) {
  box.dataset.state = kind;
  box.hidden = kind === "ok";
  box.className = `load-state ls-${kind}`;
  box.setAttribute("role", kind === "failed" ? "alert" : "status");
  if (kind === "loading") {
    box.replaceChildren(h("span", { class: "ls-spinner", "aria-hidden": "true" }), t("ls.loading"));
  } else if (kind === "empty") {
    box.replaceChildren(text);
  } else if (kind === "failed") {
    box.replaceChildren(
      h("span", { class: "ls-icon", "aria-hidden": "true" }, "!"),
      h("span", { class: "ls-text" }, h("strong", {}, t("ls.failed")), " ", text || loadErrorText(error),
        loadedAt ? h("span", { class: "ls-kept" }, " ", t("ls.keptRows", { t: fmtTime(loadedAt, { seconds: false }) })) : null),
      retry ? h("button", { type: "button", class: "ls-retry", onclick: retry }, t("ls.retry")) : null);
  } else if (kind === "stale") {
    box.replaceChildren(h("span", { class: "ls-spinner", "aria-hidden": "true" }),
      loadedAt ? t("ls.stale", { t: fmtTime(loadedAt, { seconds: false }) }) : t("ls.staleNoData"));
  } else {
    box.replaceChildren();
  }
}
