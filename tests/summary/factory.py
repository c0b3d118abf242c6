"""Run records in the engine's result shape, built by hand for the statistics tests."""

from __future__ import annotations

from typing import Any

ROSENBROCK = {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}
CONSTANT = {"name": "constant"}


def record(
    optimizer: dict[str, Any],
    seed: int,
    losses: list[float | None],
    *,
    problem: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
    f_star: float | None = 0.0,
    target: float | None = None,
    diverged: bool = False,
    steps: int | None = None,
    lrs: list[float] | None = None,
) -> dict[str, Any]:
    """A result whose metrics follow the engine's definitions from ``losses`` (one per step)."""
    n = len(losses)
    steps = n - 1 if steps is None else steps
    finite = [v for v in losses if v is not None]
    hit = next(
        (i for i, v in enumerate(losses) if v is not None and target is not None and v <= target),
        None,
    )
    final = losses[-1] if losses else None
    return {
        "run_id": f"{optimizer['name']}-{optimizer.get('lr')}-{seed}",
        "spec": {
            "problem": problem or ROSENBROCK,
            "optimizer": optimizer,
            "schedule": schedule or CONSTANT,
            "seed": seed,
            "steps": steps,
            "target_loss": target,
            "eval_every": 1,
            "dtype": "float64",
        },
        "final_loss": final,
        "best_loss": min(finite) if finite else None,
        "f_star": f_star,
        "suboptimality": None if final is None or f_star is None else final - f_star,
        "steps_to_target": hit,
        "diverged": diverged,
        "divergence_step": n - 1 if diverged else None,
        "divergence_reason": "loss became inf" if diverged else None,
        "test_loss": None,
        "test_accuracy": None,
        "wall_time_s": 0.01 * (n - 1),
        "steps_done": n - 1,
        "stopped": False,
        "eval_steps": list(range(n)),
        "losses": losses,
        "wall_times": [0.01 * i for i in range(n)],
        "lrs": lrs if lrs is not None else [optimizer.get("lr", 0.001)] * (n - 1),
        "grad_norms": [1.0] * (n - 1),
        "update_norms": [0.1] * (n - 1),
    }
