"""Words on label PDFs: one embedded font for Latin, Devanagari and the rupee sign, Devanagari shaped.

Rules: label text is drawn in Noto Sans Devanagari (regular or bold, fonts/README.md), which covers English and
Hindi alike, embedded as a subset of the glyphs used. A line with Devanagari in it is shaped by HarfBuzz
(uharfbuzz, through reportlab), so conjuncts join and vowel signs sit where they belong, and is marked with the
text as typed (the PDF's ActualText), so that copying it or pdftotext gives back the characters, not the glyphs'
visual order. Widths are measured on the shaped line, so wrapping, centring and right alignment fit what prints.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import ShapedStr, TTFont, shapeStr
from reportlab.pdfgen.canvas import Canvas

FONT_DIR = Path(__file__).with_name("fonts")
REGULAR = "NotoSansDevanagari"
BOLD = "NotoSansDevanagari-Bold"
_FONT_FILES = {REGULAR: "NotoSansDevanagari-Regular.ttf", BOLD: "NotoSansDevanagari-Bold.ttf"}
# Devanagari, Devanagari Extended and Vedic Extensions: the text that needs shaping. Latin is drawn as it is.
_NEEDS_SHAPING = re.compile("[\u0900-\u097f\ua8e0-\ua8ff\u1cd0-\u1cff]")
ELLIPSIS = "…"

Align = Literal["left", "centre", "right"]


@cache
def register_fonts() -> None:
    """Register the label fonts with reportlab, once per process, at the first label (not at import)."""
    for name, file_name in _FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / file_name)))


def text_width(text: str, font: str, size: float) -> float:
    """The printed width of one line, shaped when it has Devanagari."""
    shaped = _shaped(text, font, size)
    if shaped is not None:
        return sum(glyph.x_advance for glyph in shaped.__shapeData__) * size / 1000
    return pdfmetrics.stringWidth(text, font, size)


def draw_text(pdf: Canvas, x: float, y: float, text: str, font: str, size: float, align: Align = "left") -> float:
    """One line with its baseline at y, starting at x (or ending at it, or centred on it); returns its width."""
    shaped = _shaped(text, font, size)
    if shaped is not None:
        width = sum(glyph.x_advance for glyph in shaped.__shapeData__) * size / 1000
    else:
        width = pdfmetrics.stringWidth(text, font, size)
    x -= {"left": 0.0, "centre": width / 2, "right": width}[align]
    pdf.setFont(font, size)
    if shaped is None:
        pdf.drawString(x, y, text)
    else:
        pdf.addLiteral(f"/Span <</ActualText {_pdf_text_string(text)}>> BDC")
        pdf.drawString(x, y, shaped)
        pdf.addLiteral("EMC")
    return width


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width`, broken between words; a word wider than a line on its own (a long
    URL) is broken between letters when it has no Devanagari, whose letters must stay shaped together."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, font, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word
        while len(line) > 1 and not _NEEDS_SHAPING.search(line) and text_width(line, font, size) > width:
            cut = len(line) - 1
            while cut > 1 and text_width(line[:cut], font, size) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line:
        lines.append(line)
    return lines


def fit_lines(text: str, font: str, sizes: tuple[float, ...], width: float,
              max_lines: int) -> tuple[float, list[str]]:
    """The largest of `sizes` (largest first) at which `text` takes at most `max_lines` lines of `width`, and
    those lines; when even the smallest needs more, its first `max_lines`, the last ending in an ellipsis."""
    for size in sizes:
        lines = wrap(text, font, size, width)
        if len(lines) <= max_lines:
            return size, lines
    size = sizes[-1]
    kept = lines[:max_lines]
    last = kept[-1] if kept else ""
    while last and text_width(last + ELLIPSIS, font, size) > width:
        last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
    return size, [*kept[:-1], last + ELLIPSIS]


def _shaped(text: str, font: str, size: float) -> ShapedStr | None:
    """The line shaped by HarfBuzz when it has Devanagari, else None (reportlab shapes only with uharfbuzz)."""
    if not _NEEDS_SHAPING.search(text) or not pdfmetrics.getFont(font).shapable:
        return None
    shaped = shapeStr(text, font, size, force=True)
    return shaped if isinstance(shaped, ShapedStr) else None


def _pdf_text_string(text: str) -> str:
    """A PDF text string of any Unicode text: UTF-16BE with its byte order mark, in hex."""
    return "<" + ("\ufeff" + text).encode("utf-16-be").hex().upper() + ">"
