"""A user's script with type annotations: ``tests/test_typing.py`` runs it and type-checks it.

It touches the public API the way a user would: every distribution family, a model built on a
problem's head, ``train``, ``sweep`` and ``spread``. mypy and pyright must accept it as written.
"""

import jax
import jax.numpy as jnp
import optax

import gbl_jax as gbl


@jax.jit
def nll_of_each_family(key: jax.Array) -> dict[str, jax.Array]:
    """The NLL of a batch of 4 zero targets under one distribution of each family."""
    loc: jax.Array = jax.random.normal(key, (4, 2))
    y: jax.Array = jnp.zeros((4, 2))
    normal: gbl.Normal = gbl.Normal(loc, 1.0)
    laplace = gbl.Laplace(loc=loc, scale=jnp.ones_like(loc))
    bernoulli = gbl.Bernoulli(jnp.zeros(4))
    categorical = gbl.Categorical(logits=jnp.zeros((4, 3)))
    mixture = gbl.MixtureNormal(jnp.zeros((4, 3)), jnp.zeros((4, 3, 2)), 1.0)
    mvn = gbl.MultivariateNormalTriL(loc, jnp.eye(2))
    return {
        "normal": gbl.nll(normal, y),
        "laplace": gbl.nll(laplace, y),
        "bernoulli": gbl.nll(bernoulli, jnp.ones(4)),
        "categorical": gbl.nll(categorical, jnp.zeros(4, jnp.int32)),
        "mixture": gbl.nll(mixture, y),
        "mvn": gbl.nll(mvn, y),
    }


def train_xor(model: gbl.Model) -> gbl.TrainResult:
    return gbl.train(
        model, optax.adam(0.05), gbl.problems.xor(), key=jax.random.PRNGKey(0), steps=20
    )


def sweep_xor(model: gbl.Model) -> gbl.Spread:
    data = gbl.problems.xor()
    out: gbl.SweepResult = gbl.sweep(
        model, optax.adam(0.05), data, key=jax.random.PRNGKey(0), seeds=4, steps=20
    )
    return gbl.spread(out)


def main() -> None:
    losses = nll_of_each_family(jax.random.PRNGKey(1))
    data = gbl.problems.xor()
    model = gbl.mlp([8], data.head)  # the README's line: a built-in problem's head is a Head
    hand_made: gbl.problems.Data[gbl.heads.Head] = gbl.problems.Data(
        data.x, data.y, gbl.heads.bernoulli()
    )
    assert gbl.mlp([8], hand_made.head).name == model.name
    result = train_xor(model)
    spread = sweep_xor(model)
    print({name: round(float(value), 3) for name, value in losses.items()})
    print(f"train: final loss {float(result.final_loss):.3f}; sweep: {spread}")


if __name__ == "__main__":
    main()
