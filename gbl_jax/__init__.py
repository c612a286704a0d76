"""gbl_jax: gradient-based learning with distributional outputs (Deep Learning, section 6.2).

The public API is the names in ``__all__``: functions and classes at the top level
(``gbl.sweep``, ``gbl.nll``, ``gbl.Normal``, ...) and the modules ``diagnostics``, ``heads``,
``inits``, ``landscape_report``, ``models``, ``plots``, ``population``, ``probes`` and
``problems``. Every other module is internal: it may change or move between releases.
"""

from gbl_jax._version import __version__
from gbl_jax.probability import diagnostics
from gbl_jax.nets import heads
from gbl_jax.nets import inits
from gbl_jax.analysis import landscape_report
from gbl_jax.nets import models
from gbl_jax.analysis import plots
from gbl_jax.engine import probes
from gbl_jax.data import population
from gbl_jax.data import problems
from gbl_jax.engine.compilation import count_compiles
from gbl_jax.engine.compilation import enable_compilation_cache
from gbl_jax.analysis.comparisons import Comparison
from gbl_jax.analysis.comparisons import compare
from gbl_jax.nets.convnets import cnn1d
from gbl_jax.probability.costs import absolute_error, accuracy, mae, mse, nll, squared_error
from gbl_jax.analysis.curvature import CriticalPoints
from gbl_jax.analysis.curvature import critical_points
from gbl_jax.engine.devices import use_cpu_cores
from gbl_jax.probability.distributions import Bernoulli
from gbl_jax.probability.distributions import Categorical
from gbl_jax.probability.distributions import Laplace
from gbl_jax.probability.distributions import MixtureNormal
from gbl_jax.probability.distributions import MultivariateNormalTriL
from gbl_jax.probability.distributions import Normal
from gbl_jax.probability.distributions import log_prob
from gbl_jax.probability.distributions import validate
from gbl_jax.analysis.instability import Instability
from gbl_jax.analysis.instability import instability
from gbl_jax.analysis.landscape import Basins
from gbl_jax.analysis.landscape import align
from gbl_jax.analysis.landscape import barrier
from gbl_jax.analysis.landscape import basins
from gbl_jax.analysis.landscape import interpolate
from gbl_jax.nets.models import Model
from gbl_jax.nets.mlp import mlp
from gbl_jax.engine.results import load
from gbl_jax.analysis.predictions import Calibration
from gbl_jax.analysis.predictions import Disagreement
from gbl_jax.analysis.predictions import EnsembleCurve
from gbl_jax.analysis.predictions import calibration
from gbl_jax.analysis.predictions import disagreement
from gbl_jax.analysis.predictions import ensemble
from gbl_jax.analysis.curves import Curve
from gbl_jax.analysis.curves import curve
from gbl_jax.analysis.surfaces import Surface
from gbl_jax.analysis.surfaces import surface
from gbl_jax.analysis.spreads import Spread
from gbl_jax.analysis.spreads import spread
from gbl_jax.analysis.spreads import wilson_interval
from gbl_jax.engine.results import SweepResult
from gbl_jax.engine.sweeps import crossed
from gbl_jax.engine.sweeps import sweep
from gbl_jax.engine.model_sweeps import sweep_models
from gbl_jax.analysis.variance import VarianceComponents
from gbl_jax.analysis.variance import variance_components
from gbl_jax.engine.training import TrainResult
from gbl_jax.engine.training import train


__all__ = [
    "Basins",
    "Bernoulli",
    "Calibration",
    "Categorical",
    "Comparison",
    "CriticalPoints",
    "Curve",
    "Disagreement",
    "EnsembleCurve",
    "Instability",
    "Laplace",
    "MixtureNormal",
    "Model",
    "MultivariateNormalTriL",
    "Normal",
    "Spread",
    "Surface",
    "SweepResult",
    "TrainResult",
    "VarianceComponents",
    "absolute_error",
    "accuracy",
    "align",
    "barrier",
    "basins",
    "calibration",
    "cnn1d",
    "compare",
    "count_compiles",
    "critical_points",
    "crossed",
    "curve",
    "diagnostics",
    "disagreement",
    "enable_compilation_cache",
    "ensemble",
    "heads",
    "inits",
    "instability",
    "interpolate",
    "landscape_report",
    "load",
    "log_prob",
    "mae",
    "mlp",
    "models",
    "mse",
    "nll",
    "plots",
    "population",
    "probes",
    "problems",
    "spread",
    "squared_error",
    "surface",
    "sweep",
    "sweep_models",
    "train",
    "use_cpu_cores",
    "validate",
    "variance_components",
    "wilson_interval",
]
