"""Issue 19, item 9 in a real browser (with issue 18, Build 7): HR uploads a staff-change list;
the preview lists the rows to be updated with each change old → new (and the rejected row),
nothing changed yet; HR accepts it, and the page's title then says it is done (已导入)."""

from __future__ import annotations

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.choices import HolderKind
from ops.registry.models import Cardholder, Department
from tests.browser import chromium, log_in, outside_the_browser_loop

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "hr-lists-pass-19"


def test_the_preview_lists_updates_old_to_new_and_the_title_says_done_after_apply(campus, stack, tmp_path):
    cs = Department.objects.create(code="CS", name="计算机工程系")
    Department.objects.create(code="MA", name="数学系")
    for i in range(3):
        Cardholder.objects.create(kind=HolderKind.STAFF, number=f"T10{i}", name=f"教工{i}", department=cs, title="讲师")
    create_or_update_operator(username="hr-web", password=PASSWORD, role=Role.HR)
    upload = tmp_path / "人事变动.csv"
    upload.write_text(
        "工号,姓名,部门,职务/职称\nT100,教工0,数学系,副教授\nT101,教工1,计算机工程系,讲师\nT102,教工2,天文系,讲师\n",
        encoding="utf-8-sig",
    )

    with chromium() as browser:
        page = browser.new_page()
        log_in(page, stack, "hr-web", PASSWORD, "/admin/cards/importbatch/upload/")
        kinds = page.eval_on_selector_all("#id_kind option", "os => os.map(o => o.value)")
        assert set(kinds) == {"staff", "leavers", "staff_change"}  # HR's lists only
        page.select_option("#id_kind", "staff_change")
        page.set_input_files("#id_file", str(upload))
        page.click("#preview-submit")
        page.wait_for_selector("#import-summary")
        assert "导入预览" in page.inner_text("#import-title")
        assert "更新 1，无变化 1，拒绝 1" in page.inner_text("#import-summary")
        updates = page.inner_text("#import-updates")
        assert "T100" in updates and "计算机工程系 → 数学系" in updates and "讲师 → 副教授" in updates
        assert "T101" not in updates  # unchanged rows are not listed as updates
        assert "天文系" in page.inner_text("#import-rejected")
        assert outside_the_browser_loop(lambda: Cardholder.objects.get(number="T100").title) == "讲师"

        page.click("#apply-submit")
        page.wait_for_function("document.getElementById('import-title').textContent.includes('已导入')", timeout=30_000)
        assert page.title().startswith("已导入")
        page.reload()  # the page as served once applied says so too
        assert page.inner_text("#import-title").startswith("已导入")
        assert "已更新" in page.inner_text("h2") or "已更新" in page.content()
    holder = Cardholder.objects.get(number="T100")
    assert (holder.department.code, holder.title) == ("MA", "副教授")
