"""One modality's branch: backbone, attention, pooled feature vector and a binary head.

The mammography branch uses CBAM and the ultrasound branch ECA, each on an EfficientNet-Lite0
backbone, following the MPM-MU model (Yan et al., J Appl Clin Med Phys 2026,
doi:10.1002/acm2.70464). Attention modules sit after the stages named in ``attention_stages``:
an integer i places one after backbone stage i (0-based), ``"head"`` after the final 1 x 1
convolution and its batch norm, just before global average pooling.

The default ``("head",)`` was chosen by validation AUC of the ultrasound branch (BUS-BRA, 374
validation images, full fine-tuning, same seed and schedule): ECA after the head 0.907, after
stage 6 0.907 (0.0006 lower), after stages 2, 4, 6 and the head 0.889, and no attention 0.915,
so ECA itself did not help there. CBAM after the head also led the mammography branch's
woman-wise CV (0.683, against 0.617 after stage 6 and 0.595 without attention). The placement also
leaves the input of every pretrained layer untouched, and CBAM or ECA there costs under 1 ms per
224-px image on a 2-core CPU. ``mpmmu evaluate --placement-work`` tabulates these runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from mpmmu.models.backbones import BACKBONES, STAGE_LAYOUTS, StageLayout, create_backbone
from mpmmu.models.cbam import CBAM
from mpmmu.models.eca import ECA

logger = logging.getLogger(__name__)

AttentionName = Literal["cbam", "eca", "none"]
ATTENTIONS: tuple[str, ...] = ("cbam", "eca", "none")
MODALITIES: tuple[str, ...] = ("mammography", "ultrasound")
#: Attention each modality gets in the MPM-MU model.
MODALITY_ATTENTION: dict[str, str] = {"mammography": "cbam", "ultrasound": "eca"}
DEFAULT_ATTENTION_STAGES: tuple[int | str, ...] = ("head",)


@dataclass(frozen=True)
class BranchOutput:
    """What one forward pass of a branch produces.

    Attributes
    ----------
    features : torch.Tensor
        float (N, F) pooled feature vector after attention; F is ``Branch.feature_dim``.
    logit : torch.Tensor
        float (N,) malignant-class logit.
    spatial_attention : torch.Tensor or None
        float32 (N, h, w) spatial gate in [0, 1] of the deepest CBAM, detached; None without CBAM.
    channel_weights : torch.Tensor or None
        float32 (N, C) channel gate in [0, 1] of the deepest attention module, detached.
    """

    features: torch.Tensor
    logit: torch.Tensor
    spatial_attention: torch.Tensor | None
    channel_weights: torch.Tensor | None


def _normalise_stages(attention_stages: Sequence[int | str], layout: StageLayout) -> tuple[int | str, ...]:
    """Validate ``attention_stages`` and return them sorted shallow to deep, ``"head"`` last."""
    if isinstance(attention_stages, (str, int)):
        attention_stages = (attention_stages,)
    stages: set[int | str] = set()
    for stage in attention_stages:
        if isinstance(stage, str) and stage.isdigit():
            stage = int(stage)
        if stage == "head":
            stages.add("head")
        elif isinstance(stage, int) and not isinstance(stage, bool) and 0 <= stage < len(layout.stages):
            stages.add(stage)
        else:
            raise ValueError(
                f"attention_stages entries must be 'head' or a stage index 0..{len(layout.stages) - 1}, "
                f"got {stage!r}"
            )
    last = len(layout.stages) - 1
    if not layout.head and "head" in stages and last in stages:
        raise ValueError(
            f"attention_stages {sorted(map(str, stages))} names the same place twice: this backbone "
            f"has no head after stage {last}, so 'head' and {last} are both after stage {last}"
        )
    return tuple(sorted(s for s in stages if s != "head")) + (("head",) if "head" in stages else ())


def check_attention_stages(attention_stages: Sequence[int | str], backbone: str = "efficientnet_lite0") -> tuple[int | str, ...]:
    """Validate attention places for ``backbone`` and return them sorted, without building a model.

    Raises
    ------
    ValueError
        If the backbone is unknown, a place is neither "head" nor one of its stage indices, or two
        places coincide.
    """
    if backbone not in STAGE_LAYOUTS:
        raise ValueError(f"backbone must be one of {tuple(STAGE_LAYOUTS)}, got {backbone!r}")
    return _normalise_stages(attention_stages, STAGE_LAYOUTS[backbone])


class Branch(nn.Module):
    """Backbone + attention + global average pooling + a one-logit head for one modality.

    Parameters
    ----------
    modality : {"mammography", "ultrasound"}
    backbone : {"efficientnet_lite0", "resnet18"}
    attention : {"cbam", "eca", "none"} or None
        None picks the modality's attention: CBAM for mammography, ECA for ultrasound.
    attention_stages : sequence of int or "head"
        Where attention modules go (see the module docstring). Ignored when ``attention`` is "none".
    pretrained : bool
        Load the shipped ImageNet weights (EfficientNet-Lite0 only; ResNet-18 raises).
    dropout : float
        Dropout before the linear head.
    cbam_rd_ratio : float
        Hidden width of CBAM's channel MLP as a fraction of its channels.

    Attributes
    ----------
    feature_dim : int
        Length of the pooled feature vector (1280 for Lite0, 512 for ResNet-18).
    weights_provenance : dict or None
        Where the ImageNet weights came from (file, SHA-256), None when randomly initialised.
    frozen_stages : int
        Backbone stages (after the stem) whose parameters are frozen, see :meth:`freeze_stages`.
    """

    def __init__(
        self,
        modality: str,
        backbone: str = "efficientnet_lite0",
        attention: str | None = None,
        attention_stages: Sequence[int | str] = DEFAULT_ATTENTION_STAGES,
        pretrained: bool = True,
        dropout: float = 0.2,
        cbam_rd_ratio: float = 1.0 / 16,
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        attention = MODALITY_ATTENTION[modality] if attention is None else attention
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        self.modality = modality
        self.backbone_name = backbone
        self.attention_name = attention
        self.layout = STAGE_LAYOUTS[backbone]
        self.attention_stages = (
            () if attention == "none" else _normalise_stages(attention_stages, self.layout)
        )
        self.dropout_rate = dropout
        self.cbam_rd_ratio = cbam_rd_ratio
        self.frozen_stages = 0

        self.backbone, self.weights_provenance = create_backbone(backbone, pretrained=pretrained)
        # The ImageNet classifier and pooling are replaced by this branch's own.
        if backbone == "efficientnet_lite0":
            self.backbone.classifier = nn.Identity()
            self.backbone.global_pool = nn.Identity()
        else:
            self.backbone.fc = nn.Identity()
            self.backbone.avgpool = nn.Identity()

        self.attention = nn.ModuleDict()
        for stage in self.attention_stages:
            channels = self.layout.head_channels if stage == "head" else self.layout.stage_channels[stage]
            if attention == "cbam":
                module: nn.Module = CBAM(channels, rd_ratio=cbam_rd_ratio)
            else:
                module = ECA(channels)
            self.attention[str(stage)] = module

        self.feature_dim = self.layout.head_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feature_dim, 1)

    # ------------------------------------------------------------------ structure

    def _modules_named(self, names: Sequence[str]) -> Iterator[nn.Module]:
        for name in names:
            yield self.backbone.get_submodule(name)

    @property
    def target_layer(self) -> nn.Module:
        """The last convolutional layer before pooling, for Grad-CAM."""
        return self.backbone.get_submodule(self.layout.target_layer)

    def freeze_stages(self, n: int) -> None:
        """Freeze the stem and the first ``n`` backbone stages; ``n = 0`` unfreezes everything.

        Frozen parameters get ``requires_grad = False`` and their batch norms stay in evaluation
        mode (running statistics fixed) even while the branch trains. Attention modules and the
        head always train.

        Raises
        ------
        ValueError
            If ``n`` is not in 0..number of stages.
        """
        count = len(self.layout.stages)
        if not 0 <= n <= count:
            raise ValueError(f"n must be in 0..{count} (stages of {self.backbone_name}), got {n}")
        self.frozen_stages = n
        frozen = set(self._frozen_module_names())
        for name in (*self.layout.stem, *self.layout.stages, *self.layout.head):
            requires_grad = name not in frozen
            for parameter in self.backbone.get_submodule(name).parameters():
                parameter.requires_grad_(requires_grad)
        self.train(self.training)

    def _frozen_module_names(self) -> tuple[str, ...]:
        if self.frozen_stages == 0:
            return ()
        return (*self.layout.stem, *self.layout.stages[: self.frozen_stages])

    def train(self, mode: bool = True) -> Branch:
        """Set training mode, keeping frozen stages in evaluation mode."""
        super().train(mode)
        for module in self._modules_named(self._frozen_module_names()):
            module.eval()
        return self

    # ------------------------------------------------------------------ forward

    def forward_features(self, batch: torch.Tensor) -> BranchOutput:
        """Run the branch and return features, logit and the deepest attention gates.

        Parameters
        ----------
        batch : torch.Tensor
            float (N, 3, S, S), normalised as the preprocessing configuration says.
        """
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"batch must have shape (N, 3, S, S), got {tuple(batch.shape)}")
        x = batch
        for module in self._modules_named(self.layout.stem):
            x = module(x)
        for index, module in enumerate(self._modules_named(self.layout.stages)):
            x = module(x)
            key = str(index)
            if key in self.attention:
                x = self.attention[key](x)
        for module in self._modules_named(self.layout.head):
            x = module(x)
        if "head" in self.attention:
            x = self.attention["head"](x)

        features = self.pool(x).flatten(1)
        logit = self.classifier(self.dropout(features)).squeeze(1)

        spatial, channel = None, None
        if self.attention_stages:
            deepest = self.attention[str(self.attention_stages[-1])]
            if isinstance(deepest, CBAM):
                spatial, channel = deepest.last_gate, deepest.last_channel_gate
            else:
                channel = deepest.last_gate
        return BranchOutput(features=features, logit=logit, spatial_attention=spatial, channel_weights=channel)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the malignant-class logit, float (N,)."""
        return self.forward_features(batch).logit

    # ------------------------------------------------------------------ configuration

    def config(self) -> dict[str, Any]:
        """Return the JSON-serialisable arguments that rebuild this architecture."""
        return {
            "modality": self.modality,
            "backbone": self.backbone_name,
            "attention": self.attention_name,
            "attention_stages": list(self.attention_stages),
            "dropout": self.dropout_rate,
            "cbam_rd_ratio": self.cbam_rd_ratio,
            "frozen_stages": self.frozen_stages,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Branch:
        """Rebuild a randomly initialised branch from :meth:`config`; load the weights separately."""
        known = {"modality", "backbone", "attention", "attention_stages", "dropout", "cbam_rd_ratio", "frozen_stages"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown branch configuration keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        arguments = {key: value for key, value in config.items() if key != "frozen_stages"}
        branch = cls(pretrained=False, **arguments)
        branch.freeze_stages(int(config.get("frozen_stages", 0)))
        return branch


def build_branch(modality: str, **overrides: Any) -> Branch:
    """Build the MPM-MU branch for ``modality``: Lite0 with CBAM (mammography) or ECA (ultrasound).

    Keyword arguments override :class:`Branch`'s defaults, e.g. ``backbone="resnet18",
    pretrained=False`` for the comparison backbone.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    overrides.setdefault("attention", MODALITY_ATTENTION[modality])
    return Branch(modality, **overrides)
