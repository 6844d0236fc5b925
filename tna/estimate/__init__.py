"""Will it fit, and what will it cost? An estimate of a netx net on Loihi 2.

`estimate(model, cfg, activity)` maps the net onto neurocores as Intel's Loihi 2 compiler
would (tna.estimate.fit, fitted to the compiler's printouts) and, given activity counted on
data (tna.estimate.activity), estimates time and energy per inference (tna.estimate.cost).
Everything here estimates Intel's compiler and chip; none of it is their output.
"""
from tna.estimate.activity import Activity, count
from tna.estimate.config import EstimateConfig
from tna.estimate.estimate import Estimate, estimate

__all__ = ["Activity", "Estimate", "EstimateConfig", "count", "estimate"]
