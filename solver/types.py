"""The solver's own records: an account's settings and the outcome of its solve (frozen).

Weights are fractions of account value (float64); money is integer cents. The records shared with
the ledger (``Lot``, ``Trade``, ``Restrictions``) live in ``taxview.core.records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taxview.core.records import Outside, Trade


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Per-account optimization settings; rates are combined marginal rates (fractions)."""

    account_id: str = "ACCOUNT"
    account_type: str = "taxable"  # taxable | ira | trust | other
    st_rate: float = 0.408  # 37% + 3.8% NIIT
    lt_rate: float = 0.238  # 20% + 3.8% NIIT
    te_max: float = 0.02  # annualized tracking-error budget
    max_weight: float = 0.05  # per-name cap (never below the name's benchmark weight)
    cash_target: float = 0.002  # minimum cash weight
    cash_max: float = 0.01  # maximum cash weight after the rebalance (fully invested)
    lambda_te: float = 50.0  # weight on tracking variance (annualized)
    lambda_tax: float = 1.0  # weight on tax (dollars of tax per dollar of account)
    cost_bps: float = 5.0  # linear trading cost, basis points of traded value
    # A name is traded by at least the larger of these (its sells together, or its buy) or not at
    # all, decided inside the optimization (``solver.minimums``) and kept when rounding.
    min_trade_dollars: float = 100.0
    min_trade_weight: float = 0.0003  # fraction of the account's value (3 bps: $300 of $1M)
    max_names_traded: int | None = None  # at most this many names traded a night (None: no limit)
    # A lot this many days or fewer from turning long-term is priced knowing it soon will be: a
    # short-term gain costs what waiting would save more, a short-term loss is worth more now.
    term_horizon_days: int = 30
    exclude_symbols: frozenset[str] = frozenset()
    exclude_sectors: frozenset[str] = frozenset()
    fractional: bool = False  # allow fractional shares
    # Tonight's net realized-gain allowance, cents: the annual budget minus the year's net realized
    # gain so far (the caller's, from the ledger). Negative: tonight should realize a net loss of at
    # least that much (a soft target, see ``solver.budget``). None: no budget. Taxable accounts only.
    gain_allowance_cents: int | None = None
    # The annual net realized-gain budget, cents (the backtest sets tonight's allowance from it; the
    # nightly takes the ledger mandate's ``gain_budget``). None: none.
    gain_budget_cents: int | None = None
    # A transition (a legacy portfolio moved toward the benchmark): the gain budget sets the pace.
    # A TE budget the allowance cannot meet is traded toward (the least TE it allows, noted) rather
    # than failed, and a name held over its cap is trimmed as the allowance lets it, not at once.
    # Names outside the universe (benchmark weight 0, not delisted) are treated so whatever this says.
    transition: bool = False
    # Style tilts ((style, t), ...): the active exposure sᵀ(w − w_b) at least t standard deviations
    # of the style's score (t < 0: at most t), the scores from the market's styles.parquet
    # (``solver.tilts``). At most ``taxview.core.mandate.MAX_TILTS``.
    tilts: tuple[tuple[str, float], ...] = ()
    # Holdings kept elsewhere (``solver.outside``): excluded here, or the TE budget on the two together.
    outside: Outside | None = None

    @property
    def taxable(self) -> bool:
        return self.account_type != "ira"


@dataclass(frozen=True, slots=True)
class Realized:
    """Realized gains and losses of the rebalance, in cents (losses as negative numbers)."""

    st_gain: int = 0
    st_loss: int = 0
    lt_gain: int = 0
    lt_loss: int = 0

    @property
    def net(self) -> int:
        """Net realized gain, short and long term together, cents (what the gain budget limits)."""
        return self.st_gain + self.st_loss + self.lt_gain + self.lt_loss


@dataclass(frozen=True, slots=True)
class SolveResult:
    """Outcome of one account's rebalance."""

    status: str  # optimal | infeasible | error
    reason: str | None
    solve_ms: float
    trades: tuple[Trade, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    cash_weight: float = 0.0
    te_ex_ante: float = float("nan")
    realized: Realized = Realized()
    tax_estimate_cents: int = 0
    harvested_loss_cents: int = 0
    turnover: float = 0.0
    passes: int = 0
    iterations: int = 0
    notes: tuple[str, ...] = ()  # constraints the solve had to give way on (e.g. cash above cash_max)
    # style -> (achieved, target or None): active exposure after rounding, standard deviations of the score
    active_exposures: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    te_combined: float | None = None  # outside holdings ``complete``: TE of the account and them together
    te_from_tilts: float | None = None  # with ``explain``: least TE with the tilts minus without
    order_reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # (symbol, side) -> "tilt:value"

    @property
    def ok(self) -> bool:
        return self.status == "optimal"
