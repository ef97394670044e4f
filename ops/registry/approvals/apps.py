from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeviceApprovalsConfig(AppConfig):
    """Device approvals (issue 18, Build 2; R-DEV-1, R-DEV-2): installing, moving or removing a
    reader is a request of its owning department (or NIC), approved by NIC — a second NIC person
    when NIC asked — before the device is trusted or its place changes."""

    name = "ops.registry.approvals"
    label = "device_approvals"
    verbose_name = _("设备审批")
