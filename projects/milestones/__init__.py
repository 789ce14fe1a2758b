"""Milestones: a campaign's staged release plan, proof, backers' votes and staff sign-off.

The plan and its states live here (``models``, ``services``, ``selectors``); the money that
follows a milestone (a tranche released, the remainder refunded) is settlement's.
"""
