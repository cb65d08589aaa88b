from tests.mail.fixtures import mail, pytest_runtest_makereport  # noqa: F401
