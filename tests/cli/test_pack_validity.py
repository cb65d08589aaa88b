"""The command line counts DESKBOT_PACK_VALIDITY_MONTHS as the bot does: a grant (one, or an
import's) gets the months set then, and its end and warning, `customers show` and `customers list`
go by the day fixed at the grant, whatever the setting is now."""

from __future__ import annotations

import json

import pytest

import bot.cli.credits  # noqa: F401  (loaded before mid_2026 sets the clock of every bot.cli module)
from tests.cli.conftest import Run


@pytest.mark.usefixtures("mid_2026")  # the CLI's clock: 1 June 2026
def test_six_month_packs_on_the_command_line(cli: Run, cli_env: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    cli_env.setenv("DESKBOT_PACK_VALIDITY_MONTHS", "6")
    cli("customers", "add", "Acme Lda")
    fresh = cli("credits", "grant", "Acme Lda", "--incidents", "5", "--purchased", "2025-12-01")
    assert fresh.code == 0 and fresh.stderr == "", fresh
    assert "bought 2025-12-01, valid until 2026-06-01 inclusive. Acme Lda has 5 credits left." in fresh.stdout
    lapsed = cli("credits", "grant", "Acme Lda", "--incidents", "2", "--purchased", "2025-11-30")
    assert "bought 2025-11-30, valid until 2026-05-30 inclusive. Acme Lda has 5 credits left." in lapsed.stdout
    assert lapsed.stderr == "warning: this pack has expired already: it gives the customer nothing to use\n"

    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)["credits"]
    assert shown["left"] == 5 and shown["next_expiry"] == "2026-06-01"
    assert [(p["expires_on"], p["valid"]) for p in shown["packs"]] == [("2026-06-01", True), ("2026-05-30", False)]
    (listed,) = json.loads(cli("customers", "list", "--json").stdout)
    assert (listed["credits_left"], listed["next_expiry"]) == (5, "2026-06-01")

    (tmp_path / "packs.csv").write_text("customer,incidents,purchased\nAcme Lda,1,2025-11-15\n")
    imported = cli("credits", "import", str(tmp_path / "packs.csv"))
    assert imported.code == 0 and "warning: line 2: this pack has expired already" in imported.stderr
    # Cancelling the first pack leaves nothing: the others have lapsed.
    assert "Acme Lda has 0 credits left" in cli("credits", "cancel", "1").stdout


@pytest.mark.usefixtures("mid_2026")
def test_packs_granted_under_a_year_keep_it_when_the_setting_becomes_six_months(
    cli: Run,
    cli_env: pytest.MonkeyPatch,
    tmp_path,  # noqa: ANN001
) -> None:
    cli("customers", "add", "Acme Lda")
    year = json.loads(
        cli("credits", "grant", "Acme Lda", "--incidents", "2", "--purchased", "2025-11-30", "--json").stdout
    )
    assert year["expires_on"] == "2026-11-30"
    (tmp_path / "packs.csv").write_text("customer,incidents,purchased\nAcme Lda,1,2025-08-31\n")
    assert cli("credits", "import", str(tmp_path / "packs.csv")).code == 0  # a year: to 2026-08-31

    cli_env.setenv("DESKBOT_PACK_VALIDITY_MONTHS", "6")
    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)["credits"]
    assert shown["left"] == 3 and shown["next_expiry"] == "2026-08-31"
    assert [(p["expires_on"], p["valid"]) for p in shown["packs"]] == [("2026-11-30", True), ("2026-08-31", True)]
    # Granted now: six months, whether one by one or imported.
    (tmp_path / "more.csv").write_text("customer,incidents,purchased\nAcme Lda,3,2026-02-28\n")
    imported = cli("credits", "import", str(tmp_path / "more.csv"))
    assert imported.code == 0 and imported.stderr == "", imported
    fresh = cli("credits", "grant", "Acme Lda", "--incidents", "1", "--purchased", "2025-12-31")
    assert "bought 2025-12-31, valid until 2026-06-30 inclusive. Acme Lda has 7 credits left." in fresh.stdout
    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)["credits"]
    assert [p["expires_on"] for p in shown["packs"]] == ["2026-11-30", "2026-08-31", "2026-08-28", "2026-06-30"]
