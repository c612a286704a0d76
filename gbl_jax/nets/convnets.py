"""One-dimensional convolutional networks as pure (init, apply) pairs, beside ``nets.mlp``.

``cnn1d([25, 25, 25], heads.categorical(10))`` is the CNN of the MNIST-1D paper: three
convolutions (kernel 5, stride 2, padding 1, 25 channels, ReLU), flatten, a linear layer to 10
classes. On inputs of length 40 its layers give lengths 19, 9 and 4, so the head sees 100 features.

The convolution is written as im2col and one matmul: the kernel's windows are gathered by strided
slices into [N, L_out, kernel * C_in] and multiplied by the kernel reshaped to
[kernel * C_in, C_out]. It equals ``jax.lax.conv_general_dilated`` (dimension numbers ("NWC",
"WIO", "NWC")) to float rounding and trains the MNIST-1D CNN 5-10x faster on CPU, for one seed and
for 16 seeds vmapped (``scripts/bench_cnn1d.py``): XLA's CPU convolutions are slow at these
channel counts, those of the gradient included, and vmapping a convolution whose kernel is batched
makes a grouped one (``feature_group_count`` = seeds), while batched matmuls stay fast.

References:
  Greydanus (2020), "Scaling down deep learning", arXiv:2011.14439 (MNIST-1D and its CNN).
  Goodfellow, Bengio & Courville (2016), chapter 9 (convolutional networks) and section 6.2.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp

from gbl_jax.checks import require_int
from gbl_jax.nets.heads import Head
from gbl_jax.nets.inits import Initializer, get_init
from gbl_jax.nets.mlp import get_activation
from gbl_jax.nets.models import Model

Padding = Union[int, str]


def check_padding(padding: Padding) -> Padding:
    """``padding`` as an int >= 0 (zeros on both sides, as PyTorch's) or "SAME" / "VALID"."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"cnn1d: padding must be an integer >= 0, 'SAME' or 'VALID', got {padding!r}"
            )
        return padding.upper()
    return require_int("cnn1d: padding (an integer >= 0, 'SAME' or 'VALID')", padding, 0)


def conv_pads(length: int, kernel_size: int, stride: int, padding: Padding) -> tuple[int, int]:
    """Zeros (before, after) a length-``length`` input for ``padding``; "SAME" as XLA pads it."""
    padding = check_padding(padding)
    if isinstance(padding, int):
        return padding, padding
    if padding == "VALID":
        return 0, 0
    out_len = -(-length // stride)  # "SAME": the odd zero goes after
    total = max((out_len - 1) * stride + kernel_size - length, 0)
    return total // 2, total - total // 2


def conv_output_length(length: int, kernel_size: int, stride: int, padding: Padding) -> int:
    """floor((length + pads - kernel_size) / stride) + 1; below 1 when the input is too short."""
    lo, hi = conv_pads(length, kernel_size, stride, padding)
    return (length + lo + hi - kernel_size) // stride + 1


def conv1d_init(
    key: jax.Array,
    kernel_size: int,
    in_ch: int,
    out_ch: int,
    w_init: Union[str, Initializer] = "glorot_normal",
    dtype=jnp.float32,
) -> dict:
    """Kernel [kernel_size, in_ch, out_ch] from ``w_init`` (fans count the window), biases zero."""
    shape = (kernel_size, in_ch, out_ch)
    w = jnp.asarray(get_init(w_init)(key, shape, dtype), dtype)
    if w.shape != shape:
        raise ValueError(f"init returned shape {list(w.shape)}, expected {list(shape)}")
    return {"w": w, "b": jnp.zeros((out_ch,), dtype)}


def conv1d(params: dict, h: jax.Array, *, stride: int, padding: Padding) -> jax.Array:
    """Cross-correlation of h [N, L, C_in] with params {"w": [k, C_in, C_out], "b": [C_out]}.

    Returns:
      [N, L_out, C_out], L_out = ``conv_output_length(L, k, stride, padding)`` (at least 1).
    """
    w = params["w"]
    kernel_size, in_ch, out_ch = w.shape
    n, length, _ = h.shape
    lo, hi = conv_pads(length, kernel_size, stride, padding)
    out_len = conv_output_length(length, kernel_size, stride, padding)
    h_pad = jnp.pad(h, ((0, 0), (lo, hi), (0, 0)))
    span = stride * (out_len - 1) + 1
    # tap j of output position t reads h_pad[stride * t + j]; taps go tap-major, as w.reshape does
    cols_NTK = jnp.concatenate(
        [
            jax.lax.slice(h_pad, (0, j, 0), (n, j + span, in_ch), (1, stride, 1))
            for j in range(kernel_size)
        ],
        axis=-1,
    )
    return cols_NTK @ w.reshape(kernel_size * in_ch, out_ch) + params["b"][None, None, :]


def cnn1d(
    channels: Sequence[int],
    head: Head,
    *,
    kernel_size: int = 5,
    stride: int = 2,
    padding: Padding = 1,
    activation: Union[str, Callable] = "relu",
    init: Union[str, Initializer] = "glorot_normal",
) -> Model:
    """A 1-D convolutional net: conv and activation per width in ``channels``, flatten, ``head``.

    Args:
      channels: output channels of each convolution; ``()`` gives a generalized linear model of
        the flattened input.
      head: an output unit from ``gbl_jax.nets.heads``; it sees the flattened features
        [N, L_last * channels[-1]] (position-major: channels vary fastest).
      kernel_size: width of every kernel.
      stride: step of every convolution.
      padding: zeros on both ends of every layer's input (an int, as PyTorch's ``padding``), or
        "SAME" (output length ceil(L / stride)) or "VALID" (none).
      activation: nonlinearity after each convolution, by name or a callable.
      init: scheme for every kernel and the head's weights (biases are zero); as for ``mlp``.
        A kernel's fans count its window: fan_in = kernel_size * C_in.

    Returns:
      A ``Model`` on inputs x [N, L] (one channel) or [N, L, C] (channels last). Params are
      ``{"conv": [{"w": [kernel_size, in, out], "b": [out]}, ...], "head": {...}}``.

    References:
      Greydanus (2020), "Scaling down deep learning", arXiv:2011.14439: the MNIST-1D CNN is
      ``cnn1d([25, 25, 25], heads.categorical(10))`` on x [N, 40].
    """
    channels = tuple(channels)
    for width in channels:
        require_int(f"cnn1d: channels {list(channels)}: each", width, 1)
    channels = tuple(int(width) for width in channels)
    kernel_size = require_int("cnn1d: kernel_size", kernel_size, 1)
    stride = require_int("cnn1d: stride", stride, 1)
    padding = check_padding(padding)
    if not isinstance(head, Head):
        raise ValueError(
            f"cnn1d: head must come from gbl_jax.nets.heads, got {type(head).__name__}"
        )
    act = get_activation(activation)
    w_init = get_init(init)

    def lengths(length: int) -> list[int]:
        """The input length of each layer and the flattened one; raises where it gets too short."""
        out = [length]
        for i in range(len(channels)):
            out_len = conv_output_length(out[-1], kernel_size, stride, padding)
            if out_len < 1:
                lo, hi = conv_pads(out[-1], kernel_size, stride, padding)
                raise ValueError(
                    f"cnn1d: inputs of length {length} are too short: conv layer {i} gets length "
                    f"{out[-1]} (lengths {out}), and kernel_size {kernel_size} with padding "
                    f"{padding!r} needs at least {kernel_size - lo - hi}"
                )
            out.append(out_len)
        return out

    def init_fn(key: jax.Array, x) -> dict:
        length, in_ch = _length_and_channels(jnp.shape(x), "cnn1d.init")
        dtype = jnp.result_type(x)
        dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)
        flat_len = lengths(length)[-1]
        keys = jax.random.split(key, len(channels) + 1)
        layers, ch_in = [], in_ch
        for k, width in zip(keys[:-1], channels):
            layers.append(conv1d_init(k, kernel_size, ch_in, width, w_init, dtype))
            ch_in = width
        return {"conv": layers, "head": head.init(keys[-1], flat_len * ch_in, w_init, dtype)}

    def apply(params: dict, x: jax.Array):
        h = jnp.asarray(x)
        length, in_ch = _length_and_channels(h.shape, "cnn1d.apply")
        h = h.reshape(h.shape[0], length, in_ch)
        if params["conv"] and params["conv"][0]["w"].shape[1] != in_ch:
            raise ValueError(
                f"cnn1d.apply: params take {params['conv'][0]['w'].shape[1]} input "
                f"channels, got x {list(jnp.shape(x))} with {in_ch}"
            )
        lengths(length)  # raises, naming the lengths, where the input is too short
        for layer in params["conv"]:
            h = act(conv1d(layer, h, stride=stride, padding=padding))
        return head.apply(params["head"], h.reshape(h.shape[0], -1))

    act_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "fn")
    name = (
        f"cnn1d({list(channels)}, {head.name}, {act_name}, kernel_size={kernel_size}, "
        f"stride={stride}, padding={padding!r})"
    )
    return Model(init_fn, apply, name)


def _length_and_channels(shape: tuple[int, ...], where: str) -> tuple[int, int]:
    if len(shape) not in (2, 3) or any(d < 1 for d in shape[1:]):
        raise ValueError(
            f"{where}: expected inputs x [N, L] or [N, L, C] (channels last), got "
            f"shape {list(shape)}"
        )
    return shape[1], (shape[2] if len(shape) == 3 else 1)
