"""Time the MNIST-1D CNN's training step on CPU over seeds, for each way to write its convolution.

Usage: python scripts/bench_cnn1d.py [--seeds 16] [--steps 40]
Workload (Greydanus 2020): x [4000, 40] (random, MNIST-1D's shape), minibatches of 100, three
convolutions (kernel 5, stride 2, padding 1, 25 channels, ReLU), flatten (100 features), a
categorical(10) head, nll, Adam(1e-3) via optax. Each seed draws its init from its own key and
walks its own minibatch sequence. Every contender is the same run (params from gbl.cnn1d's init,
then one lax.scan over the steps) with the convolution written another way:
  lax      jax.lax.conv_general_dilated, vmapped: jax batches a conv whose kernel is batched into
           one grouped conv (feature_group_count = seeds; printed from the jaxpr)
  grouped  the same grouped conv written by hand: seeds folded into the channels, no vmap
  im2col   windows gathered by strided slices into [N, L_out, kernel * C_in], one matmul
  taps     the sum over the kernel's taps of [N, L_out, C_in] @ w[tap], no gathered windows
  patches  jax.lax.conv_general_dilated_patches, then one matmul
  cnn1d    gbl.cnn1d's own apply
  sweep    gbl.sweep of gbl.cnn1d with batch_size 100: its default chunking, and the engine's
           own minibatch sampling, finiteness checks and logging
Reported per contender: compile s (first call minus the timed call), ms per seed-step vmapped
over --seeds seeds and for one seed alone (jit, no vmap), s per seed for 6000 steps at the vmapped
rate, the ratio to lax, and the first step's loss minus lax's (the same function: ~1e-7).
The machine may be shared: compare ratios within one run.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import gbl_jax as gbl

N_DATA, LENGTH, BATCH, CLASSES = 4000, 40, 100, 10
KERNEL, STRIDE, PAD = 5, 2, 1
CHANNELS = [25, 25, 25]
STEPS_PER_RUN = 6000
ADAM = optax.adam(1e-3)  # one object: the second gbl.sweep call reuses the first's compilation


def windows(h, kernel):
    """The kernel's taps of h [N, L, C] after zero padding: kernel arrays [N, L_out, C]."""
    n, length, ch = h.shape
    out_len = (length + 2 * PAD - kernel) // STRIDE + 1
    h_pad = jnp.pad(h, ((0, 0), (PAD, PAD), (0, 0)))
    span = STRIDE * (out_len - 1) + 1
    return [
        jax.lax.slice(h_pad, (0, j, 0), (n, j + span, ch), (1, STRIDE, 1)) for j in range(kernel)
    ]


def conv_lax(w, h):
    return jax.lax.conv_general_dilated(
        h, w, (STRIDE,), [(PAD, PAD)], dimension_numbers=("NWC", "WIO", "NWC")
    )


def conv_im2col(w, h):
    k, c_in, c_out = w.shape
    return jnp.concatenate(windows(h, k), axis=-1) @ w.reshape(k * c_in, c_out)


def conv_taps(w, h):
    return sum(h_j @ w[j] for j, h_j in enumerate(windows(h, w.shape[0])))


def conv_patches(w, h):
    k, c_in, c_out = w.shape
    cols = jax.lax.conv_general_dilated_patches(
        h, (k,), (STRIDE,), [(PAD, PAD)], dimension_numbers=("NWC", "WIO", "NWC")
    )
    # patches run channel-major (c * k + j)
    return cols @ jnp.transpose(w, (1, 0, 2)).reshape(k * c_in, c_out)


def hand_loss(conv):
    def loss(params, x, y):
        h = x[..., None]
        for layer in params["conv"]:
            h = jax.nn.relu(conv(layer["w"], h) + layer["b"][None, None, :])
        head = params["head"]
        logits = h.reshape(h.shape[0], -1) @ head["w"] + head["b"][None, :]
        return gbl.nll(gbl.Categorical(logits), y)

    return loss


def grouped_loss(params, x_S, y_S):
    """All seeds at once: x_S [S, N, L]; one grouped conv per layer, seeds as channel groups."""
    seeds, n, _ = x_S.shape
    h = jnp.transpose(x_S, (1, 2, 0))  # [N, L, S * 1]
    for layer in params["conv"]:
        w = layer["w"]  # [S, k, C_in, C_out]
        k, c_in, c_out = w.shape[1:]
        w_grouped = jnp.transpose(w, (1, 2, 0, 3)).reshape(k, c_in, seeds * c_out)
        h = jax.lax.conv_general_dilated(
            h,
            w_grouped,
            (STRIDE,),
            [(PAD, PAD)],
            dimension_numbers=("NWC", "WIO", "NWC"),
            feature_group_count=seeds,
        )
        h = jax.nn.relu(h + layer["b"].reshape(1, 1, seeds * c_out))
    out_len, c_out = h.shape[1], params["conv"][-1]["w"].shape[-1]
    h_SNF = jnp.transpose(h.reshape(n, out_len, seeds, c_out), (2, 0, 1, 3)).reshape(seeds, n, -1)
    logits = jnp.einsum("snf,sfo->sno", h_SNF, params["head"]["w"]) + params["head"]["b"][:, None]
    return jax.vmap(lambda z, y: gbl.nll(gbl.Categorical(z), y))(logits, y_S)


def make_run(model, loss, steps, x, y, batched=False):
    """run(key, offset) -> losses [steps] of one seed; batched: run(keys [S], offsets [S]) ->
    [S, steps] with ``loss`` giving every seed's loss [S] at once."""
    n_batches = N_DATA // BATCH

    def batch(offset, t):
        start = ((t + offset) % n_batches) * BATCH
        return (
            jax.lax.dynamic_slice_in_dim(x, start, BATCH),
            jax.lax.dynamic_slice_in_dim(y, start, BATCH),
        )

    init = jax.vmap(model.init, in_axes=(0, None)) if batched else model.init
    get = jax.vmap(batch, in_axes=(0, None)) if batched else batch

    def objective(params, x_batch, y_batch):
        value = loss(params, x_batch, y_batch)
        return jnp.sum(value), value  # a sum over seeds: each seed's gradient is its own loss's

    def run(key, offset):
        params = init(key, x[:BATCH])
        state = ADAM.init(params)

        def step(carry, t):
            params, state = carry
            (_, value), grads = jax.value_and_grad(objective, has_aux=True)(params, *get(offset, t))
            updates, state = ADAM.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        return jnp.moveaxis(jax.lax.scan(step, (params, state), jnp.arange(steps))[1], 0, -1)

    return run


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    seeds, steps = args.seeds, args.steps
    k_x, k_y, k_seeds = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k_x, (N_DATA, LENGTH))
    y = jax.random.randint(k_y, (N_DATA,), 0, CLASSES)
    keys, offsets = jax.random.split(k_seeds, seeds), 7 * jnp.arange(seeds)
    model = gbl.cnn1d(
        CHANNELS, gbl.heads.categorical(CLASSES), kernel_size=KERNEL, stride=STRIDE, padding=PAD
    )

    lax_loss = hand_loss(conv_lax)
    params = jax.vmap(model.init, in_axes=(0, None))(keys, x[:BATCH])
    x_S = jnp.broadcast_to(x[:BATCH], (seeds, BATCH, LENGTH))
    y_S = jnp.broadcast_to(y[:BATCH], (seeds, BATCH))
    jaxpr = str(jax.make_jaxpr(jax.vmap(jax.grad(lax_loss)))(params, x_S, y_S)).split()
    counts = {
        name: sorted({int(t.split("=")[1]) for t in jaxpr if t.startswith(name + "=")})
        for name in ("feature_group_count", "batch_group_count")
    }
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}; MNIST-1D CNN "
        f"{CHANNELS} k{KERNEL} s{STRIDE} p{PAD}, minibatch {BATCH}, Adam; {seeds} seeds x "
        f"{steps} steps. The lax step's convs under vmap: "
        + ", ".join(f"{name} {values}" for name, values in counts.items())
    )

    losses = {
        "lax": lax_loss,
        "im2col": hand_loss(conv_im2col),
        "taps": hand_loss(conv_taps),
        "patches": hand_loss(conv_patches),
        "cnn1d": lambda p, xb, yb: gbl.nll(model.apply(p, xb), yb),
    }
    rows, first = [], {}
    for name in ["lax", "grouped", "im2col", "taps", "patches", "cnn1d"]:
        if name == "grouped":
            many = jax.jit(make_run(model, grouped_loss, steps, x, y, batched=True))
            one = None
        else:
            run = make_run(model, losses[name], steps, x, y)
            many, one = jax.jit(jax.vmap(run)), jax.jit(run)
        compile_s = timed(many, keys, offsets)[0]
        run_s, curves = timed(many, keys, offsets)
        first[name] = float(curves[0, 0])
        one_rate = None
        if one is not None:
            timed(one, keys[0], offsets[0])
            one_rate = timed(one, keys[0], offsets[0])[0] / steps
        rows.append((name, compile_s - run_s, run_s / (seeds * steps), one_rate))

    sweep_run = lambda: gbl.sweep(
        model, ADAM, (x, y), key=jax.random.PRNGKey(1), seeds=seeds, steps=steps, batch_size=BATCH
    )
    compile_s = timed(sweep_run)[0]
    run_s = timed(sweep_run)[0]
    rows.append(("sweep", compile_s - run_s, run_s / (seeds * steps), None))

    lax_rate = rows[0][2]
    print(
        f"| contender | compile s | ms/seed-step ({seeds} seeds) | ms/step (1 seed) | "
        f"s/seed for {STEPS_PER_RUN} steps | vs lax | first loss - lax |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, compile_s, rate, one_rate in rows:
        one = f"{1e3 * one_rate:.3f}" if one_rate else "-"
        diff = f"{first[name] - first['lax']:+.1e}" if name in first else "-"
        print(
            f"| {name} | {compile_s:.1f} | {1e3 * rate:.3f} | {one} | "
            f"{STEPS_PER_RUN * rate:.1f} | {rate / lax_rate:.2f}x | {diff} |"
        )


if __name__ == "__main__":
    main()
