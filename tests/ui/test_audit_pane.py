"""AuditPanel alone in a tiny App: rows per check, words for status, advice of the selected row."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from hftmem_tui.model import audit
from hftmem_tui.model.audit import Check, evaluate
from hftmem_tui.sources.readiness import read_facts
from hftmem_tui.ui.audit_pane import AuditPanel


class AuditApp(App):
    def compose(self) -> ComposeResult:
        yield AuditPanel()


def test_audit_panel_on_the_real_engine(engine):
    pid = engine()
    checks = evaluate(read_facts(pid))

    async def run() -> None:
        app = AuditApp()
        async with app.run_test(size=(100, 24)) as pilot:
            panel = app.query_one(AuditPanel)
            panel.update_checks(checks)
            await pilot.pause()
            table = panel.query_one(DataTable)
            assert table.row_count == len(audit.CHECK_NAMES)
            assert [table.get_row(name)[1] for name in audit.CHECK_NAMES] == list(audit.CHECK_NAMES)
            status = table.get_row(audit.MEMORY_LOCKED)[0]
            assert status.plain == "FAIL"  # the word, not only the colour
            summary = str(panel.query_one("#audit-summary", Static).render())
            assert "fail" in summary and "FAIL" in summary
            # Move to the memory row: its advice shows below the table.
            table.focus()
            await pilot.press("home")
            await pilot.pause()
            advice = str(panel.query_one("#audit-advice", Static).render())
            assert "mlockall" in advice
            # An update in place keeps the cursor and changes only what changed.
            await pilot.press("down", "down")
            row = table.cursor_row
            fixed = tuple(Check(c.name, audit.PASS, "VmLck 10 MiB of VmRSS 10 MiB (100%)") if c.name == audit.MEMORY_LOCKED
                          else c for c in checks)
            panel.update_checks(fixed)
            await pilot.pause()
            assert table.cursor_row == row and table.row_count == len(checks)
            assert table.get_row(audit.MEMORY_LOCKED)[0].plain == "PASS"
            panel.update_checks(fixed[:3])
            await pilot.pause()
            assert table.row_count == 3

    asyncio.run(run())
