"""What text a page's MDX components stand for: ``corpus/components.<lang>.toml``.

A component such as ``<RestakingList/>`` renders text the markdown does not hold (the
platforms' names, descriptions and links come from the site's translation files). Each
language's components file says what that text is, so that the parser can put it where the
component stands — indexed, chunked, quotable and cited to the section it appears in::

    [RestakingList]                      # <RestakingList/>, by its tag name
    lines = ["EigenLayer (再質押平台)：EigenLayer 在 2023 年…", "Symbiotic (再質押平台)：…"]
    links = [{ text = "造訪 EigenLayer", url = "https://eigenlayer.xyz/" }]

    [video.rOJo7VwPh7I]                  # <YouTube id="rOJo7VwPh7I"/>, by its YouTube id …
    slug = "restaking-explained"         # … and <VideoWatch slug="restaking-explained"/>
    lines = ["影片：再質押詳解（CBER 論壇）…"]
    links = [{ text = "再質押詳解", url = "https://www.youtube.com/watch?v=rOJo7VwPh7I" }]

``lines`` are indexed where the component stands, as one passage of the section (joined by a
space, as a paragraph's sentences are; answers quote them sentence by sentence); ``links`` are
recorded on the section. ``lines = []`` says on purpose that a component shows no text in this
language (no warning). A component the file does not name — or a page whose language has no
components file — gets no text, and the parser warns, naming the page's file and line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorpusError
from .mdx import Tag

#: Components whose text comes from the components file (a warning names each one without).
SUBSTITUTED = frozenset({"RestakingList", "TabbedSection", "EigenLayer", "YouTube", "VideoWatch"})
#: The attribute that says which video a video component shows.
VIDEO_ATTRIBUTES = {"YouTube": "id", "VideoWatch": "slug"}
FILE_GLOB = "components.*.toml"


@dataclass(frozen=True)
class ComponentText:
    """The text one component stands for: lines of the section, links recorded on it."""

    lines: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()  # (text, url)


@dataclass(frozen=True)
class Components:
    """The components file of one language."""

    file: str = ""  # its name, for messages; "" when the language has none
    by_name: Mapping[str, ComponentText] = field(default_factory=dict)
    videos: Mapping[str, ComponentText] = field(default_factory=dict)  # by YouTube id
    slugs: Mapping[str, str] = field(default_factory=dict)  # VideoWatch slug → YouTube id

    def video_id(self, tag: Tag) -> str:
        """The YouTube id a video tag shows ('' if it names none or an unknown slug)."""
        value = tag.attrs.get(VIDEO_ATTRIBUTES.get(tag.name, ""), "").strip()
        return self.slugs.get(value, "") if tag.name == "VideoWatch" else value

    def text_for(self, tag: Tag) -> ComponentText | None:
        if tag.name in VIDEO_ATTRIBUTES:
            return self.videos.get(self.video_id(tag))
        return self.by_name.get(tag.name)


def component_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(FILE_GLOB) if p.is_file())


def load_components(folder: Path) -> dict[str, Components]:
    """Every ``components.<lang>.toml`` of ``folder``, by language."""
    out: dict[str, Components] = {}
    for path in component_files(folder):
        lang = path.name[len("components.") : -len(".toml")]
        out[lang] = read_components(path)
    return out


def read_components(path: Path) -> Components:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path.name}: not valid TOML ({exc}); fix the file and rebuild") from None
    by_name: dict[str, ComponentText] = {}
    videos: dict[str, ComponentText] = {}
    slugs: dict[str, str] = {}
    for key, value in data.items():
        if key == "video":
            if not isinstance(value, dict):
                raise CorpusError(
                    f"{path.name}: [video] must hold tables named by YouTube id, e.g. [video.rOJo7VwPh7I]"
                )
            for video_id, entry in value.items():
                where = f"[video.{video_id}]"
                videos[video_id] = _entry(path, where, entry)
                slug = entry.get("slug")
                if slug is not None:
                    if not isinstance(slug, str) or not slug.strip():
                        raise CorpusError(f"{path.name}: {where} `slug` must be a non-empty string")
                    slugs[slug.strip()] = video_id
        elif key[:1].isupper():
            by_name[key] = _entry(path, f"[{key}]", value)
        else:
            raise CorpusError(
                f"{path.name}: [{key}] is neither a component (a capitalised tag name) nor [video.<id>]; "
                "rename or remove it"
            )
    return Components(path.name, by_name, videos, slugs)


def _entry(path: Path, where: str, entry: Any) -> ComponentText:
    if not isinstance(entry, dict):
        raise CorpusError(f"{path.name}: {where} must be a table with `lines` (and optionally `links`)")
    unknown = set(entry) - {"lines", "links", "slug"}
    if unknown:
        raise CorpusError(f"{path.name}: {where} has unknown keys {sorted(unknown)}; use `lines` and `links`")
    lines = entry.get("lines")
    if not isinstance(lines, list) or not all(isinstance(x, str) and x.strip() for x in lines):
        raise CorpusError(
            f"{path.name}: {where} needs `lines`, a list of non-empty strings (the text indexed; [] for none)"
        )
    links = entry.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(x, dict)
        and isinstance(x.get("url"), str)
        and x["url"].strip()
        and isinstance(x.get("text", ""), str)
        for x in links
    ):
        raise CorpusError(f'{path.name}: {where} `links` must be a list of {{ text = "…", url = "…" }}')
    return ComponentText(
        lines=tuple(" ".join(x.split()) for x in lines),
        links=tuple((" ".join(x.get("text", "").split()), x["url"].strip()) for x in links),
    )
