"""gbl_jax: gradient-based learning with distributional outputs (Deep Learning, section 6.2).

The public API is the names in ``__all__``: functions and classes at the top level
(``gbl.sweep``, ``gbl.nll``, ``gbl.Normal``, ...) and the modules ``diagnostics``, ``heads``,
``inits``, ``landscape_report``, ``models``, ``plots``, ``population`` and ``problems``. Every
other module is internal: it may change or move between releases.
"""

from gbl_jax import diagnostics, heads, inits, landscape_report, models, plots, population
from gbl_jax import problems
from gbl_jax.compilation import count_compiles
from gbl_jax.compilation import enable_compilation_cache
from gbl_jax.comparisons import Comparison
from gbl_jax.comparisons import compare
from gbl_jax.convnets import cnn1d
from gbl_jax.costs import absolute_error, accuracy, mae, mse, nll, squared_error
from gbl_jax.curvature import CriticalPoints
from gbl_jax.curvature import critical_points
from gbl_jax.devices import use_cpu_cores
from gbl_jax.distributions import Bernoulli
from gbl_jax.distributions import Categorical
from gbl_jax.distributions import Laplace
from gbl_jax.distributions import MixtureNormal
from gbl_jax.distributions import MultivariateNormalTriL
from gbl_jax.distributions import Normal
from gbl_jax.distributions import log_prob
from gbl_jax.distributions import validate
from gbl_jax.landscape import Basins
from gbl_jax.landscape import align
from gbl_jax.landscape import barrier
from gbl_jax.landscape import basins
from gbl_jax.landscape import interpolate
from gbl_jax.models import Model
from gbl_jax.nets import mlp
from gbl_jax.results import load
from gbl_jax.spreads import Spread
from gbl_jax.spreads import spread
from gbl_jax.spreads import wilson_interval
from gbl_jax.sweeps import SweepResult
from gbl_jax.sweeps import sweep
from gbl_jax.training import TrainResult
from gbl_jax.training import train

__version__ = "0.3.0"

__all__ = [
    "Basins",
    "Bernoulli",
    "Categorical",
    "Comparison",
    "CriticalPoints",
    "Laplace",
    "MixtureNormal",
    "Model",
    "MultivariateNormalTriL",
    "Normal",
    "Spread",
    "SweepResult",
    "TrainResult",
    "absolute_error",
    "accuracy",
    "align",
    "barrier",
    "basins",
    "cnn1d",
    "compare",
    "count_compiles",
    "critical_points",
    "diagnostics",
    "enable_compilation_cache",
    "heads",
    "inits",
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
    "problems",
    "spread",
    "squared_error",
    "sweep",
    "train",
    "use_cpu_cores",
    "validate",
    "wilson_interval",
]
