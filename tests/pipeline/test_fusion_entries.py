"""An artifact keeps one fitted fusion per kind of first stage; older single-entry manifests
still read as the fit for their own first stage."""

import shutil

from crossrank.cli.main import main
from crossrank.data.examples import fixture_path
from crossrank.pipeline.fusion import fusion_entries, stored_fusion
from crossrank.runtime.artifact import Manifest

OLD = {"weight": 0.3, "first_stage": "hybrid", "normalization": "zscore", "fitted_on": "x:dev"}


def test_single_entry_manifest_reads_as_its_first_stages_fit():
    assert stored_fusion(OLD, "hybrid").weight == 0.3
    assert stored_fusion(OLD, "bm25") is None
    assert fusion_entries(None) == {}


def test_keyed_entries_give_each_first_stage_its_own_weight():
    keyed = {"bm25": {**OLD, "first_stage": "bm25", "weight": 0.8}, "hybrid": OLD}
    assert stored_fusion(keyed, "bm25").weight == 0.8
    assert stored_fusion(keyed, "hybrid").weight == 0.3
    assert stored_fusion(keyed, "dense") is None


def test_fuse_adds_its_fit_beside_the_others(tiny_artifact, tmp_path):
    model = tmp_path / "onnx"
    shutil.copytree(tiny_artifact, model)
    manifest = Manifest.load(model)
    manifest.fusion = OLD  # written by an older fuse, for another first stage
    manifest.save(model)
    args = ["fuse", "--model", str(model), "--data", str(fixture_path()), "--split", "train"]
    args += ["--retriever", "bm25", "--precision", "fp32", "--top-n", "20", "--novelty-k", "0"]
    assert main(args) == 0
    entries = fusion_entries(Manifest.load(model).fusion)
    assert set(entries) == {"bm25", "hybrid"}
    assert entries["hybrid"]["weight"] == 0.3
    assert entries["bm25"]["first_stage"] == "bm25" and entries["bm25"]["fitted_on"].endswith(
        ":train"
    )
    assert entries["bm25"]["passages"] is None  # fitted on truncated documents
    assert main([*args, "--passages", "--pooling", "max"]) == 0
    assert fusion_entries(Manifest.load(model).fusion)["bm25"]["passages"] == "max"
