"""The README's curl examples as requests: every `curl` command of its `sh` blocks (lines
ending in a backslash joined), with the shell variables the README sets (`H=(...)`,
`A="..."`) and those a reader sets (`$TOKEN`, `$USER_ID`) filled in."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_ARRAY = re.compile(r"^(\w+)=\((.*)\)$")
_SCALAR = re.compile(r"^(\w+)=(\".*\"|'.*')$")


@dataclass
class Example:
    line: int
    command: str
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    upload: str | None = None
    as_query: bool = False
    streams: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> str:
        query = urlsplit(self.url).query
        if self.as_query and self.data:
            query = "&".join(filter(None, [query, *self.data]))
        return query

    @property
    def body(self) -> str | None:
        return None if self.as_query or not self.data else "&".join(self.data)


def commands(readme: str) -> list[tuple[int, str]]:
    """(line number, logical line) of every command in a ```sh block: a line ending in a
    backslash goes on on the next, as does a quotation left open."""
    found: list[tuple[int, str]] = []
    in_block = False
    pending: tuple[int, str] | None = None
    for number, text in enumerate(readme.splitlines(), start=1):
        if text.startswith("```"):
            in_block = text.strip() == "```sh"
            continue
        if not in_block:
            continue
        start, joined = pending if pending else (number, "")
        if text.endswith("\\"):
            pending = (start, joined + text[:-1])
            continue
        joined += text
        if _open_quotation(joined):
            pending = (start, joined + "\n")
            continue
        pending = None
        found.append((start, joined.strip()))
    return found


def _open_quotation(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return True
    return False


def examples(readme: str, variables: dict[str, str]) -> list[Example]:
    """Every curl command of the README, with `variables` (and the README's own) set."""
    scope = dict(variables)
    arrays: dict[str, list[str]] = {}
    parsed = []
    for number, line in commands(readme):
        if match := _ARRAY.match(line):
            arrays[match[1]] = [_fill(word, scope) for word in shlex.split(match[2])]
        elif match := _SCALAR.match(line):
            scope[match[1]] = _fill(shlex.split(match[2])[0], scope)
        elif line.startswith("curl "):
            words = []
            for word in shlex.split(line, comments=True)[1:]:
                array = re.fullmatch(r"\$\{(\w+)\[@\]\}", word)
                words += arrays[array[1]] if array else [_fill(word, scope)]
            parsed.append(_example(number, line, words))
    return parsed


def _fill(word: str, scope: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda match: scope.get(match[1], match[0]), word)


def _example(number: int, line: str, words: list[str]) -> Example:
    example = Example(number, line)
    method = None
    rest = iter(words)
    for word in rest:
        if word in ("-X", "--request"):
            method = next(rest)
        elif word in ("-H", "--header"):
            name, _, value = next(rest).partition(":")
            example.headers[name.strip()] = value.strip()
        elif word in ("-d", "--data"):
            example.data.append(next(rest))
        elif word == "--data-urlencode":
            name, _, value = next(rest).partition("=")
            example.data.append(f"{name}={quote(value, safe='')}")
        elif word in ("-G", "--get"):
            example.as_query = True
        elif word in ("-F", "--form"):
            name, _, value = next(rest).partition("=")
            example.form.append((name, value))
        elif word in ("-T", "--upload-file"):
            example.upload = next(rest)
        elif word.startswith("http"):
            example.url = word
        elif word.startswith("-") and not word.startswith("--"):
            example.streams |= "N" in word
    if method is None:
        if example.upload:
            method = "PUT"
        elif example.form or (example.data and not example.as_query):
            method = "POST"
        else:
            method = "GET"
    example.method = method
    return example
