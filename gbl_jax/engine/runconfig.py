"""A run's configuration, checked once and eagerly before anything compiles.

``check_run`` turns the arguments of ``train`` / ``sweep`` into a hashable ``RunConfig`` (the key
of the compiled functions) and the data arrays, or raises ``ValueError`` saying what is wrong:
the protocol (a model without init/apply), the data (lengths, NaN or inf with its first index,
labels outside the output unit's domain), the integers, the grid's names. The abstract part
(``jax.eval_shape`` of init, apply, the loss and the metrics) is cached per configuration, so a
repeated call pays only for the checks of the data's values.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.checks import first_bad_index, require_finite_array, require_finite_number, require_int
from gbl_jax.engine.compilation import canonical
from gbl_jax.engine.probes import check_probes
from gbl_jax.nets.models import check_model, hashable_model, is_stochastic
from gbl_jax.probability.costs import nll
from gbl_jax.probability.distributions import Bernoulli, Categorical

LOG_POINTS = 100  # the default log_every keeps about this many points of each loss curve


def default_log_every(steps: int) -> int:
    """The default ``log_every`` for ``steps``: ceil(steps / LOG_POINTS), at least 1."""
    return max(1, -(-steps // LOG_POINTS))


class RunConfig(NamedTuple):
    """Everything static about a run (hashable: the key of its compiled functions)."""

    model: Any
    optimizer: Any
    loss: Callable
    steps: int
    batch_size: int | None
    log_every: int
    metrics: tuple  # ((name, fn), ...)
    has_eval: bool
    grad_tol: float | None
    dtype: Any  # a numpy dtype or None
    keep_predictions: bool = False  # return the predictive distribution on the eval data
    keep_trajectory: bool = False  # return the params at each logging window's end
    probes: tuple = ()  # ((name, gbl.probes.Probe), ...) evaluated at each window's end

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric a run logs: the metrics on the training data, then ``test_nll`` and
        ``test_<name>`` on the eval data when there is one."""
        names = tuple(name for name, _ in self.metrics)
        if not self.has_eval:
            return names
        return names + ("test_nll",) + tuple(f"test_{n}" for n in names)


def _numeric(name: str, a) -> jax.Array:
    """``a`` as a jax array; raises unless it holds numbers (strings, objects)."""
    if not isinstance(a, jax.Array):
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must hold numbers (bool, integer or float), got dtype "
                f"{a.dtype} (e.g. {a.reshape(-1)[:1].tolist()}); encode labels as "
                "integers first"
            )
    return jnp.asarray(a)


def _pair(name: str, data) -> tuple[jax.Array, jax.Array]:
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an (x, y) pair (a gbl.problems record or a tuple of "
            f"arrays), got {type(data).__name__}"
        ) from None
    prefix = "" if name == "data" else f"{name} "
    x, y = _numeric(f"{prefix}x", x), _numeric(f"{prefix}y", y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name}: x and y must have the same number of examples along axis 0; "
            f"got x {list(x.shape)}, y {list(y.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: x {list(x.shape)}, y {list(y.shape)}")
    return x, y


@functools.lru_cache(maxsize=8)
def _raw_key_shape(impl: str) -> tuple[int, ...]:
    del impl  # the cache key: the shape is that of the default implementation's keys
    return jax.eval_shape(jax.random.PRNGKey, 0).shape


def is_typed_key(key) -> bool:
    """Whether ``key`` is a typed PRNG key array (``jax.random.key``), not legacy raw uint32."""
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def check_key(key, name: str = "key") -> jax.Array:
    """``key`` as an array; raises unless it is one PRNG key (typed, or legacy raw uint32).
    Messages call it ``name``."""
    a = key if isinstance(key, jax.Array) else np.asarray(key)
    if is_typed_key(a):
        ok = a.shape == ()
    else:
        ok = a.dtype == np.uint32 and a.shape == _raw_key_shape(
            str(jax.config.jax_default_prng_impl)
        )
    if not ok:
        got = (
            repr(key)
            if np.ndim(key) == 0 and not isinstance(key, jax.Array)
            else f"an array of shape {list(a.shape)} and dtype {a.dtype}"
        )
        raise ValueError(
            f"{name} must be one jax.random.PRNGKey(seed) or jax.random.key(seed), got {got}"
        )
    return jnp.asarray(a) if not isinstance(a, jax.Array) else a


def check_dtype(dtype):
    """``dtype`` as a numpy floating dtype (None stays None); raises for anything else."""
    if dtype is None:
        return None
    try:
        resolved = jnp.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        raise ValueError(
            f"dtype must be a floating dtype (e.g. 'float32', 'bfloat16') or None, "
            f"got {dtype!r}: params are trained by gradients"
        )
    return resolved


# learning_rate <= 0 is gradient ascent or no training; init_scale 0 is a deliberate control (every
# seed starts from the same zero weights, and symmetry is never broken), a negative one is not.
POSITIVE_HYPERS = ("learning_rate",)
NONNEGATIVE_HYPERS = ("init_scale",)


def check_representable(name: str, value: float, dtypes: tuple = ()) -> None:
    """Raises unless a nonzero ``value`` stays nonzero and finite in float32 (how numbers enter
    the program) and in each of ``dtypes``: 1e-46 is 0 in float32, so it would train as 0.
    Messages start with ``name``."""
    for dt in (np.dtype(np.float32),) + tuple(dtypes):
        with np.errstate(over="ignore", under="ignore"):
            held = float(np.asarray(value, dt).astype(np.float64))
        if value != 0 and (held == 0 or not np.isfinite(held)):
            info = jnp.finfo(dt)
            raise ValueError(
                f"{name}: {value!r} is {'0' if held == 0 else 'inf'} in {dt}, so the run "
                f"would train with {held!r}; {dt} holds magnitudes from "
                f"{float(info.smallest_subnormal):.3g} to {float(info.max):.3g}"
            )


def check_hyper_values(grid: Mapping[str, Any], dtypes: tuple) -> None:
    """Raises unless every value of ``grid`` ({name: [values]}) trains as given.

    ``learning_rate`` must be > 0 and ``init_scale`` >= 0 (an exact 0 is the zero-init
    control), and a nonzero value must stay nonzero and finite in float32 (how values enter the
    program) and in each of ``dtypes``: 1e-46 is 0 in float32, so it would train as 0.
    """
    for name, values in grid.items():
        for value in values:
            if isinstance(value, (jax.Array, np.ndarray)) and value.ndim == 0:
                value = value.item()
            v = require_finite_number(name, value)
            if name in POSITIVE_HYPERS and v <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r} (gradient ascent)")
            if name in NONNEGATIVE_HYPERS and v < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0: every seed starts from zero weights), got {value!r}"
                )
            check_representable(name, v, dtypes)


def _cast(a: jax.Array, dtype) -> jax.Array:
    return a.astype(dtype) if dtype is not None and jnp.issubdtype(a.dtype, jnp.floating) else a


def _injects(state) -> bool:
    """Whether ``state`` is an ``optax.inject_hyperparams`` state (its numbers in a dict)."""
    return hasattr(state, "hyperparams") and isinstance(state.hyperparams, dict)


def hyper_names(opt_state) -> set[str]:
    """Numeric hyperparameters of every ``optax.inject_hyperparams`` state inside ``opt_state``."""
    names: set[str] = set()
    if _injects(opt_state):
        names |= set(opt_state.hyperparams)
    if isinstance(opt_state, (tuple, list)):
        for child in opt_state:
            names |= hyper_names(child)
    return names


def set_hyperparams(opt_state, values: Mapping[str, Any]):
    """``opt_state`` with the numeric hyperparameters of every ``optax.inject_hyperparams`` state
    inside it set to ``values`` ({name: value}, each cast to the dtype it replaces); names a
    state lacks are left out. The walk is ``hyper_names``'."""
    if _injects(opt_state):
        hyper = dict(opt_state.hyperparams)
        for name, value in values.items():
            if name in hyper:
                hyper[name] = jnp.asarray(value, jnp.result_type(hyper[name]))
        opt_state = opt_state._replace(hyperparams=hyper)
    if isinstance(opt_state, tuple):
        children = [set_hyperparams(child, values) for child in opt_state]
        return (
            opt_state._make(children) if hasattr(opt_state, "_make") else type(opt_state)(children)
        )
    if isinstance(opt_state, list):
        return [set_hyperparams(child, values) for child in opt_state]
    return opt_state


def _abstract(a) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


def user_call(what: str, x_aval, fn, *args):
    """``jax.eval_shape(fn, *args)``; what the user's code raises becomes one ValueError line
    that says which call failed (the original stays chained for a traceback)."""
    try:
        return jax.eval_shape(fn, *args)
    except ValueError as err:
        raise ValueError(
            f"{what} failed for x {list(x_aval.shape)}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from err
    except (Exception, SystemExit) as err:  # the user's code: any error, said in one line
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(
            f"{what} failed for x {list(x_aval.shape)}: {type(err).__name__}: {first}"
        ) from err


@functools.lru_cache(maxsize=128)
def _abstract_checks(
    model, optimizer, loss, metrics, key_aval, x_aval, y_aval, batch_size, eval_avals, grid_names
):
    """The checks that need only shapes; returns the abstract distribution on the full data."""
    params = user_call("model.init(key, x)", x_aval, model.init, key_aval, x_aval)
    floats = [jnp.issubdtype(leaf.dtype, jnp.inexact) for leaf in jax.tree.leaves(params)]
    if not floats or not all(floats):
        found = [str(leaf.dtype) for leaf in jax.tree.leaves(params)] or ["no arrays"]
        raise ValueError(
            f"model.init(key, x) must return a pytree of floating arrays to train; "
            f"its leaves are {found[:4]}"
        )
    apply = lambda p, xb: (
        model.apply(p, xb, key=None)
        if is_stochastic(model)  # noqa: E731
        else model.apply(p, xb)
    )
    dist = user_call("model.apply(params, x)", x_aval, apply, params, x_aval)
    if loss is nll and not hasattr(dist, "log_prob"):
        kind = "an array" if isinstance(dist, jax.ShapeDtypeStruct) else type(dist).__name__
        raise ValueError(
            f"model.apply(params, x) returned {kind} "
            f"{list(getattr(dist, 'shape', []))}, which has no log_prob: gbl.nll "
            "needs a distribution (return e.g. gbl.Categorical(logits) or "
            "gbl.Normal(mean, 1.0)), or pass a loss that reads what apply returns"
        )
    bs = x_aval.shape[0] if batch_size is None else batch_size
    xb = jax.ShapeDtypeStruct((bs,) + x_aval.shape[1:], x_aval.dtype)
    yb = jax.ShapeDtypeStruct((bs,) + y_aval.shape[1:], y_aval.dtype)
    out = jax.eval_shape(lambda p, a, b: loss(apply(p, a), b), params, xb, yb)
    if getattr(out, "shape", None) != ():
        raise ValueError(f"loss must return a scalar, got shape {getattr(out, 'shape', out)}")
    for name, fn in metrics:
        targets = [(x_aval, y_aval)] + ([eval_avals] if eval_avals is not None else [])
        for xa, ya in targets:
            value = jax.eval_shape(lambda p, a, b: fn(apply(p, a), b), params, xa, ya)
            if getattr(value, "shape", None) != ():
                raise ValueError(
                    f"metric {name!r} must return a scalar, got shape "
                    f"{getattr(value, 'shape', value)}"
                )
    if eval_avals is not None:
        jax.eval_shape(lambda p, a, b: loss(apply(p, a), b), params, *eval_avals)
    accepted = {"init_scale"}
    if any(name != "init_scale" for name in grid_names):
        accepted |= hyper_names(jax.eval_shape(optimizer.init, params))
    unknown = [name for name in grid_names if name not in accepted]
    if unknown:
        hint = (
            ""
            if len(accepted) > 1
            else "; wrap the optimizer in optax.inject_hyperparams "
            "(e.g. optax.inject_hyperparams(optax.adam)(learning_rate=0.05)) to vary its "
            "hyperparameters"
        )
        raise ValueError(
            f"grid key(s) {unknown} are not hyperparameters of this run; accepted: "
            f"{sorted(accepted)}{hint}"
        )
    return dist


def check_targets(dist, y, name: str = "y") -> None:
    """Raises if ``y`` lies outside the support of the output unit ``dist`` (abstract is fine).

    Bernoulli targets must lie in [0, 1] (soft labels allowed), Categorical labels must be
    integers in [0, K); the message names the first bad index.
    """
    values = np.asarray(y)
    if isinstance(dist, Bernoulli):
        bad = ~((values >= 0) & (values <= 1))
        what = "Bernoulli targets must lie in [0, 1]"
    elif isinstance(dist, Categorical):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"Categorical labels {name} must have an integer dtype, got {values.dtype}"
            )
        k = dist.logits.shape[-1]
        bad = (values < 0) | (values >= k)
        what = f"Categorical labels must lie in [0, {k})"
    else:
        return
    if bad.any():
        index = first_bad_index(bad)
        raise ValueError(
            f"{what}; {int(bad.sum())} entries of {name} do not, the first is "
            f"{name}[{', '.join(map(str, index))}] = {values[index].item()!r}"
        )


def check_run(
    model,
    optimizer,
    data,
    *,
    key,
    steps,
    batch_size=None,
    loss,
    log_every=1,
    metrics: Mapping[str, Callable] | None = None,
    eval_data=None,
    grad_tol=None,
    grid: Mapping[str, Any] | None = None,
    dtype=None,
    keep_predictions=False,
    keep_trajectory=False,
    probes: Mapping[str, Any] | None = None,
):
    """Validates a run; returns (``RunConfig``, (x, y, eval_x, eval_y)) (eval None if absent)."""
    check_model(model)
    model = canonical(hashable_model(model))
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise ValueError(
            "optimizer must be an optax GradientTransformation (init and update), got "
            f"{type(optimizer).__name__}"
        )
    if not callable(loss):
        raise ValueError(f"loss must be a function (dist, y) -> scalar, got {loss!r}")
    steps = require_int("steps", steps, 1)
    log_every = require_int("log_every", log_every, 1)
    if log_every > steps:
        raise ValueError(f"log_every ({log_every}) must not exceed steps ({steps})")
    key = check_key(key)
    dtype = check_dtype(dtype)
    x, y = (_cast(a, dtype) for a in _pair("data", data))
    check_hyper_values(
        dict(grid or {}),
        tuple(
            {dt for dt in (dtype, x.dtype) if dt is not None and jnp.issubdtype(dt, jnp.floating)}
        ),
    )
    n = x.shape[0]
    if batch_size is not None:
        if require_int("batch_size", batch_size, 1) > n:
            raise ValueError(
                f"batch_size must be None or an integer in [1, {n}] (the number of "
                f"examples), got {batch_size!r}"
            )
        batch_size = int(batch_size)
    if grad_tol is not None:
        grad_tol = require_finite_number("grad_tol", grad_tol, positive=True)
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        if not isinstance(name, str) or not callable(fn):
            raise ValueError(
                f"metrics must map names to functions fn(dist, y) -> scalar; got {name!r}: {fn!r}"
            )
    optimizer, loss = canonical(optimizer), canonical(loss)
    metrics = {name: canonical(fn) for name, fn in metrics.items()}
    ex = ey = None
    if eval_data is not None:
        ex, ey = (_cast(a, dtype) for a in _pair("eval_data", eval_data))
        if ex.shape[1:] != x.shape[1:] or ey.shape[1:] != y.shape[1:]:
            raise ValueError(
                f"eval_data must match the training data's example shapes; got x "
                f"{list(ex.shape)}, y {list(ey.shape)} against x {list(x.shape)}, "
                f"y {list(y.shape)}"
            )
    for name, a in (("x", x), ("y", y), ("eval_data x", ex), ("eval_data y", ey)):
        if a is not None:
            require_finite_array(name, a)
    dist = _abstract_checks(
        model,
        optimizer,
        loss,
        tuple(metrics.items()),
        _abstract(key),
        _abstract(x),
        _abstract(y),
        batch_size,
        None if ex is None else (_abstract(ex), _abstract(ey)),
        tuple(grid or {}),
    )
    check_targets(dist, y, "y")
    if ey is not None:
        check_targets(dist, ey, "eval_data y")
    if not isinstance(keep_predictions, bool):
        raise ValueError(f"keep_predictions must be True or False, got {keep_predictions!r}")
    if keep_predictions and ex is None:
        raise ValueError(
            "keep_predictions=True keeps each run's predictive distribution on the "
            "held-out set: pass eval_data (e.g. eval_data=data.test)"
        )
    if not isinstance(keep_trajectory, bool):
        raise ValueError(f"keep_trajectory must be True or False, got {keep_trajectory!r}")
    probes = check_probes(probes)
    if probes and grad_tol is not None:
        raise ValueError(
            "probes and grad_tol do not go together yet (a run frozen at "
            "convergence has no windows to probe): pass one"
        )
    cfg = RunConfig(
        model,
        optimizer,
        loss,
        steps,
        batch_size,
        log_every,
        tuple(metrics.items()),
        ex is not None,
        grad_tol,
        dtype,
        keep_predictions,
        keep_trajectory,
        probes,
    )
    return cfg, (x, y, ex, ey)
