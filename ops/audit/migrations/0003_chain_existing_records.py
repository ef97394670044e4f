"""Chain the records written before the chain existed (in id order), and set the head."""

from django.db import migrations


def forwards(apps, schema_editor):
    from ops.audit import chain

    AuditRecord = apps.get_model("audit", "AuditRecord")
    AuditChain = apps.get_model("audit", "AuditChain")
    previous, count, last_id = chain.GENESIS, 0, 0
    for rec in AuditRecord.objects.order_by("id").iterator(chunk_size=2000):
        previous = chain.link(previous, chain.canonical(
            rec.at, rec.actor_id, rec.actor_name, rec.action, rec.object_type, rec.object_id,
            rec.basis, rec.data))
        AuditRecord.objects.filter(pk=rec.pk).update(mac=previous)
        count, last_id = count + 1, rec.pk
    AuditChain.objects.update_or_create(pk=1, defaults={
        "last_id": last_id, "last_mac": "" if not count else previous, "count": count,
        "head_mac": chain.head_mac(last_id, "" if not count else previous, count)})


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
