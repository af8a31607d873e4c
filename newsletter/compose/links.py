"""Links typed into Markdown: a script URL is an error, a label that says nothing a warning.

The renderer quietly turns `[x](javascript:...)` into plain text; `check` says so at the
line, because the writer meant a link. Generic labels ("click here") say nothing to a
screen reader that lists a page's links, in whichever language the issue is written.
"""

from __future__ import annotations

from ..errors import Problem
from . import markdown
from .issue import Issue
from .yamlsource import Node

SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")  # what markdown-it refuses
GENERIC_LINK_TEXT: dict[str, frozenset[str]] = {
    "en": frozenset({"click here", "here", "read more", "more", "link", "this link",
                     "learn more", "click", "this"}),
    "fr": frozenset({"cliquez ici", "ici", "lire la suite", "en savoir plus", "plus", "lien",
                     "la suite"}),
    "de": frozenset({"hier klicken", "klicken sie hier", "hier", "mehr", "weiterlesen",
                     "mehr erfahren", "link"}),
    "es": frozenset({"haga clic aquí", "haz clic aquí", "aquí", "leer más", "más", "enlace"}),
    "it": frozenset({"clicca qui", "qui", "leggi di più", "di più", "link"}),
    "nl": frozenset({"klik hier", "hier", "lees meer", "meer", "link"}),
    "pt": frozenset({"clique aqui", "aqui", "leia mais", "saiba mais", "link"}),
}


def markdown_fields(issue: Issue) -> list[Node]:
    """The located Markdown texts of an issue: intro, item bodies, boxes, footer."""
    top = issue.tree.value if issue.tree is not None and issue.tree.is_mapping else {}
    nodes = [top.get("intro")]
    nodes += [item.body_node for item in issue.items]
    nodes += [box.body_node for box in issue.highlights]
    nodes.append(top.get("footer"))
    return [node for node in nodes if node is not None and isinstance(node.value, str)]


def markdown_link_findings(issue: Issue, language: str, shown_path: str) -> list[Problem]:
    """Script URLs (errors) and generic link text (warnings) in the issue's Markdown."""
    generic = GENERIC_LINK_TEXT["en"] | GENERIC_LINK_TEXT.get(language.split("-")[0].lower(),
                                                               frozenset())
    findings = []
    for node in markdown_fields(issue):
        text = node.value
        skipped = text[:len(text) - len(text.lstrip())].count("\n")  # text() strips them
        for link in markdown.links(text.strip()):
            line = node.line_at(link.line + skipped)
            scheme = link.href.strip().lower()
            if scheme.startswith(SCRIPT_SCHEMES):
                findings.append(Problem(
                    shown_path, line, node.path,
                    f"link [{link.text}]({link.href[:40]}) runs a script or embeds data: mail "
                    "clients block it and it would show as plain text; link to an https:// page"))
            elif link.text.lower().strip(" .!>→") in generic:
                findings.append(Problem(
                    shown_path, line, node.path,
                    f"link text {link.text!r} says nothing out of context (screen readers list "
                    "links by their text): say where it goes", "warning"))
    return findings
