"""ETF → direct indexing: should this investor switch? (domain.md §6), pure math.

A $V ETF position with embedded gain fraction g is sold (tax V·g·cg now) and the rest goes into a
direct index that grows like the ETF but pays a fee on each year-end value; the direct index
harvests losses (h of its initial value, over the first years) whose tax value (× income rate) is
reinvested in the ETF. Compared at year N pre-tax (step-up: statement values) and post-tax
(liquidate everything: capital-gains tax on every embedded gain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from taxview.core.errors import InputError

PROFILES = {
    "higher": {"cg_rate": 0.238, "income_rate": 0.408},
    "lower": {"cg_rate": 0.150, "income_rate": 0.220},
}


@dataclass(frozen=True)
class Inputs:
    value: float = 100_000.0
    embedded_gain: float = 0.20
    cg_rate: float = 0.238
    income_rate: float = 0.408
    growth: float = 0.06
    fee: float = 0.003
    years: int = 10
    harvest: float = 0.30  # total harvested net losses, fraction of the initial direct index
    harvest_years: int = 3  # realized equally at the end of each of the first years
    harvest_path: tuple[float, ...] | None = None  # per-year fractions instead (from a backtest)

    def validate(self) -> None:
        if not (math.isfinite(self.value) and self.value > 0):
            raise InputError("value", f"must be > 0, got {self.value}")
        for name in ("embedded_gain", "cg_rate", "income_rate", "fee", "harvest"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= 1):
                raise InputError(name, f"must be between 0 and 1, got {v}")
        if not (math.isfinite(self.growth) and -1 < self.growth < 1):
            raise InputError("growth", f"must be a yearly rate between -1 and 1, got {self.growth}")
        if self.years < 1:
            raise InputError("years", f"must be >= 1, got {self.years}")
        if self.harvest_years < 1:
            raise InputError("harvest_years", f"must be >= 1, got {self.harvest_years}")
        if self.harvest_path is not None and any(not (0 <= x <= 1) for x in self.harvest_path):
            raise InputError("harvest_path", "yearly harvested fractions must be between 0 and 1")

    def path(self) -> list[float]:
        """Harvested losses per year as fractions of the initial direct index (years 1..N)."""
        if self.harvest_path is not None:
            p = list(self.harvest_path[: self.years])
        else:
            k = min(self.harvest_years, self.years)
            p = [self.harvest / self.harvest_years] * k
        return p + [0.0] * (self.years - len(p))


@dataclass
class Result:
    transition_tax: float
    di_initial: float
    etf_end: float
    di_end: float
    total_fee: float
    opportunity_cost: float
    total_cost: float
    max_losses: float
    tax_savings: float
    tax_alpha: float
    tax_alpha_by_year: list[float]
    etf_pre_tax: float
    di_pre_tax: float
    etf_post_tax: float
    di_post_tax: float
    net_benefit_pre_tax: float
    net_benefit_post_tax: float
    verdict_pre_tax: str = ""
    verdict_post_tax: str = ""
    inputs: dict = field(default_factory=dict)


def analyze(x: Inputs) -> Result:
    x.validate()
    V, g, r, f, N = x.value, x.embedded_gain, x.growth, x.fee, x.years
    tax = V * g * x.cg_rate
    di0 = V - tax
    etf_end = V * (1 + r) ** N
    v, fees = di0, 0.0
    for _ in range(N):
        grown = v * (1 + r)
        fees += f * grown
        v = grown * (1 - f)
    di_end = v
    total_cost = etf_end - di_end
    path = x.path()
    losses_by_year = [p * di0 for p in path]
    losses = sum(losses_by_year)
    savings_by_year = [loss * x.income_rate for loss in losses_by_year]
    alpha_by_year = [s * (1 + r) ** (N - (k + 1)) for k, s in enumerate(savings_by_year) if s]
    alpha = sum(alpha_by_year)
    savings = sum(savings_by_year)
    etf_post = etf_end - x.cg_rate * (etf_end - V * (1 - g))
    di_post = di_end - x.cg_rate * (di_end - (di0 - losses)) + alpha - x.cg_rate * (alpha - savings)
    res = Result(
        transition_tax=tax,
        di_initial=di0,
        etf_end=etf_end,
        di_end=di_end,
        total_fee=fees,
        opportunity_cost=total_cost - fees,
        total_cost=total_cost,
        max_losses=losses,
        tax_savings=savings,
        tax_alpha=alpha,
        tax_alpha_by_year=alpha_by_year,
        etf_pre_tax=etf_end,
        di_pre_tax=di_end + alpha,
        etf_post_tax=etf_post,
        di_post_tax=di_post,
        net_benefit_pre_tax=di_end + alpha - etf_end,
        net_benefit_post_tax=di_post - etf_post,
        inputs=asdict(x),
    )
    res.verdict_pre_tax = _verdict(res.net_benefit_pre_tax, "held to a step-up (pre-tax)")
    res.verdict_post_tax = _verdict(res.net_benefit_post_tax, f"liquidated after {N} years (post-tax)")
    return res


def _verdict(benefit: float, case: str) -> str:
    if abs(benefit) < 0.5:
        return f"{case}: break-even"
    word = "switch" if benefit > 0 else "keep the ETF"
    return f"{case}: {word} — direct indexing {'gains' if benefit > 0 else 'loses'} ${abs(benefit):,.0f}"


def breakeven(x: Inputs, case: str, tol: float = 0.001) -> float | None:
    """Embedded gain (0..1, to ``tol``) where the net benefit crosses zero; None if it never does."""
    key = "net_benefit_pre_tax" if case == "pre_tax" else "net_benefit_post_tax"

    def benefit(g: float) -> float:
        return getattr(analyze(Inputs(**{**asdict(x), "embedded_gain": g, "harvest_path": x.harvest_path})), key)

    lo, hi = 0.0, 1.0
    b_lo, b_hi = benefit(lo), benefit(hi)
    if b_lo == 0:
        return 0.0
    if (b_lo > 0) == (b_hi > 0):
        return None
    while hi - lo > tol / 4:
        mid = (lo + hi) / 2
        if (benefit(mid) > 0) == (b_lo > 0):
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 4)


def sweep(x: Inputs, steps: int = 101) -> dict[str, list[float]]:
    grid = [i / (steps - 1) for i in range(steps)]
    pre, post = [], []
    for g in grid:
        r = analyze(Inputs(**{**asdict(x), "embedded_gain": g, "harvest_path": x.harvest_path}))
        pre.append(r.net_benefit_pre_tax)
        post.append(r.net_benefit_post_tax)
    return {"embedded_gain": grid, "net_benefit_pre_tax": pre, "net_benefit_post_tax": post}


def gradual(x: Inputs, gain_budget: float, years: int | None = None) -> dict:
    """Sell the ETF over several years, realizing at most ``gain_budget`` dollars of gain a year.

    Each year-end the remaining ETF grows, then shares worth up to the budget's gain are sold and
    moved (after tax) into the direct index, which harvests ``harvest`` of each tranche spread
    over its own first ``harvest_years`` years. Compared with the all-at-once switch at year N.
    """
    x.validate()
    if not (math.isfinite(gain_budget) and gain_budget > 0):
        raise InputError("gain_budget", f"must be > 0 dollars a year, got {gain_budget}")
    N, r, f = x.years, x.growth, x.fee
    etf_value, etf_basis = x.value, x.value * (1 - x.embedded_gain)
    tranches: list[dict] = []  # direct-index tranches: value, basis, start year
    savings_value, savings_basis, taxes = 0.0, 0.0, 0.0
    moved_years = 0
    for year in range(N + 1):
        # sell part of the ETF at the start of this year (year 0: now)
        if etf_value > 0:
            gain_frac = max(0.0, 1 - etf_basis / etf_value)
            sell = etf_value if gain_frac == 0 else min(etf_value, gain_budget / gain_frac)
            if years is not None and year >= years - 1:
                sell = etf_value  # the last year of a fixed schedule moves the rest
            if sell > 0 and year < N:
                tax = sell * gain_frac * x.cg_rate
                taxes += tax
                basis_sold = etf_basis * sell / etf_value
                etf_value -= sell
                etf_basis -= basis_sold
                tranches.append({"value": sell - tax, "basis": sell - tax, "start": year, "initial": sell - tax})
                moved_years += 1
        if year == N:
            break
        # the year passes
        etf_value *= 1 + r
        savings_value *= 1 + r
        for t in tranches:
            t["value"] *= (1 + r) * (1 - f)
            age = year - t["start"] + 1
            if 1 <= age <= x.harvest_years:
                loss = t["initial"] * x.harvest / x.harvest_years
                t["basis"] -= loss
                saving = loss * x.income_rate
                savings_value += saving
                savings_basis += saving
    di_value = sum(t["value"] for t in tranches)
    di_basis = sum(t["basis"] for t in tranches)
    pre = etf_value + di_value + savings_value
    post = (
        pre
        - x.cg_rate * max(0.0, etf_value - etf_basis)
        - x.cg_rate * (di_value - di_basis)
        - x.cg_rate * (savings_value - savings_basis)
    )
    once = analyze(x)
    return {
        "gain_budget": gain_budget,
        "years_to_move": moved_years,
        "transition_taxes": taxes,
        "pre_tax": pre,
        "post_tax": post,
        "all_at_once_pre_tax": once.di_pre_tax,
        "all_at_once_post_tax": once.di_post_tax,
        "etf_pre_tax": once.etf_pre_tax,
        "etf_post_tax": once.etf_post_tax,
        "gradual_vs_all_at_once_pre_tax": pre - once.di_pre_tax,
        "gradual_vs_all_at_once_post_tax": post - once.di_post_tax,
    }


def harvest_path_from_metrics(metrics: dict, years: int) -> tuple[float, ...]:
    """Yearly harvested losses as fractions of initial capital from a ``taxview backtest`` metrics.json."""
    by_year: Sequence | dict | None = metrics.get("harvested_by_year_pct")
    if by_year is None:
        raise InputError("harvest_from", "metrics.json has no 'harvested_by_year_pct' (run taxview backtest)")
    values = list(by_year.values()) if isinstance(by_year, dict) else list(by_year)
    return tuple(float(v) / 100 for v in values[:years])


def te_path_from_metrics(metrics: dict) -> dict[str, float] | None:
    """A legacy transition's ex-ante TE by year from a ``taxview backtest --legacy`` metrics.json
    (``transition.te_by_year``); None when the backtest started from cash."""
    transition = metrics.get("transition")
    if not isinstance(transition, dict):
        return None
    path = transition.get("te_by_year")
    if not isinstance(path, dict) or not all(isinstance(v, (int, float)) for v in path.values()):
        raise InputError("harvest_from", "metrics.json's transition.te_by_year must map years to TE fractions")
    return {str(y): float(v) for y, v in path.items()}
