"""A marketer imports a shop's CSV in headless Chromium: upload, map the columns,
a real worker imports, the result page follows it and offers the rejected rows."""

from pathlib import Path

import pytest

from crm.models import Lead
from tests.browser.conftest import log_in_marketer, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SHOP_CSV = (
    "Kundennummer,Handy,Mail,Lieblingstee\n"
    "k1,+1 202 555 0101,ann@example.com,green\n"
    "k2,12,bob@example.com,black\n"
    "k3,+1 202 555 0103,cy@example.com,mint\n"
)


def test_a_marketer_maps_a_shops_csv_and_downloads_its_rejects(
    transactional_db,
    live_server,
    start_workers,
    browser_page,
    organization,
    tmp_path: Path,
):
    page = browser_page
    start_workers(1)
    admin = log_in_marketer(page, live_server, organization)

    # From the leads page, upload the file.
    page.goto(f"{admin}crm/lead/")
    page.click("a.import-link")
    csv_file = tmp_path / "shop.csv"
    csv_file.write_text(SHOP_CSV)
    page.set_input_files("#id_file", str(csv_file))
    page.click("#upload-form input[type=submit]")

    # Map its columns; the first rows are shown beside them.
    page.wait_for_selector("#column-map")
    assert "+1 202 555 0101" in page.inner_text("#column-map")
    page.select_option("select[aria-label=Kundennummer]", "external_id")
    page.select_option("select[aria-label=Handy]", "phones")
    page.select_option("select[aria-label=Mail]", "emails")
    screenshot(page, "lead-import-mapping.png", docs_of="#mapping-form")
    page.click("#mapping-form input[type=submit]")

    # The result page follows the worker until the import is done.
    page.wait_for_selector("#import-report .status:text('Done')")
    assert page.inner_text("#import-report .created") == "2"
    assert page.inner_text("#rejected-rows tbody").startswith("3")
    screenshot(page, "lead-import-result.png", docs_of="#content-main")
    with page.expect_download() as download:
        page.click("a.rejected-download")
    rejected = Path(download.value.path()).read_text()
    assert (
        rejected.splitlines()[0]
        == "Kundennummer,Handy,Mail,Lieblingstee,rejected_reason"
    )
    assert rejected.splitlines()[1].startswith(
        'k2,12,bob@example.com,black,"invalid phone'
    )
    assert Lead.objects.get(external_id="k1").attributes == {"lieblingstee": "green"}
    assert not page.console_errors, page.console_errors
