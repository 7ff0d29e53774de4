"""``autopeft profile`` and ``autopeft estimate``: planning without training or weights."""

from __future__ import annotations

import argparse
from typing import Any

from autopeft.errors import AutopeftError


def _out(text: str) -> None:
    print(text, flush=True)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``--param key=value``: YAML scalars (8, 1e-3, true), ``a,b`` or ``[a, b]`` lists."""
    from autopeft.errors import excerpt
    from autopeft.yamlio import parse_yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise AutopeftError(f"--param takes KEY=VALUE, got {excerpt(item)}")
        text = text.strip()
        what = f"--param {excerpt(key.strip(), quote=False)}"
        if "," in text and not text.startswith(("[", "{")):
            value: Any = [parse_yaml(v.strip(), what) for v in text.split(",") if v.strip()]
        else:
            value = parse_yaml(text, what) if text else ""
        params[key.strip()] = value
    return params


def _render(rows: list[dict], fmt: str, title: str) -> str:
    from autopeft.report import render

    return render(rows, fmt, title=title)


def cmd_profile(args: argparse.Namespace) -> int:
    from autopeft.hardware import detect_profile, list_profiles, resolve_profile

    if args.list:
        rows = [{k: v for k, v in p.to_dict().items() if k not in ("match_names", "source")}
                for p in list_profiles()]
        _out(_render(rows, args.format, "Shipped profiles"))
        return 0
    detected, detection = detect_profile()
    used = resolve_profile(args.profile)[0] if args.profile else detected
    gpus = ", ".join(f"{g.name} ({g.total_memory / 2**30:.1f} GiB)" for g in detection.gpus)
    rows = [
        {"": "detected", "gpus": gpus or "none", "driver": detection.driver or "-",
         "reason": detection.reason or "-", "profile": detected.name,
         "budget per trial": f"{detected.trial_budget_bytes() / 2**30:.2f} GiB"},
        {"": "used", "gpus": "-", "driver": "-", "reason": "as asked" if args.profile else "-",
         "profile": used.name, "budget per trial": f"{used.trial_budget_bytes() / 2**30:.2f} GiB"},
    ]
    if args.format == "table":
        _out(_render(rows, "table", "Hardware"))
    else:
        import json

        payload = {"detection": detection.to_dict(), "detected_profile": detected.to_dict(),
                   "profile": used.to_dict()}
        _out(json.dumps(payload, indent=2, default=str) if args.format == "json"
             else _render(rows, "csv", "Hardware"))
    return 0


def estimate_rows(args: argparse.Namespace) -> list[dict]:
    from autopeft.memory.step import apply_method
    from autopeft.methods import count_parameters, get_method
    from autopeft.modeling import build_model, resolve_model

    method = get_method(args.method)
    params = method.resolve_params(parse_params(args.param))
    ref = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    base = build_model(ref, num_labels=args.num_labels, device="meta",
                       trust_remote_code=args.trust_remote_code)
    base_total = count_parameters(base).total
    # apply_method: a method that cannot be applied without weight values is a user error.
    model = apply_method(base, method.name, params)
    count = count_parameters(model)
    rows = [
        {"quantity": "base model params", "value": f"{base_total:,}"},
        {"quantity": "trainable params", "value": f"{count.trainable:,}"},
        {"quantity": "trainable % of base", "value": f"{100 * count.trainable / base_total:.3f}%"},
        {"quantity": "params with method", "value": f"{count.total:,}"},
    ]
    if (args.batch_size is None) != (args.seq_len is None):
        raise AutopeftError("give --batch-size and --seq-len together to predict memory")
    if args.batch_size:
        rows += _memory_rows(args, ref, method.name, params)
    return rows


def _memory_rows(args: argparse.Namespace, ref: Any, method: str, params: dict) -> list[dict]:
    from autopeft.hardware import load_profile
    from autopeft.memory import fits, predict_peak_memory
    from autopeft.modeling import max_positions
    from autopeft.precision import profile_dtype

    positions = max_positions(ref)
    if positions is not None and args.seq_len > positions:
        raise AutopeftError(f"--seq-len {args.seq_len} is beyond the {positions} positions of "
                            f"'{args.model}'; give --seq-len {positions} or less")
    profile = load_profile(args.profile) if args.profile else None
    device = profile.device if profile else "cuda"
    # A profile decides as it will for its trials (fp32 on CPU whatever was asked); without
    # one, the dtype asked for (auto: fp32).
    if profile:
        dtype = profile_dtype(args.dtype, profile)
    else:
        dtype = "fp32" if args.dtype == "auto" else args.dtype
    pred = predict_peak_memory(ref.config, method, params, batch_size=args.batch_size,
                               seq_len=args.seq_len, target_len=args.target_len, dtype=dtype,
                               num_labels=args.num_labels, device=device)

    def gib(n: int) -> str:
        return f"{n / 2**30:.3f} GiB"

    rows = [
        {"quantity": f"predicted peak ({device}, {dtype}, batch {args.batch_size} x "
                     f"{args.seq_len})", "value": gib(pred.total_bytes)},
        {"quantity": "  weights", "value": gib(pred.weights)},
        {"quantity": "  trainable params + grads + optimizer", "value": gib(pred.trainable_state)},
        {"quantity": "  activations", "value": gib(pred.activations)},
        {"quantity": "  temporaries", "value": gib(pred.temporaries)},
        {"quantity": "prediction time", "value": f"{pred.details.get('seconds', 0):.1f} s"},
    ]
    if profile is not None:
        rows.append({"quantity": f"fits {profile.name} "
                                 f"({profile.trial_budget_bytes() / 2**30:.1f} GiB per trial)",
                     "value": "yes" if fits(pred, profile) else "no"})
    return rows


def cmd_estimate(args: argparse.Namespace) -> int:
    rows = estimate_rows(args)
    if args.format == "json":
        import json

        _out(json.dumps({r["quantity"].strip(): r["value"] for r in rows}, indent=2))
    else:
        _out(_render(rows, args.format, f"{args.method} on {args.model}"))
    return 0
