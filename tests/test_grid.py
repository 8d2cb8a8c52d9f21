from helpers import grid, registry_with

from benchmark_core.contract import Metric, Objective


class NeedsDensityAndRsample(Objective):
    name = "needs_density"
    task_requires = frozenset({"log_prob"})
    model_requires = frozenset({"rsample", "autoregressive"})


class SequenceMetric(Metric):
    name = "seq_metric"
    kinds = frozenset({"sequence"})


def test_default_models_come_from_the_task():
    cells = grid(registry_with(), models=None, seeds="2")
    assert [(c.model.name, c.seed) for c in cells] == [
        ("isotropic_gaussian", 0),
        ("isotropic_gaussian", 1),
        ("gaussian", 0),
        ("gaussian", 1),
    ]


def test_cell_ids_are_stable_and_distinguish_parameters_and_seeds():
    reg = registry_with()
    ids = [c.cell_id for c in grid(reg, tasks="gaussian[a=[1,2]]", seeds="2")]
    assert len(set(ids)) == 4
    assert ids == [c.cell_id for c in grid(reg, tasks="gaussian[a=[1,2]]", seeds="2")]
    # giving a default explicitly is the same cell
    assert grid(reg, tasks="gaussian[a=4]")[0].cell_id == grid(reg)[0].cell_id
    assert grid(reg, budget="quick")[0].cell_id != grid(reg)[0].cell_id


def test_skip_reasons_name_the_missing_capability():
    [cell] = grid(registry_with(NeedsDensityAndRsample), objectives="needs_density")
    assert cell.skip_reason == (
        "needs_density needs the model's step-wise autoregressive interface; "
        "isotropic_gaussian has none"
    )


def test_incompatible_metrics_are_left_out_with_a_note():
    [cell] = grid(registry_with(SequenceMetric), metrics="nll_test,seq_metric")
    assert [m.name for m in cell.metrics] == ["nll_test"]
    assert cell.metric_skips == ("seq_metric works on sequence tasks; gaussian is a vector task",)


def test_all_objectives_uses_each_components_all_sweep():
    class Swept(Objective):
        name = "swept"
        from benchmark_core.contract.params import probability

        param_spec = {"pi": probability(0.5)}
        all_sweep = {"pi": [0.1, 0.9]}

    cells = grid(registry_with(Swept), objectives="all")
    labels = {c.objective.label for c in cells}
    assert {"ml", "swept[pi=0.1]", "swept[pi=0.9]", "jspi_exact[pi=0.99]"} <= labels
    assert "swept" not in labels


def test_requirements_may_depend_on_the_task_kind():
    class ByKind(Objective):
        name = "by_kind"
        model_requires = {"vector": frozenset({"autoregressive"}), "sequence": frozenset()}

    [cell] = grid(registry_with(ByKind), objectives="by_kind")
    assert cell.skip_reason == (
        "by_kind needs the model's step-wise autoregressive interface; isotropic_gaussian has none"
    )
    assert ByKind.requirements("sequence") == (frozenset(), frozenset())
