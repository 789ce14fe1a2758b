"""The money vocabulary: each string it builds parses back to the id it was built from."""

import pytest

from escrow import vocabulary


@pytest.mark.parametrize("number", [1, 42, 10**12])
def test_codes_keys_and_references_parse_back(number):
    assert vocabulary.campaign_id_from_escrow_code(vocabulary.campaign_escrow_code(number)) == number
    assert vocabulary.campaign_id_from_payable_code(vocabulary.campaign_payable_code(number)) == number
    assert vocabulary.pledge_id_from_reference(vocabulary.pledge_reference(number)) == number
    assert vocabulary.pledge_id_from_charge_key(vocabulary.charge_key(number)) == number


def test_the_formats_stay_what_the_ledger_already_holds():
    assert [
        vocabulary.charge_key(7),
        vocabulary.hold_key(7),
        vocabulary.refund_key(7),
        vocabulary.release_key(7),
        vocabulary.fee_key(3),
        vocabulary.payout_key(3),
    ] == [
        "charge:pledge:7",
        "hold:pledge:7",
        "refund:pledge:7",
        "release:pledge:7",
        "fee:campaign:3",
        "payout:campaign:3",
    ]
    assert [
        vocabulary.backer_funding_code(5),
        vocabulary.campaign_escrow_code(3),
        vocabulary.campaign_payable_code(3),
        vocabulary.initiator_payout_code(9),
        vocabulary.PLATFORM_REVENUE,
    ] == ["backer:5:funding", "campaign:3:escrow", "campaign:3:payable", "initiator:9:payouts", "platform:revenue"]
    assert (vocabulary.pledge_reference(7), vocabulary.campaign_reference(3)) == ("pledge:7", "campaign:3")


@pytest.mark.parametrize(
    "code", ["campaign:3:payable", "backer:3:funding", "campaign::escrow", "campaign:x:escrow", "campaign:²:escrow"]
)
def test_other_strings_are_not_taken_for_an_escrow_code(code):
    assert vocabulary.campaign_id_from_escrow_code(code) is None
