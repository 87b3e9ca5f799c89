"""The rate sheet in force since Flex tokens replaced cloud credits (2022-03-29).

Published rates come from the domain description; rows marked ``illustrative`` are
plausible demo products. Staff change rates in the Django admin by adding a row with a
later ``effective_from``.
"""

from datetime import datetime, timezone
from decimal import Decimal

from django.db import migrations

EFFECTIVE = datetime(2022, 3, 29, tzinfo=timezone.utc)

RATES = [
    # code, name, charge type, tokens, unit, cloud-credit eligible, illustrative, variants
    ("autocad", "AutoCAD", "daily", "7", "day", False, False, []),
    ("revit", "Revit", "daily", "10", "day", False, False, []),
    ("cfd-simulation", "CFD cloud simulation", "per_result", "0", "simulation", True, False,
     [("simple", "5"), ("moderate", "10"), ("complex", "35")]),
    ("generative-design", "Generative design study", "per_result", "11", "study", True, False, []),
    ("design-automation", "Design automation", "per_result", "2", "processing hour", True, False, []),
    ("cloud-rendering", "Cloud rendering, standard quality (up to 6 MP)", "free", "0", "render", False, False, []),
    ("inventor", "Inventor", "daily", "8", "day", False, True, []),
    ("civil-3d", "Civil 3D", "daily", "10", "day", False, True, []),
    ("navisworks", "Navisworks Manage", "daily", "6", "day", False, True, []),
    ("cloud-rendering-final", "Cloud rendering, final quality", "per_result", "1.50", "render", True, True, []),
]


def install(apps, schema_editor):
    Rate = apps.get_model("billing", "Rate")
    RateVariant = apps.get_model("billing", "RateVariant")
    for code, name, charge_type, tokens, unit, eligible, illustrative, variants in RATES:
        rate = Rate.objects.create(
            code=code,
            name=name,
            charge_type=charge_type,
            tokens=Decimal(tokens),
            unit=unit,
            cloud_credit_eligible=eligible,
            grace_minutes=5,
            effective_from=EFFECTIVE,
            illustrative=illustrative,
        )
        for variant_code, variant_tokens in variants:
            RateVariant.objects.create(rate=rate, code=variant_code, tokens=Decimal(variant_tokens))


def remove(apps, schema_editor):
    apps.get_model("billing", "Rate").objects.filter(effective_from=EFFECTIVE).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
