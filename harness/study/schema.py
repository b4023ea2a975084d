"""The study file's schema (pydantic). This shape is the contract: extend it, don't rename it."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.study.data_schema import (  # noqa: F401  (part of this schema: imported from here too)
    AUGMENT_PRESETS,
    AugmentSpec,
    Bool,
    DatasetSpec,
    DuplicatesSpec,
    Int,
    StrictModel,
)

if TYPE_CHECKING:
    from harness.defaults import ComponentDefaults

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$"
DEFAULTS = "defaults"  # the validation context's key: the registry's ComponentDefaults (harness.defaults)
MAX_NAME = 100  # characters in a study or arm name: they become folder and file names


SeedSource = Literal["split", "init", "order", "augment"]


def study_context(defaults: ComponentDefaults | None, plugins: Any) -> dict[str, Any]:
    """pydantic's validation context for a study: what it does not name is ``defaults``' (a registry's), by
    default those of the registry of its ``plugins:`` (the entry points and those modules)."""
    from harness.registry import study_defaults

    return {DEFAULTS: defaults if defaults is not None else study_defaults(plugins)}


def _no_fixed_default(schema: dict[str, Any]) -> None:
    """A name the registry supplies has no default of the schema's own (``harness schema`` shows the registry's)."""
    schema.pop("default", None)


def _by_registry(kind: str) -> Any:
    """A component's field a study may leave unnamed (None): validated even then, into the registry's default."""
    return Field(validate_default=True, json_schema_extra=_no_fixed_default,
                 description=f"default: the one its plugin marks the default (`harness list {kind}`)")


def _registry_default(kind: str, value: Any, info: ValidationInfo) -> Any:
    """``value``, or where the study names no ``kind`` component (None) the registry's default, from the
    validation context (the loader's); a spec built in code without that context keeps None."""
    defaults = (info.context or {}).get(DEFAULTS)
    if isinstance(value, dict) and "name" not in value:  # options without a name (attention: {reduction: 4})
        return {"name": _registry_default(kind, None, info), **value} if defaults is not None else value
    if value is not None or defaults is None:
        return value
    if kind not in defaults.names:
        from harness.defaults import no_default

        raise ValueError(no_default(kind, "name one here"))
    return defaults.names[kind]


# a component's name (attention: or a mapping) that a study may leave out; validated into the registry's default
OptimizerName = Annotated[str | None, BeforeValidator(partial(_registry_default, "optimizers")), _by_registry("optimizers")]
SchedulerName = Annotated[str | None, BeforeValidator(partial(_registry_default, "schedulers")), _by_registry("schedulers")]
AttentionValue = Annotated[str | dict[str, Any] | None, BeforeValidator(partial(_registry_default, "attention")),
                           _by_registry("attention")]


def _every_source() -> list[SeedSource]:
    return ["split", "init", "order", "augment"]


class VarianceSpec(StrictModel):
    """One-at-a-time design (``cv.variance``): for each listed source, ``seeds`` settings of that seed with
    every other seed fixed; see :mod:`harness.seeds` for the repeats it becomes."""

    sources: list[SeedSource] = Field(min_length=1, description="the seeds varied one at a time")
    seeds: Int = Field(4, ge=2, le=50, description="settings per source (repeat 0, shared, is one of them)")
    together: Bool = Field(False, description="also vary every listed source at once (the total variance)")

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("sources lists a source twice")
        return value


class CVSpec(StrictModel):
    folds: Int = Field(5, ge=2, le=100)
    group: str | None = None
    repeats: Int = Field(1, ge=1, le=100)
    vary: list[SeedSource] = Field(default_factory=_every_source,
                                   description="the seeds that change from one repeat to the next; the others keep "
                                               "repeat 0's (default: all of them)")
    variance: VarianceSpec | None = Field(None, description="vary each source on its own (sets cv.repeats)")
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    stratify: Bool = True
    allow_group_overlap: Bool = Field(False, description="accept groups (cv.group) found in both the official test "
                                      "split and the CV pool; otherwise that is an error")
    fold_column: str | None = Field(None, description="a column of the dataset's table holding predefined folds "
                                                        "(the published ones); its distinct values are the folds")
    stop_when_settled: bool = Field(False, description="run repeats one at a time and stop once every arm's verdict "
                                    "is settled (group-sequential; cv.repeats is the maximum, >= 2)")

    @model_validator(mode="after")
    def _seeding(self) -> CVSpec:
        from harness.seeds import check_seeding

        check_seeding(self)
        return self


class DatasetEntry(DatasetSpec):
    """One entry of a multi-dataset study's ``datasets:`` list: a dataset spec with an ``id`` (its
    sub-run's folder, ``RUN/datasets/<id>/``) and optionally its own ``cv:`` (keys given there
    override the study's ``cv:``)."""

    id: str = Field(pattern=ID_PATTERN)
    cv: dict[str, Any] | None = Field(None, description="overrides of the study's cv.* for this dataset")


class OptimizerSpec(BaseModel):
    """``name`` picks the optimizer plugin; every other key is passed to it."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: OptimizerName = None
    lr: float = Field(0.01, gt=0)


class SchedulerSpec(BaseModel):
    """``name`` picks the scheduler plugin; every other key is passed to it."""

    model_config = ConfigDict(extra="allow")
    name: SchedulerName = None


class EarlyStoppingSpec(StrictModel):
    """Stop when the monitored value on the INNER selection split stops improving (never the scored fold)."""

    patience: Int | None = Field(None, ge=1)
    monitor: Literal["inner_loss", "inner_accuracy", "val_loss", "val_accuracy"] = "inner_loss"
    min_delta: float = Field(0.0, ge=0)

    @field_validator("monitor")
    @classmethod
    def _inner(cls, value: str) -> str:
        # "val_*" is the older spelling; it always meant the split used for selection, which is now
        # the inner split carved from the fold's training part, so it is stored under its true name
        return value.replace("val_", "inner_")


class SelectionSpec(StrictModel):
    """Which epoch's weights a fold scores, and the inner split any choice is made on.

    ``rule: last`` scores the last epoch trained; ``rule: best`` restores the epoch that was best on
    the inner split. ``inner_fraction`` carves that split from the fold's training part (stratified,
    grouped like the folds, seeded, the same for every arm); the fold's own validation part never
    drives a choice.
    """

    rule: Literal["last", "best"] = "last"
    inner_fraction: float | None = Field(None, gt=0, lt=0.5)


class WarmupSpec(StrictModel):
    """Linear warmup over the first ``epochs`` (lr x start_factor rising to the full lr), then the
    declared scheduler over the remaining epochs (torch's LinearLR + SequentialLR, stepped per epoch)."""

    epochs: Int = Field(ge=1)
    start_factor: float = Field(0.1, gt=0, le=1)


class ClipGradSpec(StrictModel):
    """Clip the gradients' total norm to ``max_norm`` before each step (unscaled first under AMP)."""

    max_norm: float = Field(gt=0)
    norm_type: float = Field(2.0, gt=0)


class EmaSpec(StrictModel):
    """An exponential moving average of the weights (timm's ModelEmaV3, updated after every step):
    ema = decay * ema + (1 - decay) * weights. The EMA weights are selected, scored and saved."""

    decay: float = Field(gt=0, lt=1)


class TrainingSpec(StrictModel):
    epochs: Int = Field(10, ge=1)
    batch_size: Int = Field(32, ge=1)
    optimizer: OptimizerSpec = Field(default_factory=dict, validate_default=True)  # validated: the registry's default
    scheduler: SchedulerSpec = Field(default_factory=dict, validate_default=True)
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    amp: Bool | None = None
    channels_last: Bool | None = None
    checkpoints: Literal["best", "none", "all"] = Field(
        "best", description="what a finished cell keeps: the scored weights (best.pt), nothing, or also last.pt "
                            "with the optimizer state (about 3x the weights)")
    threads: Int | None = Field(None, ge=1, description="CPU threads for torch")
    warmup: WarmupSpec | None = Field(None, description="linear lr warmup before the scheduler; off unless declared")
    clip_grad: ClipGradSpec | None = Field(None, description="gradient norm clipping; off unless declared")
    ema: EmaSpec | None = Field(None, description="EMA of the weights, which are then scored; off unless declared")
    deterministic: bool = Field(True, description="GPU: deterministic kernels, cuDNN autotuner off (same numbers "
                                                  "every run); false is faster but GPU runs then differ")
    compile: bool = Field(False, description="train through torch.compile (one compilation per architecture, "
                                             "reused by every cell); numbers may differ from eager in the last bits")
    cuda_graph: bool = Field(False, description="CUDA only: capture the whole training step (forward, backward, "
                                                "optimizer step) in a CUDA graph and replay it; the short last batch "
                                                "runs eagerly")

    @model_validator(mode="after")
    def _selection_has_inner_split(self) -> TrainingSpec:
        needs = [what for what, on in (("early stopping (early_stopping.patience)", self.early_stopping.patience),
                                       ("selection.rule: best", self.selection.rule == "best")) if on]
        if needs and self.selection.inner_fraction is None:
            raise ValueError(
                f"{' and '.join(needs)}: choosing an epoch needs data the fold is not scored on; add "
                "training.selection.inner_fraction (e.g. 0.1) to carve an inner selection split from the "
                "fold's training part, or drop the choice (the last epoch is then scored)")
        return self

    @model_validator(mode="after")
    def _cuda_graph_on_cuda(self) -> TrainingSpec:
        if self.cuda_graph and not self.device.startswith(("cuda", "auto")):
            raise ValueError(f"cuda_graph: true needs a CUDA device, not device: {self.device}; set "
                             "cuda_graph: false or device: cuda")
        return self

    @model_validator(mode="after")
    def _warmup_leaves_epochs(self) -> TrainingSpec:
        if self.warmup is not None and self.warmup.epochs >= self.epochs:
            raise ValueError(f"warmup.epochs ({self.warmup.epochs}) must be below epochs ({self.epochs}): the "
                             "declared scheduler runs after the warmup")
        return self


class ArmSpec(StrictModel):
    backbone: str
    attention: AttentionValue = None
    pretrained: bool | str = False
    training: dict[str, Any] = Field(default_factory=dict, description="overrides of training.*")


class CompareSpec(StrictModel):
    baseline: str | None = None
    metric: str = "accuracy"
    alpha: float = Field(0.05, gt=0, lt=1)
    rope: float = Field(0.01, ge=0)


class ParamSpec(StrictModel):
    """One searched key: ``{low, high[, log, step]}`` (int when low and high are ints) or ``{choices}``."""

    low: int | float | None = None
    high: int | float | None = None
    log: Bool = False
    step: int | float | None = Field(None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamSpec:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either non-empty choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs low and high (or give choices)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("a range cannot be both log and stepped (Optuna refuses it): drop log or step")
        return self

    @property
    def is_int(self) -> bool:
        """Integer range: low, high (and step) written as integers."""
        return (isinstance(self.low, int) and isinstance(self.high, int)
                and (self.step is None or isinstance(self.step, int)))


class TuneSpec(StrictModel):
    arms: list[str] | None = None
    metric: str = "accuracy"
    trials: Int = Field(20, ge=1)
    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    pruner: Literal["wilcoxon", "median", "hyperband", "none"] = "wilcoxon"
    wilcoxon_p: float = Field(0.1, gt=0, lt=1)
    space: dict[str, ParamSpec] = Field(min_length=1)
    storage: str | None = None
    nested: Bool = False
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="trials to run first, e.g. the known values")


class LoggerSpec(BaseModel):
    """An experiment tracker: a name (``tensorboard``) or ``{name: mlflow, <option>: ...}``; every key but
    ``name`` is the logger plugin's option."""

    model_config = ConfigDict(extra="allow")
    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Study(StrictModel):
    name: str = Field(pattern=ID_PATTERN, max_length=MAX_NAME)
    seed: Int = Field(0, ge=0, description="root of every random stream (numpy SeedSequence)")
    plugins: list[str] = Field(default_factory=list, description="extra plugin modules to load")
    dataset: DatasetSpec
    cv: CVSpec = Field(default_factory=CVSpec)
    training: TrainingSpec = Field(default_factory=dict, validate_default=True)  # validated: the registry's defaults
    arms: dict[str, ArmSpec] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = None
    compare: CompareSpec = Field(default_factory=CompareSpec)
    tune: TuneSpec | None = None
    init: Literal["standard", "zero_last_bn"] = Field(
        "standard", description="weight init for every arm: standard (every BatchNorm weight 1) or zero_last_bn "
        "(each residual branch's last BatchNorm weight 0, timm's zero_init_last; refused with attention)")
    loggers: list[LoggerSpec] = Field(default_factory=list, description="experiment trackers (tensorboard, mlflow); "
                                      "nothing is logged unless listed")

    @field_validator("loggers")
    @classmethod
    def _loggers_once(cls, loggers: list[LoggerSpec]) -> list[LoggerSpec]:
        names = [spec.name for spec in loggers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"logger {twice[0]!r} is listed twice; list each logger once (with its options)")
        return loggers

    @field_validator("arms")
    @classmethod
    def _same_selection_for_all(cls, arms: dict[str, ArmSpec], info: ValidationInfo) -> dict[str, ArmSpec]:
        study = info.data.get("training")
        for name, arm in arms.items():
            if study is None or "selection" not in arm.training:
                continue
            try:
                same = SelectionSpec.model_validate(arm.training["selection"]) == study.selection
            except ValueError:
                same = False
            if not same:  # (the resolved study repeats the study's own selection under every arm: allowed)
                raise ValueError(f"arm {name!r} sets training.selection; it is set once for the study (every arm "
                                 "is scored by the same rule on the same inner split): move it to training:")
        return arms

    @model_validator(mode="after")
    def _has_arms(self) -> Study:
        if not self.arms and not self.grid:
            raise ValueError("a study needs 'arms:' or 'grid:' (at least one arm)")
        return self

    @field_validator("init")
    @classmethod
    def _init_lets_attention_learn(cls, value: str, info: ValidationInfo) -> str:
        defaults = (info.context or {}).get(DEFAULTS)
        if value != "zero_last_bn" or defaults is None:  # (checked where the study is loaded against a registry)
            return value
        identity = defaults.identity_attention  # the "no attention" variant; None: no plugin marks one
        plain = (identity, {"name": identity}) if identity is not None else ()
        arms = info.data.get("arms") or {}
        grid = info.data.get("grid") or {}
        if any(a.attention not in plain for a in arms.values()) or any(v not in plain for v in grid.get("attention", [])):
            raise ValueError(
                "zero_last_bn zero-initialises each block's last BatchNorm, so attention placed after it starts "
                "with zero input and its weights get no gradient: the arms would not compare attention. "
                "Use init: standard (the default)")
        return value
