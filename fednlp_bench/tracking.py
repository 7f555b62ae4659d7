"""TensorBoard logging of a run's curve (--log-dir): one scalar per tag and evaluated round or epoch."""
from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any

from .errors import UserError


def require_tensorboard() -> None:
    """Raise a UserError (problem and fix) when the tensorboard package that --log-dir needs is not installed."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError("--log-dir needs the tensorboard package, which is not installed",
                        "pip install 'fednlp-bench[tracking]', or leave out --log-dir") from None


class ScalarLog:
    """Writes curve points as TensorBoard scalars under `log_dir`, step = the point's round (or epoch).

    Tags: `eval/<metric>` (`validation/<metric>` for a validation point), `train/loss`, `comm/upload_bytes`
    (federated) and `time/wall_s`. The folder and the writer are made at the first point. With `resume`, that
    point's step is the writer's purge_step, so TensorBoard drops what an earlier process of the run logged from
    that step on and every step shows once.
    """

    def __init__(self, log_dir: str | Path, resume: bool = False) -> None:
        self.log_dir = Path(log_dir).expanduser()
        self.resume = resume
        self._writer: Any = None

    def point(self, point: dict[str, Any], upload_bytes: int | None = None) -> None:
        """Log one curve point ({"round", "metrics", "train_loss", "wall_time_s", ...}) and the round's upload."""
        split = "validation" if point.get("split") == "validation" else "eval"
        values = {f"{split}/{name}": value for name, value in point["metrics"].items()}
        values["train/loss"] = point.get("train_loss")
        if upload_bytes is not None:
            values["comm/upload_bytes"] = upload_bytes
        values["time/wall_s"] = point.get("wall_time_s")
        self.scalars(int(point["round"]), values)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        """Log the numeric `values` (tag -> number; others are skipped) at `step`, flushed at once."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir), purge_step=step if self.resume else None)
        for tag, value in values.items():
            if isinstance(value, Real) and not isinstance(value, bool):
                self._writer.add_scalar(tag, float(value), step)
        self._writer.flush()  # a long run's points show in TensorBoard as they come

    def close(self) -> None:
        """Flush and close the event file (nothing to do when no point was logged)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def open_log(log_dir: str | None, resume: bool = False) -> ScalarLog | None:
    """The run's ScalarLog, or None without --log-dir."""
    return ScalarLog(log_dir, resume) if log_dir else None
