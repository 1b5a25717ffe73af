"""Score one case end to end: preprocess, both branches, stage 2, Grad-CAM and attention maps.

The command line, the app, the reader study's aided read and the teaching page all call
:meth:`Pipeline.predict`, so they can never disagree about a case.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpmmu.config import DEFAULT_BUNDLE_DIR
from mpmmu.errors import ModelInputError
from mpmmu.pipeline.bundle import MODALITIES, Bundle
from mpmmu.records import ImageRecord, ModelInput, Prediction

logger = logging.getLogger(__name__)

#: Validation AUC below which a stage-2 model's probability carries a warning that it is not informative.
WEAK_MODEL_AUC = 0.6

Box = tuple[int, int, int, int]
#: Base learners whose votes count towards ``Prediction.agreement`` (the meta-learner does not).
BASE_LEARNERS = ("logistic_regression", "svm", "random_forest", "extra_trees")


def votes_model_for(fusion: str) -> str:
    """Return the model whose learners vote when ``fusion`` produces ``p_malignant``.

    Late fusion and a bare branch have no learners of their own, so the stacking ensemble's
    (late fusion) or the single-modality ensemble's (branch) learners are shown for comparison;
    every other model votes with its own learners.
    """
    if fusion == "late_fusion":
        return "stacking"
    if fusion.endswith("_branch"):
        return fusion.removesuffix("_branch") + "_only"
    return fusion


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device``, or CUDA when it is available and CPU otherwise."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ModelInputError(f"invalid device {device!r}; use cpu, cuda or cuda:N") from error
    if device.type not in ("cpu", "cuda"):
        raise ModelInputError(f"device {device} is not supported; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelInputError(f"device {device} requested but CUDA is not available; use --device cpu")
    return device


def describe_device(device: torch.device) -> str:
    """Return a readable name of ``device``, e.g. "cpu (2 threads)" or "cuda:0 (NVIDIA H200)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)


@dataclass(frozen=True)
class BranchResult:
    """One branch's output for one image, on the CPU."""

    features: np.ndarray
    probability: float
    spatial_attention: np.ndarray | None
    channel_weights: np.ndarray | None


class Pipeline:
    """A loaded bundle ready to score cases.

    Load it once and share it across threads. :meth:`predict` changes no parameter, buffer or
    hook of the networks, and it creates its Grad-CAM hooks per call on a copy of the module tree
    and releases them before returning. The one attribute it writes is the latest gate that the
    attention modules store during a forward pass, so the branch forward passes are serialised
    by a lock and each call reads its own gate.

    Parameters
    ----------
    bundle : Bundle
        A loaded bundle. Its branches are put in eval mode and their parameters stop requiring
        gradients.
    device : torch.device
        Where the branches are.
    channels_last : bool
        Run the branches in channels-last memory layout. Off by default because at batch size 1
        on a 2-core CPU it made an EfficientNet-Lite0 forward pass slower, not faster (28 ms
        against 22.5 ms of CPU time on one thread at 224 px, torch 2.14).
    """

    def __init__(self, bundle: Bundle, device: torch.device, channels_last: bool = False) -> None:
        self.bundle = bundle
        self.device = device
        self.device_name = describe_device(device)
        self.channels_last = channels_last
        self._forward_lock = threading.Lock()
        self._preprocess_configs = self._read_preprocess_configs(bundle.metadata)
        for branch in bundle.branches.values():
            branch.to(device).eval()
            for parameter in branch.parameters():
                parameter.requires_grad_(False)
            if self.channels_last:
                branch.to(memory_format=torch.channels_last)

    @staticmethod
    def _read_preprocess_configs(metadata: Mapping[str, Any]) -> dict[str, Any]:
        from mpmmu.preprocess import PreprocessConfig

        return {modality: PreprocessConfig.from_dict(values) for modality, values in metadata["preprocess"].items()}

    @classmethod
    def load(
        cls,
        bundle_dir: str | Path = DEFAULT_BUNDLE_DIR,
        device: str | torch.device | None = None,
        channels_last: bool = False,
    ) -> Pipeline:
        """Load and verify a bundle and prepare it for inference.

        Parameters
        ----------
        bundle_dir : str or pathlib.Path
            Folder written by :meth:`Bundle.save`; default the bundle shipped in
            ``assets/models``.
        device : str or torch.device, optional
            Default CUDA when available, else CPU.
        channels_last : bool
            See :class:`Pipeline`.

        Raises
        ------
        BundleError
            If the bundle is missing, altered or needs other library versions.
        """
        device = select_device(device)
        start = time.perf_counter()
        bundle = Bundle.load(bundle_dir, device=str(device))
        pipeline = cls(bundle, device, channels_last=channels_last)
        pipeline.load_seconds = time.perf_counter() - start
        logger.info("pipeline ready on %s in %.2f s", pipeline.device_name, pipeline.load_seconds)
        return pipeline

    load_seconds: float = 0.0

    @property
    def metadata(self) -> dict[str, Any]:
        """The bundle's metadata: metrics, thresholds, versions, training data, fusion choice."""
        return self.bundle.metadata

    @property
    def model_version(self) -> str:
        """Version string of the loaded bundle, derived from its file hashes."""
        return self.bundle.model_version

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities this bundle has a branch for."""
        return tuple(m for m in MODALITIES if m in self.bundle.branches)

    # ------------------------------------------------------------------ steps

    def preprocess(self, record: ImageRecord, modality: str, roi: Box | None = None) -> ModelInput:
        """Preprocess one image with the configuration the branch was trained with."""
        from mpmmu.preprocess import preprocess

        return preprocess(record, modality, roi=roi, config=self._preprocess_configs[modality])

    def _batch(self, model_input: ModelInput) -> torch.Tensor:
        from mpmmu.explain.gradcam import input_batch

        return input_batch(model_input, self.device, channels_last=self.channels_last)

    def run_branch(self, modality: str, model_input: ModelInput) -> BranchResult:
        """Run one branch on one preprocessed image and return features, probability and gates."""
        branch = self.bundle.branches[modality]
        batch = self._batch(model_input)
        with self._forward_lock, torch.inference_mode():
            output = branch.forward_features(batch)
            features = output.features[0].float().cpu().numpy()
            logit = float(output.logit[0])
            spatial = None if output.spatial_attention is None else output.spatial_attention[0].cpu().numpy()
            channels = None if output.channel_weights is None else output.channel_weights[0].cpu().numpy()
        return BranchResult(features, _sigmoid(logit), spatial, channels)

    @staticmethod
    def stage2_input(model: str, results: Mapping[str, BranchResult]) -> np.ndarray:
        """Build the (1, n_features) input of one stage-2 model from the branch results.

        "stacking" reads the mammography then the ultrasound features
        (:func:`mpmmu.ensemble.fusion.fuse_features`), "late_fusion" the two probabilities
        (p_mammography, p_ultrasound), and "<modality>_only" that branch's features.
        """
        from mpmmu.ensemble.fusion import fuse_features

        if model == "stacking":
            return fuse_features(results["mammography"].features[None], results["ultrasound"].features[None])
        if model == "late_fusion":
            return np.array([[results["mammography"].probability, results["ultrasound"].probability]])
        modality = model.removesuffix("_only")
        return results[modality].features[None].astype(np.float64)

    def _weak_model_warning(self, model: str) -> str | None:
        """Return a warning when ``model`` ranked validation cases little better than chance.

        The bundle's ``metrics.validation_out_of_fold`` records each stage-2 model's cross-fitted
        validation AUC; below ``WEAK_MODEL_AUC`` its probability should not be relied on.
        """
        validation = self.metadata.get("metrics", {}).get("validation_out_of_fold", {})
        auc = validation.get(model, {}).get("auc")
        if auc is None or auc >= WEAK_MODEL_AUC:
            return None
        return (
            f"the {model.replace('_', '-')} model had a validation AUC of {auc:.2f}, little better than "
            "chance or worse, so its probability is not informative; read the case with both images"
        )

    def combine(self, results: Mapping[str, BranchResult]) -> tuple[str, float, dict[str, float]]:
        """Apply stage 2 to the branch results of one case.

        Returns
        -------
        fusion : str
            "stacking", "late_fusion", "<modality>_only" (single-modality ensemble) or
            "<modality>_branch" (the branch alone, when the bundle chose it for one-image cases).
        p_malignant : float
        votes : dict of str to float
            Each stage-2 learner's probability; empty when the model that produced ``p_malignant`` has no learners.
        """
        ensembles = self.bundle.ensembles
        if len(results) == 2:
            fusion = self.bundle.fusion
        else:
            (modality,) = results
            fusion = self.bundle.single_modality_models[modality]

        votes: dict[str, float] = {}
        vote_model = votes_model_for(fusion)
        if vote_model in ensembles:
            X = self.stage2_input(vote_model, results)
            votes = {name: float(values[0]) for name, values in ensembles[vote_model].votes(X).items()}

        if fusion == "late_fusion":
            X = self.stage2_input("late_fusion", results)
            p_malignant = float(ensembles["late_fusion"].predict_proba(X)[0, 1])
        elif fusion in ensembles:
            p_malignant = votes["meta_mlp"]
        else:
            # The branch alone scores the case: the bundle chose it on validation, or has no ensemble for it.
            (modality,) = results
            p_malignant = results[modality].probability
        return fusion, p_malignant, votes

    # ------------------------------------------------------------------ one case

    def predict(
        self,
        mammogram: ImageRecord | None,
        ultrasound: ImageRecord | None,
        mammogram_roi: Box | None = None,
        ultrasound_roi: Box | None = None,
        explain: bool = True,
    ) -> Prediction:
        """Score one case.

        Parameters
        ----------
        mammogram, ultrasound : ImageRecord or None
            The two images of the lesion; either may be None, and the single-modality model then
            scores the case.
        mammogram_roi, ultrasound_roi : tuple of int or None
            Lesion box (x, y, width, height) in the original image's pixels; None uses the whole
            breast or B-mode region and records that in ``Prediction.warnings``.
        explain : bool
            Compute Grad-CAM heatmaps and attention maps (about one more forward and a partial
            backward per image).

        Returns
        -------
        Prediction
            Every field filled; ``timings`` in seconds per step ("preprocess_<modality>",
            "branch_<modality>", "ensemble", "gradcam_<modality>", "attention_<modality>",
            "total").

        Raises
        ------
        ModelInputError
            If no image was given, or none of the given images has a branch in this bundle.
        PreprocessError
            If a lesion box lies outside its image.
        """
        start = time.perf_counter()
        images = {"mammography": (mammogram, mammogram_roi), "ultrasound": (ultrasound, ultrasound_roi)}
        provided = [modality for modality, (record, _) in images.items() if record is not None]
        if not provided:
            raise ModelInputError("no image given; pass a mammogram, an ultrasound image or both")

        warnings: list[str] = []
        usable = []
        for modality in provided:
            if modality in self.bundle.branches:
                usable.append(modality)
            else:
                warnings.append(f"the bundle has no {modality} branch, so the {modality} image was ignored")
        if not usable:
            raise ModelInputError(
                f"the bundle {self.model_version} has no branch for {', '.join(provided)}; "
                f"it reads {', '.join(self.modalities)}"
            )

        timings: dict[str, float] = {}
        inputs: dict[str, ModelInput] = {}
        for modality in usable:
            record, roi = images[modality]
            step = time.perf_counter()
            inputs[modality] = self.preprocess(record, modality, roi)
            timings[f"preprocess_{modality}"] = time.perf_counter() - step
            if roi is None:
                warnings.append(f"no lesion box given for the {modality}, whole image used")
            warnings.extend(f"{modality}: {text}" for text in (*record.warnings, *inputs[modality].warnings))

        results: dict[str, BranchResult] = {}
        for modality in usable:
            step = time.perf_counter()
            results[modality] = self.run_branch(modality, inputs[modality])
            timings[f"branch_{modality}"] = time.perf_counter() - step

        step = time.perf_counter()
        fusion, p_malignant, votes = self.combine(results)
        timings["ensemble"] = time.perf_counter() - step
        if len(usable) == 1:
            missing = "ultrasound" if usable == ["mammography"] else "mammography"
            warnings.append(f"one modality missing ({missing}): {fusion.replace('_', '-')} model answered")
            warning = self._weak_model_warning(fusion)
            if warning:
                warnings.append(warning)

        threshold = float(self.bundle.thresholds.get(fusion, 0.5))
        votes_model = votes_model_for(fusion) if votes else ""
        votes_threshold = float(self.bundle.thresholds.get(votes_model, threshold)) if votes else None
        agreement = self._agreement(
            p_malignant, threshold, votes, results, threshold if votes_threshold is None else votes_threshold
        )

        heatmaps: dict[str, np.ndarray] = {}
        attention: dict[str, np.ndarray] = {}
        if explain:
            heatmaps, attention = self._explain(inputs, results, timings)

        timings["total"] = time.perf_counter() - start
        return Prediction(
            p_malignant=float(p_malignant),
            p_mammography=results["mammography"].probability if "mammography" in results else None,
            p_ultrasound=results["ultrasound"].probability if "ultrasound" in results else None,
            votes=votes,
            threshold=threshold,
            fusion=fusion,
            agreement=agreement,
            model_version=self.model_version,
            device=self.device_name,
            timings=timings,
            heatmaps=heatmaps,
            attention=attention,
            roi_used={modality: bool(inputs[modality].transform.roi_used) for modality in usable},
            pseudo_paired_training=self.bundle.pseudo_paired_training,
            warnings=tuple(warnings),
            votes_model=votes_model,
            votes_threshold=votes_threshold,
        )

    @staticmethod
    def _agreement(
        p_malignant: float,
        threshold: float,
        votes: Mapping[str, float],
        results: Mapping[str, BranchResult],
        votes_threshold: float,
    ) -> float:
        """Return the fraction of base learners on the same side of their threshold as the answer.

        The answer's side is ``p_malignant`` against ``threshold``; each base learner's side is its
        vote against ``votes_threshold``, the threshold of the model the learners belong to (the
        stacking ensemble when late fusion answered). Without base-learner votes (a bundle with no
        ensemble for this case) the branches' probabilities take their place, compared with
        ``threshold``.
        """
        voters = [votes[name] for name in BASE_LEARNERS if name in votes]
        if not voters:
            voters = [result.probability for result in results.values()]
            votes_threshold = threshold
        final_side = p_malignant >= threshold
        return float(np.mean([(vote >= votes_threshold) == final_side for vote in voters]))

    def _explain(
        self, inputs: Mapping[str, ModelInput], results: Mapping[str, BranchResult], timings: dict[str, float]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        from mpmmu.explain import (
            deepest_attention_name,
            grad_cam,
            grad_cam_with_module_input,
            spatial_attention_map,
            weighted_channel_map,
        )
        from mpmmu.preprocess import map_to_original

        heatmaps: dict[str, np.ndarray] = {}
        attention: dict[str, np.ndarray] = {}
        for modality, model_input in inputs.items():
            branch = self.bundle.branches[modality]
            result = results[modality]
            # Without a spatial gate (ECA), the channel map needs the attention module's input,
            # which the Grad-CAM forward pass captures on the way.
            wants_channel_map = result.spatial_attention is None and result.channel_weights is not None
            step = time.perf_counter()
            if wants_channel_map:
                cam, attention_input = grad_cam_with_module_input(
                    branch, model_input, deepest_attention_name(branch)
                )
            else:
                cam, attention_input = grad_cam(branch, model_input), None
            heatmaps[modality] = np.clip(map_to_original(cam, model_input.transform), 0.0, 1.0)
            timings[f"gradcam_{modality}"] = time.perf_counter() - step

            step = time.perf_counter()
            if result.spatial_attention is not None:
                attention[f"{modality}_spatial"] = spatial_attention_map(result.spatial_attention, model_input.transform)
            if result.channel_weights is not None:
                attention[f"{modality}_channels"] = result.channel_weights.astype(np.float32)
            if attention_input is not None:
                channel_map = weighted_channel_map(
                    attention_input, result.channel_weights, model_input.transform.output_size
                )
                attention[f"{modality}_channel_map"] = np.clip(
                    map_to_original(channel_map, model_input.transform), 0.0, 1.0
                )
            timings[f"attention_{modality}"] = time.perf_counter() - step
        return heatmaps, attention

    # ------------------------------------------------------------------ many cases

    def predict_case(self, row: Any, explain: bool = False) -> CaseResult:
        """Read and score one manifest row; a failure is returned in ``CaseResult.error``.

        Parameters
        ----------
        row : mpmmu.data.CaseRow
            Uses ``case_id``, ``label``, ``mammogram_path``, ``ultrasound_path`` and the two ROIs.
        explain : bool
            Compute heatmaps as in :meth:`predict`.
        """
        from mpmmu.errors import MpmmuError
        from mpmmu.io import read_image

        try:
            mammogram = read_image(row.mammogram_path) if row.mammogram_path is not None else None
            ultrasound = read_image(row.ultrasound_path) if row.ultrasound_path is not None else None
            prediction = self.predict(
                mammogram,
                ultrasound,
                mammogram_roi=row.mammogram_roi,
                ultrasound_roi=row.ultrasound_roi,
                explain=explain,
            )
        except MpmmuError as error:
            logger.warning("case %s could not be scored: %s", row.case_id, error)
            return CaseResult(row.case_id, row.label, None, str(error))
        return CaseResult(row.case_id, row.label, prediction, "")

    def predict_batch(self, rows: Sequence[Any], explain: bool = False) -> list[CaseResult]:
        """Score manifest rows one after another in this process (see :meth:`predict_case`)."""
        results = []
        for index, row in enumerate(rows, start=1):
            results.append(self.predict_case(row, explain=explain))
            logger.info("scored %d/%d cases", index, len(rows))
        return results


@dataclass(frozen=True)
class CaseResult:
    """The outcome of scoring one manifest row.

    Attributes
    ----------
    case_id : str
    label : str or None
        The manifest's reference label, when it has one.
    prediction : Prediction or None
        None when the case could not be scored.
    error : str
        Why the case could not be scored; "" on success.
    """

    case_id: str
    label: str | None
    prediction: Prediction | None
    error: str = ""


PREDICTION_COLUMNS = (
    "case_id",
    "label",
    "p_malignant",
    "predicted_label",
    "threshold",
    "p_mammography",
    "p_ultrasound",
    "fusion",
    "agreement",
    *(f"vote_{name}" for name in (*BASE_LEARNERS, "meta_mlp")),
    "roi_used_mammography",
    "roi_used_ultrasound",
    "model_version",
    "warnings",
    "error",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def write_predictions(results: Sequence[CaseResult], path: str | Path) -> Path:
    """Write scored cases as CSV with :data:`PREDICTION_COLUMNS` and return the path.

    Missing values (an image not given, a case that failed) are empty cells; ``warnings`` are
    joined with " | ".
    """
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PREDICTION_COLUMNS)
        writer.writeheader()
        for result in results:
            record: dict[str, Any] = {"case_id": result.case_id, "label": result.label, "error": result.error}
            prediction = result.prediction
            if prediction is not None:
                record.update(
                    {
                        "p_malignant": prediction.p_malignant,
                        "predicted_label": prediction.label,
                        "threshold": prediction.threshold,
                        "p_mammography": prediction.p_mammography,
                        "p_ultrasound": prediction.p_ultrasound,
                        "fusion": prediction.fusion,
                        "agreement": prediction.agreement,
                        "model_version": prediction.model_version,
                        "warnings": " | ".join(prediction.warnings),
                    }
                )
                for name, value in prediction.votes.items():
                    record[f"vote_{name}"] = value
                for modality, used in prediction.roi_used.items():
                    record[f"roi_used_{modality}"] = used
            writer.writerow({column: _cell(record.get(column)) for column in PREDICTION_COLUMNS})
    return path
