# Issue 13, defect 5 (R-CARD-9, R-CARD-7): the free text each card kept as its approver is matched
# to the records. A temporary card's approving department is its owner department (谁审批，谁管理).
# Other text equal to a department's name or code, or to an operator's username, becomes that
# department or operator; text that matches nothing stays in ``approval_note``, the legacy note.
# Its own migration: data changes and schema changes do not share a transaction on PostgreSQL.

from django.conf import settings
from django.db import migrations


def _match(text, departments, users):
    """(department, user) named by ``text``: a department by name or code first, else a user."""
    department = departments.get(text)
    if department is not None:
        return department, None
    return None, users.get(text)


def forwards(apps, schema_editor):
    Card = apps.get_model("campus", "Card")
    Department = apps.get_model("campus", "Department")
    Operator = apps.get_model("accounts", "Operator")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    departments = {}
    for department in Department.objects.all():
        departments.setdefault(department.code, department)
        departments.setdefault(department.name, department)
    users = {u.username: u for u in User.objects.all()}
    operator_department = dict(Operator.objects.values_list("user_id", "department_id"))
    for card in Card.objects.all().iterator():
        text = (card.approval_note or "").strip()
        department, user = _match(text, departments, users) if text else (None, None)
        if card.card_type == "temporary" and card.owner_department_id is not None:
            card.approving_department_id = card.owner_department_id
            if department is not None and department.pk == card.owner_department_id:
                text = ""
            elif user is not None and operator_department.get(user.pk) == card.owner_department_id:
                card.approved_by_operator_id, text = user.pk, ""
        elif department is not None:
            card.approving_department_id, text = department.pk, ""
        elif user is not None:
            card.approved_by_operator_id, text = user.pk, ""
        card.approval_note = text
        card.save(update_fields=["approving_department", "approved_by_operator", "approval_note"])


def backwards(apps, schema_editor):
    """The text again: the note, else the department's name, else the operator's username."""
    Card = apps.get_model("campus", "Card")
    for card in Card.objects.select_related("approving_department", "approved_by_operator").iterator():
        if card.approval_note:
            continue
        if card.approving_department_id is not None:
            card.approval_note = card.approving_department.name
        elif card.approved_by_operator_id is not None:
            card.approval_note = card.approved_by_operator.username
        else:
            continue
        card.save(update_fields=["approval_note"])


class Migration(migrations.Migration):

    dependencies = [
        ('campus', '0010_card_approver_on_record'),
        ('accounts', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
