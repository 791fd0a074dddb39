"""The README and docs/ run: python blocks against the sandboxes, commands by --help, links.

How a page's examples run (docs/development.md says the same for writers):

- every fenced ``python`` block runs, top-level ``await`` allowed, in order, the blocks of
  one page sharing one namespace and one empty working directory;
- a UiTPAS sandbox and a Finam sandbox are running, and the environment says where, as it
  would for the real APIs: ``UITPAS_BASE_URL`` and the four ``UITPAS_*`` credentials,
  ``UITPAS_BALIE`` (a balie key), ``FINAM_BASE_URL``, ``FINAM_SECRET`` and
  ``FINAM_ACCOUNT``;
- every ``uitpas-async`` command in a ``sh`` block must exist: its ``--help`` works and
  names every ``--option`` the line uses;
- a block preceded by ``<!-- not-run -->`` is illustrative and skipped; there are few.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from uitpas_async.cli.main import main
from uitpas_async.finam.sandbox import FinamSandbox, FinamSandboxConfig
from uitpas_async.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
NOT_RUN = "<!-- not-run -->"
#: Illustrative blocks are kept few: every other block is proof that the docs are right.
MAX_NOT_RUN = 3
#: Languages whose blocks are commands for a shell.
SHELL = frozenset({"sh", "bash", "shell", "console"})
#: The longest one page's examples may take; the sandboxes generate reports in ~50 ms.
PAGE_TIMEOUT = 60.0
#: Tokens that separate commands on one shell line.
_SEPARATORS = frozenset({"&&", "||", ";", "|"})
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^[ \t]*```[ \t]*$", re.M | re.S
)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    language: str
    code: str
    run: bool

    @property
    def where(self) -> str:
        """Return ``page:line``, as a traceback would name it."""
        name = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Return the fenced code blocks of ``page``, each marked whether it runs."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        assert not match["indent"], f"{page}: an indented code block escapes the doc tests"
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        line = text.count("\n", 0, match.start("code")) + 1
        found.append(Block(page, line, match["lang"], match["code"], before != NOT_RUN))
    return found


def python_pages() -> list[Path]:
    """Return the pages with at least one python block that runs."""
    return [p for p in PAGES if any(b.language == "python" and b.run for b in blocks(p))]


def page_id(page: Path) -> str:
    """Return a test id for a page."""
    return str(page.relative_to(ROOT))


# -- python blocks -----------------------------------------------------------------


async def _run_blocks(page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.language != "python" or not block.run:
            continue
        # Padding puts a traceback's line numbers on the page's lines.
        source = "\n" * (block.line - 1) + block.code
        code = compile(source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        try:
            result = eval(code, namespace)  # noqa: S307  (the project's own docs)
            if inspect.iscoroutine(result):
                await result
        except Exception as exc:
            raise AssertionError(f"the block at {block.where} fails: {exc!r}") from exc


@pytest.mark.parametrize("page", python_pages(), ids=page_id)
async def test_python_blocks_run_against_the_sandbox(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every python block of the page runs, in order, against running sandboxes."""
    uitpas = Sandbox(SandboxConfig(balies=5, generation_median=0.05))
    finam = FinamSandbox(FinamSandboxConfig(accounts=3, generation_median=0.05))
    async with uitpas, finam:
        creds = uitpas.credentials
        for name, value in {
            "UITPAS_BASE_URL": uitpas.base_url,
            "UITPAS_CONSUMER_KEY": creds.consumer_key,
            "UITPAS_CONSUMER_SECRET": creds.consumer_secret,
            "UITPAS_TOKEN": creds.token,
            "UITPAS_TOKEN_SECRET": creds.token_secret,
            "UITPAS_BALIE": uitpas.balies[1].key,
            "FINAM_BASE_URL": finam.base_url,
            "FINAM_SECRET": finam.secret,
            "FINAM_ACCOUNT": finam.accounts[0],
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("UITPAS_CONFIG_DIR", str(tmp_path / "config"))
        work = tmp_path / "work"
        work.mkdir()
        monkeypatch.chdir(work)
        await asyncio.wait_for(_run_blocks(page), PAGE_TIMEOUT)


# -- shell blocks ------------------------------------------------------------------


def commands(block: Block) -> Iterator[list[str]]:
    """Yield each command of a shell block as its words (comments, prompts, ``&&`` split)."""
    text = block.code.replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if not line:
            continue
        words: list[str] = []
        for word in shlex.split(line, comments=True):
            if word in _SEPARATORS:
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def uitpas_commands() -> list[tuple[str, list[str]]]:
    """Return every ``uitpas-async`` command of the shell blocks that run, with its place."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.language not in SHELL or not block.run:
                continue
            for words in commands(block):
                while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value command
                    words = words[1:]
                if words and words[0] == "uitpas-async":
                    found.append((block.where, words[1:]))
    return found


def _help(path: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main([*path, "--help"])
    out = capsys.readouterr().out
    assert caught.value.code in (0, None), f"uitpas-async {' '.join(path)} --help fails"
    return out


def test_every_documented_command_exists(capsys: pytest.CaptureFixture[str]) -> None:
    """Each ``uitpas-async`` line of the docs names a command whose --help has its options."""
    found = uitpas_commands()
    assert len(found) >= 5  # the README and the operators' guide show several
    helps: dict[tuple[str, ...], str] = {}
    for where, words in found:
        path = tuple(subcommand(words))
        if path not in helps:
            helps[path] = _help(list(path), capsys)
        for word in words:
            option = word.split("=", 1)[0]
            named = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", helps[path])
            if option.startswith("--"):
                assert named, f"{where}: {option} is not an option of {path}"


def subcommand(words: list[str]) -> Iterator[str]:
    """Yield the subcommand words of a command line: those before the first option."""
    for word in words:
        if word.startswith("-"):
            return
        yield word


def test_shell_command_parser() -> None:
    """Comments, prompts, continuations and ``&&`` are split as a shell would."""
    block = Block(ROOT, 1, "sh", "$ a b  # c\nx --y \\\n  z && w\n", True)
    assert list(commands(block)) == [["a", "b"], ["x", "--y", "z"], ["w"]]


# -- the pages as a whole ----------------------------------------------------------


def test_few_blocks_are_illustrative() -> None:
    """At most MAX_NOT_RUN blocks are marked not-run; every python block of the rest runs."""
    skipped = [b.where for p in PAGES for b in blocks(p) if not b.run]
    assert len(skipped) <= MAX_NOT_RUN, skipped
    python = [b for p in PAGES for b in blocks(p) if b.language == "python"]
    assert len(python) >= 8
    unlabelled = [b.where for p in PAGES for b in blocks(p) if not b.language]
    assert unlabelled == [], "give every block a language, so the runner knows what it is"


def _slug(heading: str) -> str:
    """Return the anchor Python-Markdown's toc gives a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m[1]) for m in re.finditer(r"^#+\s+(.*?)\s*$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link of the page names a file that exists, and a heading that does."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    for match in _LINK.finditer(text):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page_id(page)}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page_id(page)}: no heading #{anchor}"


def test_readme_opens_with_the_two_commands() -> None:
    """The README keeps the two commands that CI and new users run, exactly."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in (
        "pip install '.[cli]' && uitpas-async reports fetch --sandbox 20 --out uitpas-reports",
        "pip install -e '.[test]' && python -m pytest",
    ):
        assert f"```sh\n{command}\n```" in text


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs absent (pip install '.[docs]')"
)
def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` passes: no broken link, no page left out of the nav."""
    done = subprocess.run(  # noqa: S603  (our own build, fixed arguments)
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").is_file()


def test_page_runner_reports_the_failing_block(tmp_path: Path) -> None:
    """A failing block is named by page and line, so a broken example is easy to find."""
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n```python\nraise ValueError(x)\n```\n")
    with pytest.raises(AssertionError, match=r"page\.md:8"):
        asyncio.run(_run_blocks(page))
