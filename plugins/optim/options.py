"""The built-in optimizers' and schedulers' options as pydantic models. Every default is torch's own (a test
keeps them so), except ``lr``, whose default is the study's (``training.optimizer.lr``, 0.01)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Optimizer(_Options):
    lr: float = Field(0.01, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty added to the gradient")


class SGDOptions(_Optimizer):
    momentum: float = Field(0.0, ge=0, description="momentum factor")
    dampening: float = Field(0.0, ge=0, description="dampening for momentum")
    nesterov: StrictBool = Field(False, description="Nesterov momentum (needs momentum > 0 and dampening 0)")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDOptions:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov: true needs momentum > 0 and dampening 0; set momentum (e.g. 0.9) "
                             "or drop nesterov")
        return self


class AdamOptions(_Optimizer):
    betas: tuple[float, float] = Field((0.9, 0.999), description="decay rates of the moment estimates")
    eps: float = Field(1e-8, gt=0, description="added to the denominator")
    amsgrad: StrictBool = Field(False, description="the AMSGrad variant")


class AdamWOptions(AdamOptions):
    weight_decay: float = Field(0.01, ge=0, description="decoupled weight decay")


class RMSpropOptions(_Optimizer):
    alpha: float = Field(0.99, ge=0, description="smoothing constant")
    eps: float = Field(1e-8, gt=0, description="added to the denominator")
    momentum: float = Field(0.0, ge=0, description="momentum factor")
    centered: StrictBool = Field(False, description="normalise by the estimated gradient variance")


EPOCHS = "a whole number of epochs >= 1"


class StepOptions(_Options):
    step_size: StrictInt = Field(7, ge=1, description=f"epochs between decays ({EPOCHS})")
    gamma: float = Field(0.1, gt=0, description="factor at each decay")


class MultiStepOptions(_Options):
    milestones: list[StrictInt] = Field(min_length=1, description="epochs at which the lr is multiplied by gamma")
    gamma: float = Field(0.1, gt=0, description="factor at each milestone")


class CosineOptions(_Options):
    T_max: StrictInt | None = Field(None, ge=1, description=f"epochs of the half cosine ({EPOCHS}; default: "
                                    "training.epochs)")
    eta_min: float = Field(0.0, ge=0, description="lowest learning rate")


class ExponentialOptions(_Options):
    gamma: float = Field(gt=0, description="factor every epoch")


class ConstantOptions(_Options):
    """A constant learning rate takes no options."""
