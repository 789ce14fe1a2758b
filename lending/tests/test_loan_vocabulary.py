"""The ledger names of loan money, built and parsed back in escrow.vocabulary."""

from escrow.vocabulary import (
    borrower_funding_code,
    is_loan_clearing_code,
    lender_balance_code,
    loan_clearing_code,
    loan_id_from_clearing_code,
    loan_reference,
    repayment_distribution_key,
)


def test_loan_names_have_one_format_and_clearing_codes_parse_back():
    assert repayment_distribution_key(7) == "distribute:repayment:7"
    assert loan_reference(3) == "loan:3"
    assert (borrower_funding_code(4), lender_balance_code(5)) == ("borrower:4:funding", "lender:5:balance")
    assert loan_clearing_code(12) == "loan:12:clearing"
    assert loan_id_from_clearing_code(loan_clearing_code(12)) == 12
    assert is_loan_clearing_code("loan:12:clearing")
    for other in ("campaign:12:escrow", "loan:x:clearing", "loan:12:clearingx", "lender:12:balance"):
        assert loan_id_from_clearing_code(other) is None
