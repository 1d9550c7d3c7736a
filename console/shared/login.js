// The login page (console/login.html): no inline script, so the Content-Security-Policy can forbid it.
import { applyI18n, t, lang, langHeaders, setLang } from "/shared/i18n.js";
applyI18n();
document.getElementById("lang").onclick = () => setLang(lang() === "en" ? "zh-CN" : "en");
const LANDING = { operator: "/operator/", liaison: "/liaison/", supervisor: "/supervisor/", admin: "/admin/",
                  leader: "/supervisor/", department_head: "/supervisor/", grid_worker: "/grid/" };

// Where to go after logging in: `next` only when it is a path on this very origin. A backslash
// (`/\host`) or a tab/newline (`/\t/host`, dropped by the URL parser) would otherwise turn
// "/…" into "//host", another site.
export function safeNext(raw, origin = location.origin) {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//")) return null;
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return null;
  let url;
  try { url = new URL(raw, origin); } catch { return null; }
  if (url.origin !== origin) return null;
  return url.pathname + url.search + url.hash;
}
const next = safeNext(new URLSearchParams(location.search).get("next"));
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("error");
  err.textContent = "";
  const body = { username: document.getElementById("username").value.trim(), password: document.getElementById("password").value, client: "browser" };
  let bad = false;
  for (const f of ["username", "password"]) {
    const empty = !body[f];
    document.getElementById(f + "-error").textContent = empty ? t("required") : "";
    bad ||= empty;
  }
  if (bad) return;
  let res;
  try {
    res = await fetch("/api/v1/login", { method: "POST", headers: langHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  } catch { err.textContent = t("network"); return; }
  const data = await res.json().catch(() => ({}));
  if (res.ok) {
    const role = data.user.role;
    location.href = next || LANDING[role];
  } else if (res.status === 429) {
    err.textContent = t("tooMany", { s: res.headers.get("Retry-After") || "60" });
  } else {
    err.textContent = res.status === 401 ? t("wrong") : (data.message || res.statusText);
  }
});
