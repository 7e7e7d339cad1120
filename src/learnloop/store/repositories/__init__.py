"""Repositories, one module per aggregate: every SQL statement learnloop runs lives here.
They take and return domain records (``learnloop.domain``); table rows never leave ``store``."""
