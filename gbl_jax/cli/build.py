"""A sweep's config: its options checked, and the run it describes built.

A config is the flat dict of ``gbl-jax sweep``'s options, as the command line gives them and as
config.json stores them. ``resolve_config`` fills the defaults and checks every option, raising a
one-line ``UsageError`` (a hyperparameter's values by the engine's own rules, ``hyper_values``);
``resolve_sweep`` does so for ``gbl-jax sweep``'s options, or reconciles them with the stored
config of a sweep it resumes; ``build`` turns a config into the data, model, output unit, optimizer,
loss and grid; ``set_threshold`` fills in the default success threshold (``thresholds``).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

from gbl_jax.checks import require_int
from gbl_jax.cli import budgets, runstore, thresholds, usercode
from gbl_jax.data import datasets, problems
from gbl_jax.engine import results
from gbl_jax.engine.chunking import tree_bytes
from gbl_jax.engine.results import SweepResult
from gbl_jax.engine.runconfig import (
    check_hyper_values,
    check_representable,
    default_log_every,
    hyper_names,
    user_call,
)
from gbl_jax.engine.sweeps import check_grid
from gbl_jax.nets import convnets, inits
from gbl_jax.nets import heads as heads_module
from gbl_jax.nets.mlp import ACTIVATIONS, mlp
from gbl_jax.nets.models import apply_model
from gbl_jax.probability import costs
from gbl_jax.probability.distributions import Bernoulli, Categorical, Laplace, Normal
from gbl_jax.probability.mixtures import MixtureNormal

# Defaults of `sweep`; None in the parser so that --resume can tell what was given explicitly.
SWEEP_DEFAULTS = {
    "problem": "xor",
    "hidden": "2",
    "activation": "tanh",
    "init": "glorot_normal",
    "head": None,
    "components": 3,
    "loss": "nll",
    "optimizer": "adam",
    "lr": None,
    "init_scale": 1.0,
    "grid": None,
    "steps": 2000,
    "batch_size": None,
    "seeds": 1024,
    "seed": 0,
    "chunk_size": None,
    "n": None,
    "log_every": None,
    "threshold": None,
    "grad_tol": None,
    "classify": False,
    "keep_params": False,
    "data": None,
    "model": None,
    "channels": None,
    "crossed": None,
    "metric": None,
    "keep_predictions": False,
    "probe": None,
    "vary": None,
}
# Options that shape the built-in networks; --model builds its own and refuses them.
NET_OPTIONS = ("hidden", "activation", "init", "head", "components", "channels")
# filled in by ``fingerprint``; a config.json written before params_* existed lacks them
FINGERPRINTS = ("data_sha256", "model_sha256", "params_sha256", "params_shapes")
# Options a stored config may lack: config.json files written before the option existed.
OPTIONAL_STORED = ("grid", "crossed", "metric", "keep_predictions", "probe", "vary")
# --probe NAME: a gbl.probes function called with no arguments; --vary: sweep's vary
PROBES = ("distance_from_init", "grad_norm", "sharpness")
VARIES = {
    "init,data": ("init", "data"),
    "init": ("init",),
    "data": ("data",),
    "perturb": ("perturb",),
}
# Hyperparameters with an option of their own: ``--grid learning_rate=...`` is ``--lr ...`` and
# ``--grid init_scale=...`` is ``--init-scale ...``; every other --grid name stays in "grid".
SHORT_FORMS = {"learning_rate": "lr", "init_scale": "init_scale"}
# the key of ``grid_options``' {option: "--grid NAME"}: how an option given as --grid was spelled
GRID_FLAGS = "grid_flags"
# name: (optax function, its keyword arguments, default learning rate)
OPTIMIZERS = {
    "adam": ("adam", {}, 0.05),
    "sgd": ("sgd", {}, 0.5),
    "momentum": ("sgd", {"momentum": 0.9}, 0.1),
}
LOSSES = {"nll": "nll", "mse": "squared_error"}
HEADS = {
    name: fn
    for name, fn in vars(heads_module).items()
    if inspect.isfunction(fn)
    and fn.__module__ == heads_module.__name__
    and not name.startswith("_")
}
MAX_SEED = 2**32 - 2  # jax.random.PRNGKey folds larger seeds onto smaller ones
MAX_STEPS = 2**31 - 1  # the step counter is int32


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


# --- checking options ----------------------------------------------------------------------
def flag(name: str) -> str:
    """The command-line spelling of an option: ``flag("grad_tol") == "--grad-tol"``."""
    return "--" + name.replace("_", "-")


def check_int(
    name: str, value, least: int | None = None, most: int | None = None, none: bool = False
):
    """``value`` if it is an integer in [least, most] (or None when ``none``), else UsageError."""
    if value is None and none:
        return None
    try:
        require_int(name, value, least)
        ok = True
    except ValueError:
        ok = False
    if not ok or (most is not None and value > most):
        span = (
            f"in [{least}, {most}]"
            if most is not None
            else f">= {least}"
            if least is not None
            else ""
        )
        raise UsageError(f"{flag(name)} must be an integer {span}, got {value!r}")
    return value


def _parse_numbers(value, spelled: str) -> list[float]:
    """A number, a list, or a comma list as floats (a bool as NaN, which no check passes)."""
    parts = (
        value.split(",")
        if isinstance(value, str)
        else (value if isinstance(value, list) else [value])
    )
    try:
        return [float(p) if not isinstance(p, bool) else math.nan for p in parts]
    except (TypeError, ValueError):
        raise UsageError(
            f"{spelled} must be a number or a comma list of numbers, got {value!r}"
        ) from None


def check_numbers(
    name: str, value, least: float = -math.inf, strict: bool = False, spelled: str | None = None
) -> list[float]:
    """A number, a list, or a comma list as floats; each finite, above ``least`` and distinct.

    Messages name ``spelled``, by default ``flag(name)``. Hyperparameters are
    ``hyper_values``'.
    """
    spelled = spelled or flag(name)
    numbers = _parse_numbers(value, spelled)
    bound = "> " if strict else ">= "
    bad = [x for x in numbers if not math.isfinite(x) or x < least or (strict and x == least)]
    if not numbers or bad:
        raise UsageError(f"{spelled} values must be finite numbers {bound}{least:g}, got {value!r}")
    if len(set(numbers)) != len(numbers):
        raise UsageError(f"{spelled} values must be distinct, got {value!r}")
    return numbers


def check_number(name: str, value, least: float = -math.inf, strict: bool = False) -> float:
    """One number, checked as ``check_numbers`` checks each; UsageError for a list."""
    numbers = check_numbers(name, value, least, strict)
    if len(numbers) != 1:
        raise UsageError(f"{flag(name)} takes one number, got {value!r}")
    return numbers[0]


def engine_rule(spelled: str, name: str, check) -> None:
    """Runs ``check()``, one of the engine's own checks of the value it calls ``name``; its
    ValueError becomes a one-line UsageError that names the option as given (``spelled``)."""
    try:
        check()
    except ValueError as err:
        message = str(err).splitlines()[0]
        for said in (f"grid[{name!r}] value", f"grid[{name!r}]", name):
            if message.startswith(said):
                raise UsageError(spelled + message[len(said) :]) from None
        raise UsageError(f"{spelled}: {message}") from None


def hyper_values(name: str, value, spelled: str):
    """The values of the hyperparameter the engine calls ``name`` (a number, a list or a comma
    list) as a number or a list, checked by the engine's rules for a grid
    (``runconfig.check_hyper_values``: finite, the sign, nonzero and finite in float32;
    ``sweeps.check_grid``: distinct in float32). Refusals name the option as given (``spelled``)."""
    numbers = _parse_numbers(value, spelled)
    engine_rule(spelled, name, lambda: check_hyper_values({name: numbers}, ()))
    engine_rule(spelled, name, lambda: check_grid({name: numbers}))
    return _one_or_list(numbers)


def _one_or_list(numbers: list[float]):
    return numbers[0] if len(numbers) == 1 else numbers


def _choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:  # a list in config.json: unhashable
        raise UsageError(f"unknown {name} {value!r}; choose one of {', '.join(sorted(choices))}")
    return value


def parse_hidden(text, option: str = "hidden") -> list[int]:
    """Widths from a comma list ("8,8"); "" is no hidden layer."""
    text = str(text).strip()
    if not text:
        return []
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--{option} must be a comma list of positive integers (e.g. 8,8) or '' "
            f"for no hidden layer, got {text!r}"
        ) from None
    if any(w < 1 for w in widths):
        raise UsageError(f"--{option} widths must be positive, got {text!r}")
    return widths


def _crossed(value) -> list[int]:
    """--crossed INITS,ORDERS (or a stored [inits, orders]) as [inits, orders], each >= 2."""
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        numbers = [int(p) for p in parts]
        ok = (
            len(numbers) == 2
            and all(n >= 2 for n in numbers)
            and all(str(p).strip().lstrip("+").isdigit() for p in parts)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(
            f"--crossed takes INITS,ORDERS, two integers >= 2 (e.g. --crossed 16,16), got {value!r}"
        )
    return numbers


def resolve_config(raw: dict, stored: bool = False) -> dict:
    """Fills defaults and checks every option; raises UsageError with one line.

    ``raw`` holds the options as parsed, or a stored config (``stored``: every key required).
    Resolving a resolved config gives it back.
    """
    raw = grid_options(raw)
    if stored:
        missing = [k for k in SWEEP_DEFAULTS if k not in raw and k not in OPTIONAL_STORED]
        if missing:
            raise UsageError(f"lacks {', '.join(missing)}")
    config: dict[str, Any] = {
        k: (raw.get(k) if raw.get(k) is not None else v) for k, v in SWEEP_DEFAULTS.items()
    }
    _user_code(raw, config, stored)
    config["hidden"] = ",".join(map(str, parse_hidden(config["hidden"])))
    _choice("activation", config["activation"], ACTIVATIONS)
    _choice("init", config["init"], inits.INITS)
    if config["head"] is not None:
        _choice("head", config["head"], HEADS)
    _choice("optimizer", config["optimizer"], OPTIMIZERS)
    _choice("loss", config["loss"], LOSSES)
    for name in ("steps", "seeds", "components"):
        check_int(name, config[name], 1, MAX_STEPS if name == "steps" else None)
    for name in ("batch_size", "chunk_size", "n", "log_every"):
        check_int(name, config[name], 1, none=True)
    check_int("seed", config["seed"], 0, MAX_SEED)
    if config["crossed"] is not None:
        config["crossed"] = _crossed(config["crossed"])
        n_init, n_order = config["crossed"]
        if raw.get("seeds") is not None and int(raw["seeds"]) != n_init * n_order:
            raise UsageError(
                f"--crossed {n_init},{n_order} runs {n_init * n_order} seeds; drop "
                f"--seeds {raw['seeds']}"
            )
        config["seeds"] = n_init * n_order
    if config["metric"] is not None and (
        not isinstance(config["metric"], str) or not config["metric"].isidentifier()
    ):
        raise UsageError(
            f"--metric takes a name (final_loss, test_accuracy, test_nll, "
            f"accuracy, ...), got {config['metric']!r}"
        )
    lr = config["lr"] if config["lr"] is not None else OPTIMIZERS[config["optimizer"]][2]
    spelled = {**{k: flag(k) for k in SHORT_FORMS.values()}, **(raw.get(GRID_FLAGS) or {})}
    for name, value in (("learning_rate", lr), ("init_scale", config["init_scale"])):
        option = SHORT_FORMS[name]
        config[option] = hyper_values(name, value, spelled[option])
    config["grid"] = _optimizer_hyperparameters(config["grid"] or {}, config["optimizer"])
    if config["threshold"] is not None:
        config["threshold"] = check_number("threshold", config["threshold"])
        config["threshold_rule"] = raw.get("threshold_rule") or "set with --threshold"
    if config["grad_tol"] is not None:
        grad_tol = check_number("grad_tol", config["grad_tol"], 0.0, strict=True)
        engine_rule(flag("grad_tol"), "grad_tol", lambda: check_representable("grad_tol", grad_tol))
        config["grad_tol"] = grad_tol
    if config["probe"] is not None:
        probes = config["probe"] if isinstance(config["probe"], list) else [config["probe"]]
        for name in probes:
            _choice("probe", name, PROBES)
        if len(set(probes)) != len(probes):
            raise UsageError(f"--probe names a probe twice: {probes}")
        if config["grad_tol"] is not None:
            raise UsageError("--probe and --grad-tol do not go together yet: pass one")
        config["probe"] = list(probes)
    if config["vary"] is not None:
        _choice("vary", config["vary"], VARIES)
        if config["crossed"] is not None:
            raise UsageError(
                "--crossed varies the init and the data order by construction; drop --vary"
            )
    for name in ("classify", "keep_params", "keep_predictions"):
        if not isinstance(config[name], bool):
            raise UsageError(f"{name} must be true or false, got {config[name]!r}")
    if config["log_every"] is None:
        config["log_every"] = default_log_every(config["steps"])
    if config["log_every"] > config["steps"]:
        raise UsageError(
            f"--log-every ({config['log_every']}) must not exceed --steps ({config['steps']})"
        )
    if stored:
        config["devices"] = check_int("devices", raw.get("devices"), 1)
        config["chunk_size"] = check_int("chunk_size", raw.get("chunk_size"), 1)
    return config


def grid_options(raw: dict) -> dict:
    """``raw`` with its --grid entries as options: learning_rate and init_scale become --lr and
    --init-scale (``SHORT_FORMS``), every other name stays in "grid" as {name: values}. Under
    ``GRID_FLAGS``, {option: "--grid NAME"} of the options given so, for messages to name.

    ``raw["grid"]`` holds the command line's ``NAME=VALUES`` strings, or a config's {name: values}.

    Raises:
      UsageError: an entry that is not NAME=VALUES, or a hyperparameter given twice.
    """
    entries = raw.get("grid")
    if entries is None:
        return raw
    if isinstance(entries, dict):
        items = list(entries.items())
    elif isinstance(entries, list):
        items = []
        for entry in entries:
            name, sep, values = str(entry).partition("=")
            if not sep or not name.strip():
                raise UsageError(
                    f"--grid takes NAME=VALUES (e.g. --grid b1=0.8,0.9), got {entry!r}"
                )
            items.append((name.strip(), values))
    else:
        raise UsageError(f"grid must be {{name: values}}, got {entries!r}")
    out, grid, seen = dict(raw), {}, set()
    for name, values in items:
        option = SHORT_FORMS.get(name)
        if name in seen or (option is not None and raw.get(option) is not None):
            also = f"{flag(option)} and " if name not in seen else ""
            raise UsageError(f"{name} is given twice ({also}--grid {name}=...); pass it once")
        seen.add(name)
        if option is not None:
            out[option] = values
            out[GRID_FLAGS] = {**out.get(GRID_FLAGS, {}), option: f"--grid {name}"}
        else:
            grid[name] = values
    out["grid"] = grid
    return out


@functools.lru_cache(maxsize=None)
def hyperparameter_names(optimizer: str) -> tuple[str, ...]:
    """The numeric hyperparameters of an --optimizer, as ``optax.inject_hyperparams`` finds them
    (the names --grid takes, with init_scale). Traces its init abstractly: no backend starts."""
    import jax
    import optax

    fn, kwargs, lr = OPTIMIZERS[optimizer]
    made = optax.inject_hyperparams(getattr(optax, fn))(learning_rate=lr, **kwargs)
    state = jax.eval_shape(made.init, {"w": jax.ShapeDtypeStruct((1,), "float32")})
    return tuple(sorted(hyper_names(state)))


def _optimizer_hyperparameters(grid: dict, optimizer: str) -> dict:
    """--grid's names other than learning_rate and init_scale, checked against ``optimizer``:
    {name: a number, or a list of distinct numbers (a grid axis)}, sorted by name (config.json
    and the chunks' stamps sort their keys, so the order given could not be kept)."""
    names = hyperparameter_names(optimizer)
    out = {}
    for name, values in sorted(grid.items()):
        if name not in names:
            taken = [n for n in names if n not in SHORT_FORMS] + list(SHORT_FORMS)
            raise UsageError(
                f"--grid {name}: optimizer {optimizer} has no numeric "
                f"hyperparameter {name!r}; --grid takes {', '.join(taken)}"
            )
        out[name] = hyper_values(name, values, f"--grid {name}")
    return out


def _user_code(raw: dict, config: dict, stored: bool) -> None:
    """Checks --data, --model and --channels against the options they exclude."""
    if config["data"] is not None:
        if not stored and raw.get("problem") is not None:
            raise UsageError("--data replaces --problem: pass one of them")
        if raw.get("n") is not None:
            raise UsageError("--n sizes the built-in problems; --data is used whole")
        data = str(config["data"])
        if not usercode.is_spec(data):
            if not Path(data).is_file():
                raise UsageError(f"--data {data}: {usercode.not_a_file(data)}")
            data = str(Path(data).resolve())
        config.update(data=data, problem=None)
    else:
        _choice("problem", config["problem"], problems.REGISTRY)
    if config["model"] is not None:
        clash = [
            k for k in NET_OPTIONS if raw.get(k) is not None and raw.get(k) != SWEEP_DEFAULTS[k]
        ]
        if clash and not stored:
            raise UsageError(
                f"--model builds the whole network; drop {', '.join(flag(k) for k in clash)}"
            )
        if not usercode.SPEC.fullmatch(str(config["model"])):
            raise UsageError(
                f"--model {config['model']!r}: expected module:function (a function "
                "that returns a gbl.Model)"
            )
    if config["channels"] is not None:
        if raw.get("hidden") is not None and not stored:
            raise UsageError("--channels builds a 1-D CNN with a linear head; drop --hidden")
        config["channels"] = ",".join(map(str, parse_hidden(config["channels"], "channels")))
        if not config["channels"]:
            raise UsageError("--channels needs at least one width, e.g. 25,25,25")
        if raw.get("activation") is None and not stored:
            config["activation"] = "relu"  # the MNIST-1D paper's CNN
    if stored:
        config.update({k: raw[k] for k in FINGERPRINTS if k in raw})


def stored_config(folder: runstore.RunFolder) -> dict:
    """The resolved config of a run folder's config.json; UsageError says what is wrong."""
    try:
        return resolve_config(folder.read_config()["config"], stored=True)
    except UsageError as err:
        raise UsageError(
            f"{folder.file(runstore.CONFIG)} is not a valid sweep config: {err}"
        ) from None


# --- a new or resumed sweep's config, reconciled with its folder ------------------------------
def resolve_sweep(args, check_out: bool = True) -> tuple[runstore.RunFolder, dict]:
    """(run folder, config) of a new or resumed ``gbl-jax sweep``, all checked: a new sweep's
    options resolved (and its ``--out`` checked unless ``check_out``), a resumed one's stored
    config with the options given again checked against it."""
    given = grid_options(
        {k: getattr(args, k) for k in SWEEP_DEFAULTS if getattr(args, k) is not None}
    )
    folder = runstore.RunFolder(args.out or _default_out(given))
    if args.resume and args.force:
        raise UsageError("--resume finishes a sweep and --force replaces it: pass one")
    if not args.resume:
        _refuse_ignored(given, given.get("model"))
        config = resolve_config(given)
        if check_out:
            folder.check_new(force=args.force)
        return folder, config
    if args.out is None:
        raise UsageError("--resume needs the --out folder of an interrupted sweep")
    config = stored_config(folder)
    _refuse_ignored(given, config["model"])
    check_given(config, given, "interrupted sweep's", "resume")
    require_named_code(folder, config, given, "resume")
    return folder, config


def _default_out(given: dict) -> Path:
    hidden = str(given.get("hidden", SWEEP_DEFAULTS["hidden"])).replace(",", "-") or "none"
    problem = given.get("problem", SWEEP_DEFAULTS["problem"])
    if given.get("data"):
        problem = Path(str(given["data"]).split(":")[-1]).stem
    if given.get("model"):
        hidden = str(given["model"]).split(":")[-1]
    return Path("runs") / f"{problem}-h{hidden}-{time.strftime('%Y%m%d-%H%M%S')}"


def _refuse_ignored(given: dict, model: str | None) -> None:
    """Refuses the options that shape the built-in networks beside a --model, which ignores them
    (whatever their value, the default included)."""
    ignored = [k for k in NET_OPTIONS if k in given]
    if model is not None and ignored:
        raise UsageError(
            f"--model {model} builds the whole network and ignores "
            f"{', '.join(flag(k) for k in ignored)}; drop "
            f"{'it' if len(ignored) == 1 else 'them'}"
        )


def check_given(config: dict, given: dict, whose: str, action: str) -> None:
    """Refuses an option given again that differs from the stored sweep's ``config``."""
    spelled = given.get(GRID_FLAGS, {})
    for key, value in given.items():
        if key == GRID_FLAGS:  # how options were spelled, not an option
            continue
        if key == "grid":  # each --grid name is checked on its own, as an option is
            value = {**config["grid"], **value}
        if (
            resolve_config({**config, key: value, GRID_FLAGS: spelled}, stored=True)[key]
            != config[key]
        ):
            shown = (
                " ".join(f"{k}={v}" for k, v in given["grid"].items()) if key == "grid" else value
            )
            hint = (
                f"pass --{key} {config[key]}"
                if key in ("model", "data") and config[key] is not None
                else "drop it"
            )
            said = f"{spelled[key]}={value}" if key in spelled else f"{flag(key)} {shown}"
            raise UsageError(
                f"{said} conflicts with the {whose} {config[key]!r} ({hint} to {action})"
            )


def require_named_code(folder: runstore.RunFolder, config: dict, given: dict, action: str) -> None:
    """Refuses to run the code a run folder names (a --model, a --data module:function) unless
    this command names it too: a folder someone sent must not run code when opened. What is
    named is checked against config.json (``check_given``) and, once built, against the
    recorded fingerprints (``fingerprint``)."""
    named = [
        f"--{k} {config[k]}"
        for k in ("model", "data")
        if config[k] is not None
        and given.get(k) is None
        and (k == "model" or usercode.is_spec(str(config[k])))
    ]
    if named:
        raise UsageError(
            f"{folder.file(runstore.CONFIG)} names code to run "
            f"({', '.join(named)}), and gbl-jax runs only code named on its command "
            f"line: to {action}, add {' '.join(named)} (checked against the "
            "recorded fingerprints)"
        )


def parse_cell(items: list[str] | None) -> dict[str, float]:
    """``--cell NAME=VALUE`` options as {name: value}."""
    cell: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name or not math.isfinite(number) or name in cell:
            raise UsageError(
                f"--cell takes NAME=VALUE once per grid axis (e.g. --cell "
                f"learning_rate=0.05), got {item!r}"
            )
        cell[name] = number
    return cell


# --- a finished sweep's folder, opened by a command that reads it ----------------------------
def finished_sweep(path) -> tuple[runstore.RunFolder, dict]:
    """The run folder at ``path`` and its stored config; UsageError unless its sweep finished."""
    folder = runstore.RunFolder(path)
    config = stored_config(folder)
    if not folder.file(runstore.RESULTS).is_file():
        raise UsageError(f"{folder.path} holds an unfinished sweep; finish it with --resume")
    return folder, config


def check_named_again(args, folder: runstore.RunFolder, config: dict) -> None:
    """Refuses the ``--model`` / ``--data`` of a command that opens a finished sweep unless they
    are the sweep's own (``check_given``), and the sweep's code unless they name it
    (``require_named_code``)."""
    given = {k: getattr(args, k) for k in ("model", "data") if getattr(args, k) is not None}
    check_given(config, given, "sweep's", "open it")
    require_named_code(folder, config, given, "open it")


def load_result(path) -> SweepResult:
    """The sweep saved at ``path`` (``results.load``); UsageError says what is wrong."""
    try:
        return results.load(Path(path))
    except ValueError as err:
        raise UsageError(str(err).removeprefix("load: ")) from None


def cell_of(out: SweepResult, items: list[str] | None, where) -> SweepResult:
    """``out`` cut at the cell of the ``--cell NAME=VALUE`` options ``items`` when it has a grid
    (as it is without one); UsageError, naming ``where``, for a cell it lacks."""
    if not out.grid:
        return out
    try:
        return out.cell(**parse_cell(items))
    except ValueError as err:
        raise UsageError(f"{where}: {err} (pick one with --cell NAME=VALUE)") from None


# --- building the run ----------------------------------------------------------------------
def _make_head(name: str, y, components: int, problem: str):
    """The head ``name`` of gbl_jax.nets.heads, sized from the targets ``y``."""
    y_shape = list(y.shape)
    sizes = {"components": components}
    if "classes" in inspect.signature(HEADS[name]).parameters:
        import numpy as np

        labels = np.asarray(y)
        whole = bool(
            labels.size
            and np.isfinite(labels).all()
            and labels.min() >= 0
            and np.array_equal(labels, np.round(labels))
        )
        classes = int(labels.max()) + 1 if whole else 0
        if y.ndim != 1 or classes < 2:
            raise UsageError(
                f"--head {name} needs integer labels [N] with >= 2 classes (whole "
                f"numbers from 0); {problem} has y {y_shape}"
                + (
                    ""
                    if whole or not labels.size
                    else f" holding {labels.min()!r} to {labels.max()!r}"
                )
            )
        sizes["classes"] = classes
    if "dim" in inspect.signature(HEADS[name]).parameters:
        if y.ndim != 2:
            raise UsageError(
                f"--head {name} needs targets [N, D]; {problem} has y "
                f"{y_shape} (try --head bernoulli or categorical)"
            )
        sizes["dim"] = y_shape[1]
    wanted = [
        p.name
        for p in inspect.signature(HEADS[name]).parameters.values()
        if p.default is inspect.Parameter.empty
    ]
    return HEADS[name](*[sizes[p] for p in wanted])


def hyperparameters(config: dict) -> dict:
    """{name: a number or a list} of every hyperparameter a resolved config sets, by the engine's
    names: learning_rate (--lr), init_scale (--init-scale), then the other --grid names by name."""
    return {"learning_rate": config["lr"], "init_scale": config["init_scale"], **config["grid"]}


def grid_of(config: dict) -> dict:
    """The sweep's grid, in ``hyperparameters``' order: every hyperparameter given several values,
    and init_scale also when it is not 1 (the engine scales the init only on a grid)."""
    listed = {k: v if isinstance(v, list) else [v] for k, v in hyperparameters(config).items()}
    return {k: v for k, v in listed.items() if len(v) > 1 or (k == "init_scale" and v != [1.0])}


class Built(NamedTuple):
    """What a config describes: the data, model, its output unit (None for a --model whose
    data names none), optimizer, loss, grid, and the metrics a held-out split gets."""

    data: Any
    model: Any
    head: Any
    optimizer: Any
    loss: Any
    grid: dict
    metrics: dict


BUILT_FROM = (
    "problem",
    "seed",
    "n",
    "head",
    "components",
    "hidden",
    "activation",
    "init",
    "lr",
    "init_scale",
    "grid",
    "optimizer",
    "loss",
    "data",
    "model",
    "channels",
)


def build(config: dict) -> Built:
    """Builds a config's run; refuses data that would not fit in memory before making it.

    The same options give the same objects within a process, so JAX compiles a repeated
    command (``cli.main`` called again from Python) only once.
    """
    options = json.dumps({k: config[k] for k in BUILT_FROM})  # hashable, grid order kept
    return _build(options, _file_stamp(config["data"]))


def clear_cache() -> None:
    """Forgets every run ``build`` has built, so the next call builds anew (as a new process
    would)."""
    _build.cache_clear()


def _file_stamp(data) -> tuple | None:
    """(size, mtime) of a --data file, so an edited file is read again, not served cached."""
    if data is None or usercode.is_spec(str(data)):
        return None
    try:
        stat = Path(data).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _build(options: str, stamp: tuple | None) -> Built:  # stamp: part of the cache key
    import jax
    import optax

    config: dict[str, Any] = json.loads(options)
    data = _data(config)
    where = f"data {config['data']}" if config["data"] else f"problem {config['problem']}"
    head = (
        data.head
        if config["head"] is None
        else _make_head(config["head"], data.y, config["components"], where)
    )
    try:
        if config["model"] is not None:
            model = usercode.load_model(config["model"])
        elif head is None:
            raise UsageError(f"{where} names no output unit; pass --head")
        elif config["channels"] is not None:
            model = convnets.cnn1d(
                parse_hidden(config["channels"]),
                head,
                activation=config["activation"],
                init=config["init"],
            )
        else:
            model = mlp(
                parse_hidden(config["hidden"]),
                head,
                activation=config["activation"],
                init=config["init"],
            )
        params = user_call("model.init(key, x)", data.x, model.init, jax.random.PRNGKey(0), data.x)
        dist = user_call("model.apply(params, x)", data.x, model.apply, params, data.x)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{where}: {str(err).splitlines()[0]}") from None
    classifier = isinstance(dist, (Bernoulli, Categorical))
    metrics = {"accuracy": costs.accuracy} if classifier and data.test is not None else {}
    grid = grid_of(config)
    fn, kwargs, _ = OPTIMIZERS[config["optimizer"]]
    first = {
        k: v[0] if isinstance(v, list) else v
        for k, v in hyperparameters(config).items()
        if k != "init_scale"
    }
    make = getattr(optax, fn)
    if any(k != "init_scale" for k in grid):  # the engine sets each cell's values in its state
        make = optax.inject_hyperparams(make)
    optimizer = make(**{**kwargs, **first})
    return Built(
        data, model, head, optimizer, getattr(costs, LOSSES[config["loss"]]), grid, metrics
    )


def _data(config: dict):
    """The data a config names: a built-in problem (refused if it would not fit in memory), a
    file or a ``module:function`` (``usercode``)."""
    import jax

    if config["data"] is not None:
        if not usercode.is_spec(config["data"]):  # a small .npz can declare gigabytes
            _data_fits(
                f"--data {config['data']}: its arrays",
                datasets.declared_bytes(config["data"]),
                "use a smaller data set",
            )
        try:
            return usercode.load_data(config["data"])
        except (ValueError, ImportError) as err:
            raise UsageError(str(err).splitlines()[0]) from None
    key = jax.random.PRNGKey(config["seed"] + 1)
    make = lambda k: problems.make(config["problem"], k, config["n"])  # noqa: E731
    shapes = jax.eval_shape(make, key)
    _data_fits(f"--n {config['n']}: the data", tree_bytes(shapes), "use a smaller --n")
    if config["n"] is not None:
        made = shapes[0].shape[0]  # x
        if made != config["n"]:
            raise UsageError(
                f"--n {config['n']}: problem {config['problem']} has {made} points "
                f"for it (xor is fixed, a real data set has at most its training "
                f"size); drop --n" + (f" or pass at most {made}" if made > 4 else "")
            )
    try:
        return make(key)
    except ImportError as err:
        raise UsageError(str(err).splitlines()[0]) from None


def _data_fits(what: str, data_bytes: int | None, hint: str) -> None:
    try:
        budgets.check_data_fits(what, data_bytes, hint)
    except ValueError as err:
        raise UsageError(str(err)) from None


def fingerprint(config: dict, run: Built) -> str | None:
    """Records (new sweep) or checks (a stored config: the keys are already there) what the run
    uses: the SHA-256 of the user's data and model source, and of the params the model builds at
    PRNGKey(0) (``usercode.params_fingerprint``), so a resumed sweep or a landscape never mixes
    two datasets or two models.

    Returns:
      A note for a stored config written before the params fingerprint existed (it is read, and
      the params are not checked), else None.

    Raises:
      UsageError: a stored config whose data, model source or built params differ now.
    """
    import jax

    stored = "data_sha256" in config
    model = f"--model {config['model']}" if config["model"] else "the network"
    try:
        params = run.model.init(jax.random.PRNGKey(0), run.data.x)
    except (Exception, SystemExit) as err:  # the user's code, run for real this once
        raise UsageError(
            f"{model}: model.init(PRNGKey(0), x) failed: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    params_sha, shapes = usercode.params_fingerprint(params)
    now = {
        "data_sha256": usercode.data_fingerprint(run.data) if config["data"] else None,
        "model_sha256": (usercode.model_fingerprint(config["model"]) if config["model"] else None),
    }
    for key, value in now.items():
        before = config.get(key, value)
        if before != value:
            what = f"--data {config['data']}" if key == "data_sha256" else model
            raise UsageError(
                f"{what} changed since this sweep began (sha256 {str(before)[:12]}... "
                f"then, {str(value)[:12]}... now); restore it, or start a new sweep "
                "with --force"
            )
        config[key] = value
    if stored and "params_sha256" not in config:  # kept out: the chunks' stamps hold config
        return (
            f"this sweep's config.json predates the fingerprint of the built params, so the "
            f"params {model} builds now are not checked against the sweep's"
        )
    before_shapes = config.get("params_shapes", shapes)
    if before_shapes != shapes:
        before_shapes = before_shapes if isinstance(before_shapes, dict) else {}
        name = next(
            (k for k in [*before_shapes, *shapes] if before_shapes.get(k) != shapes.get(k)),
            "the tree",
        )
        raise UsageError(
            f"{model} builds other params than this sweep began with ({name}: "
            f"{before_shapes.get(name, 'absent')} then, {shapes.get(name, 'absent')} "
            "now); restore it, or start a new sweep with --force"
        )
    before = config.get("params_sha256", params_sha)
    if before != params_sha:
        raise UsageError(
            f"{model} initialises other values at PRNGKey(0) than when this sweep "
            f"began (same tree, shapes and dtypes; sha256 {str(before)[:12]}... then, "
            f"{params_sha[:12]}... now); restore it, or start a new sweep with "
            "--force"
        )
    config.update(params_sha256=params_sha, params_shapes=shapes)
    return None


def threshold_head(config: dict, run: Built):
    """The output unit whose rule sets the default threshold: the config's head, or for a
    ``--model`` without ``--head`` the family of the distribution the model returns. A Normal or
    Laplace whose scale moves with the params learns its scale: its NLL has no floor, so the
    data's unit-scale rule would pass a constant predictor with a fitted scale."""
    if config["model"] is None or config["head"] is not None:
        return run.head
    import jax
    import jax.numpy as jnp

    x = run.data.x[:64]
    try:
        params = run.model.init(jax.random.PRNGKey(0), x)
        dist = apply_model(run.model, params, x)
        if isinstance(dist, (Bernoulli, Categorical, MixtureNormal)):
            return {
                Bernoulli: "bernoulli",
                Categorical: "categorical",
                MixtureNormal: "mixture_density",
            }[type(dist)]
        if not isinstance(dist, (Normal, Laplace)):
            return run.head
        scale_sum = lambda p: jnp.sum(apply_model(run.model, p, x).scale)  # noqa: E731
        grads = jax.grad(scale_sum, allow_int=True)(params)
    except (ValueError, TypeError) as err:
        raise UsageError(f"--model {config['model']}: {str(err).splitlines()[0]}") from None
    learned = any(
        bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads) if g.dtype != jax.dtypes.float0
    )
    dim = math.prod(dist.loc.shape[1:])
    if isinstance(dist, Normal):
        return f"heteroscedastic_gaussian({dim})" if learned else f"gaussian({dim})"
    return f"laplace({dim}, learn_scale=True)" if learned else f"laplace({dim})"


def set_threshold(config: dict, head, y) -> None:
    """Fills in the default success threshold and its rule, or checks the one given.

    Raises:
      UsageError: a given threshold at or below the lowest loss the model can reach.
    """
    if head is None:
        if config["threshold"] is None:
            raise UsageError(
                f"--model {config['model']}'s distribution is none of the families "
                "a default threshold knows and the data names no head: pass "
                "--threshold (or --head)"
            )
        return
    floor = thresholds.lowest_loss(head, y, config["loss"])
    if config["threshold"] is None:
        value, rule = thresholds.default_threshold(head, y, config["loss"])
        config.update(
            threshold=round(value, 6) if abs(value) > 1e-3 else value,
            threshold_rule=f"default: {rule}",
        )
    elif not config["threshold"] > floor:
        raise UsageError(
            f"--threshold {config['threshold']:g} is not above the lowest loss this "
            f"model can reach ({floor:.6g} for {config['loss']} with "
            f"{getattr(head, 'name', head)}): "
            "no seed could succeed"
        )
