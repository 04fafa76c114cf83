"""Every pointer into the docs leads somewhere: ``docs/*.md`` named in the code, and every
relative link (and its ``#anchor``) in README.md and docs/*.md."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from tests._support import REPO

MARKDOWN = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*?\.md\b")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _repository_url() -> str | None:
    """The project's GitHub URL from pyproject, whose ``blob``/``tree`` links point into this tree."""
    urls = tomllib.loads((REPO / "pyproject.toml").read_text()).get("project", {}).get("urls", {})
    for url in urls.values():
        if isinstance(url, str) and url.startswith("https://github.com/"):
            return "/".join(url.rstrip("/").split("/")[:5])
    return None


REPOSITORY = _repository_url()


def _prose(text: str) -> str:
    """Markdown without code blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        slug, n = _slug(heading), 1
        candidate = slug
        while candidate in anchors:  # repeated headings get -1, -2...
            candidate, n = f"{slug}-{n}", n + 1
        anchors.add(candidate)
    return anchors


def _local_target(source: Path, target: str) -> str | None:
    """The relative path ``target`` names in this tree (``""`` for the same file), or ``None``
    for a link out of the project."""
    if REPOSITORY and target.startswith(REPOSITORY + "/"):
        parts = target[len(REPOSITORY) + 1 :].split("/", 2)
        if len(parts) == 3 and parts[0] in ("blob", "tree", "raw"):
            return os.path.relpath(REPO / parts[2], source.parent)
        return None
    if _SCHEME.match(target) or target.startswith("//"):
        return None
    return target


def _links(path: Path) -> list[str]:
    text = _prose(path.read_text())
    return _LINK.findall(text) + _REFERENCE.findall(text)


def test_the_markdown_has_links_to_check() -> None:
    # The patterns must find links, or the test below would pass on nothing.
    readme = REPO / "README.md"
    assert "docs/sessions.md" in {
        (_local_target(readme, link) or "").partition("#")[0] for link in _links(readme)
    }
    assert "stores.md" in _links(REPO / "docs" / "index.md")
    assert "moving-a-fastmcp-oauth-proxy-onto-fastmcp-sessions-no-new-logins" in _anchors(
        REPO / "docs" / "operations.md"
    )


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_a_file_that_exists(path: Path) -> None:
    broken = []
    for link in _links(path):
        target = _local_target(path, link)
        if target is None:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{link}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{link}: no heading #{anchor} in {destination.relative_to(REPO)}")
    assert broken == []


def test_every_docs_path_named_in_the_code_exists() -> None:
    named = {
        (str(source.relative_to(REPO)), name)
        for source in sorted((REPO / "fastmcp_sessions").rglob("*.py"))
        for name in _DOCS_PATH.findall(source.read_text())
    }
    assert {name for _, name in named} >= {"docs/redis.md"}, "the pattern finds nothing"
    missing = sorted(f"{source} names {name}" for source, name in named if not (REPO / name).is_file())
    assert missing == []
