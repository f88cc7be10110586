import numpy as np
import pytest
import torch

from crossrank.export.onnx import export
from crossrank.export.sources import from_hf
from crossrank.runtime import OnnxReranker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_cross_encoder(minilm_dir, tmp_path_factory):
    """A BertForSequenceClassification (1 label) on the MiniLM weights, saved locally."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    out = tmp_path_factory.mktemp("hf-ce")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        str(minilm_dir), num_labels=1, local_files_only=True
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True).save_pretrained(out)
    return out


def test_from_hf_scores_equal_transformers(hf_cross_encoder, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    item, source = from_hf(str(hf_cross_encoder), max_length=256)
    manifest = export(item, tmp_path / "onnx", source=source)
    assert manifest.tokenizer["kind"] == "wordpiece" and "tokenizer.json" in manifest.files
    assert manifest.parity["max_abs_diff"] <= 1e-4

    query = "does vitamin d reduce the risk of falls in older adults"
    docs = [
        "Vitamin D supplementation reduced falls by 19% in a meta-analysis of older people.",
        "Coffee consumption and the risk of type 2 diabetes.",
        "Falls are a leading cause of injury among adults over 65. " * 3,
    ]
    hf = AutoModelForSequenceClassification.from_pretrained(
        str(hf_cross_encoder), local_files_only=True
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(hf_cross_encoder), local_files_only=True)
    with torch.no_grad():
        ref = (
            hf(**tok([query] * len(docs), docs, padding=True, return_tensors="pt"))
            .logits[:, 0]
            .numpy()
        )
    ours = OnnxReranker(tmp_path / "onnx").score(query, docs)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.fixture(scope="module")
def minilm_artifact(hf_cross_encoder, tmp_path_factory):
    item, source = from_hf(str(hf_cross_encoder), max_length=256)
    out = tmp_path_factory.mktemp("minilm-onnx") / "onnx"
    export(item, out, int8=True, source=source)
    return out


def test_export_is_a_graph_onnxruntime_fuses(minilm_artifact):
    """Eager attention is traced, so the transformer optimizer finds all six attention blocks
    (an SDPA trace leaves none), and LayerNorm and GELU fuse too."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(
        str(minilm_artifact / "model.onnx"), model_type="bert", num_heads=12, hidden_size=384
    ).get_fused_operator_statistics()
    assert fused["Attention"] == 6
    assert fused["SkipLayerNormalization"] == 12 and fused["BiasGelu"] == 6


def test_the_int8_graph_quantizes_the_fused_attention(minilm_artifact, tiny_artifact):
    import onnx

    def ops(path):
        return {n.op_type for n in onnx.load(str(path)).graph.node}

    assert "QAttention" in ops(minilm_artifact / "model.int8.onnx")
    assert "Attention" not in ops(minilm_artifact / "model.onnx")  # OpenVINO reads it: plain
    assert "DynamicQuantizeLinear" in ops(tiny_artifact / "model.int8.onnx")  # no BERT: as is


def _fixture_rankings():
    from crossrank.data.examples import read_labeled

    data = read_labeled("fixture", "eval")
    docs = list(data.documents.values())
    return [(q.text, docs) for q in data.queries[:4]]


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_fast_precisions_load_and_keep_the_fp32_ranking(minilm_artifact, precision):
    if precision == "bf16":
        pytest.importorskip("openvino")
    fp32 = OnnxReranker(minilm_artifact, precision="fp32")
    fast = OnnxReranker(minilm_artifact, precision=precision)
    for query, docs in _fixture_rankings():
        a, b = fp32.score(query, docs), fast.score(query, docs)
        rho = np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
        assert rho > 0.9, (precision, rho)
        top = set(np.argsort(-a)[:10]) & set(np.argsort(-b)[:10])
        assert len(top) >= 7, (precision, len(top))


def test_auto_precision_follows_the_cpu_and_what_the_artifact_has(minilm_artifact, tmp_path):
    import shutil

    from crossrank.runtime.hardware import fastest_precision

    assert OnnxReranker(minilm_artifact, precision="auto").precision == fastest_precision(True)[0]
    fp32_only = tmp_path / "fp32-only"
    shutil.copytree(minilm_artifact, fp32_only)
    (fp32_only / "model.int8.onnx").unlink()
    assert OnnxReranker(fp32_only, precision="auto").precision in ("fp32", "bf16")
    with pytest.raises(ValueError, match="expected precision in"):
        OnnxReranker(minilm_artifact, precision="fp16")
