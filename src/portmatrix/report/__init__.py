"""Reports: every view of a result is a module here, all fed the same data."""

from __future__ import annotations


def _text(result):
    from portmatrix.report.text import render_text

    return render_text(result)


def _lazy(name):
    def render(result):
        from portmatrix.report import formats

        return getattr(formats, name)(result)

    return render


def _html(result):
    from portmatrix.report.html import render_html

    return render_html(result)


CHECK_FORMATS = {
    "text": _text,
    "json": _lazy("render_json"),
    "jsonl": _lazy("render_jsonl"),
    "csv": _lazy("render_csv"),
    "markdown": _lazy("render_markdown"),
    "html": _html,
    "suggestions": _lazy("render_suggestions"),
}
