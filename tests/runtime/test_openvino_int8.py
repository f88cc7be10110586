"""int8 weights for OpenVINO: one symmetric scale per output channel, exact to half a step."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crossrank.runtime.openvino_int8 import quantize_columns

WEIGHTS = arrays(
    np.float32,
    st.tuples(st.integers(1, 12), st.integers(2, 12)),
    elements=st.floats(-4, 4, width=32),
)


@settings(max_examples=200, deadline=None)
@given(weight=WEIGHTS)
def test_each_output_channel_is_within_half_a_step_of_its_weights(weight):
    q, scale = quantize_columns(weight, reduce_axis=0)  # [K, N]: one scale per column
    assert q.dtype == np.int8 and scale.shape == (1, weight.shape[1])
    assert np.abs(q).max() <= 127
    assert np.all(np.abs(q * scale - weight) <= scale / 2 + 1e-6)


def test_a_zero_column_keeps_a_usable_scale_and_the_other_axis_works_too():
    weight = np.array([[0.0, 1.0], [0.0, -2.0]], dtype=np.float32)
    q, scale = quantize_columns(weight, reduce_axis=0)
    assert scale[0, 0] == 1.0 and q[:, 0].tolist() == [0, 0]
    q_t, scale_t = quantize_columns(weight.T, reduce_axis=1)  # [N, K] (transpose_b)
    np.testing.assert_array_equal(q_t, q.T)
    np.testing.assert_allclose(scale_t, scale.T)


def test_compress_rewrites_both_weight_layouts_and_leaves_a_one_logit_head_in_float():
    ov = pytest.importorskip("openvino")
    import openvino.opset13 as ops

    from crossrank.runtime.openvino_int8 import compress_matmul_weights

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((64, 32)).astype(np.float32)  # [K, N]
    w2 = rng.standard_normal((16, 32)).astype(np.float32)  # [N, K], transpose_b
    head = rng.standard_normal((16, 1)).astype(np.float32)

    def build():
        x = ops.parameter([-1, 64], np.float32, name="x")
        h = ops.matmul(x, ops.constant(w1), False, False)
        h = ops.matmul(h, ops.constant(w2), False, True)
        return ov.Model([ops.matmul(h, ops.constant(head), False, False)], [x])

    model = build()
    assert compress_matmul_weights(model) == 2
    kinds = [op.get_type_name() for op in model.get_ordered_ops()]
    assert kinds.count("Convert") == 2  # int8 -> f32 for the two rewritten weights only
    x = rng.standard_normal((3, 64)).astype(np.float32)
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
    exact = core.compile_model(build(), "CPU", config)(x)[0]
    compressed = core.compile_model(model, "CPU", config)(x)[0]
    assert np.abs(compressed - exact).max() <= 0.02 * np.abs(exact).max()
