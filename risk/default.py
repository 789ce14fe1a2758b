"""The default model of debt campaigns: probability that a loan defaults, its grade A to E, and why.

Like the review model (``risk.review``), a logistic regression on a few numbers, here with a
documented prior only: the platform has too few finished loans to fit one, so the weights are
set by hand from what lending platforms commonly report (higher rates and longer terms go with
more defaults, as do bullet loans that leave all principal to the last month, new borrowers
without a track record, and borrowers whose earlier loans went bad; repaid loans and a verified
e-mail lower the risk). Features are standardised with typical values. Nothing here touches the
database; ``risk.selectors.campaign_default_risk`` feeds it.
"""

from dataclasses import dataclass

import numpy as np
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .algorithms import LogisticModel

TOP_REASONS = 3
REASON_MIN_CONTRIBUTION = 0.05
# About 5 % of a typical platform's loans default over their life.
PRIOR_INTERCEPT = float(np.log(0.05 / 0.95))
# Upper bounds of the probability of default for grades A to D; anything above is E.
GRADE_BOUNDS = (("A", 0.03), ("B", 0.06), ("C", 0.12), ("D", 0.25))
GRADE_E = "E"


@dataclass(frozen=True)
class DefaultFeature:
    name: str
    prior_mean: float
    prior_scale: float
    prior_weight: float  # change in log-odds of default per prior_scale above prior_mean


FEATURES: tuple[DefaultFeature, ...] = (
    DefaultFeature("rate_percent", 10.0, 6.0, 0.55),
    DefaultFeature("term_months", 24.0, 15.0, 0.30),
    DefaultFeature("bullet", 0.15, 0.35, 0.25),
    DefaultFeature("grace_months", 0.5, 1.5, 0.10),
    DefaultFeature("log_account_age_days", float(np.log1p(180)), 1.5, -0.35),
    DefaultFeature("email_verified", 0.5, 0.5, -0.25),
    DefaultFeature("log_loans_repaid", 0.1, 0.5, -0.60),
    DefaultFeature("log_loans_bad", 0.05, 0.4, 0.90),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)


def prior_model() -> LogisticModel:
    """Return the hand-set default model."""
    return LogisticModel(
        weights=np.array([f.prior_weight for f in FEATURES]),
        intercept=PRIOR_INTERCEPT,
        means=np.array([f.prior_mean for f in FEATURES]),
        scales=np.array([f.prior_scale for f in FEATURES]),
    )


def grade_of(probability: float) -> str:
    """Return the grade A (safest) to E of a probability of default."""
    for grade, bound in GRADE_BOUNDS:
        if probability < bound:
            return grade
    return GRADE_E


def describe(name: str, value: float) -> str:
    """Return a feature's value in words, in the reader's language."""
    if name == "rate_percent":
        return _("the interest rate is %(rate)s %% a year") % {"rate": f"{value:g}"}
    if name == "term_months":
        n = round(value)
        return ngettext("the loan runs for %(n)d month", "the loan runs for %(n)d months", n) % {"n": n}
    if name == "bullet":
        return _("all the principal is due at the end") if value >= 0.5 else _("the principal is repaid month by month")
    if name == "grace_months":
        n = round(value)
        if not n:
            return _("repayment of principal starts at once")
        return ngettext("the first %(n)d month pays interest only", "the first %(n)d months pay interest only", n) % {
            "n": n
        }
    if name == "log_account_age_days":
        n = round(float(np.expm1(value)))
        return ngettext("the borrower's account is %(n)d day old", "the borrower's account is %(n)d days old", n) % {
            "n": n
        }
    if name == "email_verified":
        return _("the borrower's e-mail is verified") if value >= 0.5 else _("the borrower's e-mail is not verified")
    if name == "log_loans_repaid":
        n = round(float(np.expm1(value)))
        if not n:
            return _("the borrower has repaid no loan here before")
        return ngettext("the borrower has repaid %(n)d loan here", "the borrower has repaid %(n)d loans here", n) % {
            "n": n
        }
    if name == "log_loans_bad":
        n = round(float(np.expm1(value)))
        if not n:
            return _("no earlier loan of the borrower went bad")
        return ngettext(
            "%(n)d earlier loan of the borrower defaulted", "%(n)d earlier loans of the borrower defaulted", n
        ) % {"n": n}
    raise ValueError(f"unknown feature {name!r}")


def reasons(row: np.ndarray, contributions: np.ndarray) -> list[str]:
    """Return the strongest factors of one probability of default in words, strongest first."""
    order = np.argsort(-np.abs(contributions), kind="stable")[:TOP_REASONS]
    found = []
    for i in order:
        if abs(contributions[i]) < REASON_MIN_CONTRIBUTION:
            continue
        text = describe(FEATURE_NAMES[i], float(row[i]))
        effect = _("raises the risk") if contributions[i] > 0 else _("lowers the risk")
        found.append(_("%(factor)s (%(effect)s).") % {"factor": f"{text[0].upper()}{text[1:]}", "effect": effect})
    return found or [_("Nothing stands out: the loan looks like a typical one.")]
