"""mkdocs hook: replace `<!-- cli-reference -->` in cli.md with every command's `--help`, read from the parser."""
from __future__ import annotations

import argparse
import os


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for action in parser._actions:  # argparse has no public walk over sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prefix} {name}")
    return found


def reference() -> str:
    os.environ["COLUMNS"] = "110"  # argparse wraps to the terminal width; fix it so the page is the same everywhere
    from fednlp_bench.cli import build_parser

    parts = []
    for name, parser in _commands(build_parser(), "fednlp-bench"):
        depth = name.count(" ")
        heading = "#" * min(2 + depth - 1, 4) if depth else "##"
        parts.append(f"{heading} `{name}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if "<!-- cli-reference -->" in markdown:
        return markdown.replace("<!-- cli-reference -->", reference())
    return markdown
