"""The built-in attention variants' options as pydantic models: one source for building, ``validate``,
the docs' component-options page and the JSON Schema. Defaults of the timm variants are timm's own (a test keeps them so)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

Placement = Literal["standard", "pre", "post", "identity"]  # SE, SE-PRE, SE-POST, SE-Identity (Hu et al., Fig. 5)


class NoneOptions(BaseModel):
    """``none`` takes no options."""

    model_config = ConfigDict(extra="forbid")


class PlacedOptions(NoneOptions):
    placement: Placement = Field("standard", description="where in the block: standard (before the addition), "
                                  "pre (before the residual branch), post (after the addition), identity (on the shortcut)")
    stages: list[StrictInt] | None = Field(None, min_length=1, description="stage numbers that get attention "
                                           "(paper numbering, e.g. [2, 3, 4]; default: every stage)")

    @field_validator("stages", mode="before")
    @classmethod
    def _one_stage(cls, value: object) -> object:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("stages")
    @classmethod
    def _sorted(cls, value: list[int] | None) -> list[int] | None:
        return sorted(set(value)) if value is not None else None


class SEOptions(PlacedOptions):
    reduction: StrictInt = Field(16, ge=1, description="r: hidden width is exactly C // r (no rounding)")
    bias: StrictBool = Field(False, description="biases in the two FC layers")
    squeeze: Literal["avg", "max"] = Field("avg", description="global pooling of the squeeze")
    excitation: Literal["sigmoid", "tanh", "relu", "hard_sigmoid"] = Field("sigmoid", description="gate function")
    fused: StrictBool = Field(True, description="the same SE with a two-pass backward (less memory); false: autograd")


class EcaOptions(PlacedOptions):
    kernel_size: StrictInt = Field(3, ge=1, description="timm ignores it here (the channel count is known): "
                                   "k follows from C, gamma and beta")
    gamma: float = Field(2, gt=0, description="adaptive kernel size k = odd(|log2(C) + beta| / gamma), at least 3")
    beta: float = Field(1, description="adaptive kernel size offset (see gamma)")


class CbamOptions(PlacedOptions):
    rd_ratio: float = Field(1 / 16, gt=0, le=1, description="channel MLP hidden width as a fraction of C")
    spatial_kernel_size: StrictInt = Field(7, ge=1, description="conv size of the spatial attention")


class EseOptions(PlacedOptions):
    """effective SE: one FC, no reduction; only where it goes."""


class GcOptions(PlacedOptions):
    rd_ratio: float = Field(1 / 8, gt=0, le=1, description="transform hidden width as a fraction of C")
    fuse_add: StrictBool = Field(False, description="add the context to the features")
    fuse_scale: StrictBool = Field(True, description="scale the features by the context (a gate)")
