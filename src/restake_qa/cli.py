"""The `restake-qa` command: build, chunks, ask, eval, serve.

Commands parse options, call the library and format its results; errors become one line
that says what to do next. Heavy imports live inside the commands so `--help` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .config import ConfigError, corpus_dir, load_settings


def _say(message: str) -> None:
    click.echo(message, err=True)


def _settings(**overrides: Any) -> dict[str, Any]:
    try:
        return load_settings({k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _load_embedder(settings: dict[str, Any]):
    from .embedding import load_embedder
    from .models import ModelNotFoundError

    try:
        return load_embedder(settings, progress=_say)
    except ModelNotFoundError as exc:
        raise _fail(exc) from None


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="RESTAKE_QA_DATA_DIR",
    help="Folder for index builds and caches.  [env: RESTAKE_QA_DATA_DIR; default: ./.restake-qa]",
)
corpus_option = click.option(
    "--corpus", "corpus", type=click.Path(path_type=Path), envvar="RESTAKE_QA_CORPUS_DIR",
    help="Folder of markdown pages.  [env: RESTAKE_QA_CORPUS_DIR; default: ./corpus]",
)
model_option = click.option(
    "--model", envvar="RESTAKE_QA_MODEL",
    help="Embedding model: a local folder or a model id.  [env: RESTAKE_QA_MODEL]",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
def build(corpus, data_dir, model, force, wait, dry_run, rollback, as_json) -> None:
    """Build (or update) the index from the corpus folder.

    Only new or changed chunks are embedded; the new build is validated and published
    atomically, and the previous one is kept for --rollback. A running server swaps the
    new build in without a restart. Killing a build leaves the live index as it was.
    """
    settings = _settings(corpus_dir=corpus, data_dir=data_dir, model=model)
    if dry_run:
        _print_chunks(settings)
        return
    from .corpus import CorpusError
    from .index import BuildLockedError, IndexLoadError, build_index
    from .index import rollback as do_rollback

    data = Path(settings["data_dir"])
    try:
        if rollback:
            version = do_rollback(data)
            click.echo(f"rolled back: {version} is live again")
            return
        # Check the corpus before loading a model, so a typo fails in a second.
        from .corpus import corpus_hash

        corpus_hash(corpus_dir(settings))
        embedder = _load_embedder(settings)
        report = build_index(corpus_dir(settings), data, embedder, settings, force=force, wait=wait, progress=_say)
    except (CorpusError, BuildLockedError, IndexLoadError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    # The report (what was added, changed, removed) goes to stdout; progress went to stderr.
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1) if as_json else report.summary())


def _print_chunks(settings: dict[str, Any]) -> None:
    from .chunking import chunk_section
    from .corpus import CorpusError, load_corpus
    from .index import build_settings_of
    from .text import load_text_tools

    folder = corpus_dir(settings)
    try:
        sections = load_corpus(folder)
    except CorpusError as exc:
        raise _fail(exc) from None
    tools = load_text_tools(folder)
    chunker = build_settings_of(settings)
    total = 0
    for s in sections:
        chunks = chunk_section(s, tools, chunker)
        total += len(chunks)
        click.echo(f"§ {s.source}#{s.anchor or '(top)'}  {s.title}  lines {s.lines[0]}–{s.lines[1]}  {len(chunks)} chunks")
        for i, c in enumerate(chunks, 1):
            preview = c.display_text.replace("\n", " ⏎ ")
            if len(preview) > 70:
                preview = preview[:69] + "…"
            click.echo(f"   {i:>2}. {c.tokens:>3} tok  {preview}")
    click.echo(f"{len(sections)} sections, {total} chunks (target {chunker.target}, max {chunker.maximum} jieba tokens)")


@main.command()
@corpus_option
def chunks(corpus) -> None:
    """Show how the pages are cut into sections and chunks."""
    _print_chunks(_settings(corpus_dir=corpus))


def _engine(settings: dict[str, Any]):
    from .index import IndexLoadError
    from .service import Engine

    engine = Engine(settings, embedder=_load_embedder(settings), progress=_say)
    if engine.error:
        raise _fail(IndexLoadError(engine.error))
    return engine


@main.command()
@click.argument("question")
@data_dir_option
@model_option
@click.option("--top-k", type=click.IntRange(1, 20), help="Sections to retrieve.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
def ask(question, data_dir, model, top_k, as_json) -> None:
    """Answer QUESTION from the index, with cited sections."""
    import time

    settings = _settings(data_dir=data_dir, model=model)
    engine = _engine(settings)
    started = time.perf_counter()
    answer, version = engine.answer(question, top_k=top_k)
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
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("tests/data/questions.jsonl"), show_default=True, help="JSON-lines question set.")
@data_dir_option
@model_option
@click.option("--baseline/--no-baseline", default=True, show_default=True, help="Also score the plain baseline.")
@click.option("--tune", is_flag=True,
              help="Choose fusion weights and fit the refusal rule on these questions; print the settings.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_(questions, data_dir, model, baseline, tune, as_json) -> None:
    """Retrieval metrics (hit@k, MRR, nDCG@5, refusals) on a question set.

    With --tune, the fusion weights and the refusal rule are chosen on the question set and
    printed as settings (RESTAKE_QA_* lines); the report then shows the tuned system.
    """
    from .evaluation import baseline_system, evaluate, format_report, load_questions, product_system

    settings = _settings(data_dir=data_dir, model=model)
    try:
        qs = load_questions(questions)
    except ValueError as exc:
        raise _fail(exc) from None
    engine = _engine(settings)
    snap = engine.snapshot
    retriever = snap.retriever
    tuned: dict[str, Any] = {}
    if tune:
        from .evaluation import collect_features, fit_refusal_rule, format_rule, tune_weights
        from .retrieval import Retriever

        _say(f"collecting features of {len(qs)} questions…")
        data = collect_features(qs, retriever)
        _say("choosing fusion weights…")
        tuned = {f"{name}_weight": w for name, w in tune_weights(data).items()}
        _say("fitting the refusal rule…")
        tuned["refusal_rule"] = format_rule(fit_refusal_rule(data))
        retriever = Retriever(snap.index, engine.embedder, engine.tools, {**settings, **tuned})
    report = evaluate(qs, product_system(retriever))
    base = evaluate(qs, baseline_system(snap.index.sections, engine.embedder)) if baseline else None
    if as_json:
        click.echo(json.dumps({"product": report, "baseline": base, "index_version": snap.index.version,
                               "questions_file": str(questions), "tuned_settings": tuned or None},
                              ensure_ascii=False, indent=1))
        return
    click.echo(format_report(report, base))
    if tuned:
        from .config import ENV_PREFIX

        click.echo("\ntuned settings (put them in config.py's defaults or the environment):")
        for name, value in tuned.items():
            click.echo(f"{ENV_PREFIX}{name.upper()}={value!r}" if isinstance(value, str) else f"{ENV_PREFIX}{name.upper()}={value}")


@main.command()
@data_dir_option
@model_option
@click.option("--host", envvar="RESTAKE_QA_HOST", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, envvar="RESTAKE_QA_PORT", help="Port.  [default: 8000]")
@click.option("--threads", type=int, envvar="RESTAKE_QA_THREADS", help="Worker threads.  [default: 8]")
@click.option("--build/--no-build", "build_first", default=True, show_default=True,
              help="Build the index first if there is none or the corpus changed.")
def serve(data_dir, model, host, port, threads, build_first) -> None:
    """Serve the chat page and the JSON API with waitress (a production WSGI server).

    Every problem at start (port taken, no model, missing or corrupted index, an index built
    with another model) stops it with one line saying what to do.
    """
    import signal

    settings = _settings(data_dir=data_dir, model=model, host=host, port=port, threads=threads)
    address = f"{settings['host']}:{settings['port']}"
    _check_port(settings["host"], settings["port"])  # before seconds of model loading
    from .corpus import CorpusError
    from .index import IndexLoadError
    from .service import Engine

    try:
        engine = Engine(settings, embedder=_load_embedder(settings), progress=_say)
    except (CorpusError, IndexLoadError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    if build_first:
        try:
            report = engine.build(progress=_say)
        except Exception as exc:  # a bad corpus must not stop a server that has an index
            if engine.error:
                raise _fail(exc) from None
            _say(f"build skipped: {exc}")
        else:
            _say(report.summary())
    if engine.error:
        raise _fail(IndexLoadError(engine.error))
    _tune_for_serving()
    from .web import create_app

    app = create_app({**settings, "engine": engine})
    _warm_up(engine)
    import waitress.server

    try:
        server = waitress.server.create_server(
            app, host=settings["host"], port=settings["port"], threads=settings["threads"], ident="restake-qa",
            max_request_body_size=settings["max_body_bytes"] * 4, connection_limit=200, channel_timeout=30,
        )
    except OSError as exc:
        raise _fail(OSError(f"cannot listen on {address}: {exc.strerror or exc}; pick another --port")) from None
    # SIGTERM (docker stop, systemd) ends the loop like Ctrl+C: requests in flight finish
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _say(f"serving index {engine.snapshot.index.version} on http://{address}/ "
         f"({settings['threads']} threads); Ctrl+C stops")
    sys.stderr.flush()
    server.run()
    _say("stopped")


def _check_port(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _fail(OSError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host")) from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress binds
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise _fail(OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                "is another server running? pick another --port")) from None


def _tune_for_serving() -> None:
    """Process-wide settings measured to help a server (see bench/README.md)."""
    import faiss

    # One vector per search: OpenMP's fork/join costs more than it saves, and with several
    # request threads it oversubscribes the cores (flat search over 100k vectors: 40 ms with
    # 2 threads under load, 6 ms with 1).
    faiss.omp_set_num_threads(1)


def _warm_up(engine) -> None:
    """Answer a few questions before listening: the first calls pay one-off costs (model
    buffers per input shape, jieba's dictionary, OpenCC) that users should not see."""
    for question in ("再質押是什麼？", "What are the risks of restaking and how do AVSs slash stakers?", "风险"):
        engine.answer(question)


if __name__ == "__main__":  # pragma: no cover
    main()
