"""`Finding`, `LayerStatistics` and `DiagnosisReport`: what `diagnose` returns, and its text."""

from __future__ import annotations

import dataclasses
import math

__all__ = ["SEVERITIES", "DiagnosisReport", "Finding", "LayerStatistics"]

#: The severities of a finding, most severe first.
SEVERITIES = ("error", "warning", "info")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem found by `diagnose`.

    Attributes:
        rule: str, the rule's name (a key of `STATIC_RULES` or `DYNAMIC_RULES`).
        severity: str, `"error"`, `"warning"` or `"info"`.
        layer: str or None, the name of the layer concerned (None for the
            optimizer or the whole model).
        message: str, what was found.
        why: str, why it matters.
        fix: str, what to do about it.
        evidence: dict, the numbers behind a measured finding.
    """

    rule: str
    severity: str
    layer: str | None
    message: str
    why: str
    fix: str
    evidence: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """Returns the finding as a plain dict."""
        return dataclasses.asdict(self)

    def __str__(self):
        where = f" (layer '{self.layer}')" if self.layer else ""
        return (
            f"[{self.severity}] {self.rule}{where}: {self.message}\n"
            f"    why: {self.why}\n    fix: {self.fix}"
        )


@dataclasses.dataclass
class LayerStatistics:
    """Activation and gradient statistics of one layer, measured by `diagnose`.

    Attributes:
        layer: str, the layer's name.
        activation: str or None, the activation at the layer's output.
        mean: float, the mean of the layer's output over the batches.
        std: float, the standard deviation of the layer's output.
        dead_fraction: float or None, for ReLU outputs, the fraction of units
            (last axis) that are zero for every sample of every batch.
        saturated_fraction: float or None, for sigmoid/tanh outputs, the
            fraction of outputs in the flat tails (sigmoid within 0.01 of 0 or
            1, |tanh| above 0.99).
        gradient_norm: float or None, for layers with weights, the L2 norm of
            the loss gradient with respect to the layer's trainable weights
            (averaged over the batches).
        gradient_rms: float or None, `gradient_norm / sqrt(number of weights)`,
            comparable between layers of different sizes.
        nonfinite: int, the number of NaN/Inf values in the outputs and gradients.
    """

    layer: str
    activation: str | None
    mean: float = math.nan
    std: float = math.nan
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    gradient_norm: float | None = None
    gradient_rms: float | None = None
    nonfinite: int = 0

    def to_dict(self):
        """Returns the statistics as a plain dict."""
        return dataclasses.asdict(self)


class DiagnosisReport:
    """What `diagnose` found: findings, per-layer statistics, and a readable summary.

    `print(report)` shows the findings (each with why it matters and the fix)
    and, after a dynamic diagnosis, a table of per-layer statistics.

    Attributes:
        model_name: str, the model's name.
        findings: list of `Finding`, errors first.
        layers: list of `LayerStatistics` (empty for a static diagnosis).
        gradient_norm_ratio: float or None, the RMS gradient of the first
            layer with weights divided by that of the last one.
        losses: list of float, the training losses of the sanity check.
        input_statistics: dict or None, the largest per-feature RMS, mean and
            std of the inputs as the first layer with weights sees them.
        batch_size: int or None, the batch size of the measured batches.
    """

    def __init__(
        self,
        model_name,
        findings,
        layers=(),
        gradient_norm_ratio=None,
        losses=(),
        input_statistics=None,
        batch_size=None,
        notes=(),
    ):
        order = {severity: i for i, severity in enumerate(SEVERITIES)}
        self.model_name = model_name
        self.findings = sorted(findings, key=lambda f: order[f.severity])
        self.layers = list(layers)
        self.gradient_norm_ratio = gradient_norm_ratio
        self.losses = [float(loss) for loss in losses]
        self.input_statistics = input_statistics
        self.batch_size = batch_size
        self.notes = list(notes)

    @property
    def errors(self):
        """The findings of severity "error"."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self):
        """The findings of severity "warning"."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def rules(self):
        """The set of rule names found."""
        return {f.rule for f in self.findings}

    @property
    def ok(self):
        """True when there is no error and no warning (infos are allowed)."""
        return not self.errors and not self.warnings

    def by_rule(self, rule):
        """The findings of one rule."""
        return [f for f in self.findings if f.rule == rule]

    def to_dict(self):
        """Returns the whole report as plain Python data (e.g. for JSON)."""
        return {
            "model_name": self.model_name,
            "findings": [f.to_dict() for f in self.findings],
            "layers": [s.to_dict() for s in self.layers],
            "gradient_norm_ratio": self.gradient_norm_ratio,
            "losses": self.losses,
            "input_statistics": self.input_statistics,
            "batch_size": self.batch_size,
            "notes": self.notes,
        }

    def __repr__(self):
        counts = ", ".join(
            f"{sum(f.severity == s for f in self.findings)} {s}" for s in SEVERITIES
        )
        return f"<DiagnosisReport model='{self.model_name}' findings: {counts}>"

    def _repr_pretty_(self, printer, cycle):  # IPython / Jupyter
        printer.text(str(self))

    def __str__(self):
        lines = []
        n_err, n_warn = len(self.errors), len(self.warnings)
        n_info = len(self.findings) - n_err - n_warn
        if self.findings:
            head = f"{n_err} error(s), {n_warn} warning(s), {n_info} info"
        else:
            head = "no problems found"
        lines.append(f"Diagnosis of model '{self.model_name}': {head}")
        for finding in self.findings:
            lines.append(str(finding))
        if self.layers:
            lines.append("")
            lines.append(
                f"Per-layer statistics (training mode, batches of {self.batch_size}):"
            )
            lines.append(_format_table(self.layers))
        if self.gradient_norm_ratio is not None:
            lines.append(
                f"Gradient RMS ratio first/last layer: {self.gradient_norm_ratio:.3g}"
            )
        if self.input_statistics:
            stats = self.input_statistics
            lines.append(
                f"Inputs of the first layer with weights: largest feature RMS "
                f"{stats['max_rms']:.3g} (|mean| up to {stats['max_abs_mean']:.3g}, "
                f"std up to {stats['max_std']:.3g})"
            )
        if self.losses:
            lines.append(
                f"Sanity training ({len(self.losses)} steps on the measured batches): "
                f"loss {self.losses[0]:.4g} -> {self.losses[-1]:.4g}"
            )
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _fmt_number(value, spec=".3g"):
    if value is None:
        return "-"
    return format(value, spec)


def _format_table(stats):
    header = ("layer", "activation", "mean", "std", "dead", "saturated", "grad norm", "nan/inf")
    rows = [
        (
            s.layer,
            s.activation or "-",
            _fmt_number(s.mean),
            _fmt_number(s.std),
            _fmt_number(s.dead_fraction, ".0%"),
            _fmt_number(s.saturated_fraction, ".0%"),
            _fmt_number(s.gradient_norm),
            str(s.nonfinite),
        )
        for s in stats
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    )
