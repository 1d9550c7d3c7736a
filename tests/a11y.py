"""axe-core in the browser tests: ``await assert_accessible(page, "operator board")`` fails on any serious or
critical WCAG 2.1 A/AA violation of the page as it is now (served by the hub at /vendor/axe/axe.min.js)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_URL = "/vendor/axe/axe.min.js"  # what the hub serves; injected from the same npm package's file on disk, so a
# page whose browser is offline (the reconnecting states) is checked too
AXE_FILE = Path(__file__).resolve().parent.parent / "console" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = frozenset({"serious", "critical"})

RUN = """async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
  }));
}"""


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every WCAG 2.1 A/AA violation axe-core finds on the page now (axe is injected once per document)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through DevTools: the consoles' CSP (script-src 'self') forbids an inline script tag
        await page.evaluate(AXE_FILE.read_text(encoding="utf-8") + "\n;typeof window.axe")
    found: list[dict[str, Any]] = await page.evaluate(RUN, TAGS)
    return found


async def assert_accessible(page: Any, what: str) -> None:
    """No serious or critical violation on ``page`` (``what`` names the page and state in the failure)."""
    bad = [v for v in await axe_violations(page) if v["impact"] in FAILING_IMPACTS]
    lines = [f"{v['impact']} {v['id']}: {v['help']}\n" + "\n".join(f"    {n['target']}: {n['summary']}"
                                                                  for n in v["nodes"]) for v in bad]
    assert not bad, f"{what}: {len(bad)} serious/critical accessibility violation(s)\n" + "\n".join(lines)
