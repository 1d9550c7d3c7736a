// The demo SMS gateway's page: what each phone received, newest first, and the switch that takes it down.
import { h } from "/shared/dom.js";

const root = document.getElementById("phones");
const down = document.getElementById("down");
const state = document.getElementById("state");

async function refresh() {
  try {
    const res = await fetch("/demo/sms/messages", { cache: "no-store" });
    const data = await res.json();
    down.checked = data.down;
    state.textContent = data.down ? `网关故障中，已拒收 ${data.refused} 次（乡呼会重试）` : "网关正常";
    const byPhone = new Map();
    for (const m of data.messages) {
      if (!byPhone.has(m.phone)) byPhone.set(m.phone, []);
      byPhone.get(m.phone).push(m);
    }
    root.replaceChildren(...(byPhone.size ? [...byPhone].map(([phone, list]) =>
      h("section", { class: "phone", "data-phone": phone },
        h("h2", {}, `📱 ${phone}`),
        h("ol", {}, ...list.map((m) => h("li", {}, m.text))))) : [h("p", { class: "empty" }, "还没有短信。")]));
  } catch (err) {
    state.textContent = `读取失败：${err.message}`;
  }
}

down.addEventListener("change", async () => {
  await fetch("/demo/sms/state", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ down: down.checked }) });
  refresh();
});
refresh();
setInterval(refresh, 2000);
