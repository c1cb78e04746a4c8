"""A marketer imports a shop's CSV in headless Chromium: upload, map the columns,
a real worker imports, the result page follows it and offers the rejected rows."""

from pathlib import Path

import pytest

from crm.models import Lead, Membership
from tests.browser.test_admin_flow import OUTPUT_DIR, PASSWORD, browser_page  # noqa: F401
from tests.crm.factories import MembershipFactory, UserFactory

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
    browser_page,  # noqa: F811
    organization,
    tmp_path: Path,
):
    page = browser_page
    marketer = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True, username="marketer"),
        role=Membership.Role.MARKETER,
    ).user
    start_workers(1)
    admin = f"{live_server.url}/admin/"
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.goto(admin)
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")

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
    page.screenshot(path=str(OUTPUT_DIR / "admin-import-mapping.png"), full_page=True)
    page.click("#mapping-form input[type=submit]")

    # The result page follows the worker until the import is done.
    page.wait_for_selector("#import-report .status:text('Done')")
    assert page.inner_text("#import-report .created") == "2"
    assert page.inner_text("#rejected-rows tbody").startswith("3")
    page.screenshot(path=str(OUTPUT_DIR / "admin-import-result.png"), full_page=True)
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
