"""Memory after reindexes: twelve reindex cycles of a generated ~200 KB page in a fresh process
(the tiny embedder: the index is what is measured). Every replaced snapshot must be garbage
after its swap, the resident memory must level off, and the memory a build used must be given
back to the system rather than kept at the build's peak.

Measured over 18 cycles (2 cores, glibc), since the process loads jieba's dictionary once
(text.py): the resting level climbs for the first few reindexes (408 → ~430 MB: the allocators'
arenas settle around the new index's long-lived objects and the cached thread stacks) and then
stays between 421 and 436 MB up to the eighteenth; the build's peak was about 450 MB. (Before,
each build loaded its own dictionary and the level took ten cycles to settle, 390 → ~440 MB.)
So "levels off" is checked on the cycles after that settling, not on the first ones."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import CORPUS, ROOT

WORKER = r"""
import gc, json, resource, shutil, sys, time, weakref
from pathlib import Path
import psutil
from restake_qa import service
from restake_qa.build import build_index
from restake_qa.config import load_settings
from restake_qa.embedding import HashEmbedder
from restake_qa.service import Engine, ReindexJobs

tmp, corpus_src, cycles, release = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "on"
if not release:  # what the process did before memory.py: nothing
    service.release_freed_memory = lambda: None
corpus = tmp / "corpus"
shutil.copytree(corpus_src, corpus)

def page(seed):
    lines = ["---", "title: 筆記", "lang: zh-tw", "---", ""]
    for i in range(1600):
        if i % 10 == 0:
            lines += ["", f"## 筆記第 {i // 10 + 1} 部分 {{#notes-{i // 10 + 1}}}", ""]
        lines.append(f"第 {i} 則筆記（版本 {seed}）：營運者編號 {i * 7 + seed} 為 AVS 編號 {i * 13} 運行驗證軟體，每月回報 {i % 9 + 1} 次運行時間。")
    return "\n".join(lines) + "\n"

(corpus / "notes.zh-tw.md").write_text(page(0), "utf-8")
settings = load_settings({"data_dir": str(tmp / "data"), "corpus_dir": str(corpus)}, environ={})
embedder = HashEmbedder(dimension=384)
build_index(corpus, settings.data_path, embedder, settings)
engine, jobs, process = Engine(settings, embedder=embedder), ReindexJobs(), psutil.Process()
engine.answer("再質押有什麼風險？")
gc.collect()
rss = lambda: process.memory_info().rss / 2**20
out = {"page_kb": len(page(0).encode()) // 1024, "start": rss(), "after": [], "alive": 0}
old = []
for cycle in range(cycles):
    old.append(weakref.ref(engine.snapshot().index))
    (corpus / "notes.zh-tw.md").write_text(page(cycle + 1), "utf-8")
    job = jobs.start(engine)
    while jobs.get(job["id"])["status"] == "running":
        time.sleep(0.05)
    assert jobs.get(job["id"])["status"] == "done", jobs.get(job["id"])
    engine.answer("營運者編號 70 為哪個 AVS 運行驗證軟體？")
    out["after"].append(rss())
out["alive"] = sum(ref() is not None for ref in old)
out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


CYCLES = 12


def run(tmp_path, release: bool, cycles: int = CYCLES) -> dict:
    folder = tmp_path / ("on" if release else "off")
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder), str(CORPUS), str(cycles), "on" if release else "off"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_memory_is_released_and_levels_off_over_repeated_reindexes(tmp_path):
    m = run(tmp_path, release=True)
    after, start, peak = m["after"], m["start"], m["peak"]
    print(
        f"\n{m['page_kb']} KB page: start {start:.0f} MB, after each reindex {[round(x) for x in after]}, peak {peak:.0f}"
    )
    assert m["alive"] == 0  # no replaced index is held by anything
    # levels off: once settled, the last five cycles add (almost) nothing to the five before
    assert max(after[-5:]) - max(after[-10:-5]) < 16, after
    # released: after a reindex the process is far below the build's peak, not kept at it
    # (at most 70% of what the build added, or 64 MB when the build's peak itself was low)
    assert after[-1] - start < max(0.7 * (peak - start), 64), (start, after, peak)
