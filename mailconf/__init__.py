"""mailconf: one site description, the native configs of Postfix, Exim, Sendmail, qmail and Dovecot."""

__version__ = "0.1.0"
