"""Compose: the sample issue becomes HTML and text that say everything the original said.

The expected content is read from the seed, the text of the original January 2020
newsletter (tests/data/), so that these tests fail if the sample issue loses a paragraph
or an agenda entry.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, SEED, run_cli

from newsletter.compose.issue import Issue, load_issue
from newsletter.compose.lint import SAMPLE_VALUES
from newsletter.compose.publish import fill
from newsletter.compose.render import ComposedEmail, compose
from newsletter.config import Settings, load_settings

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = REPO / "issues" / "2020-01.yaml"
GMAIL_CLIP_BYTES = 102_000
URL = re.compile(r"https?://[^\s<>\"')]+")


# --- what the seed says ------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    project: str
    event: str
    place: str
    when: str | None = None  # as the email writes it, when the seed gives the date


def seed_sections() -> tuple[list[str], list[str], list[Event]]:
    """The seed's prose paragraphs, link labels (`>>> label`) and agenda entries."""
    text = SEED.read_text(encoding="utf-8")
    body, _, agenda = text.partition("\n•")
    paragraphs, labels = [], []
    for line in body.splitlines():
        line = line.replace("(...)", "").strip()  # "read more" markers are not content
        if line.startswith(">>>"):
            labels.append(line.removeprefix(">>>").strip())
        elif line.endswith((".", "?", "!")):  # prose, not page furniture like "Print Icon"
            paragraphs.append(line)
    return paragraphs, labels, _seed_agenda("•" + agenda)


def _seed_agenda(text: str) -> list[Event]:
    events: list[Event] = []
    when = None
    for line in (raw.strip() for raw in text.splitlines()):
        date = re.fullmatch(r"• (\d+)-(\d+)/(\d+)/(\d{4})", line)
        if date:
            first, last, month, year = (int(x) for x in date.groups())
            when = f"{first}\u2013{last} {dt.date(year, month, 1):%B %Y}"
        elif line:
            line = re.sub(r"\s+-\s+\w+$", "", line)  # "... - Information": a link label
            parts = [part.strip() for part in line.split(",")]
            place, head = ", ".join(parts[-2:]), parts[:-2]
            # "Efus GENERAL ASSEMBLY MEETING": the seed lost the comma after the project
            project, event = (head[0], ", ".join(head[1:])) if len(head) > 1 \
                else head[0].split(" ", 1)
            events.append(Event(project, event, place, when))
            when = None
    return events


def first_sentence(paragraph: str) -> str:
    return re.match(r".+?[.?!](?=\s|$)", paragraph).group()  # type: ignore[union-attr]


def squash(text: str) -> str:
    return " ".join(text.split())


def visible_text(page: str) -> str:
    """What a reader sees in the HTML: no head, no tags, entities decoded, spaces squashed."""
    body = re.sub(r"(?s)<head>.*?</head>|<!--.*?-->", " ", page)
    return squash(html.unescape(re.sub(r"<[^>]+>", " ", body)))


def contains_event(text: str, event: Event) -> bool:
    parts = (event.project, event.event, event.place)
    return re.search(r"\W+".join(re.escape(part) for part in parts), text) is not None


# --- the sample issue, built once by the real CLI and composed once in process ---------

def readme_first_command() -> tuple[str, list[list[str]]]:
    """The comment above the README's first command, and each `newsletter` step in it."""
    block = (REPO / "README.md").read_text(encoding="utf-8").split("```sh\n", 1)[1]
    lines = block.split("```", 1)[0].splitlines()
    comment = " ".join(line for line in lines if line.startswith("#"))
    command = next(line for line in lines if not line.startswith("#"))
    steps = [part.split() for part in command.split("&&")]
    return comment, [words[1:] for words in steps if Path(words[0]).name == "newsletter"]


@pytest.fixture(scope="module")
def first_command(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    """The README's first command, run in a fresh copy: (folder, comment, outputs)."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "newsletter.toml", project / "newsletter.toml")
    shutil.copytree(REPO / "issues", project / "issues")
    shutil.copytree(REPO / "examples", project / "examples")
    comment, steps = readme_first_command()
    assert steps[0] == ["build", "issues/2020-01.yaml"]
    outputs = []
    for args in steps:
        result = run_cli(*args, cwd=project)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    return project, comment, outputs


@pytest.fixture(scope="module")
def built(first_command: tuple[Path, str, list[str]]) -> tuple[str, str]:
    """(email.html, email.txt) that the README's first command built."""
    project, comment, outputs = first_command
    assert "build/2020-01/" in comment  # the README says where the result is,
    assert "-> build/2020-01/ (email.html" in outputs[0]  # and so does the command
    out = project / "build" / "2020-01"
    return ((out / "email.html").read_text(encoding="utf-8"),
            (out / "email.txt").read_text(encoding="utf-8"))


def test_readme_first_command_sends_the_sample_to_the_outbox(
        first_command: tuple[Path, str, list[str]]) -> None:
    project, comment, outputs = first_command
    assert "outbox/" in comment and "newsletter.db" in comment
    members = (REPO / "examples" / "members.csv").read_text(encoding="utf-8").splitlines()[1:]
    messages = sorted((project / "outbox").glob("*.eml"))
    assert len(messages) == len(members)
    assert f"{len(members)} sent" in outputs[-1]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env={})


@pytest.fixture(scope="module")
def composed(settings: Settings) -> ComposedEmail:
    return compose(load_issue(SAMPLE), settings)


def test_seed_is_read_as_expected() -> None:
    paragraphs, labels, events = seed_sections()
    assert len(paragraphs) == 11  # ten items and the "Did you know?" box
    assert labels == ["To register (Efus members only)"]
    assert len(events) == 7
    assert events[0] == Event("BRIDGE", "Visit in the context of the elaboration of the pilot "
                              "project", "Genk, Belgium", "14\u201316 January 2020")
    assert events[4] == Event("Efus", "GENERAL ASSEMBLY MEETING", "Riga, Latvia")


def test_sample_issue_builds_into_email_text_and_web_page(built: tuple[str, str]) -> None:
    page, text = built
    assert page.startswith("<html") and page.rstrip().endswith("</html>")
    assert "Dear reader," in visible_text(page) and "Dear reader," in text


def test_every_first_sentence_of_the_seed_is_in_html_and_text(built: tuple[str, str]) -> None:
    page, text = built
    seen, plain = visible_text(page), squash(text)
    paragraphs, labels, _ = seed_sections()
    for sentence in [first_sentence(p) for p in paragraphs] + labels:
        assert sentence in seen, sentence
        assert sentence in plain, sentence


def test_every_agenda_entry_of_the_seed_is_in_html_and_text(built: tuple[str, str]) -> None:
    page, text = built
    seen, plain = visible_text(page), squash(text)
    for event in seed_sections()[2]:
        assert contains_event(seen, event), event
        assert contains_event(plain, event), event
        if event.when:
            assert event.when in seen and event.when in plain


def test_every_item_title_of_the_issue_is_in_html_and_text(built: tuple[str, str]) -> None:
    page, text = built
    seen, plain = visible_text(page), squash(text).lower()
    for item in load_issue(SAMPLE).items:
        assert item.title in seen
        assert item.title.lower() in plain  # featured titles are upper-cased in the text


def test_html_stays_under_gmail_clipping(built: tuple[str, str], composed: ComposedEmail) -> None:
    page, _ = built
    assert len(page.encode("utf-8")) < GMAIL_CLIP_BYTES
    personal = fill(composed.html, SAMPLE_VALUES, escape=True)  # with long real-world values
    assert len(personal.encode("utf-8")) < GMAIL_CLIP_BYTES


def test_text_part_writes_out_every_link_of_the_html(built: tuple[str, str]) -> None:
    page, text = built
    links = LinkCollector.of(page)
    html_urls = {href for href in links.hrefs if href.startswith(("http://", "https://"))}
    assert len(html_urls) >= 12
    assert html_urls <= set(URL.findall(text))


def test_text_part_is_wrapped_near_72_columns(composed: ComposedEmail) -> None:
    # with real-world placeholder values: a signed unsubscribe link is long
    text = fill(composed.text, SAMPLE_VALUES, escape=False)
    long = [line for line in text.splitlines() if len(line) > 78
            and not URL.fullmatch(line.strip().strip("<>.,"))]
    assert long == []
    prose = [line for line in text.splitlines() if " " in line.strip()]
    assert max(len(line) for line in prose) <= 78
    assert sum(len(line) > 60 for line in prose) > 40  # wrapped, not one word per line


def test_placeholders_survive_mjml_and_premailer(composed: ComposedEmail) -> None:
    page, text = composed.html, composed.text
    assert 'href="%%web_url%%"' in page
    assert 'href="%%unsubscribe_url%%"' in page
    assert "Dear %%name%%," in page and "Dear %%name%%," in text
    assert "%%unsubscribe_url%%" in text and "%%web_url%%" in text
    assert "%25" not in page  # premailer URL-encodes braces; percent signs must stay as typed
    assert 'href="%%preferences_url%%"' in page and "%%preferences_url%%" in text
    assert composed.fields == {"name", "unsubscribe_url", "preferences_url", "web_url"}


def test_placeholders_typed_in_the_issue_survive_in_text_and_links(
        tmp_path: Path, settings: Settings) -> None:
    issue = write_issue(tmp_path, """\
        date: 2020-01-10
        subject: Placeholders
        items:
          - title: Your membership, %%name%%
            body: |
              See [your page](https://efus.eu/members?who=%%email%%&city=%%city%%),
              %%name%%.
            link:
              url: https://efus.eu/renew?who=%%email%%
              label: Renew your membership
    """)
    email = compose(issue, settings)
    assert "Your membership, %%name%%" in email.html
    assert 'href="https://efus.eu/members?who=%%email%%&amp;city=%%city%%"' in email.html
    assert 'href="https://efus.eu/renew?who=%%email%%"' in email.html
    assert "<https://efus.eu/members?who=%%email%%&city=%%city%%>" in email.text
    assert "https://efus.eu/renew?who=%%email%%" in email.text
    assert "%25" not in email.html + email.text
    assert email.fields == {"name", "email", "city", "unsubscribe_url", "preferences_url",
                            "web_url"}


def test_media_queries_stay_in_head_and_theme_css_is_inlined(composed: ComposedEmail) -> None:
    head, _, body = composed.html.partition("</head>")
    assert "@media only screen and (max-width: 479px)" in head
    assert "td.stack-img" in head
    assert "@media" not in body
    rules = css_rules((REPO / "templates" / "default" / "inline.css").read_text())
    checked = StyleChecker(rules)
    checked.feed(body)
    assert checked.missing == []
    assert checked.count > 50  # every heading, paragraph and link


def test_html_typed_in_a_body_is_escaped_while_markdown_renders(
        tmp_path: Path, settings: Settings) -> None:
    issue = write_issue(tmp_path, """\
        date: 2020-01-10
        subject: Escaping
        items:
          - title: "<i>Cities</i> & <script>titles</script>"
            body: |
              <script>alert("x")</script> and <b>raw</b> tags, with **bold**, _emphasis_
              and [a link](https://example.org/a?b=1&c=2).

              - one
              - two
            link:
              url: https://example.org/more
              label: 'More about "cities" <here>'
    """)
    page = compose(issue, settings).html
    assert "<script" not in page and "<b>raw" not in page and "<i>Cities" not in page
    assert re.search(r"&lt;script&gt;alert\((\"|&#34;|&quot;)x\1\)&lt;/script&gt;", page)
    assert "&lt;b&gt;raw&lt;/b&gt;" in page
    assert "&lt;i&gt;Cities&lt;/i&gt; &amp; &lt;script&gt;titles" in page
    assert re.search(r"<strong[^>]*>bold</strong>", page)
    assert re.search(r"<em[^>]*>emphasis</em>", page)
    assert re.search(r'<a href="https://example.org/a\?b=1&amp;c=2"[^>]*>a link</a>', page)
    assert re.search(r"<li[^>]*>one</li>", page)
    assert re.search(r"More about (\"|&#34;|&quot;)cities\1 &lt;here&gt;", page)


def test_a_copied_theme_named_in_the_issue_is_used(project: Path, cli: Cli) -> None:
    theme = copy_theme(project / "elsewhere" / "mytheme")
    issue = project / "issues" / "2020-01.yaml"
    issue.write_text(issue.read_text(encoding="utf-8") + f"\ntemplate: {theme}\n",
                     encoding="utf-8")
    result = cli("build", "issues/2020-01.yaml")
    assert result.returncode == 0, result.stderr
    assert_theme_used(project / "build" / "2020-01")


def test_a_copied_theme_named_in_newsletter_toml_is_used(project: Path, cli: Cli) -> None:
    copy_theme(project / "templates" / "mytheme")
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert 'template = "default"' in text
    config.write_text(text.replace('template = "default"', 'template = "mytheme"'),
                      encoding="utf-8")
    result = cli("build", "issues/2020-01.yaml")
    assert result.returncode == 0, result.stderr
    assert_theme_used(project / "build" / "2020-01")


@pytest.mark.parametrize(("mistake", "message"), [
    ("{{ issue.subject ", "template error: expected token 'end of print statement'"),
    ("{{ issue.no_such_field }}", "template error: 'newsletter.compose.issue.Issue object' has no "
                                  "attribute 'no_such_field'"),
])
def test_a_mistake_in_a_theme_is_reported_at_its_line(project: Path, cli: Cli, mistake: str,
                                                      message: str) -> None:
    theme = copy_theme(project / "templates" / "mytheme")
    template = theme / "newsletter.mjml.j2"
    lines = template.read_text(encoding="utf-8").splitlines()
    number = next(n for n, line in enumerate(lines) if "<mj-body" in line)
    lines[number] = mistake + lines[number]
    template.write_text("\n".join(lines) + "\n", encoding="utf-8")
    issue = project / "issues" / "2020-01.yaml"
    issue.write_text(issue.read_text(encoding="utf-8") + "\ntemplate: mytheme\n",
                     encoding="utf-8")
    result = cli("build", "issues/2020-01.yaml")
    assert result.returncode == 1
    assert f"templates/mytheme/newsletter.mjml.j2:{number + 1}: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_compose_fetches_nothing_from_the_network(monkeypatch: pytest.MonkeyPatch,
                                                 settings: Settings) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access during compose: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    email = compose(load_issue(SAMPLE), settings)
    assert "Security, Democracy" in email.html


# --- helpers -------------------------------------------------------------------------------

def write_issue(folder: Path, text: str) -> Issue:
    path = folder / "issue.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_issue(path)


MARK = "Printed on recycled electrons"


def copy_theme(target: Path) -> Path:
    """A copy of the default theme with a visible line added to the HTML and the text."""
    shutil.copytree(REPO / "templates" / "default", target)
    for name, old in (("newsletter.mjml.j2", "<p>{{ newsletter.postal_address }}</p>"),
                      ("newsletter.txt.j2", "{{ newsletter.postal_address | wrap }}")):
        template = target / name
        text = template.read_text(encoding="utf-8")
        assert old in text
        template.write_text(text.replace(old, f"{old}\n{MARK}", 1), encoding="utf-8")
    css = target / "inline.css"
    css.write_text(css.read_text() + "h3 { letter-spacing: 2px; }\n")
    return target


def assert_theme_used(out: Path) -> None:
    page = (out / "email.html").read_text(encoding="utf-8")
    assert MARK in page
    assert "letter-spacing:2px" in page
    assert MARK in (out / "email.txt").read_text(encoding="utf-8")


class LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    @classmethod
    def of(cls, page: str) -> LinkCollector:
        collector = cls()
        collector.feed(page)
        return collector

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def css_rules(css: str) -> list[tuple[str, str | None, dict[str, str]]]:
    """`tag.class { prop: value; }` rules as (tag, class, declarations)."""
    css = re.sub(r"(?s)/\*.*?\*/", "", css)
    rules = []
    for selector, block in re.findall(r"([\w.-]+)\s*\{([^}]*)\}", css):
        tag, _, klass = selector.partition(".")
        declarations = dict(_declaration(d) for d in block.split(";") if d.strip())
        rules.append((tag, klass or None, declarations))
    return rules


def _declaration(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    value = re.sub(r"#(\w)\1(\w)\2(\w)\3\b", r"#\1\2\3", squash(value).lower())  # #fff
    return name.strip().lower(), value


class StyleChecker(HTMLParser):
    """Checks that each element carries the inline.css declarations that apply to it."""

    def __init__(self, rules: list[tuple[str, str | None, dict[str, str]]]) -> None:
        super().__init__(convert_charrefs=True)
        self.rules = rules
        self.missing: list[str] = []
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        expected: dict[str, str] = {}
        for rule_tag, klass, declarations in self.rules:  # class rules win: they come later
            if rule_tag == tag and klass is None:
                expected.update(declarations)
        for rule_tag, klass, declarations in self.rules:
            if rule_tag == tag and klass in classes:
                expected.update(declarations)
        if not expected:
            return
        self.count += 1
        style = (attributes.get("style") or "").split(";")
        actual = dict(_declaration(d) for d in style if d.strip())
        for name, value in expected.items():
            if actual.get(name) != value:
                self.missing.append(f"<{tag} class={classes}> {name}: {value} "
                                    f"(style={attributes.get('style')!r})")
