"""The trainable pieces of the adapter tuner, as plain ``nn.Module`` s.

* :class:`Bottleneck` — down-projection, non-linearity, up-projection (Houlsby et al., 2019),
  dense or PHM (:class:`PHMLinear`, Compacter), optionally gated (UniPELT). The up-projection
  starts at zero, so an adapted model starts equal to its base model.
* :class:`LoRA` — ``B A x`` scaled by ``alpha / r``, ``B`` zero at start, optionally gated.
* :class:`PrefixEncoder` — the key/value prefixes of every attention module of one location,
  flat or produced by a two-layer MLP shared by those modules (Li & Liang, 2021).

Gates follow UniPELT (Mao et al., 2022): ``sigmoid(W_g x + b_g)`` of the piece's input, one
scalar per token. AdapterHub averages gates over the sequence instead; that makes a decoder
token's output depend on the tokens after it, so cached generation would differ from the
teacher-forced training forward. Per-token gates keep the decoder causal.

The tuner layers hold these in ``ModuleDict`` s keyed by adapter name; parameters sit directly
on the pieces so that peft's state-dict keys stay ``<container>.<adapter>.<param>``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "swish": F.silu, "tanh": torch.tanh}


def token_gate(gate: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``sigmoid(gate(x))``: one gate per token, shaped (..., 1) to broadcast over features."""
    return torch.sigmoid(gate(x.to(gate.weight.dtype)))


def new_gate(features: int, device: torch.device) -> nn.Linear:
    """A gate ``Linear(features, 1)``: small random weights, zero bias (sigmoid ~ 0.5)."""
    gate = nn.Linear(features, 1, device=device)
    nn.init.normal_(gate.weight, std=0.02)
    nn.init.zeros_(gate.bias)
    return gate


class PHMLinear(nn.Module):
    """A parameterised-hypercomplex Linear (Zhang et al., 2021) with Compacter's factorisation.

    ``W = sum_i A_i (x) (s_i t_i)`` where the ``n`` rule matrices ``A_i`` (n x n) are shared by
    every PHM layer of the adapter (held by the tuner, passed in as ``rule``), ``s_i`` is
    ``in/n x rank`` and ``t_i`` is ``rank x out/n``. Trainable here: ``s``, ``t`` and the bias,
    ``rank * (in + out) + out`` parameters.
    """

    def __init__(
        self, in_features: int, out_features: int, n: int, rank: int, rule: nn.ParameterDict,
        adapter_name: str, zero: bool, device: torch.device,
    ) -> None:
        super().__init__()
        if in_features % n or out_features % n:
            raise ValueError(
                f"phm_dim {n} must divide the adapter's input and output sizes "
                f"({in_features} and {out_features})"
            )
        self.in_features, self.out_features, self.n = in_features, out_features, n
        p, q = in_features // n, out_features // n
        # Var(W) ~ 1/in, like a default Linear: Var(A) = 1/n (tuner), Var(s t) = 1/in.
        self.s = nn.Parameter(torch.randn(n, p, rank, device=device) / math.sqrt(p))
        self.t = nn.Parameter(torch.randn(n, rank, q, device=device) / math.sqrt(rank * n))
        if zero:  # the up-projection starts at zero: the adapter starts as the identity
            nn.init.zeros_(self.t)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device))
        # Not a submodule: the rules belong to the tuner and are saved once, there.
        self._rule = (rule, adapter_name)

    def weight(self) -> torch.Tensor:
        """The (in, out) weight ``sum_i A_i (x) s_i t_i``."""
        rules, name = self._rule
        rule = rules[name]
        b = torch.bmm(self.s, self.t)  # (n, p, q)
        w = torch.einsum("iab,icd->acbd", rule, b)  # (n, p, n, q): row a*p+c, column b*q+d
        return w.reshape(self.in_features, self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight() + self.bias


class Bottleneck(nn.Module):
    """``scaling * [gate] * up(act(down(x)))``; the caller adds it to a residual stream."""

    def __init__(
        self, features: int, dim: int, non_linearity: str, *, scaling: float = 1.0,
        gated: bool = False, phm: tuple[int, int, nn.ParameterDict, str] | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.scaling = scaling
        self.act = _ACTIVATIONS[non_linearity]
        if phm:
            n, rank, rule, adapter_name = phm
            self.down = PHMLinear(features, dim, n, rank, rule, adapter_name, False, device)
            self.up = PHMLinear(dim, features, n, rank, rule, adapter_name, True, device)
        else:
            self.down = nn.Linear(features, dim, device=device)
            self.up = nn.Linear(dim, features, device=device)
            nn.init.zeros_(self.down.bias)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
        self.gate = new_gate(features, device) if gated else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.up.bias.dtype
        out = self.up(self.act(self.down(x.to(dtype)))) * self.scaling
        if self.gate is not None:
            out = out * token_gate(self.gate, x)
        return out.to(x.dtype)


class LoRA(nn.Module):
    """``(alpha / r) * [gate] * B(A(dropout(x)))`` with ``B`` zero at start."""

    def __init__(
        self, in_features: int, out_features: int, r: int, alpha: float, dropout: float,
        gated: bool, device: torch.device,
    ) -> None:
        super().__init__()
        self.A = nn.Linear(in_features, r, bias=False, device=device)
        self.B = nn.Linear(r, out_features, bias=False, device=device)
        nn.init.kaiming_uniform_(self.A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.B.weight)
        self.scaling = alpha / r
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.gate = new_gate(in_features, device) if gated else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.A.weight.dtype)
        out = self.B(self.A(self.dropout(h))) * self.scaling
        if self.gate is not None:
            out = out * token_gate(self.gate, h)
        return out.to(x.dtype)


class PrefixEncoder(nn.Module):
    """Key/value prefixes for the ``sites`` attention modules of one location.

    Flat: ``tokens`` is (length, sites * 2 * inner) and holds every key and value directly.
    Reparameterised (``mlp_width > 0``): ``tokens`` is (length, hidden) and
    ``tanh(tokens W_in^T + b_in) W_out^T + b_out`` gives the same (length, sites * 2 * inner);
    each site computes only its own slice of ``W_out``.
    """

    def __init__(
        self, sites: int, length: int, hidden: int, inner: int, mlp_width: int,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.inner = inner
        width = sites * 2 * inner
        self.mlp = mlp_width > 0
        if self.mlp:
            self.tokens = nn.Parameter(torch.randn(length, hidden, device=device))
            w_in = nn.Linear(hidden, mlp_width, device=device)
            w_out = nn.Linear(mlp_width, width, device=device)
            self.w_in, self.b_in = w_in.weight, w_in.bias
            self.w_out, self.b_out = w_out.weight, w_out.bias
        else:
            self.tokens = nn.Parameter(torch.randn(length, width, device=device))

    def site(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (each length x inner) of the ``index``-th attention module."""
        span = slice(index * 2 * self.inner, (index + 1) * 2 * self.inner)
        if self.mlp:
            h = torch.tanh(F.linear(self.tokens, self.w_in, self.b_in))
            kv = F.linear(h, self.w_out[span], self.b_out[span])
        else:
            kv = self.tokens[:, span]
        return kv[:, : self.inner], kv[:, self.inner :]
