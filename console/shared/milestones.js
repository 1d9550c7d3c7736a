// One assignment's three steps (响应 / 报到 / 办结) as a small table: the actual time (from the assignment, the
// acted time when a phone queued it offline), the deadline (时限), and whether it was met — 按时, 超时 N, or, while
// the step's clock still runs, the time left (剩 …) turning into 超时 live (tickMilestones). Used by the operator's
// drawer and the supervisor's detail, so both read a deadline as a deadline and an actual time as an actual time.
import { addStrings, t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { RUNNING_CLOCKS, escalationText, fmtDateTime, fmtDuration, fmtMinSec, overdueText, toDate } from "/shared/format.js";

addStrings({
  "zh-CN": {
    "ms.caption": "各环节时间与时限", "ms.step": "环节", "ms.actual": "实际时间", "ms.due": "时限", "ms.verdict": "是否超时",
    "ms.ack": "响应", "ms.arrive": "报到", "ms.resolve": "办结", "ms.onTime": "按时", "ms.left": "剩 {d}",
    "ms.notDone": "未完成",
  },
  en: {
    "ms.caption": "Each step's time and deadline", "ms.step": "Step", "ms.actual": "Actual", "ms.due": "Deadline",
    "ms.verdict": "Overdue?", "ms.ack": "Acknowledge", "ms.arrive": "Arrive", "ms.resolve": "Result", "ms.onTime": "on time",
    "ms.left": "{d} left", "ms.notDone": "not done",
  },
});

export const STEPS = [["ack", "acknowledged_at"], ["arrive", "on_scene_at"], ["resolve", "reported_at"]];

const when = (v) => fmtDateTime(v, { seconds: true });

/** The verdict cell's content for a step: [text, class]. */
function verdict(actual, due, running, now) {
  const d = toDate(due);
  if (actual && d) {
    const late = toDate(actual).getTime() - d.getTime();
    return late > 0 ? [`✖ ${overdueText(late)}`, "ms-late"] : [`✓ ${t("ms.onTime")}`, "ms-ok"];
  }
  if (running && d) {
    const left = d.getTime() - now;
    return left <= 0 ? [`✖ ${overdueText(-left)}`, "ms-late"]
      : [t("ms.left", { d: left < 3600 * 1000 ? fmtMinSec(left) : fmtDuration(left) }), "ms-none"];
  }
  return [actual ? "—" : t("ms.notDone"), "ms-none"];
}

/** The table for assignment `a`; `callOpen`: the call is still open (its running clocks count). */
export function milestoneTable(a, { now = Date.now(), callOpen = true } = {}) {
  const runningKinds = callOpen ? RUNNING_CLOCKS[a.state] || [] : [];
  return h("table", { class: "milestones", dataset: { assignment: a.id } },
    h("caption", { class: "sr-only" }, t("ms.caption")),
    h("thead", {}, h("tr", {}, ...["ms.step", "ms.actual", "ms.due", "ms.verdict"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, STEPS.map(([kind, field]) => {
      const actual = a[field] || null;
      const due = a[`${kind}_due`] || null;
      const running = !actual && runningKinds.includes(kind);
      const [text, cls] = verdict(actual, due, running, now);
      return h("tr", { class: running ? "ms-running" : null, dataset: { kind } },
        h("th", { scope: "row" }, t(`ms.${kind}`),
          a.levels?.[kind] ? h("span", { class: "lvl", title: escalationText(a.levels[kind]) }, `↑${a.levels[kind]}`) : null),
        h("td", { class: "ms-actual" }, actual ? when(actual) : "—"),
        h("td", { class: "ms-due" }, due ? when(due) : "—"),
        h("td", { class: `ms-verdict ${cls}`, dataset: running && due ? { msDue: toDate(due).toISOString() } : {} }, text));
    })));
}

/** Once a second: the running steps' time left, turning into 超时 when it passes. */
export function tickMilestones(now = Date.now()) {
  for (const el of document.querySelectorAll("table.milestones td[data-ms-due]")) {
    const [text, cls] = verdict(null, el.dataset.msDue, true, now);
    el.textContent = text;
    el.className = `ms-verdict ${cls}`;
  }
}
