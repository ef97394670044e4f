"""The web import in a real browser: upload a list, read the preview (rejected rows with row,
column and reason; nothing imported yet), accept it, watch the progress reach the end."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id
from ops.registry.lifecycle import graduation, services
from ops.registry.models import Card, Cardholder, Department
from streams.cards import CardStatus
from tests.browser import chromium, log_in, outside_the_browser_loop

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "import-pass-7"


def test_nic_imports_a_list_through_the_web_preview(campus, stack, tmp_path):
    Department.objects.create(code="CE", name="化学工程系")
    create_or_update_operator(username="nic-web", password=PASSWORD, role=Role.NIC, is_superuser=True)
    lines = ["学号,姓名,学系,班级,身份证号,预计毕业日期"]
    for i in range(300):
        cid = citizen_id.make("440507", date(2007, 3, 1) + timedelta(days=i), i)
        if i == 7:
            cid = cid[:17] + ("0" if cid[17] != "0" else "1")
        lines.append(f"2026CE{i:05d},新生{i},化学工程系,化工2601,{cid},2030-06-30")
    upload = tmp_path / "新生名单.csv"
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")

    with chromium() as browser:
        page = browser.new_page()
        log_in(page, stack, "nic-web", PASSWORD, "/admin/cards/importbatch/upload/")
        page.select_option("#id_kind", "student")
        page.set_input_files("#id_file", str(upload))
        page.click("#preview-submit")
        page.wait_for_selector("#import-summary")
        assert "新增 299" in page.inner_text("#import-summary")
        assert "拒绝 1" in page.inner_text("#import-summary")
        rejected = page.inner_text("#import-rejected")
        assert "9" in rejected and "身份证号校验位错误" in rejected  # row 9 = data row 8
        assert outside_the_browser_loop(lambda: Cardholder.objects.filter(number__startswith="2026CE").count()) == 0

        page.click("#apply-submit")
        page.wait_for_function(
            "document.getElementById('import-progress') && document.getElementById('import-progress').value === 100",
            timeout=30_000,
        )
        assert "已导入" in page.inner_text("#import-status")
    assert Cardholder.objects.filter(number__startswith="2026CE").count() == 299
    # issue 13, acceptance 1 (R-END-1, R-END-3): what the browser imported graduates — in the
    # July dry-run report and cancelled by its apply; a deferred student is kept
    nic = create_or_update_operator(username="nic-july", password=PASSWORD, role=Role.NIC)
    for n, uid in (("2026CE00001", "7C000001"), ("2026CE00002", "7C000002")):
        services.issue_card(
            holder=Cardholder.objects.get(number=n), uid=uid, operator=nic, approved_by_operator=nic, basis="新生"
        )
    plan = graduation.plan_graduation(cutoff=date(2030, 7, 31), deferred={"2026CE00002": date(2031, 7, 1)})
    report = plan.report()
    assert "2026CE00001" in report["graduate_numbers"] and "2026CE00002" not in report["graduate_numbers"]
    graduation.run_graduation(plan=plan, operator=nic, basis="2030届毕业名单")
    assert Card.objects.get(uid="7C000001").status == CardStatus.CANCELLED
    assert Card.objects.get(uid="7C000002").status == CardStatus.ACTIVE
