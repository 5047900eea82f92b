"""The documentation keeps up with the code: every command-line option is documented on its
command's page, every mapping key and report key on its reference page, every relative link
in README.md and docs/ leads somewhere, and comments and docs cite no file that is not in the
repository.

These read files only; `mkdocs build --strict` (run by .ci/run) checks the rendered site.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import unicodedata
from pathlib import Path

import pytest
import typer

import importer.cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# The page that documents each command's options, in a Markdown table ("" is the top-level
# command, whose --version is on the home page). A new command needs a line here and a page.
COMMAND_PAGES = {
    "": "index.md",
    "send": "send.md",
    "backfill": "backfill.md",
    "preview": "formats.md",
    "formats": "formats.md",
    "mappings": "mappings.md",
    "receiver": "receiver.md",
    "demo": "receiver.md",
    "config": "configuration.md",
}


# --- options ---------------------------------------------------------------------------------


def _commands() -> dict[str, object]:
    """Command name -> its Click command, the top-level group under ""."""
    group = typer.main.get_command(importer.cli.app)
    return {"": group, **group.commands}


def _long_options(command) -> list[str]:
    names = []
    for param in command.params:
        if param.param_type_name == "option":
            names += [name for name in (*param.opts, *param.secondary_opts) if name.startswith("--")]
    return names


def undocumented_options(page_text: str, options: list[str]) -> list[str]:
    """The options that appear in no table row of the page (prose mentions do not count)."""
    rows = "\n".join(line for line in page_text.splitlines() if line.lstrip().startswith("|"))
    return [name for name in options if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", rows)]


def test_every_command_has_a_docs_page():
    missing = sorted(name for name in _commands() if name not in COMMAND_PAGES)
    assert not missing, f"commands with no page in COMMAND_PAGES: {missing}"
    for page in set(COMMAND_PAGES.values()):
        assert (DOCS / page).is_file(), f"docs/{page} is missing"


@pytest.mark.parametrize("name", sorted(COMMAND_PAGES))
def test_every_option_is_in_its_commands_options_table(name):
    commands = _commands()
    assert name in commands, f"COMMAND_PAGES names `plausible-import {name}`, which the command line does not have"
    command, page = commands[name], COMMAND_PAGES[name]
    missing = undocumented_options((DOCS / page).read_text(encoding="utf-8"), _long_options(command))
    assert not missing, f"options of `plausible-import {name}` not in a table on docs/{page}: {missing}"


def test_an_option_only_mentioned_in_prose_counts_as_undocumented():
    page = "Use `--rate` wisely.\n\n| option | meaning |\n|---|---|\n| `--rate-limit` | other |\n| `--dry-run` | x |\n"
    assert undocumented_options(page, ["--rate", "--dry-run"]) == ["--rate"]


# --- mapping keys and report keys ------------------------------------------------------------

# Where docs/mappings.md documents each table's keys: table -> (TOML that puts an unknown key
# in it, the heading of its section, how a key is spelled there).
MAPPING_TABLES = {
    "top level": ("bogus = 1", "### Top level", "{}"),
    "filters": ("[filters]\nbogus = 1", "### `[filters]`", "{}"),
    "site": ("[site]\nbogus = 1", "### `[site]`", "{}"),
    "url": ("[url]\nbogus = 1", "### `[url]`", "{}"),
    "event": ("[event]\nbogus = 1", "### `[event]`", "{}"),
    "limits": ("[limits]\nbogus = 1", "### `[limits]`", "{}"),
    "downloads": ("[downloads]\nbogus = 1", "### `[downloads]`", "{}"),
    "rules": ("[[rules]]\nbogus = 1", "### `[[rules]]`", "{}"),
    "rules.when": ("[[rules]]\nwhen.bogus = 1", "### `[[rules]]`", "when.{}"),
    "rules.revenue": ("[[rules]]\nrevenue.bogus = 1", "### `[[rules]]`", "{}"),
    "column conditions": ("[[rules]]\nname = 'x'\nwhen.columns.path = { bogus = 1 }", "#### Column conditions", "{}"),
    "input": ("[input]\nbogus = 1", "## Reading an export: `[input]`", "{}"),
    "input.params": ("[input]\n[input.params]\nbogus = 1", "### `[input.params]`", "{}"),
    "visitor": ("[visitor]\nbogus = 1", "## Exports without IPs or user agents: `[visitor]`", "{}"),
}


def known_mapping_keys(toml_text: str, tmp_path: Path) -> list[str]:
    """The keys the loader accepts in a table, from its error for an unknown key there."""
    from importer.mapping import MappingError, load

    path = tmp_path / "probe.toml"
    path.write_text(toml_text + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as error:
        load(str(path))
    known = re.search(r"known keys here: ([^)]*)\)", str(error.value))
    assert known, f"the loader's error names no known keys: {error.value}"
    return [key.strip() for key in known.group(1).split(",")]


def section(text: str, heading: str) -> str:
    """A page's text from a heading to the next heading of any level."""
    start = text.index(heading + "\n")
    following = re.search(r"^#{1,6} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def documented_spellings(section_text: str) -> str:
    """What counts as documenting a key: code spans in table rows, and code blocks."""
    rows = [line for line in _FENCE.sub("", section_text).splitlines() if line.lstrip().startswith("|")]
    spans = [span for row in rows for span in re.findall(r"`([^`]*)`", row)]
    blocks = [m.group(0) for m in _FENCE.finditer(section_text)]
    return "\n".join(spans + blocks)


@pytest.mark.parametrize("table", sorted(MAPPING_TABLES))
def test_every_mapping_key_is_documented(table, tmp_path):
    toml_text, heading, spelling = MAPPING_TABLES[table]
    documented = documented_spellings(section((DOCS / "mappings.md").read_text(encoding="utf-8"), heading))
    missing = [
        key
        for key in known_mapping_keys(toml_text, tmp_path)
        if not re.search(rf"(?<![\w-]){re.escape(spelling.format(key))}(?![\w-])", documented)
    ]
    assert not missing, f"keys of {table} not documented under {heading!r} in docs/mappings.md: {missing}"


def _report_keys(command: str) -> list[str]:
    if command == "send":
        from importer.report import Report

        return list(Report().as_dict())
    from importer.backfill import BackfillReport

    return list(BackfillReport(out_dir="import").as_dict())


@pytest.mark.parametrize("command", ["send", "backfill"])
def test_every_report_key_is_documented(command):
    heading = f"## {command} report"
    documented = documented_spellings(section((DOCS / "report.md").read_text(encoding="utf-8"), heading))
    missing = [key for key in _report_keys(command) if not re.search(rf"(?<![\w-]){key}(?![\w-])", documented)]
    assert not missing, f"report keys not in the table under {heading!r} in docs/report.md: {missing}"


# --- links -----------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slugify(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc extension) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered the way toc numbers them."""
    seen: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = base = slugify(match.group(2))
        n = 0
        while slug in seen:
            n += 1
            slug = f"{base}_{n}"
        seen.add(slug)
    return seen


def broken_links(path: Path, root: Path) -> list[str]:
    """Relative links of a Markdown file whose file or heading anchor does not exist, or that
    leave ``root`` (the site's pages may link only to pages of the site)."""
    problems = []
    for target in _LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no file {linked}")
        elif root not in linked.parents:
            problems.append(f"{target}: outside {root}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {linked.name}")
    return problems


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_a_file_and_anchor(path):
    problems = broken_links(path, DOCS if DOCS in path.parents else ROOT)
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## The `--rate` option\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#the-rate-option) [ok](#page) [web](https://example.com/x)\n"
        "[bad](other.md#nowhere) [gone](missing.md) `[not a link](nowhere.md)`\n"
        "```\n[in code](nowhere-either.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page, tmp_path)
    assert len(problems) == 2, problems
    assert "other.md#nowhere" in problems[0] and "missing.md" in problems[1]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "inner.md").write_text("[up](../other.md)\n", encoding="utf-8")
    site = tmp_path / "site"
    assert broken_links(site / "inner.md", site) == [f"../other.md: outside {site}"]


def test_slugs_match_mkdocs():
    assert slugify("Reading an export: `[input]`") == "reading-an-export-input"
    assert slugify("Plausible's limits") == "plausibles-limits"
    assert slugify("send report") == "send-report"


# --- citations -------------------------------------------------------------------------------

# A file name in a comment or docstring (module paths such as pyarrow.json are not file names).
_CITED_FILE = re.compile(r"(?<![\w/.$~-])(\w[\w./-]*\.(?:md|py|toml|txt|ya?ml|sql|cfg|ini|sh))\b")
# A numbered section sign (U+00A7) cites a section of a document the repository does not have.
_SECTION = re.compile("\u00a7" + r"\s*\d+(?:\.\d+)*")
_REPO_NAMES = {p.name for p in ROOT.rglob("*") if ".git" not in p.parts}


def _comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    texts = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                texts.append((node.body[0].lineno, docstring))
    return texts


def foreign_citations(texts: list[tuple[int, str]], file_pattern: re.Pattern = _CITED_FILE) -> list[str]:
    """Places that cite a file the repository does not have, or a numbered section of one."""
    found = []
    for line, text in texts:
        found += [
            f"line {line}: {name}"
            for name in file_pattern.findall(text)
            if not (ROOT / name).exists() and Path(name).name not in _REPO_NAMES
        ]
        found += [f"line {line}: {m.group(0)}" for m in _SECTION.finditer(text)]
    return found


def _code_files() -> list[Path]:
    return [p for folder in ("importer", "bench", "tests") for p in sorted((ROOT / folder).rglob("*.py"))]


def test_code_cites_no_file_outside_the_repository():
    problems = []
    for path in _code_files():
        # the whole source first (fast); comments and docstrings only where it finds something
        if foreign_citations([(0, path.read_text(encoding="utf-8"))]):
            places = foreign_citations(_comments_and_docstrings(path))
            problems += [f"{path.relative_to(ROOT)} {place}" for place in places]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_cite_no_file_outside_the_repository(path):
    # Only Markdown names: the docs name example files of the reader's own (./my.toml).
    markdown_names = re.compile(r"(?<![\w/.-])(\w[\w./-]*\.md)\b")
    lines = path.read_text(encoding="utf-8").replace("`", "").splitlines()
    assert not foreign_citations(list(enumerate(lines, 1)), markdown_names)


_OWN_FOLDERS = ("importer", "tests", "bench", "scripts", "mappings", "sample_data", "docs", ".ci")
_OWN_PATH = re.compile(r"(?<![\w/.-])((?:" + "|".join(re.escape(f) for f in _OWN_FOLDERS) + r")/[\w./*-]*[\w*])")
_NAMED_BUT_ABSENT = {
    "importer/_mappings": "made when the wheel is built",
    "importer/_sample_data": "made when the wheel is built",
    "importer/mapping.py": "the module the redesign split, named in the design history",
}


def missing_own_paths(text: str) -> list[str]:
    """Paths into the repository's own folders (under ``importer/``, ``docs/``...) that it does not have."""
    names = {name for name in _OWN_PATH.findall(text) if "*" not in name and name not in _NAMED_BUT_ABSENT}
    return sorted(name for name in names if not (ROOT / name).exists())


def test_docs_and_code_name_only_paths_the_repository_has():
    own_examples = Path(__file__)
    texts = {p: p.read_text(encoding="utf-8") for p in [*_markdown_files(), *_code_files()] if p != own_examples}
    problems = [f"{p.relative_to(ROOT)}: {name}" for p, text in texts.items() for name in missing_own_paths(text)]
    assert not problems, "\n".join(problems)


def test_the_path_check_finds_a_module_that_is_gone():
    text = "The table (`importer/backfill/nowhere.py`) and `importer/state.py`, in docs/index.md."
    assert missing_own_paths(text) == ["importer/backfill/nowhere.py"]


def test_the_citation_check_finds_a_reference_note(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        '"""Answers like Plausible (plausible-api.md §3)."""\n# see importer/state.py\nx = 1\n', encoding="utf-8"
    )
    assert foreign_citations(_comments_and_docstrings(module)) == ["line 1: plausible-api.md", "line 1: §3"]
