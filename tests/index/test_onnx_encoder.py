"""The ONNX Runtime encoder: exported from the bundled model on first use, cached, faithful to torch, and recorded
in the index manifest so that an index is only ever searched with the backend that built it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from citeqa.home import bundled
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models import embedding
from citeqa.index.models.embedding import Embedder
from citeqa.index.models.onnx_encoder import BULK_TEXTS, available_cores
from citeqa.index.models.onnx_export import INFO_FILE, ONNX_VARIANTS, cache_folder
from citeqa.index.storage.collection import MANIFEST_FILE
from citeqa.index.storage.manifest import IndexMismatchError
from citeqa.index.text.documents import LoadReport
from citeqa.index.writing.ingest import load_folder

SENTENCES = [
    "What did Shoygu allege?",
    "In a statement at the end of April, Shoygu alleged that the West’s intentions are obscured by the rhetoric of peacekeeping.",
    "  Leading and trailing whitespace, ÜNÏCÖDÉ and “typographic quotes”.  ",
    "The summit was moved to Geneva.",
    # Far over 256 word pieces: both backends must truncate at the same place.
    " ".join(f"clause {i} of a very long paragraph about peacekeeping contingents and their costs" for i in range(80)),
]


def build_index(folder: Path, report: LoadReport, embedder: Embedder) -> None:
    """`citeqa index` of the report's folder with `embedder`, through the engine's one write path."""
    with closing(Engine.create(folder, EngineSettings(), embedder)) as engine:
        engine.sync(report.documents, report.origin)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-home") / "models"


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(encoder="torch").load()


@pytest.fixture(scope="module")
def onnx_fp32(models_dir: Path) -> Embedder:
    """The export happens here, once for the module, from the bundled model into a fresh folder."""
    assert not models_dir.exists()
    return Embedder(encoder="onnx", models_dir=models_dir).load()


@pytest.fixture(scope="module")
def onnx_int8(models_dir: Path, onnx_fp32: Embedder) -> Embedder:
    return Embedder(encoder="onnx-int8", models_dir=models_dir).load()


def export_folder(models_dir: Path, embedder: Embedder) -> Path:
    return cache_folder(models_dir, embedder.fingerprint)


def test_the_export_is_cached_under_the_source_models_fingerprint_with_each_files_hash(
    models_dir: Path, onnx_fp32: Embedder, onnx_int8: Embedder
) -> None:
    folder = export_folder(models_dir, onnx_fp32)
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["source_fingerprint"] == onnx_fp32.fingerprint
    assert info["max_seq_length"] == 256 and info["dimension"] == 384
    for variant, name in ONNX_VARIANTS.items():
        assert info["files"][variant] == {"file": name, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}
    assert onnx_fp32.encoder_id == f"onnx:sha256:{info['files']['onnx']['sha256']}"
    assert onnx_int8.encoder_id == f"onnx-int8:sha256:{info['files']['onnx-int8']['sha256']}"
    # int8 weights: a quarter of the size, give or take the graph.
    assert (folder / "model.int8.onnx").stat().st_size < 0.35 * (folder / "model.onnx").stat().st_size
    assert sorted(p.name for p in models_dir.iterdir()) == [folder.name], "no staging folder is left behind"


def test_onnx_vectors_agree_with_the_torch_ones(torch_embedder: Embedder, onnx_fp32: Embedder, onnx_int8: Embedder) -> None:
    reference = torch_embedder.embed(SENTENCES)
    fp32, int8 = onnx_fp32.embed(SENTENCES), onnx_int8.embed(SENTENCES)
    for vectors in (fp32, int8):
        assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(fp32 * reference, axis=1)) > 0.999
    assert np.min(np.sum(int8 * reference, axis=1)) > 0.97
    # Rankings survive: each sentence is still nearest to its own torch vector.
    assert list(np.argmax(int8 @ reference.T, axis=1)) == list(range(len(SENTENCES)))
    assert onnx_int8.max_tokens == torch_embedder.max_tokens == 256


def test_bulk_work_runs_on_every_core_in_a_process_given_one_thread(models_dir: Path, onnx_fp32: Embedder) -> None:
    # A worker of `citeqa serve --workers 2` has one thread for its queries; an upload's texts still get both cores.
    one_thread = Embedder(encoder="onnx", models_dir=models_dir, threads=1).load()
    encoder = one_thread._onnx
    texts = [f"{sentence} ({n})" for n in range(BULK_TEXTS // len(SENTENCES) + 1) for sentence in SENTENCES]
    assert len(texts) >= BULK_TEXTS
    assert encoder.session_for(1) is encoder.session  # a query stays on the process's own threads
    if available_cores() > 1:
        assert encoder.session_for(len(texts)) is not encoder.session
    else:
        assert encoder.session_for(len(texts)) is encoder.session  # one core: nothing more to give
    bulk = one_thread.embed(texts)
    singly = np.vstack([one_thread.embed([text]) for text in texts[:8]])
    np.testing.assert_allclose(bulk[:8], singly, atol=1e-5)  # the same model, whichever session ran it
    np.testing.assert_allclose(bulk, onnx_fp32.embed(texts), atol=1e-5)


def test_a_second_construction_reuses_the_export(models_dir: Path, onnx_int8: Embedder) -> None:
    folder = export_folder(models_dir, onnx_int8)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = Embedder(encoder="onnx-int8", models_dir=models_dir).load()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert again.encoder_id == onnx_int8.encoder_id
    np.testing.assert_array_equal(again.embed(SENTENCES[:2]), onnx_int8.embed(SENTENCES[:2]))


def test_a_changed_onnx_file_is_refused(models_dir: Path, onnx_int8: Embedder, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    target = export_folder(copy, onnx_int8) / "model.int8.onnx"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256"):
        Embedder(encoder="onnx-int8", models_dir=copy).load()


@pytest.mark.parametrize("encoder", ["onnx-int8", None])  # None: the default encoder, as a server runs it
def test_the_onnx_path_never_imports_torch(models_dir: Path, onnx_int8: Embedder, encoder: str | None) -> None:
    chosen = f"encoder={encoder!r}, " if encoder else ""
    script = (
        "import sys; from pathlib import Path; from citeqa.index.models.embedding import Embedder; "
        f"e = Embedder({chosen}models_dir=Path({str(models_dir)!r})); v = e.embed_query('hello'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'transformers'}), v.shape)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[] (384,)"


def test_an_index_built_with_one_backend_is_refused_by_another(
    tmp_path: Path, models_dir: Path, torch_embedder: Embedder, onnx_fp32: Embedder, onnx_int8: Embedder
) -> None:
    report = load_folder(bundled("seeds"))
    build_index(tmp_path / "torch", report, torch_embedder)
    for other in (onnx_int8, onnx_fp32):  # an index built with torch, before ONNX was the default
        refusal = rf"encoder: index has 'torch', settings want '{other.encoder}:sha256:[0-9a-f]{{64}}'"
        with pytest.raises(IndexMismatchError, match=refusal) as e:
            Engine.open(tmp_path / "torch", EngineSettings(encoder=other.encoder, models_dir=models_dir), other)
        assert "citeqa index --rebuild" in str(e.value) and "(CITEQA_ENCODER=torch)" in str(e.value)
    Engine.open(tmp_path / "torch", EngineSettings(encoder="torch"), torch_embedder).close()  # kept, as the hint says

    build_index(tmp_path / "int8", report, onnx_int8)
    manifest = json.loads((tmp_path / "int8" / MANIFEST_FILE).read_text())
    assert manifest["model"]["encoder"] == onnx_int8.encoder_id
    for other in (torch_embedder, onnx_fp32):  # torch, and the fp32 ONNX file (another hash)
        with pytest.raises(IndexMismatchError, match="encoder: index has 'onnx-int8:sha256:"):
            Engine.open(tmp_path / "int8", EngineSettings(encoder=other.encoder, models_dir=models_dir), other)

    engine = Engine.open(tmp_path / "int8", EngineSettings(encoder="onnx-int8", models_dir=models_dir), onnx_int8)
    try:
        top = engine.search("what did Shoygu allege?", 1)[0]
        assert top.quote.text.startswith("In a statement at the end of April, Shoygu alleged")
    finally:
        engine.close()


def test_a_manifest_from_before_backends_reads_as_torch(tmp_path: Path, torch_embedder: Embedder) -> None:
    report = load_folder(bundled("seeds"))
    build_index(tmp_path / "idx", report, torch_embedder)
    path = tmp_path / "idx" / MANIFEST_FILE
    payload = json.loads(path.read_text())
    del payload["model"]["encoder"]
    path.write_text(json.dumps(payload))
    Engine.open(tmp_path / "idx", EngineSettings(encoder="torch"), torch_embedder).close()


def test_query_vectors_come_from_a_small_lru_cache(onnx_int8: Embedder) -> None:
    cached = Embedder(encoder="onnx-int8", models_dir=onnx_int8.models_dir, query_cache_size=2)
    cached._onnx = onnx_int8._onnx  # share the loaded session
    calls: list[int] = []
    embedding.EMBED_OBSERVERS.append(lambda count, _seconds: calls.append(count))
    try:
        first = cached.embed_query("alpha")
        first[:] = 0  # a caller changing its copy must not change the cache
        np.testing.assert_array_equal(cached.embed_query("alpha"), onnx_int8.embed(["alpha"])[0])
        assert len(calls) == 2  # the onnx_int8.embed above; the second embed_query was a hit
        cached.embed_query("beta")
        cached.embed_query("gamma")  # evicts "alpha", the least recently used
        cached.embed_query("beta")
        assert len(calls) == 4
        cached.embed_query("alpha")
        assert len(calls) == 5
    finally:
        embedding.EMBED_OBSERVERS.pop()


def test_span_vectors_are_the_mean_of_their_tokens_in_the_texts_own_pass(onnx_fp32: Embedder, torch_embedder: Embedder) -> None:
    encoder = onnx_fp32._onnx
    first, second = SENTENCES[1], SENTENCES[3]
    text = f"{first} {second}"
    texts = [text, SENTENCES[4], SENTENCES[0]]  # batched with a truncated text and a short one
    spans = [[(0, len(first)), (len(first) + 1, len(text))], [(0, 40), (len(SENTENCES[4]) - 30, len(SENTENCES[4]))], []]
    vectors, span_vectors = onnx_fp32.embed_spans(texts, spans)
    np.testing.assert_allclose(vectors, onnx_fp32.embed(texts), atol=1e-5)  # the texts' own vectors are unchanged

    # The definition, computed here from one unpadded forward pass of the text alone.
    encoding = encoder.tokenizer.encode(text)
    ids = np.array([encoding.ids], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    (hidden,) = encoder.session.run(["last_hidden_state"], {i.name: feeds[i.name] for i in encoder.session.get_inputs()})
    for (start, end), pooled in zip(spans[0], span_vectors[0], strict=True):
        inside = [k for k, (a, _) in enumerate(encoding.offsets) if not encoding.special_tokens_mask[k] and start <= a < end]
        expected = hidden[0, inside].mean(axis=0)
        np.testing.assert_allclose(pooled, expected / np.linalg.norm(expected), atol=1e-5)
    # In context each sentence still reads as itself: nearest to its own standalone vector.
    alone = torch_embedder.embed([first, second])
    assert list(np.argmax(span_vectors[0] @ alone.T, axis=1)) == [0, 1]

    # The truncated text covers its opening span, not its closing one: that one is NaN, for the caller to encode alone.
    assert np.isfinite(span_vectors[1][0]).all() and np.isnan(span_vectors[1][1]).all()
    assert span_vectors[2].shape == (0, 384)


def test_pooled_span_vectors_need_an_onnx_encoder(torch_embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="ONNX encoder"):
        torch_embedder.embed_spans(["Some text."], [[(0, 4)]])


def test_queries_that_arrive_during_a_pass_are_encoded_together_in_the_next(models_dir: Path, onnx_fp32: Embedder) -> None:
    import threading

    embedder = Embedder(encoder="onnx", models_dir=models_dir, query_cache_size=0).load()
    questions = [f"What did delegation {n} say about the summit?" for n in range(8)]
    alone = embedder.embed(questions)
    passes: list[int] = []
    first_pass_holds = threading.Event()

    def observe(count: int, _seconds: float) -> None:  # runs inside a pass: the first one waits for the others
        passes.append(count)
        if len(passes) == 1:
            assert first_pass_holds.wait(30)

    results: dict[int, np.ndarray] = {}

    def ask(n: int) -> None:
        results[n] = embedder.embed_query(questions[n])

    embedding.EMBED_OBSERVERS.append(observe)
    try:
        first = threading.Thread(target=ask, args=(0,))
        first.start()
        while not passes:  # the first question's pass is running
            threading.Event().wait(0.005)
        others = [threading.Thread(target=ask, args=(n,)) for n in range(1, 8)]
        for thread in others:
            thread.start()
        while embedder.query_batches.waiting < 7:
            threading.Event().wait(0.005)
        first_pass_holds.set()
        for thread in [first, *others]:
            thread.join(30)
    finally:
        embedding.EMBED_OBSERVERS.remove(observe)
    assert passes == [1, 7]  # seven questions, one pass
    for n in range(8):
        np.testing.assert_allclose(results[n], alone[n], atol=1e-5)


def test_an_encoder_error_reaches_every_query_of_its_pass() -> None:
    from citeqa.index.models.embedding import QueryBatcher

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        QueryBatcher(broken, 4).vector("anything")
