"""Models of cell architectures: NAS-Bench-201's cell and reduction block, cells from dags (ops on
edges or on nodes), their measurements, and a training smoke test on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyevonas.errors import TrainingError
from pyevonas.metric.graphs import parse_graph
from pyevonas.training.builders import build_model
from pyevonas.training.cell_ops import OpSpec, op_spec
from pyevonas.training.cells import CellModule, ReductionBlock
from pyevonas.training.config import TrainConfig
from pyevonas.training.loop import evaluate
from pyevonas.training.measure import count_flops, count_parameters, measure_latency_ms, model_size

torch.set_num_threads(1)

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def nb201_chromosome(cell: Any, channels: int = 16, n: int = 5) -> list[dict[str, Any]]:
    """NAS-Bench-201's macro skeleton around ``cell``: stem, three stages of n cells, GAP."""
    genes: list[dict[str, Any]] = [{"layer": "C_2D", "filters": channels, "kernel_size": 3, "strides": 1}]
    genes.append({"layer": "BN_2D"})
    for stage in range(3):
        if stage:
            genes.append({"layer": "RED_2D", "filters": channels * 2**stage})
        genes += [{"layer": "cell", "cell": cell} for _ in range(n)]
    return [*genes, {"layer": "BN_2D"}, {"layer": "R_2D"}, {"layer": "GAP_2D"}]


def nb201_params(ops: list[str], c: int = 16, n: int = 5, classes: int = 10) -> int:
    """NAS-Bench-201's parameter count by hand: a 3x3 or 1x1 ReLUConvBN per conv edge, the blocks."""
    per_cell = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}

    def cells(ch: int) -> int:
        return n * sum(per_cell[op] * ch * ch + 2 * ch for op in ops if op in per_cell)

    def reduction(cin: int, cout: int) -> int:
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout + cin * cout

    stem = 3 * c * 9 + c + 2 * c  # the C_2D gene has a bias
    return (
        stem
        + cells(c)
        + reduction(c, 2 * c)
        + cells(2 * c)
        + reduction(2 * c, 4 * c)
        + cells(4 * c)
        + 2 * 4 * c
        + 4 * c * classes
        + classes
    )


def test_nb201_skeleton_counts_what_the_benchmark_builds() -> None:
    model = build_model(nb201_chromosome(BEST_C10), (3, 32, 32), 10)
    ops = [e.op for e in parse_graph(BEST_C10).cells[0].edges]
    assert count_parameters(model) == nb201_params([str(op) for op in ops]) == 802_442
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # The measurements of chains work unchanged on cells, the meta-device size included.
    assert model_size(nb201_chromosome(BEST_C10), (3, 32, 32), 10)[0] == 802_442
    flops = count_flops(model, (3, 32, 32))
    assert flops is not None and flops > 100_000_000
    assert measure_latency_ms(model, (3, 32, 32), repeats=2, warmup=1) > 0


def test_an_nb201_cell_is_the_sum_of_its_edges() -> None:
    torch.manual_seed(0)
    cell = parse_graph("|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_3x3~2|")
    module = CellModule(cell.cells[0], 4).eval()
    x = torch.randn(2, 4, 6, 6)
    ops = module.edge_ops
    node1 = ops["0_1"](x)
    node2 = x + ops["1_2"](node1)
    expected = node1 + ops["2_3"](node2)
    assert torch.allclose(module(x), expected)
    assert isinstance(ops["1_2"], torch.nn.AvgPool2d) and isinstance(ops["0_2"], torch.nn.Identity)


def test_a_cell_without_a_path_outputs_zeros() -> None:
    cell = parse_graph("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|").cells[0]
    out = CellModule(cell, 3)(torch.randn(1, 3, 4, 4))
    assert out.shape == (1, 3, 4, 4) and torch.count_nonzero(out) == 0


def test_reduction_block_halves_any_side() -> None:
    block = ReductionBlock(4, 8).eval()
    for side, half in ((8, 4), (7, 4), (1, 1), (2, 1)):
        assert block(torch.zeros(1, 4, side, side)).shape == (1, 8, half, half)
    shapes = build_model(nb201_chromosome(BEST_C10, 4, 1), (1, 7, 7), 3).shapes
    assert [s for s in shapes if len(s) == 3][-1] == (16, 2, 2)


def test_dag_cells_with_ops_on_nodes_and_on_edges_build() -> None:
    on_nodes = {
        "nodes": ["input", {"op": "conv", "params": {"kernel_size": 5}}, "max_pool_3x3", "conv3x3-bn-relu", "output"],
        "edges": [[0, 1], [0, 2], [1, 3], [2, 3], [3, 4], [1, 4]],
        "inputs": [0],
        "outputs": [4],
    }
    on_edges = {
        "nodes": ["input", "node", "node", "output"],
        "edges": [[0, 1, "sep_conv_3x3"], [1, 2, "dil_conv_5x5"], [0, 2, "conv_7x1_1x7"], [2, 3, "identity"]],
        "inputs": [0],
        "outputs": [3],
    }
    for cell in (on_nodes, on_edges):
        model = build_model(nb201_chromosome(cell, 8, 1), (1, 8, 8), 10)
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    # Nodes whose numbering is not topological are computed in topological order.
    shuffled = {"nodes": ["output", "conv_3x3", "input"], "edges": [[2, 1], [1, 0]], "inputs": [2], "outputs": [0]}
    assert build_model(nb201_chromosome(shuffled, 4, 1), (1, 8, 8), 2)(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("|conv_9x9~0|", "unknown operation 'conv_9x9'"),
        ({"nodes": ["input", "warp", "output"], "edges": [[0, 1], [1, 2]]}, "node 1: unknown op 'warp'"),
        ({"nodes": ["input", "conv_4x4", "output"], "edges": [[0, 1], [1, 2]]}, "kernel size 4 is not an odd"),
        ({"nodes": ["a", "b", "c"], "edges": [[0, 2], [1, 2]]}, "one input and one output node, this one has 2"),
        (
            "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2], "
            "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])",
            "builds one cell, this graph has 2",
        ),
    ],
)
def test_unbuildable_cells_name_the_gene(cell: Any, message: str) -> None:
    with pytest.raises(TrainingError, match=r"^gene 2 \(cell\) cannot be built: .*" + message):
        build_model(nb201_chromosome(cell, 4, 1), (1, 8, 8), 2)


def test_op_names() -> None:
    assert op_spec("nor_conv_3x3") == OpSpec("relu_conv_bn", 3) == op_spec("conv", {"kernel_size": 3})
    assert op_spec("dil_conv_5x5") == OpSpec("dil_conv", 5, 2)
    assert op_spec("maxpool3x3") == OpSpec("max_pool", 3) == op_spec("max_pool_3x3")
    assert op_spec("conv", {"kernel_size": 3, "dilation": 2}) == OpSpec("relu_conv_bn", 3, 2)
    for name, params, message in [
        ("conv", {}, "needs a kernel_size"),
        ("conv", {"kernel_size": 3, "groups": 2}, "no parameter 'groups'"),
        ("nor_conv_3x3", {"kernel_size": 3}, "takes no parameters"),
        ("conv_3x5", None, "only square kernels"),
    ]:
        with pytest.raises(ValueError, match=message):
            op_spec(name, params)


def test_a_cell_architecture_trains_on_tiny_synthetic_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(60, 8, 8, 1), dtype=np.uint8)
    y = np.arange(60) % 3
    x[y == 1, :4] = 255  # something to learn
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x, y_train=y)
    config = TrainConfig(dataset=f"npz:{path}", epochs=2, batch_size=8, lr=0.05, device="cpu", seed=3)
    arch = nb201_chromosome(BEST_C10, 4, 1)
    first, again = evaluate(arch, config), evaluate(arch, config)
    assert first.status == "ok", first.error
    assert first.params == count_parameters(build_model(arch, (1, 8, 8), 3))
    assert first.flops and first.latency_ms and first.size_mb
    assert first.fitness == again.fitness and first.val_accuracy_per_epoch == again.val_accuracy_per_epoch
