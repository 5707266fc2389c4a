"""torch.nn for symgrad: Module and Parameter, layers, losses, containers, `init`, `functional`.

Read in the order parameter → module → containers → layers → loss; `init` fills
tensors in place and `functional` holds the differentiable math the layers call.
"""

from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import Module
from .parameter import Parameter
