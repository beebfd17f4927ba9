"""A report page as a list of blocks, rendered twice: self-contained HTML and Markdown.

Both renderings come from the same blocks, so report.html and report.md always show the same
numbers. Figures are drawn once to PNG (beside report.md) and once to SVG, inlined in the
HTML: the page needs no network, no script and no other file to open.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.reporting import style


@dataclass
class Heading:
    text: str
    id: str
    level: int = 2


@dataclass
class Para:
    text: str  # plain text; `backticks` become code


@dataclass
class Note:
    text: str
    kind: str = "info"  # info | warn


@dataclass
class Cards:
    """Headline numbers: (label, value, detail)."""

    items: list[tuple[str, str, str]]


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    align: str = ""  # one letter per column: l or r (default: first l, rest r)
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) to emphasise
    swatches: dict[tuple[int, int], str] = field(default_factory=dict)  # cell -> colour
    head_swatches: dict[int, str] = field(default_factory=dict)  # header column -> colour
    show_header: bool = True  # HTML only: Markdown tables always need a header row


@dataclass
class Figure:
    id: str
    fig: Any  # matplotlib.figure.Figure
    caption: str
    title: str
    number: int = 0


@dataclass
class Definitions:
    items: list[tuple[str, str]]


Block = Heading | Para | Note | Cards | Table | Figure | Definitions


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def render_figure(fig: Any, png_path: Path, salt: str) -> str:
    """Write the PNG and return the SVG markup (no XML prolog) for inlining."""
    import matplotlib

    with matplotlib.rc_context({**style.RC, "svg.hashsalt": salt}):
        fig.savefig(png_path, format="png", metadata={"Software": None})
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    # Unique ids per figure: several inline SVGs share one document.
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{salt}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{salt}-{m.group(1)})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{salt}-{m.group(1)}"', svg)
    m = re.search(r'<svg[^>]*?\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"', svg)
    if m:
        width_px = float(m.group(1)) * 4 / 3
        svg = svg.replace(
            m.group(0),
            m.group(0).split(" width=")[0]
            + f' role="img" style="width:100%;max-width:{width_px:.0f}px;height:auto"',
            1,
        )
    return svg


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
CSS = """
:root { --fg:#1b1f24; --muted:#5b6570; --line:#d8dde3; --bg:#ffffff; --soft:#f5f7f9;
        --accent:#D55E00; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 32px 60px; }
header.top { border-bottom: 2px solid var(--fg); margin-bottom: 18px; padding-bottom: 10px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; }
header.top p { margin: 0; color: var(--muted); }
nav { margin: 10px 0 4px; font-size: 13px; }
nav a { color: var(--muted); margin-right: 14px; text-decoration: none; }
nav a:hover { color: var(--fg); text-decoration: underline; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 8px 0; }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; font-size: 13px; }
.note { border-left: 4px solid #4477AA; background: #eef3f9; padding: 8px 12px; margin: 12px 0;}
.note.warn { border-left-color: var(--accent); background: #fdf0e8; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr));
         gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
        background: var(--soft); }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
               letter-spacing: .03em; }
.card .value { font-size: 22px; font-weight: 650; margin: 2px 0;
               font-variant-numeric: tabular-nums; }
.card .detail { font-size: 12px; color: var(--muted); }
.tablewrap { overflow-x: auto; margin: 10px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 13px;
          padding-bottom: 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); border-bottom: 2px solid #b8c0c8; text-align: left; }
td.r, th.r { text-align: right; }
td.r { white-space: nowrap; }
td b { color: #000; }
.nw { white-space: nowrap; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
      margin-right: 6px; vertical-align: baseline; }
figure.fig { margin: 18px 0 26px; }
figure.fig svg { display: block; }
figcaption { font-size: 13.5px; color: #333; margin-top: 6px; }
figcaption b { color: var(--fg); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; font-size: 14px; }
dt { font-weight: 600; }
dd { margin: 0; color: #333; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px;
         border-top: 1px solid var(--line); padding-top: 8px; }
"""


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            out.append(f"<code>{html.escape(p[1:-1])}</code>")
        else:
            out.append(html.escape(p))
    return "".join(out)


def _html_table(t: Table) -> str:
    n = len(t.header)
    align = t.align or ("l" + "r" * (n - 1))
    cls = [' class="r"' if a == "r" else "" for a in align.ljust(n, "r")]
    rows = []
    if t.caption:
        rows.append(f"<caption>{_inline(t.caption)}</caption>")
    def head(j: int, h: str) -> str:
        inner = _inline(h)
        if j in t.head_swatches:
            inner = (f'<span class="sw" style="background:{t.head_swatches[j]}"></span>'
                     + inner)
        return f"<th{cls[j]}>{inner}</th>"

    if t.show_header:
        rows.append("<thead><tr>" + "".join(head(j, h) for j, h in enumerate(t.header))
                    + "</tr></thead>")
    rows.append("<tbody>")
    for i, row in enumerate(t.rows):
        cells = []
        for j, v in enumerate(row):
            inner = _inline(str(v))
            if (i, j) in t.swatches:  # short labels (device classes): keep swatch + name
                inner = (f'<span class="nw"><span class="sw" style="background:'
                         f'{t.swatches[(i, j)]}"></span>{inner}</span>')
            if (i, j) in t.bold:
                inner = f"<b>{inner}</b>"
            cells.append(f"<td{cls[j]}>{inner}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</tbody>")
    return '<div class="tablewrap"><table>' + "".join(rows) + "</table></div>"


def to_html(blocks: Sequence[Block], title: str, subtitle: str, svgs: dict[str, str],
            footer: str) -> str:
    heads = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = "".join(f'<a href="#{h.id}">{html.escape(h.text)}</a>' for h in heads)
    body: list[str] = []
    open_section = False
    for b in blocks:
        if isinstance(b, Heading):
            if b.level == 2:
                if open_section:
                    body.append("</section>")
                body.append(f'<section id="{b.id}">')
                open_section = True
            body.append(f'<h{b.level} id="h-{b.id}">{_inline(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Note):
            body.append(f'<p class="note {b.kind}">{_inline(b.text)}</p>')
        elif isinstance(b, Cards):
            body.append('<div class="cards">' + "".join(
                f'<div class="card"><div class="label">{_inline(lab)}</div>'
                f'<div class="value">{_inline(val)}</div>'
                f'<div class="detail">{_inline(det)}</div></div>'
                for lab, val, det in b.items) + "</div>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        elif isinstance(b, Figure):
            body.append(
                f'<figure class="fig" id="{b.id}">{svgs[b.id]}'
                f"<figcaption><b>Figure {b.number}. {_inline(b.title)}.</b> "
                f"{_inline(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Definitions):
            body.append("<dl>" + "".join(
                f"<dt>{_inline(t)}</dt><dd>{_inline(d)}</dd>" for t, d in b.items) + "</dl>")
    if open_section:
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="fedsim report">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<header class="top"><h1>{html.escape(title)}</h1><p>{_inline(subtitle)}</p>'
        f"<nav>{nav}</nav></header>\n" + "\n".join(body)
        + f"\n<footer>{_inline(footer)}</footer>\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------
def _md_cell(v: str) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    n = len(t.header)
    align = (t.align or ("l" + "r" * (n - 1))).ljust(n, "r")
    lines = []
    if t.caption:
        lines.append(f"*{t.caption}*\n")
    lines.append("| " + " | ".join(_md_cell(h) for h in t.header) + " |")
    lines.append("|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|")
    for i, row in enumerate(t.rows):
        cells = []
        for j, v in enumerate(row):
            s = _md_cell(v)
            cells.append(f"**{s}**" if (i, j) in t.bold and s else s)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(blocks: Sequence[Block], title: str, subtitle: str, pngs: dict[str, str],
                footer: str) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Note):
            out += [f"> {'**' + b.text + '**' if b.kind == 'warn' else b.text}", ""]
        elif isinstance(b, Cards):
            out += ["| metric | value | |", "|:---|---:|:---|"]
            out += [f"| {_md_cell(lab)} | {_md_cell(val)} | {_md_cell(det)} |"
                    for lab, val, det in b.items]
            out.append("")
        elif isinstance(b, Table):
            out += [_md_table(b), ""]
        elif isinstance(b, Figure):
            out += [f"![Figure {b.number}. {b.title}]({pngs[b.id]})", "",
                    f"*Figure {b.number}. {b.title}.* {b.caption}", ""]
        elif isinstance(b, Definitions):
            out += [f"- **{t}**: {d}" for t, d in b.items]
            out.append("")
    out += ["---", footer, ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Writing a page
# ---------------------------------------------------------------------------------------------
def write_page(blocks: list[Block], output: Path, stem: str, title: str, subtitle: str,
               footer: str) -> Path:
    """Render figures, write ``<stem>.html``, ``<stem>.md`` and ``figures/*.png``."""
    fig_dir = output / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    svgs: dict[str, str] = {}
    pngs: dict[str, str] = {}
    number = 0
    for b in blocks:
        if isinstance(b, Figure):
            number += 1
            b.number = number
            name = f"{b.id.removeprefix('fig-')}.png"
            svgs[b.id] = render_figure(b.fig, fig_dir / name, salt=b.id)
            pngs[b.id] = f"figures/{name}"
            b.fig = None  # free the figure
    html_path = output / f"{stem}.html"
    html_path.write_text(to_html(blocks, title, subtitle, svgs, footer), encoding="utf-8")
    (output / f"{stem}.md").write_text(to_markdown(blocks, title, subtitle, pngs, footer),
                                       encoding="utf-8")
    return html_path
