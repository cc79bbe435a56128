"""The readiness audit as a table: one row per check, status as a word and a colour.

The app calls ``update_checks(model.audit.evaluate(facts))`` whenever it re-runs the audit
(on demand or every few seconds: the facts read smaps_rollup, a page-table walk). Rows are
updated in place by check name, so the cursor stays where the user left it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from hftmem_tui.model.audit import FAIL, PASS, UNKNOWN, WARN, Check, worst
from hftmem_tui.ui.safe import cell, plain

# ANSI base colours only: they exist in a 16-colour terminal; the label carries the meaning.
STATUS_STYLE = {PASS: "bold green", WARN: "bold yellow", FAIL: "bold white on red", UNKNOWN: "dim"}


def status_text(check: Check) -> Text:
    return Text(check.label, style=STATUS_STYLE[check.status])


class AuditPanel(Vertical):
    """Readiness checks: a table (status, check, evidence) and the advice of the selected row."""

    DEFAULT_CSS = """
    AuditPanel { height: 1fr; }
    AuditPanel > #audit-summary { height: 1; padding: 0 1; }
    AuditPanel > DataTable { height: 1fr; }
    AuditPanel > #audit-advice { height: auto; max-height: 4; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._checks: dict[str, Check] = {}

    def compose(self) -> ComposeResult:
        yield Static("readiness audit: not run yet", id="audit-summary")
        table: DataTable = DataTable(id="audit-table", cursor_type="row", zebra_stripes=False)
        table.add_column("status", key="status", width=7)
        table.add_column("check", key="check", width=22)
        table.add_column("evidence", key="evidence")
        yield table
        yield Static("", id="audit-advice")

    @property
    def checks(self) -> tuple[Check, ...]:
        """The checks currently shown, in table order."""
        return tuple(self._checks.values())

    def update_checks(self, checks: Sequence[Check]) -> None:
        """Show ``checks``: existing rows are updated in place, new ones added, vanished ones removed."""
        table = self.query_one(DataTable)
        new = {c.name: c for c in checks}
        for name in [n for n in self._checks if n not in new]:
            table.remove_row(name)
        for c in checks:
            if c.name in self._checks:
                old = self._checks[c.name]
                if old.status != c.status:
                    table.update_cell(c.name, "status", status_text(c))
                if old.evidence != c.evidence:
                    table.update_cell(c.name, "evidence", cell(c.evidence), update_width=False)
            else:
                table.add_row(status_text(c), c.name, cell(c.evidence), key=c.name)  # check names are ours
        self._checks = new
        counts = {s: sum(1 for c in checks if c.status == s) for s in (PASS, WARN, FAIL, UNKNOWN)}
        summary = Text.assemble(
            ("readiness: ", "bold"), status_text(Check("", worst(checks), "")), "  ",
            f"{counts[PASS]} pass, {counts[WARN]} warn, {counts[FAIL]} fail, {counts[UNKNOWN]} unknown",
        )
        self.query_one("#audit-summary", Static).update(summary)
        self._show_advice()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_advice()

    def _show_advice(self) -> None:
        table = self.query_one(DataTable)
        advice = self.query_one("#audit-advice", Static)
        if not table.row_count:
            advice.update("")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        check = self._checks.get(key or "")
        if check is None:
            advice.update("")
        elif check.advice:
            advice.update(Text.assemble((f"{check.name}: ", "bold"), plain(check.evidence), "\n",
                                        ("advice: ", "bold"), plain(check.advice)))
        else:
            advice.update(Text.assemble((f"{check.name}: ", "bold"), plain(check.evidence)))
