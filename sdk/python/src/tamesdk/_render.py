"""How the command prints: tables and colour (rich) on a terminal, plain
aligned text on a pipe or in a file, and JSON when asked with ``--format json``."""

from __future__ import annotations

import json
import sys
from typing import Any, List, Optional, Sequence, TextIO, Tuple

#: Colours of decisions and outcomes on a terminal.
STYLES = {
    "allow": "bold green",
    "deny": "bold red",
    "approve": "bold yellow",
    "success": "green",
    "error": "red",
    "ok": "green",
}


def text(value: Any) -> str:
    """A cell's text: empty for None, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


class Output:
    """Where one command's results go, in the format it was asked for."""

    def __init__(self, fmt: str = "table", stream: Optional[TextIO] = None) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stdout
        self.rich = fmt != "json" and self.stream.isatty()
        self._blocks = 0
        if self.rich:
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False)

    @property
    def json_mode(self) -> bool:
        return self.fmt == "json"

    def data(self, value: Any) -> None:
        """JSON output: the whole value, indented."""
        self.stream.write(json.dumps(value, indent=2, default=str) + "\n")

    def line(self, message: str, style: Optional[str] = None) -> None:
        if self.rich:
            from rich.text import Text

            self.console.print(Text(message, style=style or ""))
        else:
            self.stream.write(message + "\n")

    def fields(self, title: Optional[str], rows: Sequence[Tuple[str, Any]]) -> None:
        """A record: one ``name: value`` line (or table row) per field."""
        if self.rich:
            from rich.table import Table

            table = Table(title=title, show_header=False, title_justify="left")
            table.add_column(style="bold cyan")
            table.add_column()
            for name, value in rows:
                cell = text(value)
                table.add_row(name, self._styled(cell))
            self.console.print(table)
            return
        self._start_block(title)
        width = max((len(name) for name, _ in rows), default=0)
        for name, value in rows:
            self.stream.write(f"{name + ':':<{width + 1}} {text(value)}\n")

    def table(
        self, title: Optional[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Rows under column headings."""
        cells: List[List[str]] = [[text(v) for v in row] for row in rows]
        if self.rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in cells:
                table.add_row(*(self._styled(c) for c in row))
            self.console.print(table)
            return
        self._start_block(title)
        widths = [len(c) for c in columns]
        for row in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, row)]
        for row in [list(columns), *cells]:
            self.stream.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")

    def _start_block(self, title: Optional[str]) -> None:
        """Plain text: a blank line between blocks, then the title."""
        if self._blocks:
            self.stream.write("\n")
        self._blocks += 1
        if title:
            self.stream.write(title + "\n")

    def _styled(self, cell: str) -> Any:
        from rich.text import Text

        return Text(cell, style=STYLES.get(cell, ""))
