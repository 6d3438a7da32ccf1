"""Hybrid retrieval: dense (FAISS) + lexical (BM25 over jieba tokens), fused, per section.

A question is compared with each candidate section in five ways, each on a 0–1 scale:

* ``dense``: the best cosine between the question and one of the section's chunks (embedded
  with their heading path);
* ``sentence``: the same for the section's single sentences, which catches a question about
  one line of a long chunk;
* ``anchor``: the cosine with the section's English name (ethereum.org anchors are the English
  headings: ``what-are-the-risks-of-restaking``), a bridge for English questions;
* ``lexical``: the best chunk's BM25 divided by the sum of the query tokens' IDFs, i.e. the
  score of a chunk holding each query token once;
* ``heading``: the IDF-weighted share of the query tokens that the section's heading names
  (its title and the words of its anchor);
* ``intent``: 1 when the section's heading asks what the question asks (a definition, a reason…);
* ``substance``: 0 for a section that only lists things to read or watch (延伸閱讀, a video)
  when the question does not ask for reading (``[resources]`` in ``data/intents.toml``), else 1
  — a list of article titles names every topic of the page without saying anything about it.

The three cosines are relative: multilingual-e5 cosines sit in a narrow band whose level
depends on the language of the question, so each is scored as ``1 − (best − cosine) / spread``
against the best section for this question (clipped at 0). Query tokens include the page's
words for what an English or Simplified question says in other words (glossary and synonyms,
see :mod:`restake_qa.text`); an English question is embedded with those words appended, so the
model sees the page's vocabulary. ``fused`` is the weighted sum (weights in the settings,
chosen on the dev set with ``restake-qa eval --tune``).

Whether the page answers at all is a separate, absolute decision: a linear rule
(``refusal_rule``) over the best raw cosines, the best lexical score and the *coverage* (the
IDF-weighted share of the question's content words that the pages use at all) must reach 0,
else the question is refused. Its evidence is part of the result.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np

from .alignment import VersionMap, reading_order
from .analysis import QuestionAnalyzer
from .chunking import Sentence
from .config import Settings
from .corpus import Section
from .coverage import Coverage
from .embedding import Embedder, precision_of
from .errors import ConfigError, IndexLoadError
from .hits import ChunkHit, Hit, Retrieval, Scores, relative
from .index import Index
from .query import QueryTerms
from .refusal import decide
from .text import TextTools, detect_language
from .units import Unit, UnitIndex

__all__ = ["FEATURES", "REFUSAL_INPUTS", "ChunkHit", "Hit", "Retrieval", "Retriever", "Scores", "relative"]

#: A stretch of the question in quotation marks (「…」, “…”, '…').
_QUOTED = re.compile(r"[「『“\"'‘]([^「」『』“”\"'‘’]{2,30})[」』”\"'’]")


def _title_form(tools: TextTools, text: str) -> str:
    """``text`` as titles are compared: Simplified, lower case, without spaces or punctuation."""
    return re.sub(r"[\s?？!！.,，。:：]", "", tools.to_simplified(text).lower())


FEATURES = ("dense", "sentence", "anchor", "lexical", "heading", "intent", "substance")
#: How a section's language versions combine into its score (the ``version_scoring`` setting).
VERSION_SCORINGS = ("feature_max", "max", "own")
SIMPLIFIED_SOURCES = ("page", "converted")
#: Inputs of the refusal rule, in the order its coefficients are written.
REFUSAL_INPUTS = ("cosine", "sentence_cosine", "lexical", "coverage")


def weights_of(settings: Settings) -> dict[str, float]:
    """The fusion weights of ``settings`` (``<feature>_weight``)."""
    return {f: float(getattr(settings, f"{f}_weight")) for f in FEATURES}


def parse_refusal_rule(text: str) -> dict[str, float]:
    """``"cosine=40 sentence_cosine=76 lexical=2.6 coverage=1.7 bias=-102"`` → a dict; the
    question is answered when ``bias + Σ coefficient · input ≥ 0``."""
    rule: dict[str, float] = {}
    for part in text.split():
        name, _, value = part.partition("=")
        if name not in (*REFUSAL_INPUTS, "bias") or not value:
            raise ConfigError(
                f"refusal_rule: {part!r} is not <input>=<number> with input one of "
                f"{', '.join((*REFUSAL_INPUTS, 'bias'))}"
            )
        try:
            rule[name] = float(value)
        except ValueError:
            raise ConfigError(f"refusal_rule: {value!r} in {part!r} is not a number") from None
    return rule


class Retriever:
    """Searches one loaded :class:`Index` with one :class:`Embedder`."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        tools: TextTools,
        settings: Settings,
        analyzer: QuestionAnalyzer | None = None,
    ) -> None:
        if index.model_id != embedder.model_id:
            raise IndexLoadError(
                f"index {index.version} was built with model {index.model_id!r}, but the loaded "
                f"model is {embedder.model_id!r}; rebuild with `restake-qa build --force`"
            )
        if index.precision != precision_of(embedder):
            raise IndexLoadError(
                f"index {index.version} was built with the model at {index.precision} precision, but the "
                f"model runs at {precision_of(embedder)}; set RESTAKE_QA_MODEL_PRECISION={index.precision} "
                "or rebuild with `restake-qa build --force`"
            )
        if index.dimension != embedder.dimension:
            raise IndexLoadError(f"index dimension {index.dimension} differs from the model's {embedder.dimension}")
        self.index = index
        self.embedder = embedder
        self.tools = tools
        self.analyzer = analyzer or QuestionAnalyzer(tools)
        self.vocabulary = Coverage(index.sections, tools)
        self.units = UnitIndex(index.sections, index.sentences)
        self._unit_tokens: dict[tuple[str, int, int], frozenset[str]] = {}
        self._title_intents: dict[str, str] = {}
        self.settings = settings
        self.weights = weights_of(settings)
        self.spread = settings.dense_spread
        self.refusal_rule = parse_refusal_rule(settings.refusal_rule)
        if settings.version_scoring not in VERSION_SCORINGS:
            raise ConfigError(
                f"version_scoring must be one of {', '.join(VERSION_SCORINGS)}, got {settings.version_scoring!r}"
            )
        if settings.simplified_source not in SIMPLIFIED_SOURCES:
            raise ConfigError(
                f"simplified_source must be one of {', '.join(SIMPLIFIED_SOURCES)}, got {settings.simplified_source!r}"
            )
        self.versions = VersionMap(index.sections)
        self._n = len(index.chunks)
        self._lexical = index.lexical
        self._section_row = {s.key: i for i, s in enumerate(index.sections)}
        # sections that only list things to read or watch (延伸閱讀, a video): they answer a
        # question asking for reading, not one asking what the page says
        self._reading_lists = frozenset(
            s.key for s in index.sections if s.blocks and all(b.links or b.kind == "video" for b in s.blocks)
        )
        self._chunk_vocab = [tuple(dict.fromkeys(tokens)) for tokens in index.chunk_tokens]  # in order, once
        self._chunk_rows: dict[str, list[int]] = {}
        for i, chunk in enumerate(index.chunks):
            self._chunk_rows.setdefault(chunk.section_key, []).append(i)
        rows: dict[str, list[int]] = {}
        for i, sentence in enumerate(index.sentences):
            rows.setdefault(sentence.section_key, []).append(i)
        self._sentence_rows = {k: np.asarray(v) for k, v in rows.items()}
        self._sentence_tokens: dict[int, frozenset[str]] = {}
        # headings: tokens per section, and their IDF across headings
        headings = {s.key: frozenset(tools.heading_tokens(s.title, s.anchor)) for s in index.sections}
        heading_df: dict[str, int] = {}
        for tokens in headings.values():
            for tok in tokens:
                heading_df[tok] = heading_df.get(tok, 0) + 1
        n_sections = max(len(headings), 1)
        self._heading_idf = {t: math.log(1 + (n_sections - df + 0.5) / (df + 0.5)) for t, df in heading_df.items()}
        self._heading_idf_unknown = math.log(1 + (n_sections + 0.5) / 0.5)
        self.query = QueryTerms(index.lexical, tools, frozenset(self._heading_idf))
        self._sections_with: dict[str, list[str]] = {}
        for key, tokens in headings.items():
            for tok in tokens:
                self._sections_with.setdefault(tok, []).append(key)
        self._titles = {s.key: _title_form(tools, s.title) for s in index.sections}

    def _quoted_title(self, question: str) -> list[str]:
        """The sections (every version) whose title holds what the question quotes, when only one
        section's does: 「“如何运作”那张表」 points at 「再质押是如何运作的？」."""
        for m in _QUOTED.finditer(question):
            span = _title_form(self.tools, m.group(1))
            if len(span) < (4 if span.isascii() else 2):
                continue
            keys = [key for key, title in self._titles.items() if span in title]
            if len({self.index.section_by_key[key].group for key in keys}) == 1:
                return keys
        return []

    # what answer composition reads --------------------------------------------------------
    def section(self, key: str) -> Section:
        return self.index.section_by_key[key]

    def reading(self, section: Section) -> list[Section]:
        """What an answer may quote for ``section``: itself and the sections that continue it in
        its version of the page (sections the main version lacks; see ``_continued``)."""
        return [section, *(self.index.section_by_key[key] for key in self.versions.continued(section.key))]

    def main_version(self, section: Section) -> Section:
        """The section in its page's main version (the first file of the page: zh-TW), or
        ``section`` itself where the main version lacks it."""
        key = self.versions.main_key(section)
        return self.index.section_by_key[key] if key else section

    def sentence(self, row: int) -> Sentence:
        return self.index.sentences[row]

    def sentence_rows(self, keys: set[str] | dict[str, Any]) -> list[int]:
        """Rows of the quotable sentences of the sections ``keys``, in index (page) order."""
        return sorted(int(i) for key in keys if key in self._sentence_rows for i in self._sentence_rows[key])

    def title_intent(self, key: str) -> str:
        """The intent of a section's title read as a question (「我們為什麼需要再質押？」: reason)."""
        intent = self._title_intents.get(key)
        if intent is None:
            intent = self._title_intents[key] = self.analyzer.analyze(self.section(key).title).intent
        return intent

    def title_cosine(self, key: str, query_vector: np.ndarray) -> float:
        """Cosine between the question and a section's title embedded as a question."""
        return float(self.index.title_vectors[self._section_row[key]] @ query_vector)

    def sentence_cosines(self, rows: list[int], query_vector: np.ndarray) -> np.ndarray:
        """Cosines between the question's embedding and sentences ``rows``."""
        return np.asarray(self.index.sentence_vectors[rows] @ query_vector)

    def unit_tokens(self, unit: Unit) -> frozenset[str]:
        """Lexical tokens of an answer unit (computed once, on first use)."""
        key = (unit.key, unit.start, unit.end)
        tokens = self._unit_tokens.get(key)
        if tokens is None:
            tokens = self._unit_tokens[key] = frozenset(self.tools.lexical_tokens(unit.text))
        return tokens

    def sentence_tokens(self, row: int) -> frozenset[str]:
        """Lexical tokens of sentence ``row`` of the index (computed once, on first use)."""
        tokens = self._sentence_tokens.get(row)
        if tokens is None:
            tokens = self._sentence_tokens[row] = frozenset(self.tools.lexical_tokens(self.index.sentences[row].text))
        return tokens

    def idf(self, token: str) -> float:
        """BM25's IDF of ``token`` over the chunks (the highest for a token they never use)."""
        return self._lexical.idf(token)

    def _relative(self, cosines: dict[str, float]) -> dict[str, float]:
        best = max(cosines.values(), default=0.0)
        return {k: relative(c, best, self.spread) for k, c in cosines.items()}

    def search(self, question: str, top_k: int | None = None, language: str | None = None) -> Retrieval:
        """Retrieve sections for ``question``, best first, with the refusal decision
        (``language``: the asker's, for Chinese written alike in both scripts)."""
        top_k = int(top_k or self.settings.top_k)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        analysis = self.analyzer.analyze(self.vocabulary.respell(question))
        language = (
            detect_language(analysis.text, self.tools, language) if language and analysis.text else analysis.language
        )
        timings["analysis"] = (time.perf_counter() - t) * 1000
        if not self._n:
            return Retrieval(question, language, (), True, {"reason": "the index is empty"}, timings)
        question = analysis.text or question  # full-width letters and digits as ASCII

        t = time.perf_counter()
        words = list(dict.fromkeys([*self.query.expansions(question), *analysis.implied]))
        qvec = self.embedder.embed_queries([self.query.embedded(question, language, words)])
        q = qvec[0]
        timings["embed"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        k = min(self.settings.candidates, self._n)
        cos, ids = self.index.vectors.search(qvec, k)
        dense_ids = [int(i) for i in ids[0] if i >= 0]
        cosine = {i: float(c) for i, c in zip(dense_ids, cos[0])}
        timings["dense"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        tokens = self.query.tokens(question, words)
        content = self.query.content(question, language, tokens)
        if content:
            raw = self._lexical.scores(tokens)
            scale = sum(self.idf(tok) for tok in content) or 1.0
        else:
            raw = np.zeros(self._n, dtype=np.float32)
            scale = 1.0
        top = np.argpartition(-raw, k - 1)[:k] if k < self._n else np.arange(self._n)
        lex_ids = [int(i) for i in top[np.argsort(-raw[top])] if raw[i] > 0]
        heading_mass = sum(self._heading_idf.get(tok, self._heading_idf_unknown) for tok in content) or 1.0
        heading_score: dict[str, float] = {}
        for tok in content:
            for key in self._sections_with.get(tok, ()):
                heading_score[key] = heading_score.get(key, 0.0) + self._heading_idf[tok] / heading_mass
        for key in self._quoted_title(question):  # (「頁面“如何运作”那張表」 names its section)
            heading_score[key] = 1.0
        timings["lexical"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        found = [self.index.chunks[i].section_key for i in dense_ids + lex_ids] + list(heading_score)
        # every language version of a section found is scored, so that its versions combine
        groups = dict.fromkeys(self.index.section_by_key[key].group for key in found)
        keys = [key for group in groups for key in self.versions.keys[group].values()]
        candidates = [i for key in keys for i in self._chunk_rows.get(key, ())]
        missing = [i for i in candidates if i not in cosine]
        if missing:
            vecs = np.vstack([self.index.vectors.reconstruct(i) for i in missing])
            for i, c in zip(missing, vecs @ q):
                cosine[i] = float(c)
        keys = [key for key in keys if key in self._chunk_rows]
        chunk_cos = {key: max(cosine[i] for i in self._chunk_rows[key]) for key in keys}
        sentence_cos = {
            key: float(np.max(self.index.sentence_vectors[self._sentence_rows[key]] @ q))
            for key in keys
            if key in self._sentence_rows
        }
        heading_vectors = self.index.heading_vectors
        anchor_cos = {key: float(heading_vectors[self._section_row[key]] @ q) for key in keys}
        dense, sentence, anchor = (self._relative(x) for x in (chunk_cos, sentence_cos, anchor_cos))
        best_chunk_cos = max(chunk_cos.values(), default=0.0)
        w = self.weights
        query_set = set(tokens)
        hits = []
        for key in keys:
            chunk_hits = []
            for i in self._chunk_rows[key]:
                d = relative(cosine[i], best_chunk_cos, self.spread)
                lex = min(float(raw[i]) / scale, 1.0)
                matched = tuple(tok for tok in self._chunk_vocab[i] if tok in query_set)
                fused = w["dense"] * d + w["lexical"] * lex
                chunk_hits.append(ChunkHit(self.index.chunks[i], Scores(d, lex, fused, cosine[i]), matched))
            chunk_hits.sort(key=lambda h: -h.scores.fused)
            features = {
                "dense": dense[key],
                "sentence": sentence.get(key, 0.0),
                "anchor": anchor[key],
                "lexical": max(h.scores.lexical for h in chunk_hits),
                "heading": min(heading_score.get(key, 0.0), 1.0),
                "intent": float(analysis.intent != "other" and self.title_intent(key) == analysis.intent),
                "substance": float(analysis.resources or key not in self._reading_lists),
            }
            fused = sum(w[f] * features[f] for f in FEATURES)
            scores = Scores(
                features["dense"],
                features["lexical"],
                fused,
                chunk_cos[key],
                features["sentence"],
                features["anchor"],
                features["heading"],
                features["intent"],
                features["substance"],
            )
            terms = tuple(dict.fromkeys(t for h in chunk_hits for t in h.matched_terms))
            hits.append(Hit(self.index.section_by_key[key], tuple(chunk_hits), scores, terms))
        hits = self._combine_versions(hits, language)
        hits.sort(key=lambda h: -h.scores.fused)
        timings["fusion"] = (time.perf_counter() - t) * 1000

        inputs = {
            "cosine": best_chunk_cos,
            "sentence_cosine": max(sentence_cos.values(), default=0.0),
            "lexical": max((h.scores.lexical for h in hits), default=0.0),
            "coverage": self.query.coverage(content),
        }
        confidence = self.refusal_rule.get("bias", 0.0) + sum(
            self.refusal_rule.get(name, 0.0) * value for name, value in inputs.items()
        )
        decision = decide(analysis, self.vocabulary, confidence, self.settings, inputs["coverage"])
        refused = not hits or decision.refused
        evidence = {
            "reason": decision.reason or ("no_match" if not hits else ""),
            "intent": analysis.intent,
            "uncovered": list(decision.uncovered),
            "covered": list(decision.covered),
            "confidence": round(confidence, 4),
            **{name: round(value, 4) for name, value in inputs.items()},
            "rule": "answer when bias + Σ coefficient · input ≥ 0 (refusal_rule)",
            "refusal_rule": self.refusal_rule,
            "weights": w,
            "query_tokens": tokens,
            "content_tokens": content,
        }
        return Retrieval(
            analysis.question, language, tuple(hits[:top_k]), refused, evidence, timings, q, analysis, decision
        )

    def _combine_versions(self, hits: list[Hit], language: str) -> list[Hit]:
        """One hit per section: the version the asker reads, scored over all its versions
        (``version_scoring``: each feature's best version, the best version's fused score, or
        the asker's version alone)."""
        groups: dict[str, dict[str, Hit]] = {}
        for hit in hits:
            groups.setdefault(hit.section.group, {})[hit.section.lang] = hit
        out = []
        for group, by_lang in groups.items():
            langs = self.versions.langs(group)
            order = [
                lang for lang in reading_order(language, langs, self.settings.simplified_source) if lang in by_lang
            ]
            own = by_lang[order[0]]
            scores = own.scores
            pool = list(by_lang.values())
            if self.settings.version_scoring == "max":
                scores = max(pool, key=lambda h: h.scores.fused).scores
            elif self.settings.version_scoring == "feature_max":
                best = {f: max(getattr(h.scores, f) for h in pool) for f in FEATURES}
                scores = Scores(
                    dense=best["dense"],
                    lexical=best["lexical"],
                    fused=sum(self.weights[f] * best[f] for f in FEATURES),
                    cosine=max(h.scores.cosine for h in pool),
                    sentence=best["sentence"],
                    anchor=best["anchor"],
                    heading=best["heading"],
                    intent=best["intent"],
                    substance=best["substance"],
                )
            terms = tuple(dict.fromkeys(t for lang in order for t in by_lang[lang].matched_terms))
            versions = tuple(by_lang[lang].section for lang in order)
            out.append(Hit(own.section, own.chunks, scores, terms, versions))
        return out

    def features(self, question: str) -> tuple[list[str], np.ndarray, dict[str, float]]:
        """Every section's feature vector for ``question`` (rows in ``index.sections`` order,
        columns :data:`FEATURES`) and the refusal inputs; used to tune weights and the rule."""
        result = self.search(question, top_k=len(self.index.sections))
        groups = list(self.versions.keys)
        row = {group: i for i, group in enumerate(groups)}
        matrix = np.zeros((len(groups), len(FEATURES)))
        for hit in result.hits:
            matrix[row[hit.section.group]] = [getattr(hit.scores, f) for f in FEATURES]
        inputs = {name: float(result.evidence[name]) for name in REFUSAL_INPUTS}
        return [group.rsplit("#", 1)[1] for group in groups], matrix, inputs
