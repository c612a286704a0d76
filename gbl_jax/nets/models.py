"""The model protocol: any pure (init, apply) pair that maps params and inputs to a distribution.

The engine (``train``, ``sweep`` and everything built on them) reads nothing of a model but this:

  ``params = model.init(key, x)``    x: example inputs [N, ...] (flax's convention)
  ``dist = model.apply(params, x)``  anything with ``.log_prob(y)`` (or what the chosen loss reads)
  ``dist = model.apply(params, x, key=k)`` when ``model.stochastic`` (dropout and the like);
  evaluation (final loss, metrics, curvature, landscapes) calls it with ``key=None``.

Params are any pytree; nothing reads their layout. ``gbl.mlp`` builds a ``Model``; ``from_flax``
(linen), ``from_nnx`` (flax NNX) and ``from_equinox`` adapt modules of those libraries (optional
extras: ``pip install 'gbl_jax[flax]'`` or ``'gbl_jax[equinox]'``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax


class Model(NamedTuple):
    """A model: ``init(key, x) -> params`` and ``apply(params, x[, key]) -> distribution``.

    Attributes:
      init: ``(key, x [N, ...]) -> params`` (any pytree).
      apply: ``(params, x [N, ...]) -> dist``; with ``key=`` as well when ``stochastic``.
      name: shown in results and figures.
      stochastic: whether ``apply`` takes a ``key`` (dropout); the engine passes one per step
        during training (from the run's data key) and ``key=None`` when evaluating.
    """

    init: Callable
    apply: Callable
    name: str = "model"
    stochastic: bool = False


def check_model(model: Any) -> None:
    """Raises ValueError unless ``model`` follows the protocol (duck typing: init and apply)."""
    missing = [name for name in ("init", "apply") if not callable(getattr(model, name, None))]
    if missing:
        raise ValueError(
            f"model must have callable init(key, x) and apply(params, x) (e.g. gbl.Model(init, "
            f"apply) or gbl.mlp(...)); {type(model).__name__} lacks {' and '.join(missing)}"
        )


def hashable_model(model: Any) -> Any:
    """``model``, or a ``Model`` with its init, apply, name and stochastic flag when ``model``
    cannot be hashed (a ``types.SimpleNamespace``, a mutable dataclass): the engine keys its
    compiled functions on the model and reads nothing else of it."""
    try:
        hash(model)
        return model
    except TypeError:
        return Model(model.init, model.apply, model_name(model), is_stochastic(model))


def is_stochastic(model: Any) -> bool:
    """Whether ``model.apply`` takes a key."""
    return bool(getattr(model, "stochastic", False))


def model_name(model: Any) -> str:
    return str(getattr(model, "name", type(model).__name__))


def apply_model(model: Any, params, x, key: jax.Array | None = None):
    """``model.apply(params, x)``, passing ``key`` (None when evaluating) if it is stochastic."""
    if is_stochastic(model):
        return model.apply(params, x, key=key)
    return model.apply(params, x)


def from_flax(
    module,
    to_dist: Callable[[Any], Any],
    *,
    stochastic: bool = False,
    rng: str = "dropout",
    name: str | None = None,
) -> Model:
    """Adapts a ``flax.linen`` module: params are its variables, ``to_dist`` maps its output.

    Args:
      module: a ``flax.linen.Module`` taking x [N, ...]. Modules with mutable collections
        (BatchNorm statistics) are not supported: every variable is trained.
      to_dist: maps the module's output to a distribution, e.g. ``lambda z: gbl.Bernoulli(z[:, 0])``.
      stochastic: the module draws from the ``rng`` stream (dropout). Training passes
        ``rngs={rng: key}``; evaluation passes none, so write the module to be deterministic
        then, e.g. ``nn.Dropout(0.1, deterministic=not self.has_rng("dropout"))``.
      rng: the name of the module's random stream.
      name: the model's name (default: the module's class name).
    """

    def init(key, x):
        variables = module.init(key, x)
        state = sorted(set(variables) - {"params"})
        if state:  # trained as weights, they would be wrong silently (use_running_average)
            raise ValueError(
                f"from_flax: {type(module).__name__} has the variable collection(s) {state} "
                "besides 'params' (BatchNorm's batch_stats, sown values, caches): not supported, "
                "every variable would be trained as a weight; use nn.LayerNorm or nn.GroupNorm "
                "instead of nn.BatchNorm"
            )
        return variables

    def apply(params, x, key=None):
        rngs = {rng: key} if key is not None else {}
        return to_dist(module.apply(params, x, rngs=rngs))

    if not stochastic:
        return Model(init, lambda params, x: apply(params, x), name or type(module).__name__)
    return Model(init, apply, name or type(module).__name__, True)


def from_equinox(
    make: Callable[[jax.Array], Any],
    to_dist: Callable[[Any], Any],
    *,
    stochastic: bool = False,
    per_example: bool = True,
    name: str | None = None,
) -> Model:
    """Adapts an equinox module: params are its inexact arrays, the rest is held fixed.

    Args:
      make: ``key -> module``, e.g. ``lambda key: eqx.nn.MLP(2, 1, 8, 1, key=key)``: every seed
        needs its own initialization, so a built module is refused (it holds one init).
      to_dist: maps the module's batched output to a distribution.
      stochastic: the module's ``__call__`` takes ``key=`` (dropout); evaluation passes
        ``key=None`` (write the module to run deterministically then, e.g. ``inference=key is
        None``).
      per_example: the module maps one example (equinox's convention) and is vmapped over the
        batch; False if it takes the batch itself.
      name: the model's name (default: the module's class name).
    """
    import equinox as eqx

    if isinstance(make, eqx.Module):
        raise ValueError(
            "from_equinox needs a function key -> module (e.g. lambda key: eqx.nn.MLP(2, 1, 8, 1, "
            f"key=key)), not a built {type(make).__name__}: a sweep draws one initialization per "
            "seed"
        )
    reference = make(jax.random.PRNGKey(0))
    _, static = eqx.partition(reference, eqx.is_inexact_array)

    def init(key, x):
        del x
        return eqx.partition(make(key), eqx.is_inexact_array)[0]

    def forward(params, x, key):
        module = eqx.combine(params, static)
        call = (lambda xi, k: module(xi, key=k)) if stochastic else (lambda xi, k: module(xi))
        if not per_example:
            return call(x, key)
        if key is None:
            return jax.vmap(lambda xi: call(xi, None))(x)
        return jax.vmap(call)(x, jax.random.split(key, x.shape[0]))

    label = name or type(reference).__name__
    if stochastic:
        return Model(
            init, lambda params, x, key=None: to_dist(forward(params, x, key)), label, True
        )
    return Model(init, lambda params, x: to_dist(forward(params, x, None)), label, False)


def from_nnx(
    make: Callable[[jax.Array], Any],
    to_dist: Callable[[Any], Any],
    *,
    stochastic: bool = False,
    rng: str = "dropout",
    name: str | None = None,
) -> Model:
    """Adapts a flax NNX module: params are its ``nnx.Param`` state, its graph is held fixed.

    ``make(key)`` is split once into a graph definition and state (``nnx.split``); ``apply``
    merges the params back into that graph (``nnx.merge``) and calls the module, so the model
    is pure: nothing the module writes to itself during a call is kept.

    Args:
      make: ``key -> module``, e.g. ``lambda key: Net(rngs=nnx.Rngs(key))``: every seed needs
        its own initialization, so a built module is refused (it holds one init). So is a
        module with variables besides ``nnx.Param`` (BatchNorm statistics, a kept RNG stream).
      to_dist: maps the module's output to a distribution, e.g.
        ``lambda z: gbl.Bernoulli(z[:, 0])``.
      stochastic: the module's ``__call__`` takes ``rngs=`` (dropout). Training passes
        ``rngs=nnx.Rngs(**{rng: key})``; evaluation passes ``rngs=None``, so write the module to
        be deterministic then, e.g. ``self.dropout(h, deterministic=rngs is None, rngs=rngs)``.
      rng: the name of the random stream that ``rngs`` carries when training.
      name: the model's name (default: the module's class name).
    """
    from flax import nnx

    if isinstance(make, nnx.Module):
        raise ValueError(
            "from_nnx needs a function key -> module (e.g. lambda key: Net(rngs=nnx.Rngs(key))), "
            f"not a built {type(make).__name__}: a sweep draws one initialization per seed"
        )
    reference = make(jax.random.PRNGKey(0))
    graphdef, _, *others = nnx.split(reference, nnx.Param, ...)
    kinds = sorted(
        {
            type(v).__name__
            for v in jax.tree.leaves(others[0], is_leaf=lambda v: isinstance(v, nnx.Variable))
        }
    )
    if kinds:  # held fixed by a pure apply, each would be wrong silently
        raise ValueError(
            f"from_nnx: {type(reference).__name__} holds variable(s) of type {kinds} besides "
            "nnx.Param: not supported. BatchNorm's BatchStat would stay at its initial value (use "
            "nnx.LayerNorm or nnx.GroupNorm); an RNG stream kept in the module (nnx.Dropout(rate, "
            "rngs=rngs)) would draw the same numbers every step (build nnx.Dropout(rate), take "
            "rngs= in __call__ and pass stochastic=True)"
        )

    def init(key, x):
        del x
        return nnx.split(make(key), nnx.Param, ...)[1]

    def forward(params, x, key):
        module = nnx.merge(graphdef, params)
        if not stochastic:
            return module(x)
        return module(x, rngs=None if key is None else nnx.Rngs(**{rng: key}))

    label = name or type(reference).__name__
    if stochastic:
        return Model(
            init, lambda params, x, key=None: to_dist(forward(params, x, key)), label, True
        )
    return Model(init, lambda params, x: to_dist(forward(params, x, None)), label, False)
