"""Compile time and per-step time of gbl.train (issue: 2-32-32-1 tanh, two_spirals, Adam).

Usage: python scripts/bench_train.py [--steps 1000] [--repeats 5]
Compile time is the first call minus the best later call; per-step time is the best later call
divided by the step count. Also checks that compile time does not grow with the step count.
"""

import argparse
import time

import jax
import optax

import gbl_jax as gbl


def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 256)
    model = gbl.mlp([32, 32], data.head, activation="tanh")
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; 2-32-32-1 tanh, two_spirals n=256, "
        "Adam(1e-2)"
    )
    print(f"{'steps':>7} {'first call s':>13} {'run s':>8} {'compile s':>10} {'us/step':>8}")
    for steps in (args.steps, 10 * args.steps):
        adam = optax.adam(1e-2)
        run = lambda seed: (
            gbl.train(model, adam, data, key=jax.random.PRNGKey(seed), steps=steps).final_loss
        )
        first = timed(lambda: run(0))
        best = min(timed(lambda: run(i + 1)) for i in range(args.repeats))
        print(
            f"{steps:>7} {first:>13.3f} {best:>8.3f} {first - best:>10.3f} {1e6 * best / steps:>8.1f}"
        )


if __name__ == "__main__":
    main()
