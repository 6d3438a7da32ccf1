"""The `restake-qa` command: build, chunks, ask, eval, serve.

Commands parse options, call the library and format its results. Library errors
(:class:`~restake_qa.errors.RestakeQAError`) become one line that says what to do next, in one
place (:class:`_Group`). Heavy imports live inside the commands so `--help` is instant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from .config import Settings, load_settings, option_help
from .errors import RestakeQAError


def _say(message: str) -> None:
    click.echo(message, err=True)


class _Group(click.Group):
    """Shows a library error (or an OS error such as a full disk) as one line, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (RestakeQAError, OSError) as exc:
            raise click.ClickException(str(exc)) from None


def _settings(**overrides: Any) -> Settings:
    return load_settings({k: v for k, v in overrides.items() if v is not None})


def _load_embedder(settings: Settings) -> Any:
    from .embedding import load_embedder

    return load_embedder(settings, progress=_say)


def _engine(settings: Settings) -> Any:
    from .errors import IndexLoadError
    from .service import Engine

    engine = Engine(settings, embedder=_load_embedder(settings), progress=_say)
    if engine.error:
        raise IndexLoadError(engine.error)
    return engine


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=option_help("data_dir"),
)
corpus_option = click.option(
    "--corpus",
    "corpus",
    type=click.Path(path_type=Path),
    help=option_help("corpus_dir"),
)
model_option = click.option("--model", help=option_help("model"))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="restake-qa")
def main() -> None:
    """Answers with cited sections over ethereum.org's zh-TW restaking page.

    \b
    Typical use:
      restake-qa build                 # parse, chunk, embed, index corpus/
      restake-qa ask "再質押有什麼風險？"
      restake-qa serve                 # chat page and JSON API on http://127.0.0.1:8000/
      restake-qa eval                  # retrieval metrics on tests/data/questions.jsonl
    """


@main.command()
@corpus_option
@data_dir_option
@model_option
@click.option("--force", is_flag=True, help="Rebuild even if nothing changed.")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another running build.")
@click.option("--dry-run", is_flag=True, help="Parse and chunk only; print the chunks (same as `restake-qa chunks`).")
@click.option("--rollback", is_flag=True, help="Make the previous build live again.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def build(
    corpus: Path | None,
    data_dir: Path | None,
    model: str | None,
    force: bool,
    wait: float,
    dry_run: bool,
    rollback: bool,
    as_json: bool,
) -> None:
    """Build (or update) the index from the corpus folder.

    Only new or changed chunks are embedded; the new build is validated and published
    atomically, and the previous one is kept for --rollback. A running server swaps the
    new build in without a restart. Killing a build leaves the live index as it was.
    """
    settings = _settings(corpus_dir=corpus, data_dir=data_dir, model=model)
    if dry_run:
        _print_chunks(settings)
        return
    from .build import build_index
    from .build import rollback as do_rollback
    from .corpus import corpus_hash

    if rollback:
        click.echo(f"rolled back: {do_rollback(settings.data_path)} is live again")
        return
    corpus_hash(settings.corpus_path)  # check the corpus before loading a model: a typo fails in a second
    embedder = _load_embedder(settings)
    report = build_index(
        settings.corpus_path, settings.data_path, embedder, settings, force=force, wait=wait, progress=_say
    )
    # The report (what was added, changed, removed) goes to stdout; progress went to stderr.
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1) if as_json else report.summary())


def _print_chunks(settings: Settings) -> None:
    from .alignment import align_versions, format_alignment
    from .build import chunker_settings
    from .chunking import chunk_section
    from .corpus import load_corpus_report
    from .text import load_text_tools

    parsed = load_corpus_report(settings.corpus_path, settings.max_page_bytes)
    sections = parsed.sections
    tools = load_text_tools(settings.corpus_path)
    chunker = chunker_settings(settings)
    total = 0
    for s in sections:
        chunks = chunk_section(s, tools, chunker)
        total += len(chunks)
        click.echo(
            f"§ {s.source}#{s.anchor or '(top)'}  {s.title}  lines {s.lines[0]}–{s.lines[1]}  {len(chunks)} chunks"
        )
        for i, c in enumerate(chunks, 1):
            preview = c.display_text.replace("\n", " ⏎ ")
            if len(preview) > 70:
                preview = preview[:69] + "…"
            click.echo(f"   {i:>2}. {c.tokens:>3} tok  {preview}")
    click.echo(
        f"{len(sections)} sections, {total} chunks (target {chunker.target}, max {chunker.maximum} jieba tokens)"
    )
    for line in format_alignment(align_versions(sections)):
        click.echo(line)
    click.echo(
        f"{len(parsed.warnings)} warning{'s' if len(parsed.warnings) != 1 else ''}" + ":" * bool(parsed.warnings)
    )
    for warning in parsed.warnings:
        click.echo(f"  {warning}")


@main.command()
@corpus_option
def chunks(corpus: Path | None) -> None:
    """Show how the pages are cut into sections and chunks."""
    _print_chunks(_settings(corpus_dir=corpus))


@main.command()
@click.argument("question")
@data_dir_option
@model_option
@click.option("--top-k", type=click.IntRange(1, 20), help=option_help("top_k"))
@click.option(
    "--language",
    type=click.Choice(["zh-tw", "zh-cn", "en"]),
    help="The script to answer a Chinese question in when its characters are the same in both (default: Traditional).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
def ask(
    question: str, data_dir: Path | None, model: str | None, top_k: int | None, language: str | None, as_json: bool
) -> None:
    """Answer QUESTION from the index, with cited sections."""
    engine = _engine(_settings(data_dir=data_dir, model=model))
    started = time.perf_counter()
    answer, version = engine.answer(question, top_k=top_k, language=language)
    if as_json:
        body = answer.to_dict()
        body["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
        body["index_version"] = version
        click.echo(json.dumps(body, ensure_ascii=False, indent=1))
        return
    if answer.refused:
        click.echo(answer.message)
        for s in answer.suggestions:
            click.echo(f"  - {s['title']}  {s['url']}")
        return
    click.echo(answer.text)
    if answer.note:
        click.echo(f"({answer.note})")
    click.echo("")
    for c in answer.citations:
        click.echo(f"[{c.n}] {c.title} — {c.url}")


@main.command(name="eval")
@click.option(
    "--split",
    type=click.Choice(["dev", "holdout"]),
    default="dev",
    show_default=True,
    help="Which part of the question sets: dev (tuned on) or holdout (never tuned on).",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(["sections", "answers", "refusals"]),
    help="Only these suites (repeatable); default all three.",
)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A section question file instead of tests/data/questions[_holdout].jsonl.",
)
@click.option(
    "--data",
    "data_folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("tests/data"),
    show_default=True,
    help="Folder of the question sets.",
)
@data_dir_option
@model_option
@click.option("--baseline/--no-baseline", default=True, show_default=True, help="Also score the baselines.")
@click.option(
    "--tune",
    is_flag=True,
    help="Fit the fusion weights, the refusal rule and thresholds and the answer-unit weights on dev; print the settings.",
)
@click.option("--quiet", is_flag=True, help="Figures only, without the list of misses and wrong answers.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_(
    split: str,
    suites: tuple[str, ...],
    questions: Path | None,
    data_folder: Path,
    data_dir: Path | None,
    model: str | None,
    baseline: bool,
    tune: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Quality on the question sets: section retrieval (hit@k, MRR, nDCG@5), answers judged
    answer by answer (a key fact in the answer and in its first sentence, per language and
    intent) and refusals (near-topic, far, noise; in-scope refused), beside the baselines.

    Every set is split into dev (tuned on) and holdout (never tuned on); --split chooses.
    With --tune, the settings are fitted on dev and the report shows the tuned system.
    """
    from .evaluation import SUITES, EvalFiles, run_evaluation

    qs = _load_questions(questions) if questions else None
    engine = _engine(_settings(data_dir=data_dir, model=model))
    outcome = run_evaluation(
        engine,
        qs,
        split=split,
        suites=suites or SUITES,
        files=EvalFiles(data_folder, questions),
        baseline=baseline,
        tune_first=tune,
        progress=_say,
    )
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=1))
        return
    click.echo(outcome.format(show_misses=not quiet))


def _load_questions(path: Path) -> Any:
    from .evaluation import load_questions

    try:
        return load_questions(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@data_dir_option
@model_option
@click.option("--host", help=option_help("host"))
@click.option("--port", type=int, help=option_help("port"))
@click.option("--threads", type=int, help=option_help("threads"))
@click.option(
    "--build/--no-build",
    "build_first",
    default=True,
    show_default=True,
    help="Build the index first if there is none or the corpus changed.",
)
def serve(
    data_dir: Path | None, model: str | None, host: str | None, port: int | None, threads: int | None, build_first: bool
) -> None:
    """Serve the chat page and the JSON API with waitress (a production WSGI server).

    With an index already built, it listens at once and builds in the background (a reindex
    job: GET /api/health shows it, DELETE /api/reindex/<id> cancels it); the new build is
    swapped in when it is published. Every problem at start (port taken, no model, missing or
    corrupted index, an index built with another model) stops it with one line saying what to do.
    """
    from .errors import IndexLoadError
    from .guard import parse_networks
    from .server import check_port, configure_logging, tune_for_serving
    from .server import serve as run_server
    from .service import Engine
    from .web import create_app, reindex_jobs

    settings = _settings(data_dir=data_dir, model=model, host=host, port=port, threads=threads)
    check_port(settings.host, settings.port)  # before seconds of model loading
    parse_networks(settings.trusted_proxies)  # a typo there too
    engine = Engine(settings, embedder=_load_embedder(settings), progress=_say)
    if build_first and engine.error:  # nothing to serve meanwhile: build first
        try:
            _say(engine.build(progress=_say).summary())
        except (RestakeQAError, OSError) as exc:
            if engine.error:
                raise
            _say(f"build skipped: {exc}")
    if engine.error:
        raise IndexLoadError(engine.error)
    tune_for_serving()
    configure_logging()
    app = create_app(settings, engine=engine)
    engine.warm_up()
    _say(f"index {engine.snapshot().index.version} loaded")
    if build_first:  # an index serves: build while listening
        job = reindex_jobs(app).start(engine, reason="startup", echo=_say)
        if job is not None:
            _say(f"building in the background (reindex job {job['id']}); the current index serves meanwhile")
    run_server(app, settings, announce=_say)
    _say("stopped")


if __name__ == "__main__":  # pragma: no cover
    main()
