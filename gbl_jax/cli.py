"""The ``gbl-jax`` command line.

``gbl-jax quickstart`` is the README's main job: a short tour that grows with the library.
Errors print one line on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time


def _quickstart(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    import gbl_jax as gbl

    key = jax.random.PRNGKey(args.seed)
    k_f, k_y = jax.random.split(key)
    f = jax.random.normal(k_f, (256, 2))
    y = f + jax.random.normal(k_y, (256, 2))
    nll = gbl.nll(gbl.Normal(f, 1.0), y)
    half_mse = 0.5 * gbl.mse(f, y) + jnp.log(2 * jnp.pi)
    print("Maximum likelihood with a unit Gaussian is 1/2 squared error + C (section 6.2.1.1):")
    print(f"  nll = {float(nll):.6f}   1/2 mse + log(2 pi) = {float(half_mse):.6f}")
    print("\nGradient reaching a sigmoid unit whose target is 1 (section 6.2.2.2):")
    logits = jnp.asarray([-10.0, -3.0, 0.0, 3.0, 10.0])
    report = gbl.diagnostics.saturation_report(logits, jnp.ones_like(logits))
    print(f"  {'logit':>6}  {'|grad NLL|':>11}  {'|grad SE|':>11}  {'ratio':>9}")
    for z, a, b, r in zip(logits.tolist(), report.nll_grad_norm.tolist(),
                          report.squared_error_grad_norm.tolist(), report.ratio.tolist()):
        print(f"  {z:>6.1f}  {a:>11.4g}  {b:>11.4g}  {r:>9.3g}")
    print("  NLL saturates only when the answer is right; squared error also when it is wrong.")

    import optax

    data = gbl.problems.xor()
    print("\nTraining a 2-8-1 tanh network on XOR with Adam, 500 steps:")
    res = gbl.train(gbl.mlp([8], data.head), optax.adam(0.05), data, key=key, steps=500)
    for step in (0, 100, 200, 300, 400, 499):
        print(f"  step {step:>4}  nll {float(res.losses[step]):.5f}")
    print(f"  final nll {float(res.final_loss):.5f}")
    return 0


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage too; we keep it to one line
        raise _ArgumentError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gbl-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    quick = sub.add_parser("quickstart", help="the main job: a short tour of section 6.2")
    quick.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    quick.set_defaults(run=_quickstart)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        start = time.perf_counter()
        status = args.run(args)
        print(f"\ndone in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        return status
    except (_ArgumentError, ValueError) as err:
        print(f"gbl-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbl-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
