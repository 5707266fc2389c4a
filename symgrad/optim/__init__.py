"""torch.optim for symgrad: the Optimizer base, SGD, Adam, AdamW, RMSprop, lr_scheduler.

Optimizers update parameters in place under no_grad with torch's single-tensor formulas.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
