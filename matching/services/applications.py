"""Campaigns applying to pools that take applications, and staff's decision on each."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, NotFound
from projects.models import Campaign, FundingModel

from ..models import (
    APPLICATION_REASON_MAX_LENGTH,
    APPLICATION_STATEMENT_MAX_LENGTH,
    ApplicationStatus,
    Pool,
    PoolApplication,
    RoundStatus,
)
from ..selectors import NOT_APPLYING_STATUSES, eligible_campaigns, pool_takes_applications

# Rounds whose allocation is frozen but not yet paid.
FROZEN_ROUND_STATUSES = (RoundStatus.ENDED, RoundStatus.CHALLENGE)


def pool_application_submit(*, pool: Pool, campaign: Campaign, actor, statement: str) -> PoolApplication:
    """Apply with ``campaign`` to ``pool`` on its initiator's behalf, with a short statement; return the application.

    Once per campaign and pool (a unique constraint, so two requests at once make one), while
    the pool is funded, open and takes applications; audited. Raises NotAllowed (not the
    campaign's initiator, the sponsor's own campaign), InvalidInput (no or too long a
    statement, a loan, another currency), Conflict (the pool takes no applications or has
    ended, the campaign is over, already eligible or already applied).
    """
    if actor is None or not actor.is_authenticated or campaign.initiator_id != actor.pk:
        raise NotAllowed(_("Only the campaign's initiator can apply for matching."), code="not_initiator")
    statement = (statement or "").strip()
    if not statement:
        raise InvalidInput(
            _("Say in a few words why the pool should match your campaign."),
            code="statement_required",
            field="statement",
        )
    if len(statement) > APPLICATION_STATEMENT_MAX_LENGTH:
        raise InvalidInput(
            _("The statement is too long: at most %(n)d characters.") % {"n": APPLICATION_STATEMENT_MAX_LENGTH},
            code="statement_too_long",
            field="statement",
        )
    if not pool.accepts_applications:
        raise Conflict(_("This pool does not take applications."), code="not_taking_applications")
    if not pool_takes_applications(pool=pool):
        raise Conflict(_("This pool has ended: it takes no more applications."), code="pool_closed")
    if campaign.initiator_id == pool.sponsor_id:
        raise NotAllowed(_("A sponsor cannot match their own campaign."), code="own_campaign")
    if campaign.funding_model == FundingModel.DEBT:
        raise InvalidInput(_("Loans (debt campaigns) are not matched."), code="debt_campaign")
    if campaign.currency != pool.currency:
        raise InvalidInput(
            _("This pool matches campaigns raising in %(currency)s.") % {"currency": pool.currency},
            code="currency_mismatch",
        )
    if campaign.status in NOT_APPLYING_STATUSES:
        raise Conflict(_("This campaign is over: it can no longer be matched."), code="campaign_closed")
    if eligible_campaigns(pool=pool).filter(pk=campaign.pk).exists():
        raise Conflict(_("This pool already matches your campaign."), code="already_eligible")
    already = Conflict(_("Your campaign has already applied to this pool."), code="already_applied")
    if PoolApplication.objects.filter(pool=pool, campaign=campaign).exists():
        raise already
    try:
        with transaction.atomic(durable=True):
            application = PoolApplication.objects.create(
                pool=pool, campaign=campaign, applicant=actor, statement=statement
            )
            audit_record(
                actor=actor,
                action="matching_application_submit",
                obj=application,
                details={"pool": pool.pk, "campaign": campaign.pk},
            )
    except IntegrityError:
        raise already from None  # a second request at the same time made it first
    return application


def pool_application_decide(*, application_id: int, actor, accept: bool, reason: str) -> PoolApplication:
    """Accept (the campaign joins the pool's list) or decline a pending application, with a reason; return it.

    Staff with ``matching.decide_application`` only, once per application (under its row lock),
    audited with the reason; the initiator is told by e-mail after the commit. Raises NotAllowed
    (no permission, asked before anything is looked up), InvalidInput (no or too long a reason),
    NotFound, Conflict (already decided, the pool closed).
    """
    if actor is None or not actor.is_active or not actor.has_perm("matching.decide_application"):
        raise NotAllowed(_("Only reviewers can decide applications to matching pools."), code="not_allowed")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Give a reason: the initiator is told it."), code="reason_required", field="reason")
    if len(reason) > APPLICATION_REASON_MAX_LENGTH:
        raise InvalidInput(
            _("The reason is too long: at most %(n)d characters.") % {"n": APPLICATION_REASON_MAX_LENGTH},
            code="reason_too_long",
            field="reason",
        )
    with transaction.atomic(durable=True):
        application = (
            PoolApplication.objects.select_for_update().select_related("pool").filter(pk=application_id).first()
        )
        if application is None:
            raise NotFound(_("No such application."))
        if application.status != ApplicationStatus.PENDING:
            raise Conflict(_("This application is already decided."), code="already_decided")
        if application.pool.closed_at is not None:
            raise Conflict(_("The pool is closed."), code="pool_closed")
        if accept and application.pool.rounds.filter(status__in=FROZEN_ROUND_STATUSES).exists():
            # Its frozen results are computed again on an exclusion: a campaign joining now would
            # change what was published.
            raise Conflict(
                _("A round of this pool is being settled: accept the campaign once it is paid."),
                code="round_being_settled",
            )
        application.status = ApplicationStatus.ACCEPTED if accept else ApplicationStatus.DECLINED
        application.reason = reason
        application.decided_by = actor
        application.decided_at = timezone.now()
        application.save(update_fields=["status", "reason", "decided_by", "decided_at"])
        if accept:
            application.pool.campaigns.add(application.campaign_id)
        audit_record(
            actor=actor,
            action="matching_application_accept" if accept else "matching_application_decline",
            obj=application,
            reason=reason,
            details={"pool": application.pool_id, "campaign": application.campaign_id},
        )
        application_id = application.pk
        transaction.on_commit(lambda: _enqueue("send_application_decided_email", application_id))
    return application


def _enqueue(task_name: str, *args) -> None:
    from .. import tasks  # tasks import this module

    getattr(tasks, task_name).delay(*args)
