# Django's Simplified Chinese formats ("2026年12月25日"), with the time zone after times, as the
# English pages show it. Only what differs from Django's own is here.
DATETIME_FORMAT = "Y年n月j日 H:i e"
SHORT_DATETIME_FORMAT = "Y年n月j日 H:i e"
MONTH_DAY_FORMAT = "n月j日"
