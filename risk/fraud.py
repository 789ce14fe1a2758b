"""Fraud signals on pledges and how they combine, by Bayes' rule, into one probability.

Each signal is a number measured around one pledge (``risk.selectors.pledge_fraud_evaluation``
measures them). A step table turns it into a likelihood ratio P(value | fraud) / P(value |
legitimate); naive Bayes adds the log-ratios to the prior log-odds of fraud. The ratios are
set by hand, documented below, and chosen so that ordinary behaviour (a pledge or two an hour,
a mistyped card once) has a ratio at or below 1 and raises nothing.

A signal whose input is unknown (no IP address given, no card fingerprint from the processor,
as for the sandbox's shared test tokens) is skipped: it counts as a ratio of 1, and the
evaluation says it was not available.

Levels:
- probability >= ``ALERT_THRESHOLD``: a FraudAlert for admins;
- probability >= ``SUSPEND_THRESHOLD`` *and* a signal that implicates the campaign itself (its
  initiator's card or IP, or a spike in its own pledges): the campaign is also suspended
  pending review. A card tester abusing an honest campaign raises an alert on the backer but
  does not take the campaign down.

Beside these, two patterns are shown to staff in a matching round's challenge window
(``risk.selectors.pledges_challenge_signals`` measures them): bursts of backers who give only to
one campaign within the same minute, and accounts only days old when they gave. They are not
likelihood ratios and do not enter the probability: a campaign mentioned on the radio draws
new, single-campaign backers too, so they are for staff to weigh, not for an automatic alert.

Nothing here touches the database.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from .algorithms import combine_log_odds, logit, step_log_likelihood_ratio

# About 1 pledge in 500 on a reward platform is fraudulent or abusive.
PRIOR_FRAUD_PROBABILITY = 0.002
ALERT_THRESHOLD = 0.5
SUSPEND_THRESHOLD = 0.95

VELOCITY_WINDOW = timedelta(hours=1)
CARD_SHARING_WINDOW = timedelta(days=30)
IP_WINDOW = timedelta(days=1)
# A campaign's own rate needs some history before a spike means anything.
SPIKE_MIN_HISTORY = timedelta(hours=6)

# Failure codes that are about the card, not about the campaign or the processor.
NON_CARD_FAILURE_CODES = frozenset({"campaign_not_live", "abandoned", "processing_error"})


@dataclass(frozen=True)
class Signal:
    name: str
    thresholds: tuple[float, ...]
    ratios: tuple[float, ...]
    implicates_campaign: bool
    template: str  # how to say the value in words; {value} is filled in

    def log_ratio(self, value: float | None) -> float:
        if value is None:
            return 0.0
        return float(step_log_likelihood_ratio(value, list(self.thresholds), list(self.ratios)))


SIGNALS: tuple[Signal, ...] = (
    # Pledge attempts by this backer in the last hour, this one included.
    Signal("backer_velocity", (3, 5, 10), (0.9, 3, 12, 40), False, "{value} pledge attempts by this backer in an hour"),
    # Declined attempts by this backer in the hour before this pledge: card testing is a run of
    # declines and then one card that works.
    Signal("card_testing", (1, 2, 3, 5), (0.8, 1.5, 6, 60, 300), False, "{value} declined cards in the hour before"),
    # Charges on this card in the last hour, by anyone.
    Signal("card_velocity", (3, 5, 10), (1, 4, 15, 50), False, "this card was charged {value} times in an hour"),
    # Other backers (not the initiator) who paid with this card in the last 30 days.
    Signal("card_shared", (1, 2), (1, 8, 50), False, "{value} other backer accounts used this card"),
    # The campaign's initiator has paid with this card (on another campaign): backing their own
    # campaign through a second account.
    Signal("initiator_card", (1,), (1, 20_000), True, "the campaign's initiator has paid with this card"),
    # Other backers who pledged from this IP address in the last day (NAT and offices share IPs).
    Signal("ip_shared", (3, 6), (1, 4, 20), False, "{value} other backer accounts pledged from this IP address"),
    # The campaign's initiator has pledged from this IP address.
    Signal("initiator_ip", (1,), (1, 50), True, "the campaign's initiator has pledged from this IP address"),
    # Standard deviations by which the campaign's pledges in the last hour exceed its own rate
    # (Poisson). A spike alone is weak evidence: a mention in the press looks the same.
    Signal("campaign_spike", (4, 8), (1, 4, 15), True, "pledges to the campaign at {value:.0f} sigma above its rate"),
)
SIGNALS_BY_NAME = {s.name: s for s in SIGNALS}


@dataclass(frozen=True)
class SignalValue:
    name: str
    value: float | None
    log_ratio: float
    text: str

    def as_json(self) -> dict:
        return {"value": self.value, "log_ratio": round(self.log_ratio, 4), "text": self.text}


class FraudLevel:
    NONE = "none"
    ALERT = "alert"
    SUSPEND = "suspend"


@dataclass(frozen=True)
class FraudEvaluation:
    probability: float
    log_odds: float
    signals: list[SignalValue] = field(default_factory=list)
    level: str = FraudLevel.NONE

    @property
    def reasons(self) -> list[str]:
        """Return the signals that raised the probability, strongest first, in words."""
        return reasons_in_words((s.text, s.log_ratio) for s in self.signals)

    def signals_json(self) -> dict:
        return {s.name: s.as_json() for s in self.signals}


def reasons_in_words(signals) -> list[str]:
    """Return the (text, log-ratio) signals that raised the probability, strongest first, as sentences.

    The same for an evaluation just made and for one stored (``signals_json``).
    """
    raising = sorted((pair for pair in signals if pair[1] > 0), key=lambda pair: -pair[1])
    return [f"{text[0].upper()}{text[1:]}." for text, _ratio in raising]


def evaluate(values: dict[str, float | None]) -> FraudEvaluation:
    """Combine measured signal values (None: unknown) into a FraudEvaluation."""
    unknown = set(values) - set(SIGNALS_BY_NAME)
    if unknown:
        raise ValueError(f"unknown fraud signals: {sorted(unknown)}")
    measured = []
    for signal in SIGNALS:
        value = values.get(signal.name)
        if value is None:
            text = f"{signal.name.replace('_', ' ')}: not available"
        elif signal.thresholds == (1,):
            text = signal.template if value else f"{signal.template}: no"
        else:
            text = signal.template.format(value=value)
        measured.append(SignalValue(signal.name, value, signal.log_ratio(value), text))
    llr = np.array([s.log_ratio for s in measured])
    probability = float(combine_log_odds(PRIOR_FRAUD_PROBABILITY, llr)[0])
    log_odds = logit(PRIOR_FRAUD_PROBABILITY) + float(llr.sum())
    implicated = any(s.log_ratio > 0 and SIGNALS_BY_NAME[s.name].implicates_campaign for s in measured)
    if probability >= SUSPEND_THRESHOLD and implicated:
        level = FraudLevel.SUSPEND
    elif probability >= ALERT_THRESHOLD:
        level = FraudLevel.ALERT
    else:
        level = FraudLevel.NONE
    return FraudEvaluation(probability=probability, log_odds=log_odds, signals=measured, level=level)


@dataclass(frozen=True)
class ChallengeSignal:
    """A pattern around one contribution, shown beside its fraud probability in a round's challenge window."""

    name: str  # "backer_burst" or "new_account"
    text: str  # a sentence, for staff


def burst_sizes(times, backers, *, min_backers: int, window_seconds: float) -> np.ndarray:
    """Return, per pledge, the size of the largest burst it is part of (0: none).

    ``times`` (seconds) and ``backers`` are one campaign's pledges by backers who give only to
    it. A burst is at least ``min_backers`` distinct backers whose pledges all fall within
    ``window_seconds`` of each other (inclusive); its size is how many distinct backers it has.
    A backer who pledged twice in the minute counts once.
    """
    times = np.asarray(times, dtype=float)
    backers = np.asarray(backers)
    order = np.argsort(times, kind="stable")
    times, backers = times[order], backers[order]
    ends = np.searchsorted(times, times + window_seconds, side="right")
    sorted_sizes = np.zeros(len(times), dtype=np.int64)
    # Each window starts at a pledge; only those with enough pledges can hold enough backers.
    for start in np.flatnonzero(ends - np.arange(len(times)) >= min_backers):
        end = int(ends[start])
        distinct = len(set(backers[start:end].tolist()))
        if distinct >= min_backers:
            np.maximum(sorted_sizes[start:end], distinct, out=sorted_sizes[start:end])
    sizes = np.empty_like(sorted_sizes)
    sizes[order] = sorted_sizes
    return sizes


def backer_burst_signal(size: int, *, window_seconds: int) -> ChallengeSignal | None:
    """Return the burst signal of a pledge in a burst of ``size`` backers (``burst_sizes``), or None."""
    if size <= 0:
        return None
    return ChallengeSignal(
        "backer_burst",
        f"{size} backers who gave only to this campaign pledged within {window_seconds} seconds of each other.",
    )


def new_account_signal(age: timedelta, *, days: int) -> ChallengeSignal | None:
    """Return the new-account signal of a pledge made by an account ``age`` old, or None from ``days`` days on."""
    if age >= timedelta(days=days):
        return None
    whole_days = max(age.days, 0)
    return ChallengeSignal(
        "new_account",
        f"The account was {whole_days} day{'' if whole_days == 1 else 's'} old when it gave (under {days} days).",
    )
