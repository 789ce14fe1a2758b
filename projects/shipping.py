"""Where a physical reward ships: countries, the regions rules may name, and which rule applies.

Destinations of a reward's shipping rules are an ISO 3166-1 alpha-2 country code ("DE"), a region
key below ("eu"), or ``anywhere``. Region keys are lower case and longer than two letters, so they
never collide with a country code (NA is Namibia, not North America). For a backer's country the
most specific rule wins: its country, then a region holding it, then ``anywhere``; a country no rule
covers is not shipped to. The regions are deliberately few; a creator who needs another lists its
countries one by one.

No database access here: the pledge path resolves a cost from rules it has already loaded.
"""

from collections.abc import Iterable

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crowdfund_site.exceptions import InvalidInput

ANYWHERE = "anywhere"

# ISO 3166-1 alpha-2, all 249 officially assigned codes, with their short English names.
COUNTRIES = {
    "AD": _("Andorra"),
    "AE": _("United Arab Emirates"),
    "AF": _("Afghanistan"),
    "AG": _("Antigua and Barbuda"),
    "AI": _("Anguilla"),
    "AL": _("Albania"),
    "AM": _("Armenia"),
    "AO": _("Angola"),
    "AQ": _("Antarctica"),
    "AR": _("Argentina"),
    "AS": _("American Samoa"),
    "AT": _("Austria"),
    "AU": _("Australia"),
    "AW": _("Aruba"),
    "AX": _("Åland Islands"),
    "AZ": _("Azerbaijan"),
    "BA": _("Bosnia and Herzegovina"),
    "BB": _("Barbados"),
    "BD": _("Bangladesh"),
    "BE": _("Belgium"),
    "BF": _("Burkina Faso"),
    "BG": _("Bulgaria"),
    "BH": _("Bahrain"),
    "BI": _("Burundi"),
    "BJ": _("Benin"),
    "BL": _("Saint Barthélemy"),
    "BM": _("Bermuda"),
    "BN": _("Brunei"),
    "BO": _("Bolivia"),
    "BQ": _("Caribbean Netherlands"),
    "BR": _("Brazil"),
    "BS": _("Bahamas"),
    "BT": _("Bhutan"),
    "BV": _("Bouvet Island"),
    "BW": _("Botswana"),
    "BY": _("Belarus"),
    "BZ": _("Belize"),
    "CA": _("Canada"),
    "CC": _("Cocos (Keeling) Islands"),
    "CD": _("Congo (Kinshasa)"),
    "CF": _("Central African Republic"),
    "CG": _("Congo (Brazzaville)"),
    "CH": _("Switzerland"),
    "CI": _("Côte d’Ivoire"),
    "CK": _("Cook Islands"),
    "CL": _("Chile"),
    "CM": _("Cameroon"),
    "CN": _("China"),
    "CO": _("Colombia"),
    "CR": _("Costa Rica"),
    "CU": _("Cuba"),
    "CV": _("Cape Verde"),
    "CW": _("Curaçao"),
    "CX": _("Christmas Island"),
    "CY": _("Cyprus"),
    "CZ": _("Czechia"),
    "DE": _("Germany"),
    "DJ": _("Djibouti"),
    "DK": _("Denmark"),
    "DM": _("Dominica"),
    "DO": _("Dominican Republic"),
    "DZ": _("Algeria"),
    "EC": _("Ecuador"),
    "EE": _("Estonia"),
    "EG": _("Egypt"),
    "EH": _("Western Sahara"),
    "ER": _("Eritrea"),
    "ES": _("Spain"),
    "ET": _("Ethiopia"),
    "FI": _("Finland"),
    "FJ": _("Fiji"),
    "FK": _("Falkland Islands"),
    "FM": _("Micronesia"),
    "FO": _("Faroe Islands"),
    "FR": _("France"),
    "GA": _("Gabon"),
    "GB": _("United Kingdom"),
    "GD": _("Grenada"),
    "GE": _("Georgia"),
    "GF": _("French Guiana"),
    "GG": _("Guernsey"),
    "GH": _("Ghana"),
    "GI": _("Gibraltar"),
    "GL": _("Greenland"),
    "GM": _("Gambia"),
    "GN": _("Guinea"),
    "GP": _("Guadeloupe"),
    "GQ": _("Equatorial Guinea"),
    "GR": _("Greece"),
    "GS": _("South Georgia and the South Sandwich Islands"),
    "GT": _("Guatemala"),
    "GU": _("Guam"),
    "GW": _("Guinea-Bissau"),
    "GY": _("Guyana"),
    "HK": _("Hong Kong"),
    "HM": _("Heard Island and McDonald Islands"),
    "HN": _("Honduras"),
    "HR": _("Croatia"),
    "HT": _("Haiti"),
    "HU": _("Hungary"),
    "ID": _("Indonesia"),
    "IE": _("Ireland"),
    "IL": _("Israel"),
    "IM": _("Isle of Man"),
    "IN": _("India"),
    "IO": _("British Indian Ocean Territory"),
    "IQ": _("Iraq"),
    "IR": _("Iran"),
    "IS": _("Iceland"),
    "IT": _("Italy"),
    "JE": _("Jersey"),
    "JM": _("Jamaica"),
    "JO": _("Jordan"),
    "JP": _("Japan"),
    "KE": _("Kenya"),
    "KG": _("Kyrgyzstan"),
    "KH": _("Cambodia"),
    "KI": _("Kiribati"),
    "KM": _("Comoros"),
    "KN": _("Saint Kitts and Nevis"),
    "KP": _("North Korea"),
    "KR": _("South Korea"),
    "KW": _("Kuwait"),
    "KY": _("Cayman Islands"),
    "KZ": _("Kazakhstan"),
    "LA": _("Laos"),
    "LB": _("Lebanon"),
    "LC": _("Saint Lucia"),
    "LI": _("Liechtenstein"),
    "LK": _("Sri Lanka"),
    "LR": _("Liberia"),
    "LS": _("Lesotho"),
    "LT": _("Lithuania"),
    "LU": _("Luxembourg"),
    "LV": _("Latvia"),
    "LY": _("Libya"),
    "MA": _("Morocco"),
    "MC": _("Monaco"),
    "MD": _("Moldova"),
    "ME": _("Montenegro"),
    "MF": _("Saint Martin"),
    "MG": _("Madagascar"),
    "MH": _("Marshall Islands"),
    "MK": _("North Macedonia"),
    "ML": _("Mali"),
    "MM": _("Myanmar"),
    "MN": _("Mongolia"),
    "MO": _("Macao"),
    "MP": _("Northern Mariana Islands"),
    "MQ": _("Martinique"),
    "MR": _("Mauritania"),
    "MS": _("Montserrat"),
    "MT": _("Malta"),
    "MU": _("Mauritius"),
    "MV": _("Maldives"),
    "MW": _("Malawi"),
    "MX": _("Mexico"),
    "MY": _("Malaysia"),
    "MZ": _("Mozambique"),
    "NA": _("Namibia"),
    "NC": _("New Caledonia"),
    "NE": _("Niger"),
    "NF": _("Norfolk Island"),
    "NG": _("Nigeria"),
    "NI": _("Nicaragua"),
    "NL": _("Netherlands"),
    "NO": _("Norway"),
    "NP": _("Nepal"),
    "NR": _("Nauru"),
    "NU": _("Niue"),
    "NZ": _("New Zealand"),
    "OM": _("Oman"),
    "PA": _("Panama"),
    "PE": _("Peru"),
    "PF": _("French Polynesia"),
    "PG": _("Papua New Guinea"),
    "PH": _("Philippines"),
    "PK": _("Pakistan"),
    "PL": _("Poland"),
    "PM": _("Saint Pierre and Miquelon"),
    "PN": _("Pitcairn Islands"),
    "PR": _("Puerto Rico"),
    "PS": _("Palestine"),
    "PT": _("Portugal"),
    "PW": _("Palau"),
    "PY": _("Paraguay"),
    "QA": _("Qatar"),
    "RE": _("Réunion"),
    "RO": _("Romania"),
    "RS": _("Serbia"),
    "RU": _("Russia"),
    "RW": _("Rwanda"),
    "SA": _("Saudi Arabia"),
    "SB": _("Solomon Islands"),
    "SC": _("Seychelles"),
    "SD": _("Sudan"),
    "SE": _("Sweden"),
    "SG": _("Singapore"),
    "SH": _("Saint Helena"),
    "SI": _("Slovenia"),
    "SJ": _("Svalbard and Jan Mayen"),
    "SK": _("Slovakia"),
    "SL": _("Sierra Leone"),
    "SM": _("San Marino"),
    "SN": _("Senegal"),
    "SO": _("Somalia"),
    "SR": _("Suriname"),
    "SS": _("South Sudan"),
    "ST": _("São Tomé and Príncipe"),
    "SV": _("El Salvador"),
    "SX": _("Sint Maarten"),
    "SY": _("Syria"),
    "SZ": _("Eswatini"),
    "TC": _("Turks and Caicos Islands"),
    "TD": _("Chad"),
    "TF": _("French Southern Territories"),
    "TG": _("Togo"),
    "TH": _("Thailand"),
    "TJ": _("Tajikistan"),
    "TK": _("Tokelau"),
    "TL": _("Timor-Leste"),
    "TM": _("Turkmenistan"),
    "TN": _("Tunisia"),
    "TO": _("Tonga"),
    "TR": _("Türkiye"),
    "TT": _("Trinidad and Tobago"),
    "TV": _("Tuvalu"),
    "TW": _("Taiwan"),
    "TZ": _("Tanzania"),
    "UA": _("Ukraine"),
    "UG": _("Uganda"),
    "UM": _("U.S. Outlying Islands"),
    "US": _("United States"),
    "UY": _("Uruguay"),
    "UZ": _("Uzbekistan"),
    "VA": _("Vatican City"),
    "VC": _("Saint Vincent and the Grenadines"),
    "VE": _("Venezuela"),
    "VG": _("British Virgin Islands"),
    "VI": _("U.S. Virgin Islands"),
    "VN": _("Vietnam"),
    "VU": _("Vanuatu"),
    "WF": _("Wallis and Futuna"),
    "WS": _("Samoa"),
    "YE": _("Yemen"),
    "YT": _("Mayotte"),
    "ZA": _("South Africa"),
    "ZM": _("Zambia"),
    "ZW": _("Zimbabwe"),
}

# The regions a rule may name, with the member countries each stands for.
REGIONS = {
    # The 27 member states of the European Union.
    "eu": (
        _("European Union"),
        frozenset(
            [
                "AT",
                "BE",
                "BG",
                "HR",
                "CY",
                "CZ",
                "DK",
                "EE",
                "FI",
                "FR",
                "DE",
                "GR",
                "HU",
                "IE",
                "IT",
                "LV",
                "LT",
                "LU",
                "MT",
                "NL",
                "PL",
                "PT",
                "RO",
                "SK",
                "SI",
                "ES",
                "SE",
            ]
        ),
    ),
    "north_america": (_("North America (United States, Canada, Mexico)"), frozenset({"US", "CA", "MX"})),
}

DESTINATION_MAX_LENGTH = 20
# A reward lists at most this many destinations (countries and regions together).
SHIPPING_RULES_MAX = 60


def country_name(code: str) -> str:
    """Return a country's name in the active language ("Germany" / "德国"); the code if unknown."""
    return str(COUNTRIES.get(code, code))


def destination_name(destination: str) -> str:
    """Return a rule's destination in the active language: a country, a region or "Anywhere"."""
    if destination == ANYWHERE:
        return str(_("Anywhere in the world"))
    if destination in REGIONS:
        return str(REGIONS[destination][0])
    return country_name(destination)


def destination_normalise(text: str) -> str | None:
    """Return the destination ``text`` names (a country code in upper case, a region key, ``anywhere``), or None."""
    text = (text or "").strip()
    if len(text) == 2 and text.upper() in COUNTRIES:
        return text.upper()
    key = text.lower().replace(" ", "_").replace("-", "_")
    if key == ANYWHERE or key in REGIONS:
        return key
    return None


def country_normalise(text) -> str | None:
    """Return the ISO 3166-1 alpha-2 code ``text`` is (any case, surrounding spaces), or None."""
    if not isinstance(text, str):
        return None
    code = text.strip().upper()
    return code if len(code) == 2 and code in COUNTRIES else None


def _specificity(destination: str, country: str) -> int | None:
    """How closely ``destination`` matches ``country``: 0 its own rule, 1 a region, 2 anywhere; None no match."""
    if destination == country:
        return 0
    if destination in REGIONS and country in REGIONS[destination][1]:
        return 1
    if destination == ANYWHERE:
        return 2
    return None


def shipping_cost_for(rules: Iterable[tuple[str, int]], country: str) -> int | None:
    """Return the cost of shipping to ``country`` under ``rules`` ((destination, cost) pairs), or None.

    The most specific rule wins (country, then region, then anywhere); None means the reward does
    not ship there.
    """
    best: tuple[int, int] | None = None
    for destination, cost in rules:
        rank = _specificity(destination, country)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, cost)
    return None if best is None else best[1]


def destinations_covering(country: str) -> list[str]:
    """Return every destination a rule could name that covers ``country`` (for one query of the rules)."""
    return [country, *(key for key, (_name, members) in REGIONS.items() if country in members), ANYWHERE]


def shipping_costs_by_country(rules: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Return {country code: cost} for every country ``rules`` ship to (the pledge form's choices)."""
    rules = list(rules)
    costs = {}
    for code in COUNTRIES:
        cost = shipping_cost_for(rules, code)
        if cost is not None:
            costs[code] = cost
    return costs


def shipping_rules_diff(before: Iterable[tuple[str, int]], after: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """Return the destinations ``after`` added, removed, raised and lowered compared with ``before``."""
    old, new = dict(before), dict(after)
    both = old.keys() & new.keys()
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "raised": sorted(d for d in both if new[d] > old[d]),
        "lowered": sorted(d for d in both if new[d] < old[d]),
    }


def shipping_agreed_kept(agreed: Iterable[tuple[str, int, int]], rules: Iterable[tuple[str, int]]) -> int:
    """Return how many of ``agreed`` ((country, shipping agreed, pledges)) ``rules`` would now charge more or not serve.

    Those backers keep what they agreed to; the rules apply to new pledges.
    """
    rules = list(rules)
    kept = 0
    for country, shipping, pledges in agreed:
        cost = shipping_cost_for(rules, country)
        if cost is None or cost > shipping:
            kept += pledges
    return kept


# A shipping cost above this is surely a typo (minor units: 10,000.00 in a two-decimal currency).
SHIPPING_COST_MAX_MINOR = 1_000_000


def shipping_rules_clean(rules, *, ships: bool) -> list[tuple[str, int]]:
    """Return ``rules`` (a list of {"destination", "cost"}) as checked (destination, cost) pairs.

    Refuses (InvalidInput, field ``shipping_rules``) an unknown destination, a destination named
    twice, a cost that is not a whole number of minor units from 0 to SHIPPING_COST_MAX_MINOR, more
    than SHIPPING_RULES_MAX rules, a physical reward without any rule and rules on a reward that
    does not ship.
    """
    if rules is None:
        rules = []
    if not isinstance(rules, list | tuple):
        raise _invalid(gettext("Shipping rules are a list of destinations with a cost."), "invalid_shipping_rules")
    if not ships:
        if rules:
            raise _invalid(
                gettext("Only a reward that ships can have shipping rules: mark it as physical."), "not_physical"
            )
        return []
    if not rules:
        raise _invalid(
            gettext("A physical reward needs at least one shipping destination with its cost."),
            "shipping_rules_required",
        )
    if len(rules) > SHIPPING_RULES_MAX:
        raise _invalid(
            gettext("A reward can have at most %(max)s shipping destinations.") % {"max": SHIPPING_RULES_MAX},
            "too_many_shipping_rules",
        )
    cleaned: list[tuple[str, int]] = []
    seen: set[str] = set()
    for rule in rules:
        if not isinstance(rule, dict):
            raise _invalid(gettext("Shipping rules are a list of destinations with a cost."), "invalid_shipping_rules")
        raw = rule.get("destination")
        destination = destination_normalise(raw) if isinstance(raw, str) else None
        if destination is None:
            raise _invalid(
                gettext(
                    "“%(destination)s” is not a shipping destination: use a two-letter country code "
                    "(ISO 3166-1, e.g. DE), eu, north_america or anywhere."
                )
                % {"destination": str(raw)[:40]},
                "invalid_destination",
            )
        if destination in seen:
            raise _invalid(
                gettext("%(destination)s is listed twice; give each destination one cost.")
                % {"destination": destination_name(destination)},
                "duplicate_destination",
            )
        seen.add(destination)
        cost = rule.get("cost")
        if isinstance(cost, bool) or not isinstance(cost, int) or not 0 <= cost <= SHIPPING_COST_MAX_MINOR:
            raise _invalid(
                gettext("The shipping cost to %(destination)s must be zero or more, and not absurdly large.")
                % {"destination": destination_name(destination)},
                "invalid_shipping_cost",
            )
        cleaned.append((destination, cost))
    return cleaned


def _invalid(message: str, code: str) -> InvalidInput:
    return InvalidInput(message, code=code, field="shipping_rules")
