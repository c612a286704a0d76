"""gbl_jax: gradient-based learning with distributional outputs (Deep Learning, section 6.2)."""

from gbl_jax import diagnostics, heads, inits, problems
from gbl_jax.costs import absolute_error, mae, mse, nll, squared_error
from gbl_jax.distributions import Bernoulli
from gbl_jax.distributions import Categorical
from gbl_jax.distributions import Laplace
from gbl_jax.distributions import MixtureNormal
from gbl_jax.distributions import MultivariateNormalTriL
from gbl_jax.distributions import Normal
from gbl_jax.distributions import log_prob
from gbl_jax.distributions import validate
from gbl_jax.nets import Model
from gbl_jax.nets import mlp
from gbl_jax.spreads import Spread
from gbl_jax.spreads import spread
from gbl_jax.sweeps import SweepResult
from gbl_jax.sweeps import sweep
from gbl_jax.training import TrainResult
from gbl_jax.training import train

__version__ = "0.1.0"
