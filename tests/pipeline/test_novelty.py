"""The novelty guard: queries far from the training queries fall back toward the first stage;
queries like dev's keep the fitted fusion."""

import json
import shutil
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.pipeline.fusion import Fusion
from crossrank.pipeline.fusion_fit import fit_weight
from crossrank.pipeline.novelty import (
    DEFAULT_FLOOR,
    Collection,
    NoveltyGuard,
    NoveltyScale,
    fit_novelty,
    leave_one_out_novelty,
    novelty,
)
from crossrank.pipeline.query_trust import QueryTrust


class HashingEmbedder:
    """A real (if crude) embedder: L2-normalised hashed bag of words, 64 dimensions."""

    sha256 = "hashing-64"

    def embed(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_novelty_is_zero_for_a_reference_query_and_one_for_an_orthogonal_one():
    reference = np.eye(4, dtype=np.float32)
    assert novelty(reference[:1], reference, k=1)[0] == pytest.approx(0.0)
    assert novelty(np.array([[0, 0, 0, 1.0]]), reference[:3], k=1)[0] == pytest.approx(1.0)
    assert novelty(reference[:1], reference, k=2)[0] == pytest.approx(0.5)  # mean of 1 and 0
    with pytest.raises(ValueError, match=r"expected reference embeddings of shape \(n >= 1, 4\)"):
        novelty(reference[:1], np.zeros((3, 5)))


DEV = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(dev=DEV, a=st.floats(0.0, 1.5), b=st.floats(0.0, 1.5), pct=st.floats(1.0, 50.0))
def test_trust_never_rises_with_novelty_and_is_full_for_typical_dev_queries(dev, a, b, pct):
    guard = NoveltyGuard((NoveltyScale(tuple(sorted(dev))),), pct)
    lo, hi = min(a, b), max(a, b)
    assert 0.0 <= guard.trust([hi]) <= guard.trust([lo]) <= 1.0
    assert guard.trust([min(dev)]) == 1.0  # no dev query is more typical than the most typical
    if hi > max(dev):
        assert guard.trust([hi]) == 0.0  # beyond every dev query: the first stage's order
    typical = float(np.quantile(dev, 1 - pct / 100, method="lower"))
    assert guard.trust([typical]) == 1.0


@settings(max_examples=200, deadline=None)
@given(dev=DEV, value=st.floats(0.0, 1.5), pct=st.floats(1.0, 50.0), floor=st.floats(0.0, 0.99))
def test_a_floor_lifts_every_share_to_at_least_the_floor_and_keeps_full_trust(
    dev, value, pct, floor
):
    plain = NoveltyGuard((NoveltyScale(tuple(sorted(dev))),), pct)
    floored = NoveltyGuard(plain.scales, pct, floor=floor)
    share = plain.trust([value])
    assert floored.trust([value]) == pytest.approx(floor + (1 - floor) * share)
    assert floor - 1e-12 <= floored.trust([value]) <= 1.0
    if value > max(dev):
        assert floored.trust([value]) == pytest.approx(floor)  # the least it keeps
    assert floored.trust([min(dev)]) == 1.0


def test_a_floored_guard_keeps_some_of_the_cross_encoder_on_a_novel_query():
    from dataclasses import replace

    train = ["vitamin d and bone health", "omega 3 fish oil heart", "fiber and colon cancer"]
    dev = ["vitamin d bone fractures", "fish oil and heart attacks", "dietary fiber colon"]
    embedder = HashingEmbedder()
    fs = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    ce = np.array([1.0, 2.0, 3.0, 4.0, 9.0])  # sure of the first stage's last candidate
    query = "who won the 1998 world cup final"
    orders = {}
    for floor in (0.0, 0.5):
        guard, reference, _ = fit_novelty(
            embedder, [Collection("n", train, dev)], dev, 10, 1, "", floor
        )
        fusion = Fusion(0.2, "bm25", novelty=guard)
        bound = replace(fusion, query_trust=QueryTrust(guard, reference, embedder))
        assert bound.query_trust(query) == floor
        orders[floor] = list(np.argsort(-bound.apply(ce, fs, query), kind="stable"))
    assert orders[0.0] == [0, 1, 2, 3, 4]  # no floor: the first stage's order
    # A floor of 0.5: 0.5 z(ce) + 0.7 z(fs) lifts the candidate the cross-encoder is sure of.
    assert orders[0.5] == [0, 1, 4, 2, 3]


def test_a_novel_query_gets_the_first_stages_order_and_a_typical_one_the_fusion():
    train = ["vitamin d and bone health", "omega 3 fish oil heart", "fiber and colon cancer"]
    dev = ["vitamin d bone fractures", "fish oil and heart attacks", "dietary fiber colon"]
    collection = [Collection("nutrition", train, dev)]
    guard, reference, dev_trust = fit_novelty(HashingEmbedder(), collection, dev, 10, k=1)
    assert reference.dtype == np.float16 and reference.shape == (3, 64)
    assert dev_trust.max() == 1.0
    fusion = Fusion(0.2, "bm25", novelty=guard)
    fs = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    ce = fs[::-1].copy()  # the cross-encoder reverses the first stage
    with pytest.raises(ValueError, match="expected the query and a bound novelty guard"):
        fusion.apply(ce, fs, "vitamin d bone")
    from dataclasses import replace

    bound = replace(fusion, query_trust=QueryTrust(guard, reference, HashingEmbedder()))
    novel = bound.apply(ce, fs, "who won the 1998 world cup final")
    assert list(np.argsort(-novel, kind="stable")) == [0, 1, 2, 3, 4]
    typical = bound.apply(ce, fs, "omega 3 fish oil heart")  # a training query, not the first
    assert np.allclose(typical, Fusion(0.2, "bm25").apply(ce, fs))


def test_a_query_keeps_the_trust_of_the_collection_it_is_most_typical_of():
    nutrition = ["vitamin d and bone health", "fish oil heart", "fiber and colon cancer"]
    nutrition_dev = ["vitamin d and bone health", "fish oil heart"]  # near-copies: a tight scale
    trivia = ["who wrote the iliad", "when did the moon landing happen", "who built rome"]
    trivia_dev = ["who painted the mona lisa", "when was the eiffel tower built"]  # looser
    fit = ["vitamin d and bone health", "who painted the sistine chapel", "renormalisation flow"]
    embedder = HashingEmbedder()
    both = [
        Collection("nutrition", nutrition, nutrition_dev),
        Collection("trivia", trivia, trivia_dev),
    ]
    guard, reference, trusts = fit_novelty(embedder, both, fit, 50, 1)
    assert [s.rows for s in guard.scales] == [3, 3] and reference.shape == (6, 64)
    # The trivia question is as loose as trivia's dev: full trust, though far looser than
    # nutrition's scale; the off-topic query is typical of neither.
    assert list(trusts) == [1.0, 1.0, 0.0]
    # One pooled scale (the guard before scales) leaves the trivia question no trust at all.
    pooled = [Collection("pooled", nutrition + trivia, nutrition_dev + trivia_dev)]
    assert fit_novelty(embedder, pooled, fit, 50, 1)[2][1] < 1.0
    bound = QueryTrust(guard, reference, embedder)
    assert [bound(q) for q in fit] == list(trusts)  # serving reads what the fit read
    with pytest.raises(ValueError, match=r"expected a reference of 6 rows .* got 5"):
        QueryTrust(guard, reference[:5], embedder)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 9), k=st.integers(1, 4), chunk=st.integers(1, 5), seed=st.integers(0, 99))
def test_leave_one_out_novelty_is_each_row_against_the_others(n, k, chunk, seed):
    rows = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    expected = [novelty(rows[i], np.delete(rows, i, axis=0), k)[0] for i in range(n)]
    assert np.allclose(leave_one_out_novelty(rows, k, chunk), expected, atol=1e-6)


def test_guard_collections_pair_each_reference_with_its_calibration():
    from argparse import Namespace

    from crossrank.cli.novelty_guard import guard_collections

    refs = ["d/nf:train", "d/wiki:train", "d/sci:train"]
    args = Namespace(
        guard_percentile=10.0, novelty_k=5, novelty_floor=0.0, data="d/nf", split="dev"
    )
    args.novelty_reference, args.novelty_calibration = refs, ["d/wiki:dev"]
    nf, wiki, sci = guard_collections(args)
    assert (nf.name, nf.references, nf.calibration) == (
        "nf",
        [("d/nf", "train")],
        [("d/nf", "dev")],
    )
    assert wiki.calibration == [("d/wiki", "dev")] and sci.calibration == []  # leave-one-out
    args.novelty_calibration = ["d/other:dev"]
    with pytest.raises(ValueError, match=r"collections \(nf, wiki, sci\), got d/other:dev"):
        guard_collections(args)
    args.novelty_reference = ["d/nf:train"]  # one collection: its calibration may live elsewhere
    assert guard_collections(args)[0].calibration == [("d/other", "dev")]
    args.guard_percentile = 0
    assert guard_collections(args) is None


def test_calibration_splits_must_be_dev_splits_other_than_the_references():
    from crossrank.cli.novelty_guard import calibration_splits, reference_splits

    references = reference_splits(["a/nf:train", "a/wiki:train"], "a/nf", "dev")
    assert calibration_splits(["a/nf:dev", "a/wiki:dev"], references) == [
        ("a/nf", "dev"),
        ("a/wiki", "dev"),
    ]
    for bad in ("a/wiki:test", "a/wiki:train"):
        with pytest.raises(ValueError, match=f"neither test nor a reference, got {bad}"):
            calibration_splits(["a/nf:dev", bad], references)
    with pytest.raises(ValueError, match="expected --novelty-calibration DATA:SPLIT, got 'nf'"):
        calibration_splits(["nf"], references)


def test_fuse_refuses_a_test_calibration_split_before_scoring_anything(tmp_path, capsys):
    from crossrank.cli.main import main

    missing = tmp_path / "no-model-here"  # never read: the refusal comes first
    args = ["fuse", "--model", str(missing), "--data", "d/nf", "--split", "dev"]
    assert main([*args, "--novelty-calibration", "d/wiki:test"]) == 2
    assert "neither test nor a reference, got d/wiki:test" in capsys.readouterr().err
    assert main([*args, "--novelty-floor", "1.5"]) == 2
    assert "expected --novelty-floor in [0, 1), got 1.5" in capsys.readouterr().err


def test_guard_refuses_queries_embedded_by_another_bi_encoder():
    guard, reference, _ = fit_novelty(HashingEmbedder(), [Collection("a", ["a b"], ["a c"])], ["x"])
    other = HashingEmbedder()
    other.sha256 = "another"
    with pytest.raises(ValueError, match="expected the bi-encoder hashing-64"):
        QueryTrust(guard, reference, other)


def test_novelty_guard_round_trips_through_the_manifest_entry():
    scales = (NoveltyScale((0.1, 0.2, 0.4), 3, "a"), NoveltyScale((0.3,), 2, "b"))
    guard = NoveltyGuard(scales, 10.0, 5, bi_encoder_sha256="x", fitted_on="a:train", floor=0.25)
    fusion = Fusion(0.3, "bm25", fitted_on="x:dev", agreement_floor=0.2, novelty=guard)
    assert Fusion.from_dict(fusion.to_dict()) == fusion
    written_before_floors = {k: v for k, v in guard.to_dict().items() if k != "floor"}
    assert NoveltyGuard.from_dict(written_before_floors).floor == 0.0
    with pytest.raises(ValueError, match=r"expected a novelty guard floor in \[0, 1\), got 1.0"):
        NoveltyGuard(scales, floor=1.0)
    with pytest.raises(ValueError, match="expected a novelty guard with 'scales'"):
        Fusion.from_dict({**fusion.to_dict(), "novelty": {"k": 5}})
    # A guard written before scales: one list over all its reference rows.
    old = {"dev_novelty": [0.4, 0.1], "percentile": 10.0, "k": 5, "reference": "r.npy"}
    assert NoveltyGuard.from_dict(old).scales == (NoveltyScale((0.1, 0.4)),)
    with pytest.raises(ValueError, match="expected each of several novelty scales to name"):
        NoveltyGuard((NoveltyScale((0.1,)), NoveltyScale((0.2,))))


def test_fit_weight_uses_the_query_trusts():
    fs = np.array([3.0, 2.0, 1.0])
    ce = fs[::-1].copy()
    lists = [(ce, fs, lambda s: float(np.argmax(s) == 2))]  # the cross-encoder is right
    assert fit_weight(lists, grid=[0.0, 1.0])[1] == 1.0
    # with no trust the fused list is the first stage's whatever the weight
    assert fit_weight(lists, grid=[0.0, 1.0], query_trusts=[0.0])[1] == 0.0


@pytest.mark.slow
def test_fuse_fits_the_guard_into_the_artifact_and_eval_applies_it(
    tiny_artifact, bi_encoder_cache, tmp_path, capsys
):
    from crossrank.cli.main import main
    from crossrank.data.examples import fixture_path
    from crossrank.pipeline.stages import artifact_fusion, build_reranker
    from crossrank.runtime.artifact import ArtifactError, Manifest

    model = tmp_path / "onnx"
    shutil.copytree(tiny_artifact, model)
    fixture = str(fixture_path())
    args = ["fuse", "--model", str(model), "--data", fixture, "--split", "eval"]
    args += ["--precision", "fp32", "--top-n", "20", "--cache-dir", str(bi_encoder_cache)]
    assert main([*args, "--novelty-reference", f"{fixture}:train"]) == 0
    manifest = Manifest.load(model)
    entry = manifest.fusion["bm25"]
    assert entry["novelty"]["fitted_on"].startswith("fixtures:train (reference)")
    assert entry["novelty"]["floor"] == DEFAULT_FLOOR
    reference = entry["novelty"]["reference"]  # named by its content
    assert reference.startswith("novelty-reference-") and reference in manifest.files
    fusion = artifact_fusion(build_reranker(model), "bm25", bi_encoder_cache)
    assert fusion.query_trust("how long should french press coffee steep") == 1.0
    assert fusion.query_trust("renormalisation group flow in lattice gauge theory") < 1.0
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", fixture, "--split", "eval", "--model", str(model),
                 "--cache-dir", str(bi_encoder_cache), "--top-n", "20", "--precision", "fp32",
                 "--fusion", "auto",
                 "--output", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert "fused with bm25" in report["model"]
    assert 0.0 <= report["novelty_guard"]["share_of_queries_guarded"] <= 1.0
    assert set(report["reranked_without_novelty_guard"]) == set(report["reranked"])
    assert main([*args, "--novelty-reference", f"{fixture}:eval"]) == 2
    assert "expected novelty reference queries other than" in capsys.readouterr().err
    # A refit with another reference replaces the file; the old one is unlisted and removed.
    twice = ["--novelty-reference", f"{fixture}:train"] * 2  # other content, another file
    assert main([*args, *twice, "--novelty-floor", "0.25"]) == 0
    refit = Manifest.load(model)
    assert refit.fusion["bm25"]["novelty"]["floor"] == 0.25
    assert refit.fusion["bm25"]["novelty"]["reference"] != reference
    listed = [n for n in refit.files if n.startswith("novelty-reference")]
    assert listed == [refit.fusion["bm25"]["novelty"]["reference"]]
    assert sorted(p.name for p in model.glob("novelty-reference*")) == listed
    (model / listed[0]).write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"novelty-reference-\w+\.npy: corrupt or changed"):
        build_reranker(model)
