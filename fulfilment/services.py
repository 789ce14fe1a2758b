"""Writes of delivery: shipments, confirmations, reports and their decisions.

No money moves here; settlement settles a tier's holdback once these rows say every backer of
it is decided (``settlement.holdback``, swept by beat: settlement sits above this app, so these
services never call it). Each write locks its row and re-checks its state, so a
double submit, a retry or two staff members at once change it once and the second gets a
Conflict.
"""

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from accounts.services import audit_record, user_note_delivery_record
from crowdfund_site.bulk import insert_rows
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, NotFound
from pledges.models import Pledge, PledgeStatus, pledge_paid_in_full_q
from projects.models import Campaign, CampaignStatus, RewardTier

from .models import (
    DECIDE_PERMISSION,
    OPEN_STATUSES,
    SURVEY_ANSWER_MAX_LENGTH,
    SURVEY_MAX_QUESTIONS,
    SURVEY_QUESTION_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    Delivery,
    DeliveryReport,
    DeliveryStatus,
    Holdback,
    NonDelivery,
    ReportDecision,
    Resolution,
    Shipment,
    Survey,
    SurveyAnswer,
    SurveyQuestion,
)
from .selectors import delivery_record_forget, not_delivered_after, tiers_awaiting_shipment, tiers_overdue_for_delivery


def _text(value: str, *, field: str, required: bool = False, max_length: int = TEXT_MAX_LENGTH) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(gettext("This field is required."), code="required", field=field)
    if len(value) > max_length:
        raise InvalidInput(
            gettext("At most %(most)s characters (this has %(count)s).") % {"most": max_length, "count": len(value)},
            code="too_long",
            field=field,
        )
    return value


def holdback_record(*, campaign, bps: int, amount: int, rows: list[tuple[int, int, int, int]], parts: list[int]):
    """Record a succeeding campaign's holdback and one delivery per reward pledge; idempotent.

    Called by settlement inside its finish of the campaign (campaign locked), with the split
    ``fulfilment.selectors.holdback_split`` made of ``rows`` (pledge, backer, reward, paid).
    """
    holdback = Holdback.objects.filter(campaign=campaign).first()
    if holdback is not None:
        return holdback
    holdback = Holdback.objects.create(
        campaign=campaign, bps=bps, amount=amount, reward_pledged=sum(row[3] for row in rows)
    )
    insert_rows(
        model=Delivery,
        fields=["pledge", "campaign", "tier", "backer", "paid", "part", "status", "resolution", "refunded_amount"],
        rows=[
            (pledge_id, campaign.pk, reward_id, backer_id, paid, part, DeliveryStatus.WAITING, "", 0)
            for (pledge_id, backer_id, reward_id, paid), part in zip(rows, parts, strict=True)
        ],
    )
    return holdback


def tier_mark_shipped(
    *, tier_id: int, actor, shipped_on: date, note: str = "", tracking_reference: str = ""
) -> Shipment:
    """Mark a succeeded campaign's reward tier shipped (its initiator, once); return the shipment."""
    note = _text(note, field="note")
    tracking_reference = _text(tracking_reference, field="tracking_reference", max_length=120)
    if shipped_on is None or shipped_on > timezone.localdate():
        raise InvalidInput(
            gettext("Give the day it shipped (not in the future)."), code="invalid_date", field="shipped_on"
        )
    with transaction.atomic():
        tier = RewardTier.objects.select_for_update().select_related("campaign").filter(pk=tier_id).first()
        if tier is None or actor is None or tier.campaign.initiator_id != actor.pk:
            raise NotFound(gettext("No such reward of yours."), code="not_found")
        if tier.campaign.status != CampaignStatus.SUCCEEDED:
            raise Conflict(gettext("Rewards are shipped after the campaign succeeded."), code="not_succeeded")
        if Shipment.objects.filter(tier=tier).exists():
            raise Conflict(gettext("This reward is already marked shipped."), code="already_shipped")
        if NonDelivery.objects.filter(tier=tier).exists():
            raise Conflict(
                gettext("Staff declared this reward not delivered and refunded its backers."),
                code="declared_not_delivered",
            )
        shipment = Shipment.objects.create(
            tier=tier,
            campaign=tier.campaign,
            shipped_on=shipped_on,
            note=note,
            tracking_reference=tracking_reference,
            silence_until=shipped_on + timedelta(days=settings.FULFILMENT_SILENCE_DAYS),
            created_by=actor,
        )
        shipment_id, initiator_id = shipment.pk, actor.pk
        user_note_delivery_record(user_id=initiator_id)
        transaction.on_commit(lambda: _enqueue("send_shipped_emails", shipment_id))
        transaction.on_commit(lambda: delivery_record_forget(initiator_id=initiator_id))
    return shipment


def _enqueue(task_name: str, *args) -> None:
    from . import tasks  # tasks import this module

    getattr(tasks, task_name).delay(*args)


def _own_delivery(*, pledge_id: int, actor) -> Delivery:
    delivery = (
        Delivery.objects.select_for_update()
        .select_related("tier", "campaign")
        .filter(pledge_id=pledge_id, backer_id=getattr(actor, "pk", None))
        .first()
    )
    if delivery is None:
        raise NotFound(gettext("No such reward pledge of yours."), code="not_found")
    if not Shipment.objects.filter(tier_id=delivery.tier_id).exists():
        raise Conflict(gettext("This reward has not been shipped yet."), code="not_shipped")
    return delivery


def delivery_confirm(*, pledge_id: int, actor) -> Delivery:
    """The backer confirms receipt (also withdraws an undecided report of theirs); return the delivery."""
    with transaction.atomic():
        delivery = _own_delivery(pledge_id=pledge_id, actor=actor)
        if delivery.status == DeliveryStatus.RECEIVED:
            return delivery
        if delivery.status not in OPEN_STATUSES:
            raise Conflict(gettext("This delivery is already decided."), code="already_decided")
        if delivery.status == DeliveryStatus.REPORTED:
            DeliveryReport.objects.filter(delivery=delivery).delete()
        _resolve(delivery, DeliveryStatus.RECEIVED, Resolution.BACKER)
    return delivery


def delivery_report(*, pledge_id: int, actor, message: str) -> DeliveryReport:
    """The backer reports that the reward did not arrive (once); return the report."""
    message = _text(message, field="message", required=True)
    with transaction.atomic():
        delivery = _own_delivery(pledge_id=pledge_id, actor=actor)
        if delivery.status != DeliveryStatus.WAITING:
            raise Conflict(gettext("Only a reward still waiting for an answer can be reported."), code="not_waiting")
        delivery.status = DeliveryStatus.REPORTED
        delivery.save(update_fields=["status"])
        report = DeliveryReport.objects.create(delivery=delivery, message=message)
        report_id = report.pk
        transaction.on_commit(lambda: _enqueue("send_report_emails", report_id))
    return report


def report_answer(*, report_id: int, actor, answer: str) -> DeliveryReport:
    """The initiator answers a backer's report before staff decide it; return the report."""
    answer = _text(answer, field="answer", required=True)
    with transaction.atomic():
        report = (
            DeliveryReport.objects.select_for_update().select_related("delivery__campaign").filter(pk=report_id).first()
        )
        if report is None or actor is None or report.delivery.campaign.initiator_id != actor.pk:
            raise NotFound(gettext("No such report on your campaign."), code="not_found")
        if report.decision:
            raise Conflict(gettext("This report is already decided."), code="already_decided")
        report.answer = answer
        report.answered_at = timezone.now()
        report.save(update_fields=["answer", "answered_at"])
    return report


def report_decide(*, report_id: int, actor, upheld: bool, reason: str) -> DeliveryReport:
    """Staff uphold (the backer's part is refunded) or dismiss (delivered) a report, once; audited."""
    if actor is None or not actor.has_perm(DECIDE_PERMISSION):
        raise NotAllowed(gettext("Only finance staff can decide non-delivery reports."), code="not_allowed")
    reason = _text(reason, field="reason", required=True)
    with transaction.atomic():
        report = DeliveryReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None:
            raise NotFound(gettext("No such report."), code="not_found")
        if report.decision:
            raise Conflict(gettext("This report is already decided."), code="already_decided")
        delivery = Delivery.objects.select_for_update().get(pk=report.delivery_id)
        report.decision = ReportDecision.UPHELD if upheld else ReportDecision.DISMISSED
        report.decision_reason = reason
        report.decided_by = actor
        report.decided_at = timezone.now()
        report.save(update_fields=["decision", "decision_reason", "decided_by", "decided_at"])
        _resolve(delivery, DeliveryStatus.UPHELD if upheld else DeliveryStatus.DISMISSED, Resolution.STAFF)
        audit_record(
            actor=actor,
            action="delivery_report_decide",
            obj=report,
            reason=reason,
            details={"decision": report.decision, "pledge": delivery.pledge_id, "part": delivery.part},
        )
        report_pk = report.pk
        transaction.on_commit(lambda: _enqueue("send_decision_emails", report_pk))
    return report


def tier_declare_not_delivered(*, tier_id: int, actor, reason: str, today: date | None = None) -> NonDelivery:
    """Finance declares a reward tier never shipped past its deadline not delivered; return the declaration.

    Allowed once its delivery day and ``FULFILMENT_NOT_DELIVERED_GRACE_DAYS`` have passed
    (``fulfilment.selectors.tiers_overdue_for_delivery``) while its initiator never marked it
    shipped. Every backer of the tier is then owed their part of the holdback (their pro-rata
    share, fixed at success, never above what they paid); beat's holdback sweep refunds them
    (``settlement.holdback``). The tier's row is locked, as marking it shipped locks it, so the
    two never both happen. Audited ("tier_declare_not_delivered"); its backers and the initiator
    are e-mailed after commit. Raises NotAllowed,
    InvalidInput (no reason), NotFound, or Conflict (shipped, already declared or already refunded,
    not overdue).
    """
    if actor is None or not actor.has_perm(DECIDE_PERMISSION):
        raise NotAllowed(gettext("Only finance staff can declare a reward not delivered."), code="not_allowed")
    reason = _text(reason, field="reason", required=True)
    today = today or timezone.localdate()
    with transaction.atomic():
        tier = RewardTier.objects.select_for_update().filter(pk=tier_id).first()
        if tier is None:
            raise NotFound(gettext("No such reward."), code="not_found")
        if Shipment.objects.filter(tier=tier).exists():
            raise Conflict(
                gettext("This reward is marked shipped: decide its backers' reports instead."), code="already_shipped"
            )
        declared = NonDelivery.objects.filter(tier=tier).first()
        if declared is not None and declared.settled_at is not None:
            raise Conflict(
                gettext("This reward is already declared not delivered and its backers are refunded."),
                code="already_refunded",
            )
        if declared is not None:
            raise Conflict(
                gettext("This reward is already declared not delivered; its backers' refunds are under way."),
                code="already_declared",
            )
        awaiting = tiers_awaiting_shipment().filter(pk=tier.pk).first()
        if awaiting is None:
            raise Conflict(gettext("This reward's backers hold no part of a holdback."), code="no_holdback")
        if not tiers_overdue_for_delivery(today=today).filter(pk=tier.pk).exists():
            after = not_delivered_after(awaiting.delivery_due)
            raise Conflict(
                gettext("This reward is not overdue: it may be declared not delivered from %(date)s.")
                % {"date": after.isoformat()},
                code="not_overdue",
            )
        declaration = NonDelivery.objects.create(
            tier=tier, campaign_id=tier.campaign_id, reason=reason, declared_by=actor
        )
        # Never shipped, so nobody could confirm or report: every delivery is still waiting.
        owed = Delivery.objects.filter(tier=tier, status=DeliveryStatus.WAITING)
        backers = owed.update(status=DeliveryStatus.UNSHIPPED, resolution=Resolution.STAFF, resolved_at=timezone.now())
        audit_record(
            actor=actor,
            action="tier_declare_not_delivered",
            obj=declaration,
            reason=reason,
            details={"tier": tier.pk, "campaign": tier.campaign_id, "backers": backers},
        )
        initiator_id = Campaign.objects.filter(pk=tier.campaign_id).values_list("initiator_id", flat=True).get()
        user_note_delivery_record(user_id=initiator_id)
        declaration_id = declaration.pk
        transaction.on_commit(lambda: delivery_record_forget(initiator_id=initiator_id))
        transaction.on_commit(lambda: _enqueue("send_not_delivered_emails", declaration_id))
    return declaration


def _resolve(delivery: Delivery, status: str, resolution: str) -> None:
    delivery.status = status
    delivery.resolution = resolution
    delivery.resolved_at = timezone.now()
    delivery.save(update_fields=["status", "resolution", "resolved_at"])


def deliveries_resolve_silent(*, today: date | None = None, limit: int = 5000) -> list[int]:
    """Count as received every delivery still waiting past its tier's silence; return their tiers.

    A conditional update on the waiting status: a delivery is resolved exactly once, whether
    beat runs this twice or the backer confirms at the same moment.
    """
    today = today or timezone.localdate()
    ids = list(
        Delivery.objects.filter(status=DeliveryStatus.WAITING, tier__shipment__silence_until__lte=today)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    with transaction.atomic():
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.WAITING).update(
            status=DeliveryStatus.RECEIVED, resolution=Resolution.SILENCE, resolved_at=timezone.now()
        )
    return sorted(set(Delivery.objects.filter(pk__in=ids).values_list("tier_id", flat=True)))


def deliveries_record_refunded(*, delivery_ids: list[int]) -> list[int]:
    """Record deliveries' parts refunded (settlement calls it in its posting transaction); return
    those not recorded before, locked in id order: only they may be posted."""
    fresh = list(
        Delivery.objects.select_for_update()
        .filter(pk__in=delivery_ids, refunded_amount=0)
        .order_by("id")
        .values_list("id", flat=True)
    )
    Delivery.objects.filter(pk__in=fresh).update(refunded_amount=F("part"))
    return fresh


def shipment_record_settled(*, shipment: Shipment, released: int, fee: int, refunded: int) -> None:
    """Record a tier's settled holdback (settlement calls it in its posting transaction)."""
    shipment.settled_at = timezone.now()
    shipment.released_amount = released
    shipment.fee_amount = fee
    shipment.refunded_amount = refunded
    shipment.save(update_fields=["settled_at", "released_amount", "fee_amount", "refunded_amount"])


def non_delivery_record_settled(*, declaration: NonDelivery, refunded: int) -> None:
    """Record a tier declared not delivered as refunded (settlement calls it in its posting transaction)."""
    declaration.settled_at = timezone.now()
    declaration.refunded_amount = refunded
    declaration.save(update_fields=["settled_at", "refunded_amount"])


def survey_send(*, campaign_id: int, actor, asks_address: bool, questions: list[tuple[int | None, str]]) -> Survey:
    """Send a succeeded campaign's backer survey (its initiator, once); return it.

    ``questions``: (reward id or None for every backer, prompt) in order. Backers of rewards are
    e-mailed after commit.
    """
    if len(questions) > SURVEY_MAX_QUESTIONS:
        raise InvalidInput(
            gettext("At most %(most)s questions.") % {"most": SURVEY_MAX_QUESTIONS}, code="too_many", field="questions"
        )
    cleaned = [
        (tier_id, _text(prompt, field="questions", required=True, max_length=SURVEY_QUESTION_MAX_LENGTH))
        for tier_id, prompt in questions
    ]
    if not cleaned and not asks_address:
        raise InvalidInput(
            gettext("Ask for an address or at least one question."), code="empty_survey", field="questions"
        )
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or actor is None or campaign.initiator_id != actor.pk:
            raise NotFound(gettext("No such campaign of yours."), code="not_found")
        if campaign.status != CampaignStatus.SUCCEEDED:
            raise Conflict(gettext("A survey is sent after the campaign succeeded."), code="not_succeeded")
        if Survey.objects.filter(campaign=campaign).exists():
            raise Conflict(gettext("This campaign's survey is already sent."), code="already_sent")
        tiers = set(campaign.rewards.values_list("pk", flat=True))
        if any(tier_id is not None and tier_id not in tiers for tier_id, _ in cleaned):
            raise InvalidInput(
                gettext("A question names a reward of another campaign."), code="invalid_reward", field="questions"
            )
        survey = Survey.objects.create(campaign=campaign, asks_address=asks_address)
        SurveyQuestion.objects.bulk_create(
            SurveyQuestion(survey=survey, tier_id=tier_id, prompt=prompt, position=i)
            for i, (tier_id, prompt) in enumerate(cleaned, start=1)
        )
        survey_id = survey.pk
        transaction.on_commit(lambda: _enqueue("send_survey_emails", survey_id))
    return survey


def survey_questions_for(*, survey: Survey, tier_id: int | None) -> list[SurveyQuestion]:
    """Return the survey's questions a backer of ``tier_id`` is asked."""
    return [q for q in survey.questions.all() if q.tier_id is None or q.tier_id == tier_id]


def survey_answer(*, pledge_id: int, actor, address: str = "", answers: dict[str, str] | None = None) -> SurveyAnswer:
    """Answer (or change the answer to) the survey for one's own reward pledge; return the answer."""
    answers = answers or {}
    address = _text(address, field="address", max_length=SURVEY_ANSWER_MAX_LENGTH)
    pledge = (
        Pledge.objects.filter(pk=pledge_id, backer_id=getattr(actor, "pk", None), status=PledgeStatus.RELEASED)
        .exclude(reward=None)
        .first()
    )
    survey = Survey.objects.filter(campaign_id=pledge.campaign_id).first() if pledge else None
    if survey is None:
        raise NotFound(gettext("No survey for a reward pledge of yours."), code="not_found")
    if not Pledge.objects.filter(pk=pledge.pk).filter(pledge_paid_in_full_q()).exists():
        raise Conflict(
            gettext("The survey opens once your pledge is paid in full (its last installment is still due)."),
            code="installments_unpaid",
        )
    questions = {str(q.pk): q for q in survey_questions_for(survey=survey, tier_id=pledge.reward_id)}
    unknown = set(answers) - set(questions)
    if unknown:
        raise InvalidInput(
            gettext("An answer is for a question you were not asked."), code="unknown_question", field="answers"
        )
    cleaned = {
        key: _text(value if isinstance(value, str) else "", field=f"answers.{key}", max_length=SURVEY_ANSWER_MAX_LENGTH)
        for key, value in answers.items()
    }
    if survey.asks_address and not address:
        raise InvalidInput(gettext("Give the address your reward ships to."), code="required", field="address")
    with transaction.atomic():
        existing = SurveyAnswer.objects.select_for_update().filter(pledge_id=pledge.pk).first()
        if existing is not None and existing.address_erased_at is not None:
            raise Conflict(gettext("This survey is closed: your reward was delivered."), code="survey_closed")
        answer, _created = SurveyAnswer.objects.update_or_create(
            pledge_id=pledge.pk,
            defaults={"survey": survey, "address": address, "answers": cleaned, "answered_at": timezone.now()},
        )
    return answer


def survey_addresses_erase(*, today: date | None = None) -> int:
    """Erase survey addresses ``SURVEY_ADDRESS_KEEP_DAYS`` after their reward shipped; return how many.

    A conditional update on rows not yet erased: each address is erased once, however often beat runs.
    """
    today = today or timezone.localdate()
    cutoff = today - timedelta(days=settings.SURVEY_ADDRESS_KEEP_DAYS)
    return SurveyAnswer.objects.filter(
        address_erased_at__isnull=True, pledge__reward__shipment__shipped_on__lte=cutoff
    ).update(address="", address_erased_at=timezone.now())
