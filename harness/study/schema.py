"""The study file's schema (pydantic). This shape is the contract: extend it, don't rename it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AugmentSpec(StrictModel):
    """Training-time augmentation, applied on tensors (on the GPU when training there); off in eval."""

    enabled: bool = True
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    vflip: float = Field(0.0, ge=0, le=1, description="probability of a vertical flip")
    rotate: float = Field(10.0, ge=0, le=180, description="max rotation in degrees")
    scale: tuple[float, float] = Field((0.9, 1.0), description="zoom range (random-resized-crop)")
    translate: float = Field(0.05, ge=0, le=0.5, description="max shift as a fraction of size")
    brightness: float = Field(0.1, ge=0, le=1)
    contrast: float = Field(0.1, ge=0, le=1)

    @field_validator("scale")
    @classmethod
    def _scale_order(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("scale must be [low, high] with 0 < low <= high")
        return value


class DatasetSpec(StrictModel):
    name: str
    image_size: int = Field(64, ge=8, le=4096)
    options: dict[str, Any] = Field(default_factory=dict)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    on_bad_image: Literal["error", "skip"] = "error"


class CVSpec(StrictModel):
    folds: int = Field(5, ge=2, le=100)
    group: str | None = None
    repeats: int = Field(1, ge=1, le=100)
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    stratify: bool = True
    fold_column: str | None = Field(None, description="a column of the dataset's table holding predefined folds "
                                                        "(the published ones); its distinct values are the folds")


class OptimizerSpec(BaseModel):
    """``name`` picks the optimizer plugin; every other key is passed to it."""

    model_config = ConfigDict(extra="allow")
    name: str = "sgd"
    lr: float = Field(0.01, gt=0)


class SchedulerSpec(BaseModel):
    """``name`` picks the scheduler plugin; every other key is passed to it."""

    model_config = ConfigDict(extra="allow")
    name: str = "step"


class EarlyStoppingSpec(StrictModel):
    patience: int | None = Field(None, ge=1)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = Field(0.0, ge=0)


class TrainingSpec(StrictModel):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    amp: bool | None = None
    channels_last: bool | None = None
    threads: int | None = Field(None, ge=1, description="CPU threads for torch")


class ArmSpec(StrictModel):
    backbone: str
    attention: str | dict[str, Any] = "none"
    pretrained: bool | str = False
    training: dict[str, Any] = Field(default_factory=dict, description="overrides of training.*")

    @field_validator("attention")
    @classmethod
    def _attention_has_name(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, dict) and not isinstance(value.get("name"), str):
            raise ValueError("an attention mapping needs a 'name' (e.g. {name: se, reduction: 16})")
        return value


class CompareSpec(StrictModel):
    baseline: str | None = None
    metric: str = "accuracy"
    alpha: float = Field(0.05, gt=0, lt=1)
    rope: float = Field(0.01, ge=0)


class ParamSpec(StrictModel):
    """One searched key: ``{low, high[, log, step]}`` (int when low and high are ints) or ``{choices}``."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
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
        return self

    @property
    def is_int(self) -> bool:
        """Integer range: low, high (and step) written as integers."""
        return (isinstance(self.low, int) and isinstance(self.high, int)
                and (self.step is None or isinstance(self.step, int)))


class TuneSpec(StrictModel):
    arms: list[str] | None = None
    metric: str = "accuracy"
    trials: int = Field(20, ge=1)
    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    pruner: Literal["wilcoxon", "median", "hyperband", "none"] = "wilcoxon"
    wilcoxon_p: float = Field(0.1, gt=0, lt=1)
    space: dict[str, ParamSpec] = Field(min_length=1)
    storage: str | None = None
    nested: bool = False
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="trials to run first, e.g. the known values")


class Study(StrictModel):
    name: str = Field(pattern=ID_PATTERN)
    seed: int = 0
    plugins: list[str] = Field(default_factory=list, description="extra plugin modules to load")
    dataset: DatasetSpec
    cv: CVSpec = Field(default_factory=CVSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    arms: dict[str, ArmSpec] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = None
    compare: CompareSpec = Field(default_factory=CompareSpec)
    tune: TuneSpec | None = None

    @model_validator(mode="after")
    def _has_arms(self) -> Study:
        if not self.arms and not self.grid:
            raise ValueError("a study needs 'arms:' or 'grid:' (at least one arm)")
        return self
