# Dates as the pages have always shown them ("25 December 2026"), by the names templates use, so
# that each language can write them its own way (see ../zh_Hans/formats.py). Only what differs
# from Django's own English formats is here.
DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y, H:i e"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i e"
MONTH_DAY_FORMAT = "j M"
