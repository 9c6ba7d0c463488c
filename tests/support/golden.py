"""Golden results of `check` on the sample captures, and the one command that
regenerates them:

    scripts/update-golden [--screenshot docs/demo-report.png]

Run from the repository root. The outputs are canonical: sorted keys, UTC,
the tool version removed, a fixed "today" (for exception expiry), paths
relative to the repository. Review the diff before committing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
TODAY = dt.date(2026, 1, 1)
OUTPUTS = (
    "report.txt",
    "report.json",
    "findings.jsonl",
    "findings.csv",
    "report.md",
    "report.html",
    "flows.csv",
)


def cases() -> list[tuple[str, str, str]]:
    """(case name, capture, inventory), paths relative to the repository root."""
    out = []
    for capture in sorted((ROOT / "captures").glob("*.pcap*")):
        stem = capture.name.split(".pcap")[0]
        inventory = capture.with_name(f"{stem}.inventory.yaml")
        if inventory.exists():
            out.append((stem, f"captures/{capture.name}", f"captures/{inventory.name}"))
    return out


def render(capture: str, inventory: str) -> dict[str, str]:
    """Every golden output of one case (run with the repository root as cwd)."""
    from portmatrix.check import run_check
    from portmatrix.report import formats
    from portmatrix.report.html import render_html
    from portmatrix.report.text import render_text
    from portmatrix.report.verdict_flows import render_flows
    from portmatrix.textforms import json_text

    result = run_check([capture], ["thoughtspot"], inventory, today=TODAY)
    # Application labels from our own signatures only: the same on every machine,
    # with or without tshark.
    from portmatrix.apps.findings import label_result

    result.labels = label_result(result, [capture], use_tshark=False)
    doc = json.loads(formats.render_json(result))
    doc.pop("tool")
    from portmatrix import __version__

    def canonical(text: str) -> str:  # goldens do not change with the version
        return text.replace(f"portmatrix {__version__}", "portmatrix VERSION").replace(
            f'"version": "{__version__}"', '"version": "VERSION"'
        )

    return {
        k: canonical(v)
        for k, v in {
            "report.txt": render_text(result),
            "report.json": json_text(doc) + "\n",
            "findings.jsonl": formats.render_jsonl(result),
            "findings.csv": formats.render_csv(result),
            "report.md": formats.render_markdown(result),
            "report.html": render_html(result),
            "flows.csv": render_flows(result, "flows.csv"),
        }.items()
    }


CHROMIUM = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(html: Path, *args: str, profile: Path) -> subprocess.CompletedProcess:
    """Headless Chromium on a local file, with a fresh profile and no network."""
    return subprocess.run(
        ["chromium", *CHROMIUM, f"--user-data-dir={profile}", *args, html.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def screenshot(out: Path) -> None:
    """The demo's HTML report as a PNG (docs/demo-report.png)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "demo.html"
        html.write_text(render(*_demo())["report.html"], encoding="utf-8")
        chromium(
            html,
            "--window-size=1280,2400",
            f"--screenshot={out.resolve()}",
            profile=Path(tmp) / "profile",
        )


README = ROOT / "README.md"
README_BEGIN = "<!-- output of the README's first command: begin -->\n```\n"
README_END = "```\n<!-- output of the README's first command: end -->"
README_COMMAND = (
    "check",
    "captures/thoughtspot-demo.pcap",
    "--rules",
    "thoughtspot",
    "--inventory",
    "captures/thoughtspot-demo.inventory.yaml",
)


def readme_block() -> str:
    """The output block under the README's first command, as the README holds it."""
    text = README.read_text(encoding="utf-8")
    start = text.index(README_BEGIN) + len(README_BEGIN)
    return text[start : text.index(README_END, start)]


def readme_output() -> tuple[str, int]:
    """(what the README's first command prints, piped, at 80 columns; its exit status),
    run with the installed console script from the repository root."""
    console_script = Path(sys.executable).parent / "portmatrix"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    done = subprocess.run(
        [str(console_script), *README_COMMAND],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    return done.stdout, done.returncode


LEARN_BEGIN = "<!-- learn excerpt: begin -->\n```yaml\n"
LEARN_END = "```\n<!-- learn excerpt: end -->"
LEARN_COMMAND = (
    "captures/thoughtspot-demo.pcap",
    "--inventory",
    "captures/thoughtspot-demo.inventory.yaml",
    "--rules",
    "thoughtspot",
    "--quiet",
)
LEARN_LINES = 20  # the first rules of the draft


def learn_block() -> str:
    """The draft excerpt in the README's "Drafting a matrix from traffic"."""
    text = README.read_text(encoding="utf-8")
    start = text.index(LEARN_BEGIN) + len(LEARN_BEGIN)
    return text[start : text.index(LEARN_END, start)]


def learn_output() -> str:
    """The same lines of what `portmatrix learn` writes for the demo capture over
    the vendor matrix: its rules, from `rules:` on."""
    console_script = Path(sys.executable).parent / "portmatrix"
    done = subprocess.run(
        [str(console_script), "learn", *LEARN_COMMAND],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines(keepends=True)
    start = lines.index("rules:\n")
    return "".join(lines[start : start + LEARN_LINES])


def _replace(text: str, begin: str, end: str, new: str) -> str:
    start = text.index(begin) + len(begin)
    return text[:start] + new + text[text.index(end, start) :]


def update_readme() -> None:
    text = README.read_text(encoding="utf-8")
    output, _ = readme_output()
    text = _replace(text, README_BEGIN, README_END, output)
    README.write_text(_replace(text, LEARN_BEGIN, LEARN_END, learn_output()), encoding="utf-8")


def _demo() -> tuple[str, str]:
    ((_, capture, inventory),) = [c for c in cases() if c[0] == "thoughtspot-demo"]
    return capture, inventory


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the golden check outputs.")
    parser.add_argument("--update", action="store_true", help="write tests/golden/*")
    parser.add_argument(
        "--screenshot", metavar="PNG", help="also render the demo's HTML report in Chromium to PNG"
    )
    args = parser.parse_args(argv)
    if not (args.update or args.screenshot):
        parser.print_help()
        return 2
    os.chdir(ROOT)
    for name, capture, inventory in cases() if args.update else ():
        folder = GOLDEN / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in render(capture, inventory).items():
            (folder / file).write_text(text, encoding="utf-8")
        print(f"wrote {folder.relative_to(ROOT)}", file=sys.stderr)
    if args.update:
        update_readme()
        print("wrote README.md's output block", file=sys.stderr)
    if args.screenshot:
        screenshot(Path(args.screenshot))
        print(f"wrote {args.screenshot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
