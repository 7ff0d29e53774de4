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
    if args.format == "json":
        import json

        payload = {"detection": detection.to_dict(), "detected_profile": detected.to_dict(),
                   "profile": used.to_dict()}
        _out(json.dumps(payload, indent=2, default=str))
        return 0
    # CSV: numbers (bytes) under snake_case keys; the table formats them
    rows = [
        {"role": "detected", "gpus": [g.name for g in detection.gpus],
         "gpu_memory_bytes": [g.total_memory for g in detection.gpus],
         "driver": detection.driver, "reason": detection.reason, "profile": detected.name,
         "trial_budget_bytes": detected.trial_budget_bytes()},
        {"role": "used", "gpus": None, "gpu_memory_bytes": None, "driver": None,
         "reason": "as asked" if args.profile else None, "profile": used.name,
         "trial_budget_bytes": used.trial_budget_bytes()},
    ]
    if args.format == "csv":
        _out(_render(rows, "csv", "Hardware").rstrip("\n"))
        return 0
    gpus = ", ".join(f"{g.name} ({g.total_memory / 2**30:.1f} GiB)" for g in detection.gpus)
    table = [{"": r["role"], "gpus": (gpus or "none") if r["role"] == "detected" else "-",
              "driver": r["driver"] or "-", "reason": r["reason"] or "-",
              "profile": r["profile"],
              "budget per trial": f"{r['trial_budget_bytes'] / 2**30:.2f} GiB"} for r in rows]
    _out(_render(table, "table", "Hardware"))
    return 0


def estimate(args: argparse.Namespace) -> dict[str, Any]:
    """What ``autopeft estimate`` reports, as numbers under snake_case keys (counts, bytes,
    fractions, seconds); the table view formats them."""
    from autopeft.memory.step import apply_method
    from autopeft.methods import count_parameters, get_method
    from autopeft.modeling import build_model, resolve_model

    if (args.batch_size is None) != (args.seq_len is None):
        raise AutopeftError("give --batch-size and --seq-len together to predict memory")
    method = get_method(args.method)
    params = method.resolve_params(parse_params(args.param))
    ref = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    base = build_model(ref, num_labels=args.num_labels, device="meta",
                       trust_remote_code=args.trust_remote_code)
    base_total = count_parameters(base).total
    # apply_method: a method that cannot be applied without weight values is a user error.
    model = apply_method(base, method.name, params)
    count = count_parameters(model)
    out: dict[str, Any] = {
        "model": args.model, "method": method.name, "params": params,
        "base_params": base_total, "trainable_params": count.trainable,
        "trainable_fraction": count.trainable / base_total, "total_params": count.total,
    }
    if args.batch_size:
        out.update(_memory(args, ref, method.name, params))
    return out


def _memory(args: argparse.Namespace, ref: Any, method: str, params: dict) -> dict[str, Any]:
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
    out = {
        "device": device, "dtype": dtype, "batch_size": args.batch_size,
        "seq_len": args.seq_len, "target_len": args.target_len,
        "predicted_peak_bytes": pred.total_bytes, "weights_bytes": pred.weights,
        "trainable_state_bytes": pred.trainable_state, "activations_bytes": pred.activations,
        "temporaries_bytes": pred.temporaries,
        "prediction_seconds": pred.details.get("seconds"),
    }
    if profile is not None:
        out.update(profile=profile.name, profile_budget_bytes=profile.trial_budget_bytes(),
                   fits=fits(pred, profile))
    return out


def estimate_table(est: dict[str, Any]) -> list[dict[str, str]]:
    """The table view of :func:`estimate`: one labelled, formatted quantity a row."""

    def gib(n: int) -> str:
        return f"{n / 2**30:.3f} GiB"

    rows = [
        ("base model params", f"{est['base_params']:,}"),
        ("trainable params", f"{est['trainable_params']:,}"),
        ("trainable % of base", f"{100 * est['trainable_fraction']:.3f}%"),
        ("params with method", f"{est['total_params']:,}"),
    ]
    if "predicted_peak_bytes" in est:
        rows += [
            (f"predicted peak ({est['device']}, {est['dtype']}, batch {est['batch_size']} x "
             f"{est['seq_len']})", gib(est["predicted_peak_bytes"])),
            ("  weights", gib(est["weights_bytes"])),
            ("  trainable params + grads + optimizer", gib(est["trainable_state_bytes"])),
            ("  activations", gib(est["activations_bytes"])),
            ("  temporaries", gib(est["temporaries_bytes"])),
            ("prediction time", f"{est['prediction_seconds'] or 0:.1f} s"),
        ]
    if "fits" in est:
        rows.append((f"fits {est['profile']} ({est['profile_budget_bytes'] / 2**30:.1f} GiB "
                     "per trial)", "yes" if est["fits"] else "no"))
    return [{"quantity": q, "value": v} for q, v in rows]


def cmd_estimate(args: argparse.Namespace) -> int:
    est = estimate(args)
    if args.format == "json":
        import json

        _out(json.dumps(est, indent=2))
    elif args.format == "csv":
        _out(_render([est], "csv", "").rstrip("\n"))
    else:
        _out(_render(estimate_table(est), "table", f"{args.method} on {args.model}"))
    return 0
