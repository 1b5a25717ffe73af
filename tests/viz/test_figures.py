"""Figure builders: traces, coordinates and the metadata readers of the model card."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from mpmmu.viz import (
    box_from_selection,
    channel_weight_chart,
    display_image,
    encode_image,
    image_figure,
    probability_bars,
    probability_gauge,
    results_table,
    roc_curves,
    roc_figure,
    votes_chart,
)

VOTES = {"logistic_regression": 0.2, "svm": 0.7, "random_forest": 0.6, "extra_trees": 0.8, "meta_mlp": 0.65}


def test_votes_chart_puts_meta_learner_last():
    figure = votes_chart(VOTES, 0.5, learner_labels={"meta_mlp": "Meta"})
    bar = figure.data[0]
    assert list(bar.x)[-1] == "Meta"
    assert list(bar.y) == pytest.approx([20.0, 70.0, 60.0, 80.0, 65.0])


def test_votes_chart_colours_by_threshold_side():
    colours = list(votes_chart(VOTES, 0.5).data[0].marker.color)
    assert colours[0] != colours[1]
    assert colours[1] == colours[2]


def test_probability_bars_marks_missing_modality():
    figure = probability_bars([("MG", None), ("US", 0.3), ("Fused", None)], 0.4, missing_label="not given")
    assert list(figure.data[0].text) == ["not given", "30.0%", "not given"]


def test_probability_gauge_shows_percent():
    figure = probability_gauge(0.734, 0.4)
    assert figure.data[0].value == pytest.approx(73.4)
    assert figure.data[0].gauge.threshold.value == pytest.approx(40.0)


def test_channel_weight_chart_sorts_descending():
    weights = np.array([0.1, 0.9, 0.5, 0.3])
    figure = channel_weight_chart(weights, top_k=2)
    line, top = figure.data
    assert list(line.y) == pytest.approx([0.9, 0.5, 0.3, 0.1])
    assert list(line.customdata) == [1, 2, 3, 0]
    assert list(top.customdata) == [1, 2]


def test_roc_figure_labels_auc():
    figure = roc_figure({"stacking": {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1], "auc": 0.8}}, curve_labels={"stacking": "Stacking"})
    assert figure.data[1].name == "Stacking (AUC 0.800)"


def test_image_figure_axes_in_original_pixels():
    image = np.random.default_rng(0).random((300, 200), dtype=np.float32)
    figure = image_figure(image[::3, ::3], original_shape=(300, 200), roi=(10, 20, 30, 40), crop_box=(0, 0, 100, 100))
    picture = figure.data[0]
    assert isinstance(picture, go.Image)
    assert picture.dx == pytest.approx(200 / 67)
    assert list(figure.layout.xaxis.range) == [-0.5, 199.5]
    assert list(figure.layout.yaxis.range) == [299.5, -0.5]
    assert len(figure.layout.shapes) == 2


def test_image_figure_heatmap_adds_colour_bar():
    image = np.zeros((64, 48), dtype=np.float32)
    heatmap = np.zeros((64, 48), dtype=np.float32)
    heatmap[10:20, 10:20] = 1.0
    figure = image_figure(image, heatmap=heatmap, opacity=0.5, colorbar_title="Grad-CAM")
    assert figure.data[1].marker.showscale is True
    assert figure.data[1].marker.colorbar.title.text == "Grad-CAM"


def test_image_figure_raises_heatmap_shape_mismatch():
    with pytest.raises(ValueError, match="map it back to original pixels"):
        image_figure(np.zeros((64, 48)), heatmap=np.zeros((10, 10)))


def test_image_figure_selectable_switches_to_box_select():
    figure = image_figure(np.zeros((64, 48)), selectable=True)
    assert figure.layout.dragmode == "select"
    assert len(figure.data[1].x) > 0


def test_box_from_selection_clips_to_image():
    selection = {"box": [{"x": [-5.0, 30.4], "y": [50.0, 10.0]}]}
    assert box_from_selection(selection, (40, 100)) == (0, 10, 30, 30)


def test_box_from_selection_none_without_box():
    assert box_from_selection({"box": [], "points": []}, (40, 100)) is None


def test_results_table_flattens_confidence_intervals():
    metadata = {"metrics": {"stacking": {"auc": 0.8, "auc_ci": [0.7, 0.9], "sensitivity": 0.75}, "late_fusion": 0.82}}
    rows = results_table(metadata)
    assert rows[0] == {"evaluation_set": "", "model": "stacking", "auc": 0.8, "auc_ci_low": 0.7, "auc_ci_high": 0.9, "sensitivity": 0.75}
    assert rows[1] == {"evaluation_set": "", "model": "late_fusion", "auc": 0.82}


TRAINED_METRICS = {
    "validation_out_of_fold": {"stacking": {"auc": 0.7}},
    "test": {
        "ultrasound_images": {"ultrasound_only": {"n": 180, "auc": 0.88, "delong_low": 0.83, "delong_high": 0.92}},
        "pairs_ultrasound_seed0": {"stacking": {"n": 180, "auc": 0.71}, "late_fusion": {"n": 180, "auc": 0.86}},
    },
    "roc": {
        "ultrasound_images": {"ultrasound_only": {"fpr": [0, 0.1, 1], "tpr": [0, 0.8, 1]}},
        "pairs_ultrasound_seed0": {"stacking": {"fpr": [0, 1], "tpr": [0, 1]}},
    },
}


def test_results_table_reads_training_layout():
    rows = results_table({"metrics": TRAINED_METRICS})
    assert [(row["evaluation_set"], row["model"]) for row in rows] == [
        ("ultrasound_images", "ultrasound_only"),
        ("pairs_ultrasound_seed0", "stacking"),
        ("pairs_ultrasound_seed0", "late_fusion"),
    ]
    assert list(rows[0]) == ["evaluation_set", "model", "n", "auc", "delong_low", "delong_high"]


def test_roc_curves_reads_training_layout():
    curves = roc_curves({"metrics": TRAINED_METRICS})
    assert sorted(curves) == ["pairs_ultrasound_seed0", "ultrasound_images"]
    assert curves["ultrasound_images"]["ultrasound_only"]["auc"] == 0.88
    assert curves["pairs_ultrasound_seed0"]["stacking"]["tpr"] == [0, 1]


def test_roc_curves_reads_flat_layout():
    metadata = {
        "metrics": {
            "stacking": {"auc": 0.8, "roc": {"fpr": [0, 1], "tpr": [0, 1]}},
            "roc": {"ultrasound_only": {"fpr": [0, 0.5, 1], "tpr": [0, 0.9, 1], "auc": 0.9}},
        }
    }
    curves = roc_curves(metadata)[""]
    assert sorted(curves) == ["stacking", "ultrasound_only"]
    assert curves["stacking"]["auc"] == 0.8
    assert curves["ultrasound_only"]["tpr"] == [0, 0.9, 1]


def test_roc_curves_empty_without_curves():
    assert roc_curves({"metrics": {"stacking": {"auc": 0.8}}}) == {}


def test_image_figure_reuses_given_source():
    image = np.zeros((64, 48), dtype=np.float32)
    source = encode_image(display_image(image), "png")
    figure = image_figure(image, source=source, roi=(1, 2, 3, 4))
    assert figure.data[0].source == source


def test_encode_image_jpeg_data_uri():
    uri = encode_image(np.zeros((8, 8, 3), dtype=np.uint8), "jpeg")
    assert uri.startswith("data:image/jpeg;base64,")


def test_channel_weight_chart_axis_title_translated():
    figure = channel_weight_chart(np.array([0.2, 0.8]), x_label="通道", x_axis_title="通道（按权重排序）")

    assert figure.layout.xaxis.title.text == "通道（按权重排序）"
    assert "rank" not in figure.layout.xaxis.title.text
    assert figure.data[0].hovertemplate.startswith("通道 ")
