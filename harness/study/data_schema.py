"""The study file's schema, its data part: the strict model base and the ``dataset:`` keys (pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import StrictBool as Bool  # no 'true' for a count, no 'yes' string for a flag
from pydantic import StrictInt as Int


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf / .nan are never a setting


AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    "none": {"hflip": 0.0, "vflip": 0.0, "rotate": 0.0, "scale": (1.0, 1.0), "translate": 0.0,
             "brightness": 0.0, "contrast": 0.0},
    "light": {"hflip": 0.5, "vflip": 0.0, "rotate": 0.0, "scale": (0.9, 1.0), "translate": 0.05,
              "brightness": 0.0, "contrast": 0.0},
    "standard": {"hflip": 0.5, "vflip": 0.0, "rotate": 10.0, "scale": (0.9, 1.0), "translate": 0.05,
                 "brightness": 0.1, "contrast": 0.1},
}


class AugmentSpec(StrictModel):
    """Training-time augmentation, applied on tensors (on the GPU when training there); off in eval.

    Nothing is applied unless the study declares it: ``augment: light`` (a preset name), or a
    mapping whose ``preset`` (default ``none``) is the starting point for the transforms it names.
    The resolved study lists every value, so what ran is on record.
    """

    preset: Literal["none", "light", "standard"] = "none"
    enabled: Bool = True
    hflip: float = Field(0.0, ge=0, le=1, description="probability of a horizontal flip")
    vflip: float = Field(0.0, ge=0, le=1, description="probability of a vertical flip")
    rotate: float = Field(0.0, ge=0, le=180, description="max rotation in degrees")
    scale: tuple[float, float] = Field((1.0, 1.0), description="zoom range (random-resized-crop)")
    translate: float = Field(0.0, ge=0, le=0.5, description="max shift as a fraction of size")
    brightness: float = Field(0.0, ge=0, le=1)
    contrast: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, value: Any) -> Any:
        if value is None or value is False:
            return {"preset": "none"}
        if isinstance(value, str):
            value = {"preset": value}
        if not isinstance(value, dict):
            return value
        preset = value.get("preset", "none")
        if preset not in AUGMENT_PRESETS:
            return value  # the Literal reports it with the allowed names
        named = set(value) - {"preset", "enabled"}
        if value.get("enabled") is True and preset == "none" and not named:
            raise ValueError("augment: {enabled: true} names no transform; use a preset (augment: light or "
                             "augment: standard) or name the transforms, e.g. {hflip: 0.5}")
        return {**AUGMENT_PRESETS[preset], **value}

    @field_validator("scale")
    @classmethod
    def _scale_order(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("scale must be [low, high] with 0 < low <= high")
        return value

    @property
    def active(self) -> bool:
        """Whether any transform runs."""
        return self.enabled and bool(
            self.hflip or self.vflip or self.rotate or self.translate or self.brightness or self.contrast
            or tuple(self.scale) != (1.0, 1.0))

    def describe(self) -> str:
        """What runs, for the report's protocol line ("none" when nothing does)."""
        if not self.active:
            return "none"
        parts = [f"hflip p={self.hflip:g}" if self.hflip else "", f"vflip p={self.vflip:g}" if self.vflip else "",
                 f"rotate ±{self.rotate:g}°" if self.rotate else "",
                 f"zoom {self.scale[0]:g}-{self.scale[1]:g}" if tuple(self.scale) != (1.0, 1.0) else "",
                 f"shift ±{self.translate * 100:g} %" if self.translate else "",
                 f"brightness ±{self.brightness:g}" if self.brightness else "",
                 f"contrast ±{self.contrast:g}" if self.contrast else ""]
        name = f"{self.preset} preset: " if self.preset != "none" else ""
        return name + ", ".join(p for p in parts if p)


class DuplicatesSpec(StrictModel):
    """``dataset.duplicates``: duplicate images, found before training (exact: identical decoded pixels;
    near: perceptual hash and thumbnail correlation)."""


    near_threshold: Int | None = Field(10, ge=0, le=32, description=(
        "near duplicates: at most this many of the 64 perceptual-hash bits differ (null: exact duplicates only)"))
    near_correlation: float = Field(0.99, ge=0.5, le=1.0, description=(
        "near duplicates must also have 32 x 32 grayscale thumbnails correlating at least this much (Pearson)"))
    cross_class: Literal["error", "allow"] = Field("error", description=(
        "one image (or a near copy) under two labels: stop with both file names, or allow it (recorded)"))
    group: Bool = Field(True, description=(
        "keep each cluster of duplicates on one side of every fold (merged with cv.group); false: only report them"))


class DatasetSpec(StrictModel):
    name: str
    image_size: Int = Field(64, ge=8, le=4096)
    options: dict[str, Any] = Field(default_factory=dict)
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="none unless declared")
    on_bad_image: Literal["error", "skip"] = "error"
    duplicates: DuplicatesSpec = Field(default_factory=DuplicatesSpec,
                                       description="duplicate and near-duplicate images: checked by default")
