"""A mail backend for worker-process tests: Django's file backend, slowed, flushed per message.

Slow so that a worker can be killed while it is sending; flushed so that a message handed
over is on disk at once, as one accepted by a mail server would be gone.
"""

import os
import time

from django.core.mail.backends import filebased


class SlowFileBackend(filebased.EmailBackend):
    def __init__(self, *args, file_path=None, **kwargs):
        # Settings have no EMAIL_FILE_PATH from the environment; the test tells the worker here.
        super().__init__(*args, file_path=file_path or os.environ["TEST_EMAIL_FILE_PATH"], **kwargs)

    def write_message(self, message):
        time.sleep(float(os.environ.get("TEST_EMAIL_DELAY_SECONDS", "0.05")))
        super().write_message(message)
        self.stream.flush()
