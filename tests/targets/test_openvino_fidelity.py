"""The OpenVINO estimate equals the real OpenVINO EP on every corpus model (runs in .venv-openvino)."""

from __future__ import annotations

import pytest

from onnxfit.targets.partitions import count_partitions, estimate_partitions
from onnxfit.versions import installed_ort_version
from tests.targets.corpus import built_corpus, sample_paths

pytestmark = pytest.mark.openvino_ep

CORPUS = list(built_corpus().items()) + [(path.name, path) for path in sample_paths()]


@pytest.mark.parametrize("name,model", CORPUS, ids=[name for name, _ in CORPUS])
def test_openvino_estimate_equals_real_openvino_ep(name, model):
    real = count_partitions(model, "openvino")
    estimate = estimate_partitions(model, "openvino", installed_ort_version())
    assert real.source == "real" and estimate.source == "estimated"
    assert (estimate.partitions, estimate.nodes_on_ep, estimate.total_nodes) == (
        real.partitions, real.nodes_on_ep, real.total_nodes
    ), f"{name}: estimate {estimate.partition_sizes}, real {real.partition_sizes}"
    assert sorted(u.name for u in estimate.unsupported) == sorted(u.name for u in real.unsupported)


def test_corpus_covers_splits_drops_and_whole_graphs():
    """The corpus exercises every branch of the OpenVINO clustering, not just whole graphs."""
    counts = {name: estimate_partitions(model, "openvino", installed_ort_version()).partitions for name, model in CORPUS}
    assert counts["conv_chain"] == 1
    assert counts["unsupported_in_chain"] == 2
    assert counts["three_pieces"] == 3
    assert counts["conv_into_unsupported"] == 1  # the piece ending in a Conv that feeds the CPU is dropped
    assert counts["single_node_between_cuts"] == 1  # unmergeable one-node piece dropped, last one kept


def test_sample_models_are_in_the_corpus():
    assert len(sample_paths()) == 3, "weights/ should hold the three sample models"


def test_real_placement_lists_the_cpu_nodes_by_name():
    report = count_partitions(built_corpus()["unsupported_in_chain"], "openvino")
    assert report.is_real
    assert [(u.name, u.op) for u in report.unsupported] == [("cut", "Det")]
    # ORT logs one fused node per partition: the sizes of several partitions are unknown.
    assert report.partitions == 2 and report.partition_sizes == []


def test_real_placement_of_one_partition_gives_its_size():
    report = count_partitions(built_corpus()["conv_chain"], "openvino")
    assert report.is_real and report.partitions == 1 and report.partition_sizes == [report.nodes_on_ep] == [4]
