"""torch.nn for symgrad: `functional` (and the tensor ops it is made of)."""

from . import functional
