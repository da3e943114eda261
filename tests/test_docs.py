"""The documentation promises only what exists.

Every markdown page (README.md, CONTRIBUTING.md, docs/*.md) is read at test time and checked
against the code and the tree: its `qabot ...` commands and their --flags (against the click
command tree), its QABOT_* variables (against the Settings fields), the repository paths it
names (`scripts/...`, `python -m scripts.bench.NAME`, `qabot/...`, `tests/...`) and its
relative links, anchors included. The generated pages (docs/cli.md from every command's
--help, docs/settings.md from the settings table) must be current.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import fields
from functools import cache
from pathlib import Path

import click
import pytest

from qabot.config import Settings
from qabot.frontends.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
REGENERATE = "make docs (or: .venv/bin/python -m cogapp -r {page})"

FENCE = re.compile(r"^ {0,3}```[^\n]*\n(.*?)^ {0,3}```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")  # a code span may wrap onto the next line
# `qabot` as a command, not as the package name: start of a line, after `$ `, `/ ` or a
# backtick, followed by a word (`qabot ask ...`, `qabot check / qabot stats`)
COMMAND = re.compile(r"(?:^|[`/]\s*|\$\s+|bin/|-m\s+)qabot((?:\s+[a-z][a-z/-]*)+)", re.M)
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b")
VARIABLE = re.compile(r"\bQABOT_[A-Z_]+\b")
# a path in the repository: scripts/…, qabot/…, tests/…, docs/… (not ~/.cache/qabot/… or /srv/qabot/…)
PATH = re.compile(r"(?<![\w./~-])((?:scripts|qabot|tests|docs)/[\w./-]*[\w/])")
# a script run as a module: python -m scripts.bench.bench_ask
MODULE = re.compile(r"-m\s+(scripts(?:\.\w+)+)")
# a script run in code: `python scripts/evaluate.py --de …` or `python -m scripts.bench.bench_api --index …`
SCRIPT_RUN = re.compile(r"(?:python\S*\s+)(scripts/[\w/]+\.py|-m\s+scripts(?:\.\w+)+)")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _snippets(page: Path) -> list[str]:
    """A page's code: fenced blocks line by line, and inline code spans."""
    text = _text(page)
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    prose = FENCE.sub("", text)
    return lines + [span.replace("\n", " ") for span in INLINE.findall(prose)]


def _resolve(words: list[str]) -> tuple[list[str], click.Command]:
    """The longest command path of ``words`` in the click tree, and its command."""
    path: list[str] = []
    node: click.Command = cli
    for word in words:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
        path.append(word)
    return path, node


def _mentions() -> list[tuple[str, str, list[str], list[str]]]:
    """(page, snippet, command words, flags) for every `qabot ...` in the pages' code."""
    found = []
    for page in PAGES:
        for snippet in _snippets(page):
            code = snippet.split("#", 1)[0]  # comments in code blocks are prose
            starts = list(COMMAND.finditer(code))
            for i, match in enumerate(starts):
                end = starts[i + 1].start() if i + 1 < len(starts) else len(code)
                rest = code[match.end(): end]
                words = match.group(1).split()
                # `qabot ask/search --since`: the same flags for each of the commands
                for first in words[0].split("/"):
                    found.append((_name(page), snippet, [first, *words[1:]], FLAG.findall(rest)))
    return found


def _standalone_flags() -> list[tuple[str, str]]:
    """Inline code that is only a flag, as in "every command takes `--index DIR`"."""
    return sorted({(_name(page), span.split()[0]) for page in PAGES for span in _snippets(page)
                   if re.fullmatch(r"--[a-z][a-z-]*( [A-Z.]+)?", span)})


@cache
def _every_option(group: click.Group) -> set[str]:
    found = {opt for param in group.params for opt in [*param.opts, *param.secondary_opts]}
    for command in group.commands.values():
        if isinstance(command, click.Group):
            found |= _every_option(command)
        else:
            found |= {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    return found | {"--help", "-h"}


@cache
def _paths() -> list[tuple[str, str]]:
    """(page, path) for every repository path a page names, in code or prose."""
    found = set()
    for page in PAGES:
        text = _text(page)
        found |= {(_name(page), path.rstrip(".")) for path in PATH.findall(text)}
        found |= {(_name(page), module.replace(".", "/") + ".py") for module in MODULE.findall(text)}
    return sorted((page, path) for page, path in found if not _placeholder(path))


def _placeholder(path: str) -> bool:
    """scripts/bench/NAME.py, qabot/VERSION, -m scripts.research.NAME: a pattern, not a path."""
    return any(re.fullmatch(r"[A-Z][A-Z_]*", part.removesuffix(".py")) for part in re.split(r"[/.\s]", path) if part)


def _script_file(named: str) -> Path:
    """scripts/evaluate.py or ``-m scripts.bench.bench_api`` -> the file."""
    if named.startswith("-m"):
        return ROOT / (named.split()[-1].replace(".", "/") + ".py")
    return ROOT / named


@cache
def _script_flags(script: Path) -> set[str]:
    """The --options a script defines: string literals in it and in the qabot modules it imports."""
    import ast

    if not script.is_file():
        return set()
    tree = ast.parse(script.read_text(encoding="utf-8"))
    sources = [tree]
    for node in ast.walk(tree):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            if name.split(".")[0] == "qabot":
                for candidate in (ROOT / (name.replace(".", "/") + ".py"), ROOT / name.replace(".", "/") / "__init__.py"):
                    if candidate.is_file():
                        sources.append(ast.parse(candidate.read_text(encoding="utf-8")))
    return {node.value for source in sources for node in ast.walk(source)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"--[a-z][a-z0-9-]*", node.value)}


def _script_runs() -> list[tuple[str, str, str, list[str]]]:
    """(page, snippet, script, flags) for every script run in the pages' code."""
    found = []
    for page in PAGES:
        for snippet in _snippets(page):
            code = snippet.split(" #", 1)[0]
            starts = list(SCRIPT_RUN.finditer(code))
            for i, match in enumerate(starts):
                end = starts[i + 1].start() if i + 1 < len(starts) else len(code)
                flags = [f for f in FLAG.findall(code[match.end(): end]) if f.startswith("--")]
                if not _placeholder(match.group(1)):
                    found.append((_name(page), snippet, match.group(1), flags))
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", _text(page))):
        base = slug(heading)
        anchors.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return anchors


def _links() -> list[tuple[str, str]]:
    """(page, target) for every relative link (and in-page anchor) outside code."""
    return sorted({(_name(page), target) for page in PAGES for target in LINK.findall(FENCE.sub("", _text(page)))
                   if not re.match(r"[a-z][a-z+.-]*:", target)})


def _generated() -> list[str]:
    """The pages that cog generates: those holding a [[[cog block."""
    return [_name(page) for page in PAGES if "[[[cog" in _text(page)]


MENTIONS = _mentions()


def test_the_pages_exist_and_mention_commands():
    for page in ["README.md", "CONTRIBUTING.md", "docs/using.md", "docs/cli.md"]:
        assert (ROOT / page).is_file(), page
    assert len(MENTIONS) >= 10, MENTIONS
    assert len(_text(ROOT / "README.md").splitlines()) <= 160, "README.md is the five-minute page: move details to docs/"


@pytest.mark.parametrize("page, snippet, words, flags", MENTIONS, ids=[f"{m[0]}: qabot {' '.join(m[2][:2])}" for m in MENTIONS])
def test_each_command_and_flag_exists(page, snippet, words, flags):
    path, command = _resolve(words)
    assert path and path[0] == words[0], f"{page} names `qabot {words[0]}`, which is no command: {snippet!r}"
    assert not isinstance(command, click.Group), (
        f"{page} names `qabot {' '.join(words)}`: `qabot {' '.join(path)}` has no such subcommand"
    )
    known = {opt for param in [*command.params, *cli.params] for opt in [*param.opts, *param.secondary_opts]}
    known |= {"--help", "-h"}
    for flag in flags:
        assert flag in known, f"{page} uses `{flag}` with `qabot {' '.join(path)}`, which has no such option: {snippet!r}"


@pytest.mark.parametrize("page, flag", _standalone_flags())
def test_each_flag_named_on_its_own_exists(page, flag):
    scripts = {_script_file(m.group(1)) for m in SCRIPT_RUN.finditer(_text(ROOT / page))}
    scripts |= {ROOT / path for _, path in _paths() if path.endswith(".py") and path.startswith("scripts/")}
    known = _every_option(cli).union(*(_script_flags(script) for script in scripts))
    assert flag in known, f"{page} names `{flag}`, which no qabot command (nor a script it names) has"


SCRIPT_RUNS = _script_runs()


@pytest.mark.parametrize("page, snippet, script, flags", SCRIPT_RUNS, ids=[f"{r[0]}: {r[2]}" for r in SCRIPT_RUNS])
def test_each_script_run_uses_the_scripts_options(page, snippet, script, flags):
    file = _script_file(script)
    assert file.is_file(), f"{page} runs {script}, which is not in the repository: {snippet!r}"
    known = _script_flags(file) | {"--help"}
    for flag in flags:
        assert flag in known, f"{page} runs {script} with `{flag}`, which it has no option for: {snippet!r}"


@pytest.mark.parametrize("page", [_name(p) for p in PAGES])
def test_every_qabot_variable_is_a_setting(page):
    named = set(VARIABLE.findall(_text(ROOT / page)))
    settings = {f.metadata["env"] for f in fields(Settings)}
    assert named <= settings, f"{page} names variables that are no setting: {sorted(named - settings)}"


def test_the_readme_names_settings():
    assert VARIABLE.search(_text(ROOT / "README.md")), "the README names no QABOT_* variable"


@pytest.mark.parametrize("page, path", _paths())
def test_each_path_exists(page, path):
    assert (ROOT / path).exists(), f"{page} names {path}, which is not in the repository"


@pytest.mark.parametrize("page, target", _links())
def test_each_relative_link_resolves(page, target):
    file, _, anchor = target.partition("#")
    where = (ROOT / page).parent / file if file else ROOT / page
    assert where.exists(), f"{page} links to {target}: {file} does not exist"
    if anchor and where.suffix == ".md":
        assert anchor in _anchors(where), f"{page} links to {target}: {where.relative_to(ROOT)} has no heading #{anchor}"


@pytest.mark.parametrize("page", _generated())
def test_each_generated_page_is_current(page, capsys):
    from cogapp import Cog

    status = Cog().main(["cog", "--check", "-I", str(ROOT), str(ROOT / page)])
    assert status == 0, f"{page} is out of date with the code: run {REGENERATE.format(page=page)}\n{capsys.readouterr().out}"


def test_the_cli_reference_is_generated_and_covers_every_command():
    text = _text(ROOT / "docs" / "cli.md")
    assert "docs/cli.md" in _generated()

    def walk(group: click.Group, path: list[str]) -> list[str]:
        found = []
        for name, command in group.commands.items():
            found.append(" ".join(["qabot", *path, name]))
            if isinstance(command, click.Group):
                found += walk(command, [*path, name])
        return found

    missing = [name for name in walk(cli, []) if f"Usage: {name} " not in text]
    assert not missing, f"docs/cli.md lacks {missing}: run {REGENERATE.format(page='docs/cli.md')}"


def _layout() -> dict[str, str]:
    """docs/design.md's layout block: each ``qabot/...`` entry with its continuation lines."""
    block = next(b for b in FENCE.findall(_text(ROOT / "docs" / "design.md")) if b.startswith("qabot/__init__.py"))
    entries: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith(" ") and entries:
            entries[next(reversed(entries))] += " " + line.strip()
        elif line.strip():
            name, _, text = line.partition(" ")
            entries[name] = text
    return entries


MODULES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "qabot").rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("module", MODULES)
def test_the_layout_in_design_names_every_module(module):
    entries = _layout()
    top = "/".join(module.split("/")[:2])
    if top.endswith(".py"):  # qabot/errors.py: a line of its own
        assert top in entries, f"docs/design.md's layout has no line for {module}"
        return
    stem = Path(module).stem
    assert f"{top}/" in entries, f"docs/design.md's layout has no entry for {top}/ ({module})"
    assert re.search(rf"(?<![\w/]){stem}\b", entries[f"{top}/"]), f"docs/design.md's layout entry {top}/ does not name {stem} ({module})"


@pytest.mark.parametrize("heading, anchor", [
    ("How it works", "how-it-works"),
    ("PostgreSQL: one index for many servers", "postgresql-one-index-for-many-servers"),
    ("`qabot ask --json`", "qabot-ask---json"),
    ("Keys and the loopback rule", "keys-and-the-loopback-rule"),
])
def test_slug_is_githubs(heading, anchor):
    assert slug(heading) == anchor
