"""Choosing what to quote, by what the question asks for.

Units of the best sections (:mod:`restake_qa.units`) are scored by the model's similarity to the
question, the question's words they hold, whether they name the asked term (a row's label, a
definition) and the intent's cue words; then the intent decides the shape:

* ``list`` / ``who`` of several: every row or item of the table or list the question names;
* ``comparison``: the rows of the comparison table (those about the asked aspect), the two
  rows the question names side by side, or each side's defining unit;
* ``how_to``: a steps table's column in order (the one the question's reader is: beginner or
  advanced), or both columns;
* everything else: the best unit first (it must be about the asked term), then what continues
  or completes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..alignment import READABLE
from ..analysis import QuestionAnalysis
from ..retrieval import Hit, Retrieval, Retriever, relative
from ..units import Unit
from .cues import (
    ABOUT_ITSELF,
    ALIKE,
    CUES,
    FINDING,
    FULL_NAME,
    KINDS,
    MATCHMAKING,
    NEXT,
    NO_VIDEO,
    PLURAL,
    STEPS,
    VIDEO,
)
from .labels import clean, header_words, item_named, label_in, mentioned
from .neighbours import caption, with_antecedents
from .weights import UNIT_FEATURES, parse_unit_weights

#: A unit joins the best one when it scores within this of it (any section), or continues it.
FOLLOW_MARGIN, CONTINUE_MARGIN = 1.0, 1.5
MAX_TEXT_ITEMS, MAX_LIST_ITEMS = 3, 8
#: How much a table whose first column names what the question asks for (「風險」) counts before others.
ITEMS_NAMED = 1.0


@dataclass
class Selection:
    units: list[Unit]
    layout: str = "text"  # text, list, steps, table
    compact: bool = False
    sides: tuple[str, ...] = ()
    column: str = ""
    headers: tuple[str, ...] = ()
    rows: list[list[Unit]] = field(default_factory=list)  # a table answer's rows (units per row)
    scores: dict[int, float] = field(default_factory=dict)


class Selector:
    """Scores and picks units for one retrieval result."""

    def __init__(self, retriever: Retriever, result: Retrieval, max_sections: int = 4) -> None:
        self.retriever = retriever
        self.result = result
        self.weights = parse_unit_weights(retriever.settings.answer_unit_weights)
        analysis = result.analysis
        assert analysis is not None and result.query_vector is not None
        self.analysis: QuestionAnalysis = analysis
        tools = retriever.tools
        best = result.hits[0].scores.fused
        hits = [h for h in result.hits[:max_sections] if h is result.hits[0] or h.scores.fused >= best - 0.3]
        # a section only another language's version has (the English page's other-examples) is
        # quoted to a Chinese asker only when nothing in Chinese is near
        readable = READABLE.get(result.language, frozenset())
        self.hits: list[Hit] = [h for h in hits if h.section.lang in readable] or hits
        # the sections each hit reads (its own, and any its version continues it with), best hit first
        self.hit_of: dict[str, Hit] = {}
        for h in self.hits:
            for section in retriever.reading(h.section):
                self.hit_of.setdefault(section.key, h)
        self.rank = {key: self.hits.index(h) for key, h in self.hit_of.items()}
        # a section whose heading asks the same kind of question (「我們為什麼需要再質押？」 for a why)
        self.heading_match = {key: retriever.title_intent(key) == analysis.intent != "other" for key in self.hit_of}
        # what the question says, and the page's words for it, in one matching form
        words = [w for _, w in tools.expansions(analysis.text)]
        # …and the other names of the glossary terms among them: "operator" is 營運者 on the
        # Traditional page and 运营商 on the Simplified one, whose row labels say so
        words += [a for w in words for a in tools.chinese_aliases.get(w, ())]
        self.question_norm = tools.normalize(analysis.text + " " + " ".join(words)).replace(" ", "")
        self.units = [u for key in self.hit_of for u in retriever.units.of(key)]
        self._score_all(result.query_vector)

    # scoring -------------------------------------------------------------------------------
    def _score_all(self, qvec: np.ndarray) -> None:
        self.features = self.feature_matrix(qvec)
        weights = np.array([self.weights.get(f, 0.0) for f in UNIT_FEATURES])
        values = self.features @ weights if len(self.units) else np.zeros(0)
        self.scores = {i: float(v) for i, v in enumerate(values)}
        label = UNIT_FEATURES.index("label")
        self.label_hit = {i: bool(self.features[i, label]) for i in range(len(self.units))}

    def feature_matrix(self, qvec: np.ndarray) -> np.ndarray:
        """One row per candidate unit, columns :data:`UNIT_FEATURES`."""
        retriever, tools = self.retriever, self.retriever.tools
        rows = sorted({r for u in self.units for r in u.rows})
        cos_of = dict(zip(rows, retriever.sentence_cosines(rows, qvec).tolist())) if rows else {}
        unit_cos = [max((cos_of[r] for r in u.rows), default=0.0) for u in self.units]
        top = max(unit_cos, default=0.0)
        content = list(dict.fromkeys(self.result.evidence.get("content_tokens", [])))
        idf = {t: retriever.idf(t) for t in content}
        mass = sum(idf.values()) or 1.0
        overlap = [sum(idf[t] for t in retriever.unit_tokens(u) if t in idf) / mass for u in self.units]
        most = max(overlap, default=0.0) or 1.0
        cue = CUES.get(self.analysis.intent)
        finding = bool(FINDING.search(self.analysis.text.lower()))
        full_name = FULL_NAME.search(self.analysis.text.lower())
        long_forms = [tools.normalize(t.term) for t in tools.glossary_terms_in(self.analysis.text)] if full_name else []
        # what the asked abbreviations look like where the page spells them out: "(lrt)"
        spelled = (
            [f"({t.text})" for t in self.analysis.focus if t.in_question and t.name and t.latin]
            if self.analysis.intent == "definition"
            else []
        )
        best_fused = self.hits[0].scores.fused
        fused = {key: h.scores.fused - best_fused for key, h in self.hit_of.items()}
        first_unit = {key: units[0] for key in self.rank if (units := retriever.units.of(key))}
        title_cos = {key: retriever.title_cosine(key, qvec) for key in self.rank}
        best_title = max(title_cos.values(), default=0.0)
        out = np.zeros((len(self.units), len(UNIT_FEATURES)))
        for i, (u, c, lex) in enumerate(zip(self.units, unit_cos, overlap)):
            label = tools.normalize(u.label).replace(" ", "")
            label_hit = (u.kind == "row" and label_in(label, self.question_norm)) or (
                u.kind == "item" and item_named(label, self.question_norm)
            )
            text_norm = tools.normalize(u.text)
            text_hit = any(t.text in text_norm for t in self.analysis.focus if len(t.text) >= 2)
            if spelled and any(form in text_norm for form in spelled):
                label_hit = True  # 「LRT 到底是个啥」: the unit that spells it out, 「流动性再质押代币 (LRT)」
            if full_name:  # "what does AVS stand for": the unit that spells the name out
                label_hit = False
                text_hit = any(form in text_norm for form in long_forms if len(form) > 4)
            cued = cue is not None and bool(cue.search(u.text.lower()))
            if self.analysis.intent == "consequence" and not cued:
                label_hit = False  # what happens if the operator… is not the operator's row, unless it says
            values = {
                "dense": relative(c, top, retriever.spread),
                "lexical": lex / most,
                "lexical_abs": lex,
                "label": float(label_hit),
                # the row the question names, when it asks something about it (a yes/no, a reason, a
                # consequence) rather than what or who it is
                "label_aside": float(label_hit and self.analysis.intent not in ABOUT_ITSELF),
                "text": float(text_hit),
                "fused": fused[u.key],
                "rank0": float(self.rank[u.key] == 0),
                "rank1": float(self.rank[u.key] == 1),
                "heading": float(self.heading_match.get(u.key, False)),
                "title": relative(title_cos[u.key], best_title, retriever.spread),
                "cue": float(cued),
                "find": float(finding and bool(MATCHMAKING.search(u.text.lower()))),
                "first": float(first_unit.get(u.key) is u),
                "row": float(u.kind == "row"),
                "step": float(u.kind == "step"),
                "item": float(u.kind == "item"),
                "alert": float(u.kind == "alert"),
                "video": float(u.kind == "video"),
            }
            out[i] = [values[f] for f in UNIT_FEATURES]
        return out

    def _index(self, unit: Unit) -> int:
        return next(i for i, u in enumerate(self.units) if u is unit)

    def score(self, unit: Unit) -> float:
        return self.scores[self._index(unit)]

    # strategies ----------------------------------------------------------------------------
    def select(self) -> Selection:
        intent = self.analysis.intent
        chosen: Selection | None = None
        if VIDEO.search(NO_VIDEO.sub(" ", self.analysis.text.lower())):  # ("not the videos" asks for none)
            chosen = self._videos()
            if chosen is not None:
                return chosen
        if intent in ("how_to", "list", "quantity", "other") and STEPS.search(self.analysis.text.lower()):
            chosen = self._steps()
        if chosen is None and intent in ("list", "who", "how_to", "quantity"):
            chosen = self._list()
        if chosen is None and intent in ("comparison", "yes_no"):
            chosen = self._comparison()
        if chosen is None and intent in ("how_to", "comparison"):
            chosen = self._steps()
        return chosen or self._best()

    def _best(self) -> Selection:
        ranked = sorted(range(len(self.units)), key=lambda i: -self.scores[i])
        # a comparison table's rows, when the question asks about something beside them
        aside = {
            id(u) for kind, units in self.groups if kind == "comparison" and self._asks_beside(units) for u in units
        }
        ranked = [i for i in ranked if id(self.units[i]) not in aside] or ranked
        if not ranked:
            return Selection([])
        first = ranked[0]
        picked = [first]
        limit = 2 if self.analysis.intent in ("definition", "who", "yes_no", "consequence") else MAX_TEXT_ITEMS
        for i in ranked[1:]:
            if len(picked) >= limit:
                break
            u, f = self.units[i], self.units[first]
            # (an alert's paragraphs continue each other: 「建議須知：…委託給營運者…」 then 「這樣他們…獎勵率比營運者低」)
            same_block = u.line == f.line or (u.kind == f.kind == "alert" and u.line == f.line + 1)
            continues = u.key == f.key and same_block and u.start >= f.end and not u.label
            margin = CONTINUE_MARGIN if continues else FOLLOW_MARGIN
            if self.scores[i] >= self.scores[first] - margin:
                picked.append(i)
        units = [self.units[first]] + sorted(
            (self.units[i] for i in picked[1:]), key=lambda u: (u.key != self.units[first].key, u.start)
        )
        return Selection(with_antecedents(units, self.retriever.units.of), scores={i: self.scores[i] for i in picked})

    def _videos(self) -> Selection | None:
        """A question asking for a video: the page's videos that fit it best (title and link);
        asking how long, the one whose caption gives its length first."""
        captions = {id(u): caption(u, self.retriever.units.of(u.key)) for u in self.units if u.kind == "video"}
        timed = self.analysis.intent == "quantity"

        def rank(u: Unit) -> tuple[bool, float]:
            return (not (timed and any(re.search(r"\d", c.text) for c in captions[id(u)])), -self.score(u))

        videos = sorted((u for u in self.units if u.kind == "video"), key=rank)[:2]
        return Selection([u for v in videos for u in (*captions[id(v)], v)]) if videos else None

    @cached_property
    def groups(self) -> list[tuple[str, list[Unit]]]:
        """The tables and lists of the candidate sections: (kind, units)."""
        groups: dict[tuple[str, int, int], list[Unit]] = {}
        for u in self.units:
            if u.kind == "row":
                groups.setdefault((u.key, u.table, -1), []).append(u)
            elif u.kind == "step":
                groups.setdefault((u.key, u.table, u.column), []).append(u)
            elif u.kind == "item":
                groups.setdefault((u.key, -2, -1), []).append(u)
        return [(units[0].table_kind or "items", units) for units in groups.values() if len(units) >= 2]

    def _list(self) -> Selection | None:
        plural = bool(PLURAL.search(self.analysis.text.lower()))
        kinds = bool(KINDS.search(self.analysis.text.lower()))
        best_group: tuple[float, str, list[Unit]] | None = None
        top_hit = self.hit_of[max(self.units, key=self.score).key]
        groups = self.groups
        # a table or list of the things the question names (see _names_its_items)
        names_items = {id(units): self._names_its_items(kind, units) for kind, units in groups}
        # a list where the best quotation is (its section or what continues it) comes first
        groups = [g for g in groups if self.hit_of[g[1][0].key] is top_hit or names_items[id(g[1])]] or groups
        for kind, units in groups:
            if kind == "steps":
                continue
            named = sum(self.label_hit[self._index(u)] for u in units)
            if named == 1 and (not plural or self.analysis.intent == "who" or not (kinds or names_items[id(units)])):
                continue  # the question names one row (「哪些人算是原生再質押者」): that row answers it (see _best)
            explains_how = (
                self.analysis.intent == "how_to"
                and self.heading_match.get(units[0].key, False)
                and self._asks_only_title(units[0].key)
            )
            if self.analysis.intent == "how_to" and not explains_how:
                continue  # how to do something is one row, not every row that names a party of it
            if named == 0 and not plural and self.analysis.intent not in ("list", "how_to"):
                continue  # (a how-to question left here is 「再質押是怎麼運作的」: the section titled so explains it by its list of actors)
            strength = (
                max(self.score(u) for u in units)
                + 0.15 * (self.rank[units[0].key] == 0)
                + 0.1 * named
                + ITEMS_NAMED * names_items[id(units)]
            )
            if best_group is None or strength > best_group[0]:
                best_group = (strength, kind, units)
        if best_group is None:
            return None
        _, kind, units = best_group
        top_unit = max(self.units, key=self.score)
        same = self.hit_of[top_unit.key] is self.hit_of[units[0].key]  # the list's section, or what continues it
        if not same and not names_items[id(units)] and self.score(top_unit) > max(self.score(u) for u in units) + 0.1:
            return None  # another section answers better than any list
        if self.analysis.intent in ("how_to", "quantity") and self.rank[units[0].key] != 0:
            return None
        if self.analysis.intent == "quantity" and not re.search(
            r"幾種|几种|幾個|几个|how many|多少(種|个|個)", self.analysis.text
        ):
            return None
        if kind == "comparison" and self.analysis.intent != "list":
            return None
        units = units[:MAX_LIST_ITEMS]
        intro = [u for u in self.retriever.units.of(units[0].key) if u.kind == "sentence" and u.end <= units[0].start]
        if not intro and units[0].key != self.hit_of[units[0].key].section.key:  # a continued section: its start
            lead_key = self.hit_of[units[0].key].section.key
            intro = [u for u in self.retriever.units.of(lead_key) if u.kind == "sentence"][:1]
        if self.analysis.intent == "how_to" and intro:
            return Selection([intro[0], *units], layout="list", compact=True)
        return Selection(units, layout="list", compact=len(units) > 3)

    def _names_its_items(self, kind: str, units: list[Unit]) -> bool:
        """Whether the question names what a table's or list's items are: its first column (「風險」
        / "Risks"), or — asking for a list — the kind every item is of (「EigenLayer (再質押平台)」)."""
        if kind == "labels":
            return self._norm_headers(units)[0] in self.question_norm
        return kind == "items" and self.analysis.intent == "list" and all(self.label_hit[self._index(u)] for u in units)

    def _comparison(self) -> Selection | None:
        tools = self.retriever.tools
        named = [u for i, u in enumerate(self.units) if self.label_hit[i] and u.kind in ("row", "item")]
        if len(named) >= 2 and self.analysis.intent == "comparison":
            return Selection(named[:2])
        for kind, units in self.groups:
            if kind != "comparison":
                continue
            headers = units[0].headers
            norm_headers = self._norm_headers(units)
            named_sides = mentioned(norm_headers, self.question_norm)
            if len(named_sides) < 2 and (self.rank[units[0].key] != 0 or self.analysis.intent == "yes_no"):
                continue  # a yes/no question is a comparison only when it names both sides
            if self._asks_beside(units):
                continue
            aspect = [u for u in units if self.score(u) >= max(self.score(x) for x in units) - 0.05]
            content = [
                t for t in self.result.evidence.get("content_tokens", []) if all(t not in h for h in norm_headers)
            ]
            # the rows holding the rarest words asked about (ETH is in most rows; 提款 in one)
            held = {
                id(u): sum(self.retriever.idf(t) for t in content if t in self.retriever.unit_tokens(u)) for u in units
            }
            about = [u for u in units if held[id(u)] > 0 and held[id(u)] >= max(held.values()) - 1e-9]
            rows = about if 0 < len(about) < len(units) else (aspect if self.analysis.intent == "yes_no" else units)
            if self.analysis.intent == "yes_no":
                return Selection(sorted(rows, key=lambda u: -self.score(u))[:2])
            if rows is units and not ALIKE.search(self.analysis.text.lower()):
                # what differs: not the rows both sides say alike (「無最低 ETH 限制」 twice)
                rows = [u for u in units if len({tools.normalize(c) for c in u.cells if c}) > 1] or units
            return Selection(rows, layout="table", headers=headers, sides=tuple(headers), rows=[[u] for u in rows])
        return None

    def _asks_only_title(self, key: str) -> bool:
        """Whether every noun the question asks about is in the section's title: 「再質押是怎麼運作
        的」 asks what the section titled so explains, 「AVS 是怎么找到运营商和质押者的」 asks more."""
        tools = self.retriever.tools
        title = set(tools.lexical_tokens(self.retriever.section(key).title))
        return all(set(tools.lexical_tokens(t.text)) <= title for t in self.analysis.focus if t.in_question and t.noun)

    def _norm_headers(self, table: list[Unit]) -> list[str]:
        """A table's headers in the question's matching form (Simplified, lower case, no spaces)."""
        return [self.retriever.tools.normalize(h).replace(" ", "") for h in table[0].headers]

    def _asks_beside(self, table: list[Unit]) -> bool:
        """Whether the question asks more about what other candidates hold than about what the
        table holds (IDF-weighted; 「质押者跑的软件和再质押者跑的软件有啥区别」: software is in no
        row of the staking-vs-restaking table, but in the definition of restaking)."""
        retriever, headers = self.retriever, self._norm_headers(table)
        in_table = {id(u) for u in table}
        rows = [retriever.unit_tokens(u) for u in table]
        others = [retriever.unit_tokens(u) for u in self.units if id(u) not in in_table]
        beside = held = 0.0  # IDF mass of the asked terms found beside the table / in it
        for term in self.analysis.focus:
            if not (term.in_question and term.noun and len(term.text) >= 2) or any(term.text in h for h in headers):
                continue
            words = set(retriever.tools.lexical_tokens(term.text))  # stemmed: restake, restaking, restaked
            if not words:
                continue
            weight = max(retriever.idf(w) for w in words)
            if any(words <= r for r in rows):
                held += weight
            elif any(words <= o for o in others):
                beside += weight
        return beside > held

    def _steps(self) -> Selection | None:
        tools = self.retriever.tools
        for kind, units in self.groups:
            if kind != "steps" or self.rank[units[0].key] != 0:
                continue
            headers = units[0].headers
            column = units[0].column
            # the column the question names, or the one for who asks (「完全不想 run node」: beginners)
            said = set(self.result.evidence.get("content_tokens", []))
            named = [j for j, h in enumerate(headers) if header_words(h, tools) & said]
            said |= set(tools.lexical_tokens(" ".join(self.analysis.audience)))
            asked = [j for j, h in enumerate(headers) if header_words(h, tools) & said]
            table = [u for g_kind, g in self.groups if g_kind == "steps" and g[0].key == units[0].key for u in g]
            if len(asked) != 1 and self.analysis.intent != "comparison":
                # no column named: the one whose steps match the question clearly better
                strength = {
                    j: max((self.score(u) for u in table if u.column == j), default=0.0) for j in range(len(headers))
                }
                ordered = sorted(strength, key=lambda j: -strength[j])
                if len(ordered) > 1 and strength[ordered[0]] - strength[ordered[1]] >= 0.08:
                    asked = [ordered[0]]
            steps = sorted(units, key=lambda u: u.order)
            if len(asked) == 1 and asked[0] == column:
                # the column chosen for who asks, who has done its first step (「手里一堆 stETH」: its LSTs);
                # a column the question names is given whole (「進階路線列給我」)
                done = set(tools.lexical_tokens(" ".join(self.analysis.first_done)))
                if column not in named and header_words(headers[column], tools) & done and len(steps) >= 2:
                    steps = steps[1:]
                return Selection(self._still_to_do(steps), layout="steps", column=clean(headers[column]))
            if len(asked) == 1:
                continue
            # no column named: every column side by side
            lines = sorted({u.line for u in table})
            rows = [[u for u in table if u.line == line] for line in lines]
            return Selection(table, layout="table", headers=headers, sides=tuple(clean(h) for h in headers), rows=rows)
        return None

    def _still_to_do(self, steps: list[Unit]) -> list[Unit]:
        """The steps after the last one the question says is done, when it asks what comes next:
        a step is done when it holds a word said before the "next" that not every step holds
        (Lido in 「我在 Lido 質押了…，下一步怎麼再質押」)."""
        said = NEXT.search(self.analysis.text.lower())
        if len(steps) < 2 or not said:
            return steps
        done_words = set(self.retriever.tools.lexical_tokens(self.analysis.text[: said.start()]))
        tokens = [self.retriever.unit_tokens(u) & done_words for u in steps]
        shared = frozenset.intersection(*tokens)
        done = [i for i, t in enumerate(tokens) if t - shared]
        return steps[done[-1] + 1 :] if done and done[-1] + 1 < len(steps) else steps
