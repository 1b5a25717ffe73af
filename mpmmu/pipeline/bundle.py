"""The model bundle: one folder holding everything a trained MPM-MU model needs at run time.

Layout::

    bundle/
        mammography.safetensors      branch weights (safetensors, no pickle)
        ultrasound.safetensors
        ensembles/<name>.skops       stage-2 models (skops with a reviewed list of trusted types)
        metadata.json                configs, thresholds, metrics, versions and SHA-256 of each file

Loading checks each file's SHA-256 against ``metadata.json``, the metadata against its
``model_version`` (a hash of the file hashes and the model-defining metadata, see
:func:`content_version`) and the library versions the bundle was saved with, and raises
:class:`~mpmmu.errors.BundleError` with what differs and what to do.

Version policy: scikit-learn and skops must match the saving versions in major.minor, because the
stored trees and estimators are restored attribute by attribute and their layout changes between
minor releases. A torch or timm difference only warns, because the weights are plain tensors.
"""

from __future__ import annotations

import datetime as _datetime
import hashlib
import json
import logging
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any

from mpmmu.errors import BundleError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
ENSEMBLE_DIR = "ensembles"
MODALITIES = ("mammography", "ultrasound")
#: Stage-2 models a bundle may hold; "stacking" and "late_fusion" read both modalities.
ENSEMBLE_NAMES = ("stacking", "late_fusion", "mammography_only", "ultrasound_only")
#: Distributions whose major.minor must match at load time (see the module docstring).
STRICT_VERSION_PACKAGES = ("scikit-learn", "skops")
#: Distributions whose difference only warns at load time.
WARN_VERSION_PACKAGES = ("torch", "timm")
RECORDED_PACKAGES = ("mpmmu", "torch", "timm", "scikit-learn", "skops", "numpy", "safetensors")
#: Size above which a bundle no longer fits the repository's ``assets/models`` budget.
SHIPPED_BUNDLE_LIMIT_BYTES = 40 * 1024 * 1024
CLASS_NAMES = ("benign", "malignant")
PSEUDO_PAIR_CAVEAT = (
    "The fused model was trained and validated on class-matched pseudo-pairs: each ultrasound "
    "image was paired with a mammogram of a different woman with the same label. Pseudo-pairs "
    "assume the two modalities are independent given the label, so fused results are an upper "
    "bound for truly paired cases."
)


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def installed_versions() -> dict[str, str]:
    """Return the installed version of each package a bundle records, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_versions(saved: Mapping[str, str], installed: Mapping[str, str] | None = None) -> list[str]:
    """Compare the versions a bundle was saved with to the installed ones.

    Parameters
    ----------
    saved : mapping of str to str
        The bundle's ``metadata["versions"]``.
    installed : mapping of str to str, optional
        Default :func:`installed_versions`.

    Returns
    -------
    list of str
        One warning per torch or timm difference.

    Raises
    ------
    BundleError
        If scikit-learn or skops differ in major.minor, naming both versions and the fix.
    """
    installed = dict(installed_versions() if installed is None else installed)
    for name in STRICT_VERSION_PACKAGES:
        if name not in saved:
            raise BundleError(f"bundle metadata records no {name} version; re-save the bundle with mpmmu")
        if _major_minor(saved[name]) != _major_minor(installed.get(name, "")):
            raise BundleError(
                f"bundle was saved with {name} {saved[name]} but {name} {installed.get(name)} is "
                f"installed; the stage-2 models only load under the same {name} major.minor. "
                f"Install {name}=={saved[name]} or retrain and save the bundle with this environment"
            )
    messages = []
    for name in WARN_VERSION_PACKAGES:
        if name in saved and saved[name] != installed.get(name):
            messages.append(
                f"bundle was saved with {name} {saved[name]}, {name} {installed.get(name)} is "
                "installed; predictions may differ slightly"
            )
    return messages


def _to_jsonable(value: Any) -> Any:
    """Convert numpy scalars, tuples and paths so ``json.dumps`` accepts them."""
    if isinstance(value, Mapping):
        return {str(key): _to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


#: Metadata keys left out of :func:`content_version`: they describe the save, not the model.
_UNVERSIONED_KEYS = ("model_version", "created", "versions")


def content_version(metadata: Mapping[str, Any]) -> str:
    """Derive the model version from the file hashes and the model-defining metadata.

    The SHA-256 covers every key of ``metadata`` except :data:`_UNVERSIONED_KEYS`, so it
    changes with the weights, the ensembles (through ``files``), the thresholds, the fusion
    choice and the preprocessing. skops files record object ids, so saving the same ensembles
    twice gives two versions.
    """
    versioned = {key: value for key, value in metadata.items() if key not in _UNVERSIONED_KEYS}
    canonical = json.dumps(_to_jsonable(versioned), sort_keys=True, separators=(",", ":"))
    return f"mpmmu-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def _deflate_zip(path: Path) -> None:
    """Rewrite a zip archive (a skops file) with deflate compression, in place.

    skops 0.16 stores its archive uncompressed by default, and the JSON schema of a 300-tree
    forest takes about 15 MB that way but under 0.3 MB deflated; skops reads either.
    """
    import zipfile

    packed = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, source.read(item.filename))
    packed.replace(path)


def _ensemble_path(name: str) -> str:
    return f"{ENSEMBLE_DIR}/{name}.skops"


@dataclass(frozen=True)
class Bundle:
    """A trained model: both branches, the stage-2 models and their metadata.

    Build one with :meth:`create` after training, write it with :meth:`save`, read it back with
    :meth:`load`. The object is shared read-only by every prediction; nothing in it is modified
    after loading.

    Attributes
    ----------
    branches : mapping of Modality to mpmmu.models.Branch
        The stage-1 networks; a bundle may hold one or both.
    ensembles : mapping of str to estimator
        Keys from :data:`ENSEMBLE_NAMES`: "stacking" (fused features), "late_fusion",
        "mammography_only" and "ultrasound_only".
    metadata : dict
        Everything in ``metadata.json``; :meth:`create` documents the keys.
    directory : pathlib.Path or None
        Folder the bundle was loaded from or saved to.
    """

    branches: Mapping[str, Any]
    ensembles: Mapping[str, Any]
    metadata: dict[str, Any]
    directory: Path | None = field(default=None, compare=False)

    @property
    def model_version(self) -> str:
        """Version string derived from the content hashes ("" before the first save)."""
        return str(self.metadata.get("model_version", ""))

    @property
    def thresholds(self) -> dict[str, float]:
        """Operating threshold per model (keys of :data:`ENSEMBLE_NAMES`), chosen on validation."""
        return {key: float(value) for key, value in self.metadata["thresholds"].items()}

    @property
    def fusion(self) -> str:
        """Fusion chosen for two-image cases: "stacking" or "late_fusion"."""
        return str(self.metadata["fusion"]["chosen"])

    @property
    def single_modality(self) -> dict[str, str]:
        """Model kind that scores a one-image case, per modality: "ensemble" or "branch".

        Bundles written before this choice was recorded use the ensemble.
        """
        recorded = self.metadata["fusion"].get("single_modality", {})
        return {modality: str(recorded.get(modality, "ensemble")) for modality in MODALITIES}

    @property
    def single_modality_models(self) -> dict[str, str]:
        """Name of the model that scores a one-image case, per modality: "<modality>_only" or "<modality>_branch"."""
        return {
            modality: f"{modality}_branch" if answer == "branch" else f"{modality}_only"
            for modality, answer in self.single_modality.items()
        }

    @property
    def pseudo_paired_training(self) -> bool:
        """Whether stage 2 was trained on pseudo-pairs instead of true mammogram-ultrasound pairs."""
        return bool(self.metadata["training_data"].get("pseudo_paired", True))

    @classmethod
    def create(
        cls,
        *,
        branches: Mapping[str, Any],
        ensembles: Mapping[str, Any],
        preprocess_configs: Mapping[str, Any],
        thresholds: Mapping[str, float],
        fusion: str,
        validation_auc: Mapping[str, float],
        metrics: Mapping[str, Any],
        training_data: Mapping[str, Any],
        manifest_sha256: Mapping[str, str],
        fusion_reason: str = "",
        notes: str = "",
        single_modality: Mapping[str, str] | None = None,
    ) -> Bundle:
        """Assemble a bundle from trained parts, checking that they fit together.

        Parameters
        ----------
        branches : mapping of Modality to Branch
            Trained stage-1 branches ("mammography", "ultrasound").
        ensembles : mapping of str to estimator
            Trained stage-2 models, keys from :data:`ENSEMBLE_NAMES`.
        preprocess_configs : mapping of Modality to PreprocessConfig or dict
            The preprocessing each branch was trained with (``PreprocessConfig.to_dict()`` is
            stored).
        thresholds : mapping of str to float
            Operating threshold of each ensemble, chosen on validation data.
        fusion : {"stacking", "late_fusion"}
            The two-image model the pipeline uses.
        validation_auc : mapping of str to float
            Validation AUC of each candidate that decided ``fusion``.
        metrics : mapping
            Evaluation results to show with the model (AUCs with CIs, sensitivity, ...).
        training_data : mapping
            Description of the training data: at least ``description`` (str) and
            ``pseudo_paired`` (bool); the pseudo-pair caveat is added when it is true.
        manifest_sha256 : mapping of str to str
            SHA-256 of each training manifest CSV, by role ("ultrasound", "mammography",
            "pairs").
        fusion_reason : str
            Why ``fusion`` was chosen; default states the validation AUCs.
        notes : str
            Free text kept in the metadata.
        single_modality : mapping of Modality to {"ensemble", "branch"}, optional
            Model kind that scores a case whose other image is missing; default "ensemble" for
            both. "branch" needs a "<modality>_branch" threshold.

        Raises
        ------
        BundleError
            If a key is unknown, a threshold or model is missing, or ``fusion`` is not available.
        """
        unknown_modalities = sorted(set(branches) - set(MODALITIES))
        if not branches or unknown_modalities:
            raise BundleError(
                f"branches must be keyed by {MODALITIES}, got {sorted(branches)}; pass the trained branches"
            )
        unknown_ensembles = sorted(set(ensembles) - set(ENSEMBLE_NAMES))
        if unknown_ensembles:
            raise BundleError(f"unknown ensemble names {unknown_ensembles}; use names from {ENSEMBLE_NAMES}")
        missing_thresholds = sorted(set(ensembles) - set(thresholds))
        if missing_thresholds:
            raise BundleError(
                f"no operating threshold for {missing_thresholds}; choose each on validation data"
            )
        if fusion not in ("stacking", "late_fusion") or fusion not in ensembles:
            raise BundleError(
                f"fusion must be 'stacking' or 'late_fusion' and present in ensembles {sorted(ensembles)}, "
                f"got {fusion!r}"
            )
        single = {modality: "ensemble" for modality in MODALITIES}
        single.update(single_modality or {})
        for modality, answer in single.items():
            if modality not in MODALITIES or answer not in ("ensemble", "branch"):
                raise BundleError(
                    f"single_modality maps {MODALITIES} to 'ensemble' or 'branch', got {modality!r}: {answer!r}"
                )
            if answer == "branch" and f"{modality}_branch" not in thresholds:
                raise BundleError(
                    f"the {modality} branch scores one-image cases but has no '{modality}_branch' "
                    "threshold; choose one on validation data"
                )
        missing_preprocess = sorted(set(branches) - set(preprocess_configs))
        if missing_preprocess:
            raise BundleError(f"no preprocessing configuration for {missing_preprocess}")

        preprocess = {}
        for modality in branches:
            config = preprocess_configs[modality]
            preprocess[modality] = dict(config.to_dict() if hasattr(config, "to_dict") else config)

        training = dict(training_data)
        training.setdefault("pseudo_paired", True)
        if training["pseudo_paired"]:
            training.setdefault("caveat", PSEUDO_PAIR_CAVEAT)
        if not fusion_reason:
            ranked = ", ".join(f"{name} {auc:.3f}" for name, auc in sorted(validation_auc.items()))
            fusion_reason = f"highest validation AUC ({ranked})"

        metadata = {
            "format_version": FORMAT_VERSION,
            "class_names": list(CLASS_NAMES),
            "branches": {modality: branch.config() for modality, branch in branches.items()},
            "preprocess": preprocess,
            "input_size": {modality: int(preprocess[modality].get("size", 224)) for modality in branches},
            "thresholds": {name: float(value) for name, value in thresholds.items()},
            "fusion": {
                "chosen": fusion,
                "reason": fusion_reason,
                "validation_auc": dict(validation_auc),
                "single_modality": single,
            },
            "metrics": dict(metrics),
            "training_data": training,
            "manifest_sha256": dict(manifest_sha256),
            "notes": notes,
        }
        return cls(branches=dict(branches), ensembles=dict(ensembles), metadata=_to_jsonable(metadata))

    @classmethod
    def from_stage2(
        cls,
        *,
        branches: Mapping[str, Any],
        stage2: Any,
        preprocess_configs: Mapping[str, Any],
        training_data: Mapping[str, Any],
        manifest_sha256: Mapping[str, str],
        metrics: Mapping[str, Any] | None = None,
        notes: str = "",
    ) -> Bundle:
        """Assemble a bundle from the branches and a :class:`mpmmu.train.stage2.Stage2Result`.

        The stacking, late fusion and both single-modality ensembles are kept (the fused MLP
        head is an ablation and is left out). Thresholds, the fusion choice and the validation
        AUCs that decided it come from ``stage2``; ``metrics`` defaults to its validation
        metrics and training counts.
        """
        ensembles = {
            "stacking": stage2.stacking,
            "late_fusion": stage2.late_fusion,
            "mammography_only": stage2.mammography_only,
            "ultrasound_only": stage2.ultrasound_only,
        }
        stage2_metadata = stage2.metadata()
        validation_auc = {
            name: stage2_metadata["metrics"][name]["auc"]
            for name in ("stacking", "late_fusion")
            if name in stage2_metadata["metrics"]
        }
        if metrics is None:
            metrics = {"validation": stage2_metadata["metrics"], "stage2_training": stage2_metadata["training"]}
        return cls.create(
            branches=branches,
            ensembles=ensembles,
            preprocess_configs=preprocess_configs,
            thresholds={
                name: stage2.thresholds[name]
                for name in (*ensembles, "mammography_branch", "ultrasound_branch")
                if name in stage2.thresholds
            },
            fusion=stage2.fusion,
            single_modality=stage2.single_modality,
            validation_auc=validation_auc,
            metrics=metrics,
            training_data=training_data,
            manifest_sha256=manifest_sha256,
            notes=notes,
        )

    def save(self, directory: str | Path, weights_dtype: str = "float32") -> Bundle:
        """Write the bundle into ``directory`` and return it as loaded from there.

        Parameters
        ----------
        directory : str or pathlib.Path
            Created if missing; files of an earlier bundle there are overwritten.
        weights_dtype : {"float32", "float16"}
            Storage type of the branch weights; float16 halves their size (they are cast back to
            float32 on load) at the cost of slightly different probabilities.

        Returns
        -------
        Bundle
            With ``metadata`` completed by file hashes, versions, ``model_version`` and the date.
        """
        import torch
        from safetensors.torch import save_file

        from mpmmu.ensemble.trusted import save_ensemble

        if weights_dtype not in ("float32", "float16"):
            raise BundleError(f"weights_dtype must be 'float32' or 'float16', got {weights_dtype!r}")
        directory = Path(directory)
        (directory / ENSEMBLE_DIR).mkdir(parents=True, exist_ok=True)

        files: dict[str, str] = {}
        for modality, branch in self.branches.items():
            name = f"{modality}.safetensors"
            state = {}
            for key, tensor in branch.state_dict().items():
                tensor = tensor.detach().to("cpu").contiguous()
                if weights_dtype == "float16" and tensor.is_floating_point():
                    tensor = tensor.to(torch.float16)
                state[key] = tensor.clone()
            save_file(state, str(directory / name), metadata={"modality": modality})
            files[name] = file_sha256(directory / name)
        for ensemble_name, estimator in self.ensembles.items():
            relative = _ensemble_path(ensemble_name)
            save_ensemble(estimator, directory / relative)
            _deflate_zip(directory / relative)
            files[relative] = file_sha256(directory / relative)

        metadata = dict(self.metadata)
        metadata.update(
            {
                "files": files,
                "weights_dtype": weights_dtype,
                "versions": installed_versions(),
                "created": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds"),
            }
        )
        metadata["model_version"] = content_version(metadata)
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")

        size = sum((directory / name).stat().st_size for name in files)
        logger.info("saved bundle %s (%s, %.1f MB)", directory, metadata["model_version"], size / 1e6)
        if size > SHIPPED_BUNDLE_LIMIT_BYTES:
            logger.warning(
                "bundle %s is %.1f MB, over the %d MB allowed in assets/models; save with "
                "weights_dtype='float16' or smaller forests before shipping it",
                directory,
                size / 1e6,
                SHIPPED_BUNDLE_LIMIT_BYTES // (1024 * 1024),
            )
        return Bundle(self.branches, self.ensembles, metadata, directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> Bundle:
        """Read and verify a bundle.

        Parameters
        ----------
        directory : str or pathlib.Path
            A folder written by :meth:`save`.
        device : str, optional
            Where the branches go ("cpu", "cuda", ...); default CPU. Branches are in eval mode.

        Raises
        ------
        BundleError
            If the folder or a file is missing, a file's SHA-256 differs from the metadata
            (naming the file and both hashes), the metadata is unreadable, or scikit-learn or
            skops differ from the saving versions (see :func:`check_versions`).
        """
        import torch
        from safetensors.torch import load_file

        from mpmmu.ensemble.trusted import load_ensemble
        from mpmmu.models import Branch

        directory = Path(directory)
        metadata_path = directory / METADATA_FILE
        if not metadata_path.is_file():
            raise BundleError(
                f"no model bundle at {directory}: {METADATA_FILE} is missing; pass --bundle with a "
                "folder written by mpmmu training"
            )
        try:
            metadata = json.loads(metadata_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BundleError(f"{metadata_path} is not valid JSON ({error}); the bundle is damaged, re-save it") from error
        if metadata.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"{metadata_path} has format_version {metadata.get('format_version')!r}, this mpmmu "
                f"reads {FORMAT_VERSION}; use the mpmmu version that saved it or re-save the bundle"
            )

        for name, expected in sorted(metadata.get("files", {}).items()):
            path = directory / name
            if not path.is_file():
                raise BundleError(f"bundle file {name} is missing from {directory}; copy the whole bundle folder")
            actual = file_sha256(path)
            if actual != expected:
                raise BundleError(
                    f"bundle file {name} has SHA-256 {actual}, metadata.json expects {expected}; "
                    "the file was altered or damaged, restore the bundle from its source"
                )
        expected_version = content_version(metadata)
        if metadata.get("model_version") != expected_version:
            raise BundleError(
                f"{metadata_path} was altered: its model_version {metadata.get('model_version')!r} "
                f"does not match its content ({expected_version}); restore the bundle from its source"
            )
        for message in check_versions(metadata.get("versions", {})):
            logger.warning(message)
            warnings.warn(message, stacklevel=2)

        device = device or "cpu"
        branches = {}
        for modality, config in metadata["branches"].items():
            # from_config builds a randomly initialised branch; weights come from the verified file.
            branch = Branch.from_config(config)
            state = load_file(str(directory / f"{modality}.safetensors"))
            reference = branch.state_dict()
            state = {key: tensor.to(reference[key].dtype) if key in reference else tensor for key, tensor in state.items()}
            try:
                branch.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise BundleError(
                    f"{modality}.safetensors does not fit the branch described in metadata.json: {error}"
                ) from error
            branch.to(torch.device(device)).eval()
            branches[modality] = branch

        ensembles = {}
        for name in ENSEMBLE_NAMES:
            if _ensemble_path(name) in metadata.get("files", {}):
                ensembles[name] = load_ensemble(directory / _ensemble_path(name))
        logger.info("loaded bundle %s (%s) on %s", directory, metadata.get("model_version"), device)
        return cls(branches=branches, ensembles=ensembles, metadata=metadata, directory=directory)
